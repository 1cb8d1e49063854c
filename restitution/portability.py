"""What a grant lets a client read: the granted datasets, their records within the grant's
window, pages by change sequence, and the change feed across datasets.

Every query here starts from a Grant, so nothing outside the customer, the datasets or the
window of that grant can come out. This module never renders HTTP and never writes records.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Max, Min, QuerySet
from django.db.models.fields.json import KeyTextTransform

# The record item and the UTC format are defined in .items; the names stay importable from here.
from .items import DateText, UtcText, date_text, record_line, record_line_deleted, record_line_head, record_line_text  # noqa: F401
from .items import record_item as _row
from .models import Dataset, Grant, Record
from .store import safe_seq

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 10000
#: The moments a request may name: years 1 to 9998 (a day after the last one, or an offset past the
#: first one, would overflow Python's calendar or PostgreSQL's arithmetic on it).
MIN_MOMENT = datetime(1, 1, 2, tzinfo=UTC)
MAX_MOMENT = datetime(9999, 1, 1, tzinfo=UTC)


class BadParameter(ValueError):
    """A request parameter that cannot be understood (a 400, never a 500)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class Window:
    """The half-open interval [start, end) of record dates a request may see, in UTC."""

    start: datetime | None
    end: datetime | None

    def filter(self, records: QuerySet) -> QuerySet:
        if self.start is not None:
            records = records.filter(record_at__gte=self.start)
        if self.end is not None:
            records = records.filter(record_at__lt=self.end)
        return records


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def customer_zone() -> ZoneInfo:
    """The customers' calendar (GATEWAY_CUSTOMER_TIME_ZONE): consent periods are its days."""
    return ZoneInfo(settings.GATEWAY_CUSTOMER_TIME_ZONE)


def local_day_start(day: date) -> datetime:
    """Local midnight of `day` in the customers' time zone, in UTC (DST days included)."""
    try:
        return datetime.combine(day, time.min, tzinfo=customer_zone()).astimezone(UTC)
    except OverflowError:  # the calendar's first day: its UTC start is the earliest moment there is
        return _day_start(day)


def local_day_after(day: date) -> datetime | None:
    """Local midnight after `day`, in UTC, or None (no bound) after the calendar's last day."""
    if day >= date.max - timedelta(days=1):
        return None
    return local_day_start(day + timedelta(days=1))


def parse_moment(parameter: str, value: str | None, *, end: bool = False) -> datetime | None:
    """A date (YYYY-MM-DD, whole day) or an RFC 3339 date-time with offset (RFC 3339 §5.6),
    between years 1 and 9998: a moment past the calendar's ends is refused, not an overflow."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:  # a local day of the customers' calendar, as consent periods
            day = date.fromisoformat(value)
            moment = local_day_after(day) if end else local_day_start(day)
            if moment is None:
                raise OverflowError
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(parameter, f"{value!r} is not a date (YYYY-MM-DD) or an RFC 3339 date-time") from None
    except OverflowError:
        raise BadParameter(parameter, f"{value!r} is outside the dates this API serves") from None
    if moment.tzinfo is None:
        raise BadParameter(parameter, "a date-time needs an offset (e.g. Z)")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise BadParameter(parameter, f"{value!r} is outside the dates this API serves") from None
    if not MIN_MOMENT <= moment <= MAX_MOMENT:
        raise BadParameter(parameter, f"{value!r} is outside the dates this API serves")
    return moment


def request_window(grant: Grant, *, since_date: str | None, until_date: str | None) -> Window:
    """The request's from/to, clipped to the grant's window (the grant always wins)."""
    start = parse_moment("from", since_date)
    end = parse_moment("to", until_date, end=True)
    if start and end and start >= end:
        raise BadParameter("from", "must be before 'to'")
    # The consent's dates are the customer's local days, whole and inclusive.
    grant_start = local_day_start(grant.window_start) if grant.window_start else None
    grant_end = local_day_after(grant.window_end) if grant.window_end else None
    if grant_start and (start is None or start < grant_start):
        start = grant_start
    if grant_end and (end is None or end > grant_end):
        end = grant_end
    return Window(start, end)


def parse_int(parameter: str, value: str | None, *, default: int | None = None, minimum: int = 0,
              maximum: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadParameter(parameter, f"{value!r} is not an integer") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise BadParameter(parameter, f"must be {bound}")
    return number


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": seq}).encode()).decode().rstrip("=")


def decode_cursor(value: str | None) -> int:
    """Cursors are opaque to clients; here they hold the last change sequence served."""
    if not value:
        return 0
    try:
        padded = value + "=" * (-len(value) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        if not isinstance(after, int) or after < 0:
            raise ValueError
        return after
    except (ValueError, KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError):
        raise BadParameter("cursor", "not a cursor this API gave out") from None


def granted_datasets(grant: Grant) -> list[Dataset]:
    return sorted((d for d in grant.datasets.all() if d.is_published), key=lambda d: d.slug)


def readable_datasets(grant: Grant, scopes: set[str]) -> list[Dataset]:
    """The granted datasets a token with these scopes may read: a token narrowed on refresh
    (RFC 6749 §6: a refresh may ask for fewer scopes) reads only its own scopes' datasets."""
    return [d for d in granted_datasets(grant) if d.scope in scopes]


