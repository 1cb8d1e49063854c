"""A record of a dataset of days (a daily value, an invoice's issue day) is dated by its local day:
stored at the day's local midnight, printed as the day itself (`"date": "2025-03-30"`) in every
rendering, and held by a consent period or `from`/`to` of that day exactly — in any time zone."""

from __future__ import annotations

import csv
import importlib
import io
import json
from datetime import UTC, datetime

import pytest
from django.db import connection

from restitution import catalogue, items, store
from restitution.models import Dataset, Record
from tests.api.test_records_api import all_pages, get
from tests.personas import scope_of

DAILY = "energy-daily-consumption"


def _daily(day: str, kwh: float = 7.5) -> dict:
    return {"delivery_point": "12345678901234", "day": day, "energy_kwh": kwh, "max_power_kva": None}


def _write(customer, records: list[dict]) -> Dataset:
    dataset = Dataset.objects.get(slug=DAILY)
    writer = store.SnapshotWriter(dataset_id=dataset.pk, source_id=None)
    writer.include(customer.pk)
    for data in records:
        writer.add(customer_id=customer.pk, key=store.record_key(data, dataset.natural_key), data=data,
                   locator="test", record_at=store.parse_record_date(data["day"], dataset.day_zone))
    writer.finish()
    return dataset


@pytest.fixture
def new_york(settings, personas):
    """The customers' calendar is New York's: its local midnight is 04:00 or 05:00 UTC, so a day
    stored at 00:00 UTC would fall on the day before."""
    settings.GATEWAY_CUSTOMER_TIME_ZONE = "America/New_York"
    Dataset.objects.filter(slug=DAILY).update(day_zone="America/New_York")
    personas.trusted.allowed_datasets.add(Dataset.objects.get(slug=DAILY))
    return personas


def test_the_catalogue_dates_days_by_the_customers_zone_and_instants_in_utc(personas):
    zones = dict(Dataset.objects.values_list("slug", "day_zone"))
    assert zones[DAILY] == "Europe/Paris"  # `day`: format date
    assert zones["telco-invoices"] == "Europe/Paris"  # `issued_on`
    assert zones["energy-load-curve"] == ""  # `start`: the block's first instant
    assert zones["telco-call-log"] == ""  # `started_at`
    # Set once: a later publication keeps the zone whose midnights are stored.
    assert catalogue.day_zone({"properties": {"d": {"format": "date"}}}, "d", "Asia/Tokyo") == "Asia/Tokyo"
    assert catalogue.day_zone({"properties": {"d": {"format": "date-time"}}}, "d", "Asia/Tokyo") == ""


def test_a_daily_value_is_its_local_day_in_every_rendering(flow, new_york):
    dataset = _write(new_york.alice, [_daily("2025-03-09"), _daily("2025-03-10")])  # DST starts on the 9th
    stored = dict(Record.objects.filter(dataset=dataset).values_list("key", "record_at"))
    assert stored["12345678901234|2025-03-09"] == datetime(2025, 3, 9, 5, tzinfo=UTC)
    assert stored["12345678901234|2025-03-10"] == datetime(2025, 3, 10, 4, tzinfo=UTC)

    token = flow.tokens(datasets=[DAILY], scope=scope_of(DAILY))["access_token"]
    path = f"/api/v1/datasets/{DAILY}/records"
    assert sorted(i["date"] for i in all_pages(flow, token, path)) == ["2025-03-09", "2025-03-10"]
    lines = get(flow, token, path + "?format=ndjson").content.decode().splitlines()
    assert sorted(json.loads(line)["date"] for line in lines) == ["2025-03-09", "2025-03-10"]
    rows = list(csv.DictReader(io.StringIO(get(flow, token, path + "?format=csv").content.decode())))
    assert sorted(r["date"] for r in rows) == ["2025-03-09", "2025-03-10"]
    feed = get(flow, token, "/api/v1/changes").json()["items"]
    assert sorted(i["date"] for i in feed) == ["2025-03-09", "2025-03-10"]

    listed = get(flow, token, "/api/v1/datasets").json()["items"][0]
    assert listed["date_field"] == "day" and listed["date_time_zone"] == "America/New_York"
    assert listed["date_range"] == {"from": "2025-03-09", "to": "2025-03-10"}

    # A deletion keeps its record's day, printed the same way.
    last = max(i["seq"] for i in feed)
    _write(new_york.alice, [_daily("2025-03-10")])
    deleted = get(flow, token, f"{path}?since={last}").json()["items"]
    assert deleted == [{"dataset": DAILY, "key": "12345678901234|2025-03-09", "seq": deleted[0]["seq"],
                        "deleted": True, "date": "2025-03-09"}]


