"""What a dataset's page on the dashboard shows: time series aggregated for a chart (load curve by
half hour, day, week or month; daily consumption; calls by month) and records as a readable table
with the plain-language description of each field.

Reads one customer's own records only; never writes, never renders HTML.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from .catalogue import field_order, value_label
from .models import Customer, Dataset, Record

RESOLUTIONS = ("raw", "day", "week", "month")
TABLE_LIMIT = 500


@dataclass(frozen=True)
class Measure:
    field: str
    label_en: str
    label_fr: str
    unit: str
    #: How records of one bucket combine: "mean", "max", "sum" or "count" (records, of `only`).
    combine: str
    only: tuple[str, str] | None = None  # (field, value): count only matching records

    def label(self, language: str) -> str:
        return self.label_fr if language == "fr" else self.label_en


@dataclass(frozen=True)
class Chart:
    measures: tuple[Measure, ...]
    resolutions: tuple[str, ...]
    default: str
    kind: str = "line"  # or "bars"
    #: Records are day blocks: the chart reads the readings inside them (each at its own start).
    readings: bool = False


CHARTS: dict[str, Chart] = {
    "energy-load-curve": Chart(
        measures=(Measure("value", "Average power", "Puissance moyenne", "kW", "mean"),
                  Measure("value", "Peak half hour", "Demi-heure la plus forte", "kW", "max")),
        resolutions=RESOLUTIONS, default="day", readings=True),
    "energy-daily-consumption": Chart(
        measures=(Measure("energy_kwh", "Consumption", "Consommation", "kWh", "sum"),),
        resolutions=("raw", "week", "month"), default="raw", kind="bars"),
    "telco-call-log": Chart(
        measures=(Measure("call_id", "Calls", "Appels", "", "count", only=("kind", "voice")),
                  Measure("call_id", "Text messages", "SMS", "", "count", only=("kind", "sms")),
                  Measure("duration_s", "Minutes of calls", "Minutes d'appel", "min", "sum")),
        resolutions=("day", "week", "month"), default="month", kind="bars"),
}


def _local(moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo(settings.GATEWAY_CUSTOMER_TIME_ZONE))


def _bucket(moment: datetime, resolution: str) -> datetime:
    """The start of the local day, week (Monday) or month a moment falls in, as an aware datetime."""
    local = _local(moment)
    if resolution == "raw":
        return moment
    day = local.date()
    if resolution == "week":
        day -= timedelta(days=day.weekday())
    elif resolution == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=local.tzinfo)


_COMBINE: dict[str, Callable[[list[float]], float]] = {
    "mean": lambda values: sum(values) / len(values),
    "max": max,
    "sum": sum,
    "count": len,
}


def _points(chart: Chart, record_at: datetime, data: dict[str, Any]) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """What one record puts on the chart: itself at its date, or each reading of a day block at
    its own start (a missing reading puts nothing: the line has a hole there)."""
    if not chart.readings:
        yield record_at, data
        return
    for reading in data.get("readings") or ():
        try:
            moment = datetime.strptime(reading["start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except (KeyError, TypeError, ValueError):
            continue
        yield moment, reading


def series(*, customer: Customer, dataset: Dataset, resolution: str | None,
           language: str = "en") -> dict[str, Any] | None:
    """The dataset's chart for one customer: x (Unix seconds) and one list of values per measure,
    ready for uPlot. None when the dataset has no chart. Unknown resolutions fall back to the default."""
    chart = CHARTS.get(dataset.slug)
    if chart is None:
        return None
    if resolution not in chart.resolutions:
        resolution = chart.default
    measures = chart.measures
    if resolution == "raw":
        # At full resolution a bucket holds one reading: its peak is its average, drawn once.
        measures = tuple(m for m in measures if m.combine != "max") or measures
    buckets: dict[datetime, list[list[float]]] = defaultdict(lambda: [[] for _ in measures])
    rows = (Record.objects.filter(customer=customer, dataset=dataset, deleted=False, record_at__isnull=False)
            .order_by("record_at").values_list("record_at", "data"))
    for record_at, data in rows.iterator(chunk_size=5000 if not chart.readings else 500):
        for moment, point in _points(chart, record_at, data):
            values = buckets[_bucket(moment, resolution)]
            for index, measure in enumerate(measures):
                if measure.only and point.get(measure.only[0]) != measure.only[1]:
                    continue
                value = point.get(measure.field)
                if value is None:
                    continue
                values[index].append(1.0 if measure.combine == "count" else float(value))
    xs = sorted(buckets)
    out: list[list[float | None]] = []
    for index, measure in enumerate(measures):
        combine = _COMBINE[measure.combine]
        scale = 1 / 60 if measure.unit == "min" else 1
        column = []
        for x in xs:
            values = buckets[x][index]
            column.append(round(combine(values) * scale, 3) if values else (0 if measure.combine == "count"
                                                                            else None))
        out.append(column)
    return {"x": [int(x.timestamp()) for x in xs], "series": out, "resolution": resolution,
            "resolutions": list(chart.resolutions), "kind": chart.kind,
            "labels": [m.label(language) for m in measures], "units": [m.unit for m in measures],
            "styles": [m.combine for m in measures], "language": "fr" if language == "fr" else "en",
            "time_zone": settings.GATEWAY_CUSTOMER_TIME_ZONE,
            "x_label": (("Heure" if language == "fr" else "Time") if resolution == "raw"
                        else ("Période" if language == "fr" else "Period"))}


def record_table(*, customer: Customer, dataset: Dataset, limit: int = TABLE_LIMIT,
                 language: str = "en") -> dict[str, Any]:
    """The customer's records, newest first (a timeline), as rows of display values: enumerated
    values in words, date-times in the gateway's time zone."""
    fields = field_order(dataset)
    records = (Record.objects.filter(customer=customer, dataset=dataset, deleted=False)
               .order_by("-record_at", "key"))
    total = records.count()
    rows = [[_cell(name, data.get(name), language) for name in fields] for data in
            records.values_list("data", flat=True)[:limit]]
    return {"fields": fields, "rows": rows, "total": total, "shown": len(rows)}


def _cell(name: str, value: Any, language: str) -> str | dict[str, str]:
    """A table cell: a document reference becomes {"text", "sha256"} (the page links it); a day
    block's readings are counted (the chart draws them) and its missing half hours listed in
    local time."""
    if isinstance(value, dict) and value.get("sha256") and value.get("filename"):
        return {"text": value["filename"], "sha256": value["sha256"]}
    if name == "readings" and isinstance(value, list):
        return f"{len(value)} relevés" if language == "fr" else f"{len(value)} readings"
    if name == "missing" and isinstance(value, list):
        return ", ".join(_display(start) for start in value) if value else "—"
    return _display(value_label(name, value, language))


def _display(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return value.get("filename") or ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, str) and len(value) == 20 and value.endswith("Z") and "T" in value:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        return _local(moment).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def display_value(value: Any) -> str:
    """A stored value as a person reads it (date-times in the gateway's time zone)."""
    return _display(value)