def granted_dataset(grant: Grant, slug: str) -> Dataset | None:
    """A dataset of the grant, or None — unknown and not granted look the same (no leak)."""
    return next((d for d in grant.datasets.all() if d.slug == slug and d.is_published), None)


def dataset_summary(grant: Grant, dataset: Dataset, window: Window) -> dict[str, Any]:
    live = window.filter(Record.objects.filter(customer_id=grant.customer_id, dataset=dataset, deleted=False))
    stats = live.aggregate(count=Count("id"), first=Min("record_at"), last=Max("record_at"),
                           extracted=Max("extracted_at"))
    return {"count": stats["count"], "first": stats["first"], "last": stats["last"],
            "extracted_at": stats["extracted"]}


def espi_order(records: QuerySet) -> QuerySet:
    """Records in the order a Green Button feed is written: by meter, then date."""
    return records.order_by(KeyTextTransform("delivery_point", "data"), "record_at", "key")


def espi_records(grant: Grant, dataset: Dataset, window: Window) -> QuerySet:
    """Every live record of the dataset in the window, for one Green Button feed (no paging)."""
    return espi_order(window.filter(Record.objects.filter(customer_id=grant.customer_id, dataset=dataset,
                                                          deleted=False)))


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_after: int | None
    last_seq: int


def _with_tombstones(records: QuerySet, window: Window) -> QuerySet:
    """Live records and deletions inside the window: a tombstone keeps the date its record last
    had, so a deletion is shown only to whom the record itself could be shown (its key is
    data too). A tombstone without a date is shown only when the window has no bound."""
    return window.filter(records)


def _page_query(grant: Grant, dataset: Dataset, window: Window, *, after: int, since: int | None,
                upto: int) -> QuerySet:
    """One customer's records of one dataset after a sequence and up to the feed's safe point
    (store.safe_seq()): live ones in the window, plus deletions when syncing with `since`. Every
    page query of the API starts here."""
    records = Record.objects.filter(customer_id=grant.customer_id, dataset=dataset, seq__gt=max(after, since or 0),
                                    seq__lte=upto)
    if since is None:
        return window.filter(records.filter(deleted=False))
    return _with_tombstones(records, window)


