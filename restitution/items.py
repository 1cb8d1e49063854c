"""A record's API item, defined once: its Python renderings (a dict for ORM pages, JSON text for
printed pages and archives), the UTC moment format, and the SQL that prints it in PostgreSQL.

Every rendering of a record item and every UTC moment the gateway prints comes from here, or is
checked against it by tests/api/test_record_item.py. This module never queries the database.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Func, TextField

#: An RFC 3339 (section 5.6) date-time in UTC, to the second: `2025-03-04T05:06:07Z`.
UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
#: UTC_FORMAT for PostgreSQL's to_char(), applied to `moment AT TIME ZONE 'UTC'`.
SQL_UTC_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS"Z"'


def utc_text(moment: datetime) -> str:
    """A moment as RFC 3339 UTC text to the second (sub-second digits are dropped)."""
    return moment.astimezone(UTC).strftime(UTC_FORMAT)


class UtcText(Func):
    """A timestamp as utc_text() prints it, printed by PostgreSQL."""

    template = f"to_char(%(expressions)s AT TIME ZONE 'UTC', '{SQL_UTC_FORMAT}')"
    output_field = TextField()


def date_text(record_at: datetime | None, day_zone: str = "") -> str | None:
    """A record's `date` as its items print it: for a dataset whose dates are days (its
    `day_zone`, Dataset.day_zone), the RFC 3339 full-date of the local day (`2025-03-04`; the
    record's date is stored as that day's local midnight); otherwise utc_text(); None without one."""
    if record_at is None:
        return None
    if day_zone:
        return record_at.astimezone(ZoneInfo(day_zone)).date().isoformat()
    return utc_text(record_at)


class DateText(Func):
    """A record's date_text(), printed by PostgreSQL, for one dataset's `day_zone`."""

    output_field = TextField()

    def __init__(self, expression: Any, day_zone: str = "") -> None:
        super().__init__(expression)
        self.day_zone = day_zone

    def as_sql(self, compiler, connection, **extra):
        if not self.day_zone:
            return compiler.compile(UtcText(self.source_expressions[0]))
        sql, params = compiler.compile(self.source_expressions[0])
        return f"to_char({sql} AT TIME ZONE %s, 'YYYY-MM-DD')", [*params, self.day_zone]


#: Where a record's document is served, relative to the API's origin (an absolute-path reference,
#: RFC 3986 §4.2): a record whose `data.document.sha256` is a SHA-256 in hex links it.
DOCUMENT_PATH = "/api/v1/datasets/{slug}/documents/{sha256}"
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: _SHA256 in PostgreSQL.
SQL_SHA256 = "^[0-9a-f]{64}$"


def document_url(dataset_slug: str, data: Any) -> str | None:
    """The link of a record's document (None when it has none)."""
    document = data.get("document") if isinstance(data, dict) else None
    sha256 = document.get("sha256") if isinstance(document, dict) else None
    if isinstance(sha256, str) and _SHA256.fullmatch(sha256):
        return DOCUMENT_PATH.format(slug=dataset_slug, sha256=sha256)
    return None


def record_item(dataset_slug: str, key: str, seq: int, deleted: bool, data: Any, record_at: datetime | None,
                extracted_at: datetime, day_zone: str = "") -> dict[str, Any]:
    """One record as the API's item (a dict): record_line() parsed. `day_zone`: the dataset's
    (date_text())."""
    item: dict[str, Any] = {"dataset": dataset_slug, "key": key, "seq": seq}
    if deleted:
        item["deleted"] = True
        # The date the record had when it was deleted (a period check needs it).
        item["date"] = date_text(record_at, day_zone)
        return item
    # To the second, as every other rendering (printed pages, archives): one form across formats.
    item["date"] = date_text(record_at, day_zone)
    item["extracted_at"] = utc_text(extracted_at)
    item["data"] = data
    link = document_url(dataset_slug, data)
    if link:
        item["document_url"] = link
    return item


