"""What a grant lets a client read: the granted datasets, their records within the grant's
window, pages by change sequence, and the change feed across datasets.

Every query here starts from a Grant, so nothing outside the customer, the datasets or the
window of that grant can come out. This module never renders HTTP and never writes records.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from django.db.models import Count, Func, Max, Min, Q, QuerySet, TextField

from .models import Dataset, Grant, Record

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 10000


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


def parse_moment(parameter: str, value: str | None, *, end: bool = False) -> datetime | None:
    """A date (YYYY-MM-DD, whole day) or an RFC 3339 date-time with offset."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return _day_start(day + timedelta(days=1)) if end else _day_start(day)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(parameter, f"{value!r} is not a date (YYYY-MM-DD) or an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        raise BadParameter(parameter, "a date-time needs an offset (e.g. Z)")
    return moment.astimezone(UTC)


def request_window(grant: Grant, *, since_date: str | None, until_date: str | None) -> Window:
    """The request's from/to, clipped to the grant's window (the grant always wins)."""
    start = parse_moment("from", since_date)
    end = parse_moment("to", until_date, end=True)
    if start and end and start >= end:
        raise BadParameter("from", "must be before 'to'")
    grant_start = _day_start(grant.window_start) if grant.window_start else None
    grant_end = _day_start(grant.window_end + timedelta(days=1)) if grant.window_end else None
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


def granted_dataset(grant: Grant, slug: str) -> Dataset | None:
    """A dataset of the grant, or None — unknown and not granted look the same (no leak)."""
    return next((d for d in grant.datasets.all() if d.slug == slug and d.is_published), None)


def dataset_summary(grant: Grant, dataset: Dataset, window: Window) -> dict[str, Any]:
    live = window.filter(Record.objects.filter(customer_id=grant.customer_id, dataset=dataset, deleted=False))
    stats = live.aggregate(count=Count("id"), first=Min("record_at"), last=Max("record_at"),
                           extracted=Max("extracted_at"))
    return {"count": stats["count"], "first": stats["first"], "last": stats["last"],
            "extracted_at": stats["extracted"]}


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_after: int | None
    last_seq: int


def _row(dataset_slug: str, key: str, seq: int, deleted: bool, data: Any, record_at, extracted_at) -> dict:
    item = {"dataset": dataset_slug, "key": key, "seq": seq}
    if deleted:
        item["deleted"] = True
        return item
    # To the second, as every other rendering (printed pages, archives): one form across formats.
    item["date"] = _iso(record_at) if record_at else None
    item["extracted_at"] = _iso(extracted_at)
    item["data"] = data
    return item


def _with_tombstones(records: QuerySet, window: Window) -> QuerySet:
    """Deletions (they carry no date) and the live records inside the window."""
    in_window = window.filter(records.filter(deleted=False))
    return records.filter(Q(deleted=True) | Q(pk__in=in_window.values("pk")))


def _page_query(grant: Grant, dataset: Dataset, window: Window, *, after: int, since: int | None) -> QuerySet:
    """One customer's records of one dataset after a sequence: live ones in the window, plus
    deletions when syncing with `since`. Every page query of the API starts here."""
    records = Record.objects.filter(customer_id=grant.customer_id, dataset=dataset, seq__gt=max(after, since or 0))
    if since is None:
        return window.filter(records.filter(deleted=False))
    return _with_tombstones(records, window)


def record_page(grant: Grant, dataset: Dataset, window: Window, *, after: int, since: int | None,
                size: int) -> Page:
    """One page of a dataset's records in change-sequence order (stable under writes: a record
    changed meanwhile reappears later with a higher sequence, none is skipped).

    With `since`, deletions (tombstones) since that sequence are included, for mirroring.
    """
    records = _page_query(grant, dataset, window, after=after, since=since)
    rows = list(records.order_by("seq").values_list("key", "seq", "deleted", "data", "record_at",
                                                    "extracted_at")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    items = [_row(dataset.slug, *row) for row in rows]
    last = rows[-1][1] if rows else max(after, since or 0)
    return Page(items, last if more else None, last)


def change_page(grant: Grant, window: Window, *, after: int, size: int) -> Page:
    """The change feed across the granted datasets: upserts and deletions, by sequence."""
    datasets = {d.pk: d.slug for d in granted_datasets(grant)}
    records = _with_tombstones(
        Record.objects.filter(customer_id=grant.customer_id, dataset_id__in=list(datasets), seq__gt=after), window)
    rows = list(records.order_by("seq").values_list("dataset_id", "key", "seq", "deleted", "data", "record_at",
                                                    "extracted_at")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    items = [_row(datasets[row[0]], *row[1:]) for row in rows]
    last = rows[-1][2] if rows else after
    return Page(items, last if more else None, last)


@dataclass
class RawPage:
    """A page as NDJSON bytes: one JSON item per line, each line ending with a newline."""

    ndjson: bytes
    count: int
    next_after: int | None
    last_seq: int

    def json_items(self) -> bytes:
        """The items as the inside of a JSON array (an item never holds a raw newline)."""
        return self.ndjson[:-1].replace(b"\n", b",")


#: One record as the API's JSON item, printed by PostgreSQL; the same text as record_line().
#: %s is record_line_head(). Moments to the second in UTC, as _iso().
_LINE_SQL = (
    "concat(%s::text, to_json(key), ',\"seq\":', seq, CASE WHEN deleted THEN ',\"deleted\":true}' "
    "ELSE concat(',\"date\":', coalesce('\"' || to_char(record_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || '\"', 'null'), ',\"extracted_at\":\"', "
    "to_char(extracted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "'\",\"data\":', data, '}') END)"
)
#: COPY in CSV form with a delimiter and a quote character that JSON text never holds raw
#: (control characters are always escaped in it): each line comes out exactly as printed.
_COPY_OPTIONS = "(FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02')"
_SEQ = b',"seq":'


