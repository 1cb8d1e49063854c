"""What the dataset pages chart: buckets in the holder's local time, the right sums and counts."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from restitution import charts
from restitution.models import Dataset
from tests.api.test_records_api import write

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def _call(call_id: str, started_at: str, kind: str = "voice", duration_s: int = 120) -> dict:
    return {"call_id": call_id, "line": "0600000000", "started_at": started_at, "direction": "outgoing",
            "kind": kind, "correspondent": "06XXXX1234", "duration_s": duration_s, "cost": None}


def _day(day: str, kwh: float) -> dict:
    return {"delivery_point": "12345678901234", "day": day, "energy_kwh": kwh, "max_power_kva": None}


def local_days(chart: dict) -> list[str]:
    return [datetime.fromtimestamp(x, PARIS).date().isoformat() for x in chart["x"]]


def test_calls_are_counted_by_local_month_and_day(personas):
    write(personas.alice, "telco-call-log", [
        _call("c1", "2025-01-31T22:30:00Z"),  # 23:30 in Paris: still January
        _call("c2", "2025-01-31T23:30:00Z", duration_s=600),  # 00:30 on 1 February in Paris
        _call("c3", "2025-02-10T10:00:00Z", kind="sms", duration_s=0),
        _call("c4", "2025-03-29T23:30:00Z"),  # 00:30 on 30 March, the day clocks go forward
    ])
    write(personas.bob, "telco-call-log", [_call("b1", "2025-01-15T10:00:00Z")])
    dataset = Dataset.objects.get(slug="telco-call-log")
    by_month = charts.series(customer=personas.alice, dataset=dataset, resolution=None)
    assert by_month["resolution"] == "month"
    assert local_days(by_month) == ["2025-01-01", "2025-02-01", "2025-03-01"]
    calls, sms, minutes = by_month["series"]
    assert calls == [1, 1, 1] and sms == [0, 1, 0]
    assert minutes == [2.0, 10.0, 2.0]
    by_day = charts.series(customer=personas.alice, dataset=dataset, resolution="day")
    assert local_days(by_day) == ["2025-01-31", "2025-02-01", "2025-02-10", "2025-03-30"]


def test_daily_consumption_sums_by_week_from_monday(personas):
    write(personas.alice, "energy-daily-consumption",
          [_day(f"2025-01-{d:02d}", d) for d in range(5, 14)])  # Sunday 5 to Monday 13 January
    dataset = Dataset.objects.get(slug="energy-daily-consumption")
    weekly = charts.series(customer=personas.alice, dataset=dataset, resolution="week")
    assert local_days(weekly) == ["2024-12-30", "2025-01-06", "2025-01-13"]
    assert weekly["series"] == [[5.0, sum(range(6, 13)), 13.0]]
    assert weekly["kind"] == "bars" and weekly["units"] == ["kWh"]


def test_datasets_without_a_time_series_have_no_chart(personas):
    assert charts.series(customer=personas.alice, dataset=Dataset.objects.get(slug="insurance-contracts"),
                         resolution="day") is None