def record_line_head(dataset_slug: str) -> str:
    """The start of every item of a dataset, up to its key (SQL_ITEM_HEAD in PostgreSQL)."""
    return '{"dataset":' + json.dumps(dataset_slug, ensure_ascii=False) + ',"key":'


def record_line(head: str, seq: int, key: str, deleted: bool, record_at: datetime | None,
                extracted_at: datetime, text: str | None, document: str | None = None, day_zone: str = "") -> str:
    """One record as the API's JSON item, around its stored JSON text (never parsed, never dumped
    again: only the envelope is built here). `head` comes from record_line_head(); `document`
    is the record's document_url(), when it has one; `day_zone` the dataset's (date_text())."""
    if deleted:
        return record_line_deleted(head, seq, key, date_text(record_at, day_zone))
    return record_line_text(head, seq, key, date_text(record_at, day_zone), utc_text(extracted_at), text, document)


def record_line_deleted(head: str, seq: int, key: str, date: str | None = None) -> str:
    """record_line() of a tombstone: its key and, as `date`, the record's last date (date_text())."""
    date_json = f'"{date}"' if date else "null"
    return f'{head}{json.dumps(key, ensure_ascii=False)},"seq":{seq},"deleted":true,"date":{date_json}}}'


def record_line_text(head: str, seq: int, key: str, date: str | None, extracted_at: str, text: str,
                     document: str | None = None) -> str:
    """record_line() of a live record whose date is already date_text() and extracted_at utc_text()."""
    date_json = f'"{date}"' if date else "null"
    link = f',"document_url":{json.dumps(document, ensure_ascii=False)}' if document else ""
    return (f'{head}{json.dumps(key, ensure_ascii=False)},"seq":{seq},"date":{date_json},'
            f'"extracted_at":"{extracted_at}","data":{text}{link}}}')


#: record_line_head() in SQL, for each row of a page joined with its dataset (alias `d`): the
#: change feed's page statement (restitution/portability.py) prints it before each `item`.
SQL_ITEM_HEAD = "concat('{\"dataset\":', to_json(d.slug), ',\"key\":')"

#: The body of the PostgreSQL trigger function restitution_record_item() (migrations
#: 0008_record_item, 0015_record_document_url, 0018_tombstone_date, 0019_day_dates), which keeps
#: each row's `item` column printed: record_line() after its head, with the record's
#: document_url() and its dataset's day_zone. A migration that changes the function must change
#: this text too (the test compares them).
SQL_ITEM_TRIGGER_BODY = f"""
DECLARE
    dataset_slug text;
    zone text;
    record_date text;
BEGIN
    -- The same text as portability.record_line() after its head: moments to the second in UTC,
    -- the date of a dataset of days as the local day (its day_zone).
    SELECT slug, day_zone INTO dataset_slug, zone FROM restitution_dataset WHERE id = NEW.dataset_id;
    record_date := CASE WHEN zone <> '' THEN to_char(NEW.record_at AT TIME ZONE zone, 'YYYY-MM-DD')
                        ELSE to_char(NEW.record_at AT TIME ZONE 'UTC', '{SQL_UTC_FORMAT}') END;
    IF NEW.deleted THEN
        NEW.item := concat(to_json(NEW.key), ',"seq":', NEW.seq, ',"deleted":true,"date":',
                           coalesce('"' || record_date || '"', 'null'), '}}');
    ELSE
        NEW.item := concat(
            to_json(NEW.key), ',"seq":', NEW.seq,
            ',"date":', coalesce('"' || record_date || '"', 'null'),
            ',"extracted_at":"', to_char(NEW.extracted_at AT TIME ZONE 'UTC', '{SQL_UTC_FORMAT}'),
            '","data":', NEW.data::text,
            CASE WHEN NEW.data -> 'document' ->> 'sha256' ~ '{SQL_SHA256}' THEN
                ',"document_url":' || to_json(
                    '/api/v1/datasets/' || dataset_slug || '/documents/' || (NEW.data -> 'document' ->> 'sha256'))::text
            ELSE '' END,
            '}}');
    END IF;
    RETURN NEW;
END
"""
