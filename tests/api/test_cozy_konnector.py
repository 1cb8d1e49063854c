"""The Cozy konnector example (docs/examples/cozy-konnector) run in cozy-konnector-libs'
standalone mode against the live test server: it saves every dataset exactly as the API gives
it (invoices through saveBills, with the real PDFs), then only what changed (a deletion
included), and after a new consent that widens the period it reads everything again, so the
records that entered the window are there: no silent gap."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import httpx
import pytest
from django.core.files.base import ContentFile

from restitution import consent
from restitution.models import Dataset, Document
from tests.api.cozy_konnector_install import KONNECTOR, konnector_node_modules
from tests.api.test_isolation_property import issue_token
from tests.api.test_records_api import _contract, write
from tests.conftest import load_ground_truth, reset_rate_limits
from tests.personas import CONTRACTS, CURVE

DOCTYPES = {
    "energy-load-curve": "fr.enedis.api.meteringdata.loadcurve",
    "energy-daily-consumption": "fr.enedis.api.meteringdata.dailyconsumption",
    "energy-contract": "fr.enedis.api.meteringdata.contract",
    "insurance-contracts": "fr.maif.maifuser.contrat",
    "insurance-claims": "fr.maif.maifuser.sinistre",
    "telco-call-log": "fr.orange.phonecommunicationlog",
}
INVOICES = "telco-invoices"
CLAIMS = "insurance-claims"
PER_DATASET = 23


def run_konnector(run_dir: Path, url: str, token: str) -> subprocess.CompletedProcess:
    """One run of the konnector, as `cozy-konnector-libs` standalone runs it (no COZY_URL)."""
    run_dir.mkdir(exist_ok=True)
    shutil.copyfile(KONNECTOR / "manifest.konnector", run_dir / "manifest.konnector")
    (run_dir / "konnector-dev-config.json").write_text(json.dumps(
        {"fields": {"access_token": token, "gateway_url": url}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COZY_")}
    env.update(NODE_PATH=str(konnector_node_modules()), NODE_ENV="standalone",
               COZY_FIELDS=json.dumps({"account": "standalone-account", "folder_to_save": "."}))
    result = subprocess.run(["node", str(KONNECTOR / "standalone" / "run.js")], cwd=run_dir, env=env,
                            capture_output=True, text=True, timeout=300)
    with (run_dir / "konnector.log").open("a") as log:  # kept with the run's files, to read on a failure
        log.write(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def saved(run_dir: Path) -> dict:
    return json.loads((run_dir / "importedData.json").read_text())


def api_records(url: str, token: str, slug: str) -> dict[str, dict]:
    """The API's live records of a dataset, by key, read to the last page."""
    items, path = [], f"{url}/api/v1/datasets/{slug}/records?page_size=7"
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http:
        while path:
            reset_rate_limits()  # this check's reads are not the konnector's budget
            page = http.get(path)
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            path = page.json()["next"]
            path = path if not path or path.startswith("http") else url + path
    return {i["key"]: i for i in items if not i.get("deleted")}


