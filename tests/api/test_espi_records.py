"""Green Button ESPI XML from the records endpoint: negotiated (`Accept: application/atom+xml` or
`format=espi`) for the datasets that offer it, valid against the NAESB schema, read back equal to
the JSON API's records, within the consent — and refused everywhere else."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from restitution.models import AccessEvent, Dataset
from tests.api.test_records_api import _contract, all_pages, get, write
from tests.greenbutton.espi import PARIS, assert_valid, day_record, epoch, kw, read
from tests.personas import CONTRACTS, CURVE, scope_of

ATOM = "application/atom+xml"
PROBLEM = "application/problem+json"
DAILY = "energy-daily-consumption"
SPRING, FALL = date(2025, 3, 30), date(2025, 10, 26)
ALICE_DAYS = [SPRING, date(2025, 3, 31), FALL, date(2025, 10, 27)]


@pytest.fixture
def energy(personas):
    """alice: four days (both DST days, one with gaps and an estimated reading); bob: one day."""
    records = [day_record(day) for day in ALICE_DAYS]
    records[3] = day_record(ALICE_DAYS[3], missing=(3, 4), estimated=(5,), base=1.25)
    write(personas.alice, CURVE, records)
    write(personas.alice, CONTRACTS, [_contract("A1")])
    write(personas.bob, CURVE, [day_record(date(2025, 3, 31), meter="99999999999999", base=9.0)])
    return records


def _espi(flow, token, path=f"/api/v1/datasets/{CURVE}/records", **extra):
    response = get(flow, token, path, **extra)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def test_accept_atom_gives_one_valid_feed_of_every_day_dst_days_exact(flow, energy):
    token = flow.tokens()["access_token"]
    response, body = _espi(flow, token, HTTP_ACCEPT=ATOM)
    assert response.status_code == 200, body[:500]
    assert response["Content-Type"] == f"{ATOM}; charset=utf-8"
    assert_valid(body)
    feed = read(body)
    assert [(b.duration, len(b.readings)) for b in feed.blocks] == [(82800, 46), (86400, 48), (90000, 50),
                                                                    (86400, 46)]
    for block in feed.blocks[:3]:
        assert sum(r["duration"] for r in block.readings) == block.duration
    assert feed.time["dstStartRule"] == "3E0E2000" and feed.time["dstEndRule"] == "AE0E3000"
    assert b"99999999999999" not in body  # bob's meter: another customer


def test_the_feed_reads_back_equal_to_the_json_records(flow, energy):
    token = flow.tokens()["access_token"]
    items = sorted(all_pages(flow, token, f"/api/v1/datasets/{CURVE}/records"), key=lambda i: i["data"]["start"])
    _, body = _espi(flow, token, path=f"/api/v1/datasets/{CURVE}/records?format=espi")
    feed = read(body)
    assert len(items) == len(feed.blocks) == 4
    for item, block in zip(items, feed.blocks, strict=True):
        data = item["data"]
        assert block.start == epoch(data["start"]) and block.duration == data["duration_seconds"]
        assert [(r["start"], kw(r, feed.reading_type)) for r in block.readings] == [
            (epoch(r["start"]), Decimal(str(r["value"]))) for r in data["readings"]]
        assert [r["quality"] for r in block.readings] == [[8] if r.get("quality") else []
                                                          for r in data["readings"]]


def test_the_consent_period_and_the_date_filters_bound_the_feed(flow, energy):
    token = flow.tokens(window_start="2025-10-26", window_end="2025-10-26")["access_token"]
    _, body = _espi(flow, token, HTTP_ACCEPT=ATOM)
    assert_valid(body)
    assert [b.href.rsplit("/", 1)[1] for b in read(body).blocks] == ["20251026"]  # the local day, whole
    # A wider `from`/`to` does not widen the consent.
    _, wider = _espi(flow, token, path=f"/api/v1/datasets/{CURVE}/records?format=espi&from=2025-01-01&to=2025-12-31")
    assert len(read(wider).blocks) == 1

    full = flow.tokens()["access_token"]
    _, march = _espi(flow, full, path=f"/api/v1/datasets/{CURVE}/records?format=espi&from=2025-03-01&to=2025-03-31")
    assert [b.href.rsplit("/", 1)[1] for b in read(march).blocks] == ["20250330", "20250331"]


def test_a_feed_read_is_in_the_customers_access_history(flow, energy, personas):
    token = flow.tokens()["access_token"]
    _espi(flow, token, HTTP_ACCEPT=ATOM)
    event = AccessEvent.objects.filter(customer=personas.alice, kind=AccessEvent.Kind.DATA_READ).latest("pk")
    assert event.dataset.slug == CURVE and event.record_count == 4 and event.detail.get("format") == "espi"


def test_a_dataset_that_offers_no_espi_is_a_406_by_accept_and_a_400_by_format(flow, energy):
    token = flow.tokens()["access_token"]
    refused = get(flow, token, f"/api/v1/datasets/{CONTRACTS}/records", HTTP_ACCEPT=ATOM)
    assert refused.status_code == 406 and refused["Content-Type"] == PROBLEM
    assert refused.json()["code"] == "not_acceptable"
    bad = get(flow, token, f"/api/v1/datasets/{CONTRACTS}/records?format=espi")
    assert bad.status_code == 400 and bad["Content-Type"] == PROBLEM
    assert bad.json()["parameter"] == "format"
    # JSON still works for it, and for the energy dataset.
    assert get(flow, token, f"/api/v1/datasets/{CONTRACTS}/records").status_code == 200
    assert get(flow, token, f"/api/v1/datasets/{CURVE}/records").status_code == 200


def test_the_dataset_list_names_the_formats_of_each_dataset(flow, energy):
    token = flow.tokens()["access_token"]
    formats = {d["slug"]: d["formats"] for d in get(flow, token, "/api/v1/datasets").json()["items"]}
    assert formats == {CURVE: ["json", "ndjson", "csv", "espi"], CONTRACTS: ["json", "ndjson", "csv"]}


def test_the_demos_load_curve_reads_back_equal_to_the_api_one_block_per_local_day(flow, personas, demo_dir):
    """The load curve as shipped (day blocks, ESPI declared in the catalogue), on the demo
    generator's data: one IntervalBlock per record, DST days exact, every reading equal."""
    from tests.conftest import load_ground_truth

    truth = load_ground_truth(demo_dir)
    customer = sorted({k[0] for k in truth if k[1] == CURVE})[0]
    write(personas.alice, CURVE, [data for key, data in sorted(truth.items()) if key[:2] == (customer, CURVE)])
    token = flow.tokens()["access_token"]
    items = sorted(all_pages(flow, token, f"/api/v1/datasets/{CURVE}/records"), key=lambda i: i["data"]["start"])
    assert "espi" in {d["slug"]: d for d in get(flow, token, "/api/v1/datasets").json()["items"]}[CURVE]["formats"]
    _, body = _espi(flow, token, path=f"/api/v1/datasets/{CURVE}/records?format=espi")
    assert_valid(body)
    feed = read(body)
    assert len(feed.blocks) == len(items) > 0
    for item, block in zip(items, feed.blocks, strict=True):
        data = item["data"]
        assert (block.start, block.duration) == (epoch(data["start"]), data["duration_seconds"])
        assert len(block.readings) == data["expected_readings"] - data["missing_count"]
        assert [(r["start"], kw(r, feed.reading_type)) for r in block.readings] == [
            (epoch(r["start"]), Decimal(str(r["value"]))) for r in data["readings"]]
    assert {b.duration for b in feed.blocks} >= {86400, 82800, 90000}  # the demo spans both clock changes


