"""Archives of an energy dataset that offers Green Button also hold `<slug>.espi.xml`: listed in the
manifest, named by the README, valid against the NAESB schema, equal to the archived records."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from restitution import exports
from restitution.models import Dataset, ExportJob
from tests.api.test_records_api import _contract, write
from tests.exports.archive_reader import ndjson_items, open_checked
from tests.exports.test_dashboard import browser_for
from tests.exports.test_export_api import ask, build_now
from tests.greenbutton.espi import assert_valid, day_record, epoch, kw, read
from tests.personas import CONTRACTS, CURVE

pytestmark = pytest.mark.django_db(transaction=True)

DAILY = "energy-daily-consumption"
DAYS = [date(2025, 3, 30), date(2025, 10, 26), date(2025, 10, 27)]


@pytest.fixture
def energy(personas, media):
    records = [day_record(DAYS[0]), day_record(DAYS[1]), day_record(DAYS[2], missing=(10,), estimated=(11,))]
    write(personas.alice, CURVE, records)
    write(personas.alice, DAILY, [{"delivery_point": "12345678901234", "day": d.isoformat(), "energy_kwh": 9.5,
                                   "max_power_kva": 6.1} for d in DAYS])
    write(personas.alice, CONTRACTS, [_contract("A1")])
    return records


def _customer_archive(customer):
    browser = browser_for(customer)
    browser.post("/account/download/")
    exports.execute_export(job_id=ExportJob.objects.get(customer=customer, for_customer=True).pk)
    url = browser.get("/account/download/status/").json()["url"]
    return open_checked(b"".join(Client().get(url).streaming_content))


def test_the_customers_archive_holds_a_valid_feed_per_energy_dataset(energy, personas):
    archive, manifest = _customer_archive(personas.alice)
    espi = {f["path"]: f for f in manifest["files"] if f["kind"] == "espi"}
    assert set(espi) == {f"{CURVE}.espi.xml", f"{DAILY}.espi.xml"}  # not the contracts
    assert espi[f"{CURVE}.espi.xml"]["content_type"] == "application/atom+xml"

    curve = archive.read(f"{CURVE}.espi.xml")
    assert_valid(curve)
    feed = read(curve)
    items = sorted(ndjson_items(archive, CURVE), key=lambda item: item["data"]["start"])
    assert [(b.duration, len(b.readings)) for b in feed.blocks] == [(82800, 46), (90000, 50), (86400, 47)]
    for item, block in zip(items, feed.blocks, strict=True):
        assert block.start == epoch(item["data"]["start"])
        assert [kw(r, feed.reading_type) for r in block.readings] == [
            Decimal(str(r["value"])) for r in item["data"]["readings"]]

    daily = archive.read(f"{DAILY}.espi.xml")
    assert_valid(daily)
    assert [r["duration"] for b in read(daily).blocks for r in b.readings] == [82800, 90000, 86400]

    readme = archive.read("README.txt").decode()
    assert f"{CURVE}.espi.xml" in readme and f"{DAILY}.espi.xml" in readme and "Green Button" in readme


def test_a_clients_archive_feed_keeps_to_the_consent_period_and_its_own_identifiers(energy, flow, personas):
    token = flow.tokens(window_start="2025-10-26", window_end="2025-10-27")["access_token"]
    asked = ask(flow, token, datasets=[CURVE])
    assert asked.status_code == 202, asked.content
    build_now(asked["Content-Location"])
    job = ExportJob.objects.get(public_id=asked["Content-Location"].rstrip("/").rsplit("/", 1)[1])
    with exports.open_archive(job=job) as handle:
        archive, manifest = open_checked(handle.read())
    client_feed = archive.read(f"{CURVE}.espi.xml")
    assert_valid(client_feed)
    blocks = read(client_feed).blocks
    assert [b.href.rsplit("/", 1)[1] for b in blocks] == ["20251026", "20251027"]  # not March 30
    assert json.loads(archive.read("manifest.json"))["grant"]["client_id"] == "trusted-cloud"

    # The same day in the customer's own archive has other identifiers (another audience).
    own, _ = _customer_archive(personas.alice)
    own_ids = set(read(own.read(f"{CURVE}.espi.xml")).ids)
    assert own_ids.isdisjoint(read(client_feed).ids)


def test_an_archive_without_espi_datasets_has_no_feed(personas, media):
    write(personas.alice, CONTRACTS, [_contract("A1")])
    assert Dataset.objects.filter(slug=CONTRACTS).exists()
    archive, manifest = _customer_archive(personas.alice)
    assert not [name for name in archive.namelist() if name.endswith(".espi.xml")]