def assert_mirror_exact(run_dir: Path, url: str, token: str, slugs: list[str], pdfs: dict[str, bytes]) -> dict:
    """Every dataset's docs hold exactly the API's records (fields as the API gives them)."""
    db, counts = saved(run_dir), {}
    for slug in slugs:
        expected = api_records(url, token, slug)
        counts[slug] = len(expected)
        if slug == INVOICES:
            bills = {b["restitution"]["key"]: b for b in db.get("io.cozy.bills", [])}
            assert set(bills) == set(expected), slug
            files = {f["_id"]: f for f in db["io.cozy.files"]}
            for key, item in expected.items():
                bill, data = bills[key], item["data"]
                assert (bill["vendorRef"], bill["amount"], bill["currency"], bill["vendor"]) == (
                    data["invoice_id"], data["amount_incl_tax"], "EUR", "Demo data holder")
                assert bill["date"].startswith(data["issued_on"])
                assert {k: bill[k] for k in data} == data
                document = files[bill["invoice"].removeprefix("io.cozy.files:")]
                content = (run_dir / document["dir_id"] / document["attributes"]["name"]).read_bytes()
                assert content.startswith(b"%PDF") and content == pdfs[data["document"]["sha256"]]
            continue
        docs = {d["restitution"]["key"]: d for d in db.get(DOCTYPES[slug], [])}
        if any("readings" in item["data"] for item in expected.values()):
            # A day block of interval readings: one doc per reading, named by its meter and start.
            readings = {f"{item['data']['delivery_point']}|{r['start']}": (key, item, r)
                        for key, item in expected.items() for r in item["data"]["readings"]}
            assert set(docs) == set(readings) and readings, slug
            for name, (key, item, reading) in readings.items():
                doc = docs[name]
                assert (doc["restitution"]["recordKey"], doc["restitution"]["seq"], doc["value"], doc["day"]) == (
                    key, item["seq"], reading["value"], item["data"]["day"]), (slug, name)
            continue
        assert set(docs) == set(expected), slug
        for key, item in expected.items():
            assert {k: docs[key][k] for k in item["data"]} == item["data"], (slug, key)
            assert docs[key]["restitution"]["seq"] == item["seq"]
    return counts


def _invoices_with_pdfs(demo_dir: Path, invoices: list[dict]) -> dict[str, bytes]:
    pdfs = {}
    for invoice in invoices:
        (path,) = demo_dir.rglob(f"invoices/{invoice['invoice_id']}.pdf")
        pdfs[invoice["document"]["sha256"]] = path.read_bytes()
        assert hashlib.sha256(pdfs[invoice["document"]["sha256"]]).hexdigest() == invoice["document"]["sha256"]
    return pdfs


