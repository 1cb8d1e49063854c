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
                extracted_at: datetime) -> dict[str, Any]:
    """One record as the API's item (a dict): record_line() parsed."""
    item: dict[str, Any] = {"dataset": dataset_slug, "key": key, "seq": seq}
    if deleted:
        item["deleted"] = True
        # The date the record had when it was deleted (a period check needs it).
        item["date"] = utc_text(record_at) if record_at else None
        return item
    # To the second, as every other rendering (printed pages, archives): one form across formats.
    item["date"] = utc_text(record_at) if record_at else None
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
                extracted_at: datetime, text: str | None, document: str | None = None) -> str:
    """One record as the API's JSON item, around its stored JSON text (never parsed, never dumped
    again: only the envelope is built here). `head` comes from record_line_head(); `document`
    is the record's document_url(), when it has one."""
    if deleted:
        return record_line_deleted(head, seq, key, utc_text(record_at) if record_at else None)
    return record_line_text(head, seq, key, utc_text(record_at) if record_at else None, utc_text(extracted_at),
                            text, document)


def record_line_deleted(head: str, seq: int, key: str, date: str | None = None) -> str:
    """record_line() of a tombstone: its key and, as `date`, the record's last date (utc_text())."""
    date_json = f'"{date}"' if date else "null"
    return f'{head}{json.dumps(key, ensure_ascii=False)},"seq":{seq},"deleted":true,"date":{date_json}}}'


def record_line_text(head: str, seq: int, key: str, date: str | None, extracted_at: str, text: str,
                     document: str | None = None) -> str:
    """record_line() of a live record whose moments are already utc_text() texts."""
    date_json = f'"{date}"' if date else "null"
    link = f',"document_url":{json.dumps(document, ensure_ascii=False)}' if document else ""
    return (f'{head}{json.dumps(key, ensure_ascii=False)},"seq":{seq},"date":{date_json},'
            f'"extracted_at":"{extracted_at}","data":{text}{link}}}')


#: record_line_head() in SQL, for each row of a page joined with its dataset (alias `d`): the
#: change feed's page statement (restitution/portability.py) prints it before each `item`.
SQL_ITEM_HEAD = "concat('{\"dataset\":', to_json(d.slug), ',\"key\":')"

#: The body of the PostgreSQL trigger function restitution_record_item() (migrations
#: 0008_record_item, 0015_record_document_url, 0018_tombstone_date), which keeps each row's
#: `item` column printed: record_line() after its head, with the record's document_url().
#: A migration that changes the function must change this text too (the test compares them).
SQL_ITEM_TRIGGER_BODY = f"""
BEGIN
    -- The same text as portability.record_line() after its head; moments to the second, UTC.
    IF NEW.deleted THEN
        NEW.item := concat(to_json(NEW.key), ',"seq":', NEW.seq, ',"deleted":true,"date":',
                           coalesce('"' || to_char(NEW.record_at AT TIME ZONE 'UTC',
                                                   '{SQL_UTC_FORMAT}') || '"', 'null'), '}}');
    ELSE
        NEW.item := concat(
            to_json(NEW.key), ',"seq":', NEW.seq,
            ',"date":', coalesce('"' || to_char(NEW.record_at AT TIME ZONE 'UTC',
                                                '{SQL_UTC_FORMAT}') || '"', 'null'),
            ',"extracted_at":"', to_char(NEW.extracted_at AT TIME ZONE 'UTC', '{SQL_UTC_FORMAT}'),
            '","data":', NEW.data::text,
            CASE WHEN NEW.data -> 'document' ->> 'sha256' ~ '{SQL_SHA256}' THEN
                ',"document_url":' || to_json(
                    '/api/v1/datasets/' || (SELECT slug FROM restitution_dataset WHERE id = NEW.dataset_id)
                    || '/documents/' || (NEW.data -> 'document' ->> 'sha256'))::text
            ELSE '' END,
            '}}');
    END IF;
    RETURN NEW;
END
"""