def record_page(grant: Grant, dataset: Dataset, window: Window, *, after: int, since: int | None,
                size: int) -> Page:
    """One page of a dataset's records in change-sequence order (stable under writes: a record
    changed meanwhile reappears later with a higher sequence, none is skipped).

    With `since`, deletions (tombstones) since that sequence are included, for mirroring.
    Never past the change feed's safe point: a change that commits late, below it, is read by a
    later page or sync (its cursor stays below the late change).
    """
    records = _page_query(grant, dataset, window, after=after, since=since, upto=safe_seq())
    rows = list(records.order_by("seq").values_list("key", "seq", "deleted", "data", "record_at",
                                                    "extracted_at")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    items = [_row(dataset.slug, *row, dataset.day_zone) for row in rows]
    last = rows[-1][1] if rows else max(after, since or 0)
    return Page(items, last if more else None, last)


def change_page(grant: Grant, window: Window, *, after: int, size: int,
                datasets: list[Dataset] | None = None) -> Page:
    """The change feed across the granted datasets (or the given ones, e.g. those of a narrowed
    token's scopes): upserts and deletions, by sequence, up to the safe point (as record_page())."""
    chosen = granted_datasets(grant) if datasets is None else datasets
    slugs = {d.pk: d.slug for d in chosen}
    zones = {d.pk: d.day_zone for d in chosen}
    records = _with_tombstones(
        Record.objects.filter(customer_id=grant.customer_id, dataset_id__in=list(slugs), seq__gt=after,
                              seq__lte=safe_seq()), window)
    rows = list(records.order_by("seq").values_list("dataset_id", "key", "seq", "deleted", "data", "record_at",
                                                    "extracted_at")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    items = [_row(slugs[row[0]], *row[1:], zones[row[0]]) for row in rows]
    last = rows[-1][2] if rows else after
    return Page(items, last if more else None, last)


@dataclass
class RawPage:
    """A page as ready-made JSON text: its items joined by a separator that holds a newline (a
    JSON item never holds a raw one): "\\n" for NDJSON, ",\\n" inside a JSON array."""

    text: str
    count: int
    next_after: int | None
    last_seq: int


#: On PostgreSQL a record's API item is its dataset's head (record_line_head()) before the `item`
#: column, the rest of the item kept printed by a trigger on every write (migration
#: 0008_record_item): the same text as record_line().
_SEQ = ',"seq":'


def _page_where(customer_id: int, dataset_ids: list[int], window: Window, *, after: int, since: int | None
                ) -> tuple[str, list]:
    """_page_query() as SQL (the change feed's rows too, with several datasets and `since`): the
    same rows, without compiling an ORM query on the hot path; up to the safe point, read first."""
    conditions = ["customer_id = %s", "dataset_id = %s" if len(dataset_ids) == 1 else "dataset_id = ANY(%s)",
                  "seq > %s", "seq <= %s"]
    upto = safe_seq()
    params = [customer_id, dataset_ids[0] if len(dataset_ids) == 1 else list(dataset_ids), max(after, since or 0),
              upto]
    in_window, window_params = [], []
    if window.start is not None:
        in_window.append("record_at >= %s")
        window_params.append(window.start)
    if window.end is not None:
        in_window.append("record_at < %s")
        window_params.append(window.end)
    if since is None:  # live records in the window
        conditions.append("NOT deleted")
    # Deletions too with `since`: they keep their record's last date, so the window applies alike.
    conditions += in_window
    params += window_params
    return " AND ".join(conditions), params


def record_page_text(grant: Grant, dataset: Dataset, window: Window, *, after: int, since: int | None,
                     size: int, separator: str) -> RawPage:
    """The same page as record_page(), as JSON text (the hot path of a sync): PostgreSQL joins
    the items the records keep printed, each after its dataset; Python never touches a record."""
    from django.db import connection

    assert separator.endswith("\n"), separator
    if connection.vendor != "postgresql":
        page = record_page(grant, dataset, window, after=after, since=since, size=size)
        return _raw(page, separator)
    where, params = _page_where(grant.customer_id, [dataset.pk], window, after=after, since=since)
    # One item more than the page is read: its presence says there is a next page; it is not served.
    statement = (f"SELECT string_agg(line, %s ORDER BY seq), count(*) FROM (SELECT seq, %s::text || item AS line "
                 f"FROM {Record._meta.db_table} WHERE {where} ORDER BY seq LIMIT %s) page")
    with connection.cursor() as cursor:
        cursor.execute(statement, [separator, record_line_head(dataset.slug), *params, size + 1])
        text, count = cursor.fetchone()
    return _cut(text, count, size=size, separator=separator, after=max(after, since or 0))


def change_page_text(grant: Grant, window: Window, *, after: int, size: int, separator: str,
                     datasets: list[Dataset] | None = None) -> tuple[RawPage, dict[str, int]]:
    """change_page() as JSON text, joined by PostgreSQL as record_page_text(); with the number of
    items of each dataset on the page (for the access log)."""
    from django.db import connection

    assert separator.endswith("\n"), separator
    chosen = granted_datasets(grant) if datasets is None else datasets
    slugs = {d.pk: d.slug for d in chosen}
    if connection.vendor != "postgresql" or not slugs:
        page = change_page(grant, window, after=after, size=size, datasets=chosen)
        return _raw(page, separator), dataset_counts(page.items)
    where, params = _page_where(grant.customer_id, list(slugs), window, after=after, since=after)
    head = "concat('{\"dataset\":', to_json(d.slug), ',\"key\":')"  # record_line_head() of each item's dataset
    statement = (f"SELECT string_agg(line, %s ORDER BY seq), count(*), array_agg(dataset_id ORDER BY seq) "
                 f"FROM (SELECT seq, dataset_id, {head} || item AS line "
                 f"FROM {Record._meta.db_table} JOIN {Dataset._meta.db_table} d ON d.id = dataset_id "
                 f"WHERE {where} ORDER BY seq LIMIT %s) page")
    with connection.cursor() as cursor:
        cursor.execute(statement, [separator, *params, size + 1])
        text, count, dataset_ids = cursor.fetchone()
    raw = _cut(text, count, size=size, separator=separator, after=after)
    return raw, dict(Counter(slugs[dataset_id] for dataset_id in (dataset_ids or [])[:raw.count]))


def dataset_counts(items) -> dict[str, int]:
    """How many items of each dataset a page holds (for the access log)."""
    return dict(Counter(item["dataset"] for item in items))


def _raw(page: Page, separator: str) -> RawPage:
    """An ORM page as a RawPage (SQLite, and the fallbacks)."""
    text = separator.join(json.dumps(item, ensure_ascii=False) for item in page.items)
    return RawPage(text, len(page.items), page.next_after, page.last_seq)


def _cut(text: str | None, count: int, *, size: int, separator: str, after: int) -> RawPage:
    """The page from size + 1 printed items: the last one, if there, only says a next page exists."""
    if not count:
        return RawPage("", 0, None, after)
    more = count > size
    if more:
        text = text[:text.rindex("\n") + 1 - len(separator)]
    last = _last_seq(text)
    return RawPage(text, min(count, size), last if more else None, last)


def _last_seq(text: str) -> int:
    """The sequence of the last item: the first `,"seq":` of its line (the key before it is a
    JSON string, where a quote is always escaped, so it cannot hold that text)."""
    at = text.index(_SEQ, text.rfind("\n") + 1) + len(_SEQ)
    end = at
    while text[end].isdigit():
        end += 1
    return int(text[at:end])


def csv_header(fields: list[str]) -> list[str]:
    return ["dataset", "key", "seq", "date", "deleted", *fields]


#: What a spreadsheet takes for the start of a formula (OWASP "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell a spreadsheet will not run: a text starting with = + - @, a tab or a
    carriage return gets a leading single quote (OWASP's advice), so `=HYPERLINK(…)` shows as
    text. Numbers stay numbers (-3.5 is a number, not a formula); nested values are JSON text.
    Only CSV is changed: JSON and NDJSON keep the exact value."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


#: A day block's fields that its per-reading CSV rows do not repeat (each row is one interval).
BLOCK_ONLY_FIELDS = ("start", "duration_seconds", "expected_readings", "missing_count", "missing", "readings")
#: The columns a per-reading CSV row adds after the block's own fields.
READING_COLUMNS = ("reading_start", "value", "quality", "missing")


def block_csv_header(fields: list[str]) -> list[str]:
    """Header of a spreadsheet CSV of day blocks: one row per expected interval."""
    return csv_header([name for name in fields if name not in BLOCK_ONLY_FIELDS] + list(READING_COLUMNS))


def block_csv_rows(dataset: str | None, key: str | None, seq: int | None, date: str | None,
                   values: dict, fields: list[str]) -> list[list]:
    """A day block as spreadsheet rows: one per expected interval in time order, its reading's
    value and quality, or an empty value and missing=true where the source gave none."""
    block_fields = [name for name in fields if name not in BLOCK_ONLY_FIELDS]
    head = csv_row(dataset, key, seq, date, False, values, block_fields)
    rows = []
    for start, reading in block_intervals(values):
        tail = ([start, reading.get("value"), reading.get("quality"), "false"] if reading is not None
                else [start, None, None, "true"])
        rows.append(head + [csv_cell(value) for value in tail])
    return rows


def block_intervals(values: dict) -> list[tuple[str, dict | None]]:
    """Every expected interval of a day block in time order: (UTC start, its reading or None)."""
    readings = {r.get("start"): r for r in values.get("readings") or () if isinstance(r, dict)}
    starts = sorted(set(readings) | set(values.get("missing") or ()), key=str)
    return [(start, readings.get(start)) for start in starts]


def csv_row(dataset: str | None, key: str | None, seq: int | None, date: str | None, deleted: bool,
            values: dict, fields: list[str]) -> list:
    """One record as a CSV row (nested values as JSON, formulas neutralised by csv_cell()), the
    columns of csv_header()."""
    row = [dataset, key, seq, date or "", "true" if deleted else "false"]
    row += [values.get(name) for name in fields]
    return [csv_cell(value) for value in row]