@pytest.mark.django_db(transaction=True)
def test_the_cozy_konnector_mirrors_every_dataset_then_only_changes_and_survives_a_consent_change(
        live_server, personas, demo_dir, tmp_path, caplog):
    truth = load_ground_truth(demo_dir)
    by_slug: dict[str, list[dict]] = {}
    for (_, slug, _), value in sorted(truth.items()):
        by_slug.setdefault(slug, []).append(value)
    for slug, records in by_slug.items():
        if slug != CONTRACTS:
            write(personas.alice, slug, records[:PER_DATASET])
    write(personas.alice, CONTRACTS, [_contract("A1"), _contract("A2"), _contract("A3")])
    invoices = Dataset.objects.get(slug=INVOICES)
    pdfs = _invoices_with_pdfs(demo_dir, by_slug[INVOICES][:PER_DATASET])
    for invoice in by_slug[INVOICES][:PER_DATASET]:
        document = Document(customer=personas.alice, dataset=invoices, record_key=invoice["invoice_id"],
                            filename=invoice["document"]["filename"], content_type="application/pdf",
                            size=invoice["document"]["size"], sha256=invoice["document"]["sha256"])
        document.file.save(invoice["document"]["filename"], ContentFile(pdfs[invoice["document"]["sha256"]]))

    datasets = list(Dataset.objects.filter(is_published=True))
    slugs = sorted(d.slug for d in datasets)
    assert slugs == sorted([*DOCTYPES, INVOICES])
    personas.trusted.allowed_datasets.set(datasets)
    # The first consent leaves out what happened before 2019 (some of the claims): the widened
    # one brings them in.
    cut = date(2019, 1, 1)
    first = consent.create_grant(customer=personas.alice, client=personas.trusted, datasets=datasets,
                                 duration="12m", window_start=cut)
    token = issue_token(first)
    run_dir, url = tmp_path / "cozy", live_server.url

    # 1. The first run: every dataset, invoices with their PDFs.
    first_run = run_konnector(run_dir, url, token)
    counts = assert_mirror_exact(run_dir, url, token, slugs, pdfs)
    assert counts[CONTRACTS] == 3 and all(counts.values())  # every dataset holds records
    state = saved(run_dir)["io.cozy.accounts"][0]["data"]
    assert state["grant"] == str(first.receipt_id) and set(state["since"]) == set(slugs)
    assert all(r["full"] for r in state["lastRun"].values())
    assert "pacing" in first_run.stdout or counts[INVOICES] < 5  # more PDFs than the 5/s budget: paced

    # 2. A change and a deletion at the holder: only they arrive.
    write(personas.alice, CONTRACTS, [_contract("A1"), _contract("A2", premium=250.0)])
    run_konnector(run_dir, url, token)
    assert_mirror_exact(run_dir, url, token, slugs, pdfs)
    report = saved(run_dir)["io.cozy.accounts"][0]["data"]["lastRun"]
    assert report[CONTRACTS] == {"full": False, "items": 2, "written": 1, "deleted": 1}
    assert all(r == {"full": False, "items": 0, "written": 0, "deleted": 0}
               for slug, r in report.items() if slug != CONTRACTS)
    contracts = {d["contract_id"]: d for d in saved(run_dir)[DOCTYPES[CONTRACTS]]}
    assert sorted(contracts) == ["A1", "A2"] and contracts["A2"]["annual_premium"] == 250.0

    # 3. A new consent widens the period: the records that entered the window arrive too.
    second = consent.create_grant(customer=personas.alice, client=personas.trusted, datasets=datasets,
                                  duration="12m")
    token = issue_token(second)
    run_konnector(run_dir, url, token)
    widened = assert_mirror_exact(run_dir, url, token, slugs, pdfs)
    assert widened[CLAIMS] > counts[CLAIMS] and widened[CURVE] == PER_DATASET
    state = saved(run_dir)["io.cozy.accounts"][0]["data"]
    assert state["grant"] == str(second.receipt_id) and all(r["full"] for r in state["lastRun"].values())

    # Paced by the RateLimit headers: not one request of the three runs was refused.
    assert not [r for r in caplog.records if r.name == "django.request" and r.getMessage().startswith("Too Many")]

    # 4. A document asked as the konnector asks it (Accept: application/pdf) is the PDF.
    sha = next(iter(pdfs))
    reset_rate_limits()
    response = httpx.get(f"{url}/api/v1/datasets/{INVOICES}/documents/{sha}",
                         headers={"Authorization": f"Bearer {token}", "Accept": "application/pdf"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.content == pdfs[sha]


def test_a_load_curve_day_record_with_readings_makes_one_doc_per_reading(tmp_path):
    """The load curve may come as one record per meter and local day holding its `readings`:
    each reading is a doc of its own, keyed like a half-hour record, tied to its day record."""
    day = {"dataset": CURVE, "key": "12345678901234|2025-03-30", "seq": 7, "data": {
        "delivery_point": "12345678901234", "day": "2025-03-30", "readings": [
            {"start": "2025-03-29T23:00:00Z", "end": "2025-03-29T23:30:00Z", "average_power_kw": 0.5},
            {"start": "2025-03-29T23:30:00Z", "end": "2025-03-30T00:00:00Z", "average_power_kw": 0.75}]}}
    flat = {"dataset": CURVE, "key": "12345678901234|2025-03-29T22:30:00Z", "seq": 8, "data": {
        "delivery_point": "12345678901234", "start": "2025-03-29T22:30:00Z", "end": "2025-03-29T23:00:00Z",
        "average_power_kw": 0.25}}
    script = ("const m = require(process.argv[1]);"
              "const items = JSON.parse(process.argv[2]);"
              "console.log(JSON.stringify(items.map(i => m.toDocs(i.dataset, i))));")
    out = subprocess.run(["node", "-e", script, str(KONNECTOR / "src" / "mapping.js"), json.dumps([day, flat])],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    from_day, from_flat = json.loads(out)
    assert [(d["restitution"]["key"], d["restitution"]["recordKey"], d["value"], d["prm"]) for d in from_day] == [
        ("12345678901234|2025-03-29T23:00:00Z", day["key"], 0.5, "12345678901234"),
        ("12345678901234|2025-03-29T23:30:00Z", day["key"], 0.75, "12345678901234")]
    assert all("readings" not in d and d["day"] == "2025-03-30" for d in from_day)
    assert [(d["restitution"]["key"], d["restitution"]["recordKey"], d["value"], d["date"]) for d in from_flat] == [
        (flat["key"], flat["key"], 0.25, "2025-03-29T22:30:00Z")]