@pytest.mark.parametrize("query", ["since=1", "cursor=eyJhZnRlciI6IDN9", "page_size=10"])
def test_paging_and_sync_parameters_are_400_with_espi(flow, energy, query):
    token = flow.tokens()["access_token"]
    response = get(flow, token, f"/api/v1/datasets/{CURVE}/records?format=espi&{query}")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    assert response.json()["parameter"] == query.split("=")[0]


def test_a_token_without_the_scope_is_refused_403(flow, energy):
    tokens = flow.tokens()
    narrower = flow.refresh(tokens["refresh_token"], scope=scope_of(CONTRACTS)).json()["access_token"]
    refused = get(flow, narrower, f"/api/v1/datasets/{CURVE}/records", HTTP_ACCEPT=ATOM)
    assert refused.status_code == 403 and refused["Content-Type"] == PROBLEM
    assert 'error="insufficient_scope"' in refused["WWW-Authenticate"]
    # Not granted at all: 404, as for JSON.
    only_contracts = flow.tokens(datasets=[CONTRACTS])["access_token"]
    assert get(flow, only_contracts, f"/api/v1/datasets/{CURVE}/records?format=espi").status_code == 404
    assert get(flow, "not-a-token", f"/api/v1/datasets/{CURVE}/records?format=espi").status_code == 401