def test_a_one_day_period_holds_that_day_exactly(flow, new_york):
    _write(new_york.alice, [_daily(f"2025-03-{day:02d}") for day in range(8, 12)])
    token = flow.tokens(datasets=[DAILY], scope=scope_of(DAILY), window_start="2025-03-09",
                        window_end="2025-03-09")["access_token"]
    path = f"/api/v1/datasets/{DAILY}/records"
    assert [i["date"] for i in all_pages(flow, token, path)] == ["2025-03-09"]


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Paris", "Asia/Tokyo"])
def test_a_one_day_filter_holds_that_day_exactly(flow, personas, settings, zone):
    """West of UTC a local day starts after 00:00 UTC, east of it before: `from`/`to` days are the
    local days whatever the side."""
    settings.GATEWAY_CUSTOMER_TIME_ZONE = zone
    Dataset.objects.filter(slug=DAILY).update(day_zone=zone)
    personas.trusted.allowed_datasets.add(Dataset.objects.get(slug=DAILY))
    _write(personas.alice, [_daily(f"2025-03-{day:02d}") for day in range(8, 12)])
    path = f"/api/v1/datasets/{DAILY}/records"
    wide = flow.tokens(datasets=[DAILY], scope=scope_of(DAILY))["access_token"]
    assert [i["date"] for i in all_pages(flow, wide, f"{path}?from=2025-03-10&to=2025-03-10")] == ["2025-03-10"]
    assert [i["date"] for i in all_pages(flow, wide, f"{path}?to=2025-03-08")] == ["2025-03-08"]
    assert [i["date"] for i in all_pages(flow, wide, f"{path}?from=2025-03-11")] == ["2025-03-11"]


def test_an_instant_still_bounds_by_instant(flow, new_york):
    _write(new_york.alice, [_daily(f"2025-03-{day:02d}") for day in range(8, 12)])
    path = f"/api/v1/datasets/{DAILY}/records"
    wide = flow.tokens(datasets=[DAILY], scope=scope_of(DAILY))["access_token"]
    # New York's 10 March starts at 04:00 UTC (daylight saving time began on the 9th).
    assert [i["date"] for i in all_pages(flow, wide, f"{path}?from=2025-03-10T03:59:59Z&to=2025-03-10T04:00:01Z")
            ] == ["2025-03-10"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the printed item is PostgreSQL's")
@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_the_trigger_prints_the_local_day_as_python_does(personas, zone):
    Dataset.objects.filter(slug=DAILY).update(day_zone=zone)
    dataset = _write(personas.alice, [_daily("2025-10-26"), _daily("2025-03-30"), _daily("2025-12-31")])
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, seq, deleted, record_at, extracted_at, data::text, item FROM restitution_record "
                       "WHERE dataset_id = %s", [dataset.pk])
        rows = cursor.fetchall()
    assert len(rows) == 3
    for key, seq, deleted, record_at, extracted_at, text, item in rows:
        assert item == items.record_line("", seq, key, deleted, record_at, extracted_at, text, None, zone)
        assert json.loads('{"key":' + item)["date"] == key.split("|")[1]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the migration's SQL path")
def test_the_migration_moves_stored_days_to_local_midnight_with_new_sequences(personas):
    """Records written before 0019 were dated at 00:00 UTC: the migration re-dates them and gives
    each a new sequence, so a client syncing with `since` receives the new `date` once."""
    dataset = _write(personas.alice, [_daily("2025-01-01"), _daily("2025-07-01")])
    for day in ("2025-01-01", "2025-07-01"):  # as 0018 stored them: 00:00 UTC
        Record.objects.filter(dataset=dataset, key__endswith=day).update(
            record_at=datetime.fromisoformat(day).replace(tzinfo=UTC))
    before = dict(Record.objects.filter(dataset=dataset).values_list("key", "seq"))
    migration = importlib.import_module("restitution.migrations.0019_day_dates")
    with connection.cursor() as cursor:
        cursor.execute(migration._REDATE)
    after = {key: (seq, record_at) for key, seq, record_at in
             Record.objects.filter(dataset=dataset).values_list("key", "seq", "record_at")}
    assert after["12345678901234|2025-01-01"][1] == datetime(2024, 12, 31, 23, tzinfo=UTC)
    assert after["12345678901234|2025-07-01"][1] == datetime(2025, 6, 30, 22, tzinfo=UTC)
    assert all(after[key][0] > max(before.values()) for key in before)