def _page_where(grant: Grant, dataset: Dataset, window: Window, *, after: int, since: int | None
                ) -> tuple[str, list]:
    """_page_query() as SQL: the same rows, without compiling an ORM query on the hot path."""
    conditions, params = ["customer_id = %s", "dataset_id = %s", "seq > %s"], [grant.customer_id, dataset.pk,
                                                                               max(after, since or 0)]
    in_window, window_params = [], []
    if window.start is not None:
        in_window.append("record_at >= %s")
        window_params.append(window.start)
    if window.end is not None:
        in_window.append("record_at < %s")
        window_params.append(window.end)
    if since is None:  # live records in the window
        conditions += ["NOT deleted", *in_window]
        params += window_params
    elif in_window:  # deletions (they carry no date) and the live records inside the window
        conditions.append(f"(deleted OR (NOT deleted AND {' AND '.join(in_window)}))")
        params += window_params
    return " AND ".join(conditions), params


def record_page_ndjson(grant: Grant, dataset: Dataset, window: Window, *, after: int, since: int | None,
                       size: int) -> RawPage:
    """The same page as record_page(), as NDJSON bytes (the hot path of a sync): PostgreSQL prints
    every item, envelope included, and sends the page in one COPY; Python never touches a record."""
    from django.db import connection

    if connection.vendor != "postgresql":
        page = record_page(grant, dataset, window, after=after, since=since, size=size)
        text = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in page.items)
        return RawPage(text.encode(), len(page.items), page.next_after, page.last_seq)
    where, params = _page_where(grant, dataset, window, after=after, since=since)
    statement = (f"COPY (SELECT {_LINE_SQL} FROM {Record._meta.db_table} WHERE {where} ORDER BY seq "
                 f"LIMIT {int(size) + 1}) TO STDOUT {_COPY_OPTIONS}")
    buffer = bytearray()
    with connection.cursor() as cursor:
        # COPY takes no bound parameters: they are merged as literals by psycopg's own quoting.
        statement = psycopg.ClientCursor(cursor.connection).mogrify(statement, [record_line_head(dataset.slug),
                                                                                 *params])
        with cursor.copy(statement) as copy:
            for block in copy:
                buffer += block
    count = buffer.count(b"\n")
    more = count > size
    if more:  # one item more than the page says there is a next page; it is not served
        del buffer[buffer.rindex(b"\n", 0, len(buffer) - 1) + 1:]
        count = size
    last = _last_seq(buffer) if count else max(after, since or 0)
    return RawPage(bytes(buffer), count, last if more else None, last)


def _last_seq(ndjson: bytearray) -> int:
    """The sequence of the last item: the first `,"seq":` of its line (the key before it is a
    JSON string, where a quote is always escaped, so it cannot hold that text)."""
    start = ndjson.rfind(b"\n", 0, len(ndjson) - 1) + 1
    at = ndjson.index(_SEQ, start) + len(_SEQ)
    end = at
    while ndjson[end] in b"0123456789":
        end += 1
    return int(ndjson[at:end])


class UtcText(Func):
    """A timestamp as RFC 3339 UTC text to the second (as _iso()), printed by PostgreSQL."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    output_field = TextField()


def record_line_head(dataset_slug: str) -> str:
    return '{"dataset":' + json.dumps(dataset_slug) + ',"key":'


def record_line(head: str, seq: int, key: str, deleted: bool, record_at: datetime | None,
                extracted_at: datetime, text: str | None) -> str:
    """One record as the API's JSON item, around its stored JSON text (never parsed, never dumped
    again: only the envelope is built here). `head` comes from record_line_head()."""
    if deleted:
        return record_line_deleted(head, seq, key)
    return record_line_text(head, seq, key, _iso(record_at) if record_at else None, _iso(extracted_at), text)


def record_line_deleted(head: str, seq: int, key: str) -> str:
    """record_line() of a tombstone."""
    return f'{head}{json.dumps(key, ensure_ascii=False)},"seq":{seq},"deleted":true}}'


def record_line_text(head: str, seq: int, key: str, date: str | None, extracted_at: str, text: str) -> str:
    """record_line() of a live record whose moments are already RFC 3339 texts (…Z)."""
    date_json = f'"{date}"' if date else "null"
    return (f'{head}{json.dumps(key, ensure_ascii=False)},"seq":{seq},"date":{date_json},'
            f'"extracted_at":"{extracted_at}","data":{text}}}')


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_header(fields: list[str]) -> list[str]:
    return ["dataset", "key", "seq", "date", "deleted", *fields]


def csv_row(dataset: str | None, key: str | None, seq: int | None, date: str | None, deleted: bool,
            values: dict, fields: list[str]) -> list:
    """One record as a CSV row (nested values as JSON), the columns of csv_header()."""
    row = [dataset, key, seq, date or "", "true" if deleted else "false"]
    for name in fields:
        value = values.get(name)
        row.append("" if value is None else json.dumps(value, ensure_ascii=False)
                   if isinstance(value, dict | list) else value)
    return row