def test_daily_consumption_is_served_as_espi_as_shipped(flow, personas):
    personas.trusted.allowed_datasets.add(Dataset.objects.get(slug=DAILY))
    days = [SPRING - timedelta(days=1) + timedelta(days=i) for i in range(4)]
    records = [{"delivery_point": "12345678901234", "day": d.isoformat(), "energy_kwh": 8.125 + i,
                "max_power_kva": None} for i, d in enumerate(days)]
    write(personas.alice, DAILY, records)
    token = flow.tokens(datasets=[DAILY], scope=scope_of(DAILY))["access_token"]
    response, body = _espi(flow, token, path=f"/api/v1/datasets/{DAILY}/records", HTTP_ACCEPT=ATOM)
    assert response.status_code == 200, body[:500]
    assert_valid(body)
    feed = read(body)
    readings = [r for block in feed.blocks for r in block.readings]
    assert [r["duration"] for r in readings] == [86400, 82800, 86400, 86400]
    assert [Decimal(r["value"]) / 1_000_000 for r in readings] == [Decimal(str(r["energy_kwh"])) for r in records]


def test_the_demos_daily_consumption_reads_back_equal_to_the_api(flow, personas, demo_dir):
    """Every energy dataset the catalogue ships with Green Button, on the demo generator's data (its
    DST days included): the feed is valid and each reading equals the API's JSON record."""
    from tests.conftest import load_ground_truth

    truth = load_ground_truth(demo_dir)
    customer = sorted({k[0] for k in truth if k[1] == DAILY})[0]
    write(personas.alice, DAILY, [data for key, data in sorted(truth.items()) if key[:2] == (customer, DAILY)])
    personas.trusted.allowed_datasets.add(Dataset.objects.get(slug=DAILY))
    token = flow.tokens(datasets=[DAILY], scope=scope_of(DAILY))["access_token"]
    items = all_pages(flow, token, f"/api/v1/datasets/{DAILY}/records")
    _, body = _espi(flow, token, path=f"/api/v1/datasets/{DAILY}/records?format=espi")
    assert_valid(body)
    feed = read(body)
    readings = {r["start"]: r for block in feed.blocks for r in block.readings}
    assert len(readings) == len(items) > 0
    for item in items:
        day = date.fromisoformat(item["data"]["day"])
        start = datetime(day.year, day.month, day.day, tzinfo=PARIS)
        following = day + timedelta(days=1)
        end = datetime(following.year, following.month, following.day, tzinfo=PARIS)
        reading = readings[int(start.timestamp())]
        assert reading["duration"] == int(end.timestamp() - start.timestamp())  # 82 800 or 90 000 on DST days
        assert Decimal(reading["value"]) / 1_000_000 == Decimal(str(item["data"]["energy_kwh"]))
    assert {r["duration"] for r in readings.values()} >= {86400, 90000}  # the demo spans a fall-back day
