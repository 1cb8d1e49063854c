"""The record store: idempotent upserts by natural key, tombstones, the global change sequence.

Every write that changes a record takes a fresh value of the change sequence, under a lock
that makes commit order equal sequence order, so a client syncing with `since=<seq>` can
never miss a change that commits late. Unchanged rows (same content hash) are never rewritten.
This module never reads a legacy system and never decides *what* to extract.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from .legacy_values import Attachment
from .models import ChangeCounter, Document, Record

# Key of the PostgreSQL advisory lock that serialises change-sequence allocation.
_CHANGE_LOCK_KEY = 0x5E57_1701
_PG_SEQUENCE = "restitution_change_seq"


def content_hash(data: Any) -> str:
    """SHA-256 of the canonical JSON of a record (sorted keys, no whitespace)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record_key(data: dict[str, Any], natural_key: list[str]) -> str | None:
    """The natural key as one string ("a|b"); None when a key field is missing or empty."""
    parts = []
    for name in natural_key:
        value = data.get(name)
        if value is None or value == "":
            return None
        parts.append(str(value))
    return "|".join(parts)


def parse_record_date(value: Any) -> datetime | None:
    """The date a record describes, as an aware datetime (dates at 00:00 UTC)."""
    if value is None:
        return None
    text = str(value)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _lock_change_feed() -> None:
    """Serialise writers until commit (PostgreSQL); SQLite already serialises writes."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHANGE_LOCK_KEY])


def allocate_seqs(count: int) -> list[int]:
    """`count` new change-sequence values, increasing. Call inside the writing transaction."""
    if count <= 0:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT nextval('{_PG_SEQUENCE}') FROM generate_series(1, %s)", [count]  # noqa: S608
            )
            return sorted(row[0] for row in cursor.fetchall())
    counter, _ = ChangeCounter.objects.select_for_update().get_or_create(pk=1)
    start = counter.value + 1
    counter.value += count
    counter.save(update_fields=["value"])
    return list(range(start, start + count))


def sync_floor() -> int:
    """A new change-sequence value above every one already committed *or still being written*
    (it waits for the writers' lock): a consent's first_seq. Call inside a transaction."""
    _lock_change_feed()
    return allocate_seqs(1)[0]


def current_seq() -> int:
    """The highest change sequence handed out so far (0 when none)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT last_value, is_called FROM {_PG_SEQUENCE}")  # noqa: S608
            last_value, is_called = cursor.fetchone()
            return int(last_value) if is_called else 0
    counter = ChangeCounter.objects.filter(pk=1).first()
    return counter.value if counter else 0


@dataclass
class WriteCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0


@dataclass
class _Pending:
    customer_id: int
    key: str
    data: dict[str, Any]
    digest: str
    record_at: datetime | None
    attachments: list[Attachment]


@dataclass
class SnapshotWriter:
    """Writes the snapshot of one dataset from one source, for one customer or many, in chunks.

    `add()` records as they are mapped (any customer, any order); every `chunk_size` records
    one query finds what is already stored and one statement writes what is new or changed.
    `finish()` — only once the legacy read is complete — turns this source's records that were
    not seen, for the customers in scope, into tombstones. If the read fails before `finish()`,
    nothing is tombstoned: a partial read never deletes anything.
    """

    dataset_id: int
    source_id: int | None
    chunk_size: int = field(default_factory=lambda: settings.GATEWAY_STORE_CHUNK)
    counts: WriteCounts = field(default_factory=WriteCounts)
    _seen: dict[int, dict[str, str]] = field(default_factory=dict)
    _pending: list[_Pending] = field(default_factory=list)

    def include(self, customer_id: int) -> None:
        """Put a customer in scope: their snapshot is complete even if no row comes."""
        self._seen.setdefault(customer_id, {})

    def seen_at(self, customer_id: int, key: str) -> str | None:
        """Where this key was already seen in this run (to refuse duplicates)."""
        return self._seen.get(customer_id, {}).get(key)

    def protect(self, customer_id: int, key: str, locator: str) -> None:
        """Mark a key as present without writing it (its new version was quarantined)."""
        self._seen.setdefault(customer_id, {}).setdefault(key, locator)

    def add(self, *, customer_id: int, key: str, data: dict[str, Any], record_at: datetime | None,
            locator: str, attachments: Iterable[Attachment] = ()) -> None:
        self._seen.setdefault(customer_id, {})[key] = locator
        self._pending.append(_Pending(customer_id, key, data, content_hash(data), record_at,
                                      list(attachments)))
        if len(self._pending) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        existing = _stored_versions(self.dataset_id, [(p.customer_id, p.key) for p in self._pending])
        now = timezone.now()
        to_write: list[_Pending] = []
        for item in self._pending:
            previous = existing.get((item.customer_id, item.key))
            if previous is None:
                self.counts.created += 1
                to_write.append(item)
            elif previous[1] or previous[0] != item.digest:
                self.counts.updated += 1
                to_write.append(item)
            else:
                self.counts.unchanged += 1
        with transaction.atomic():
            for item in self._pending:
                for attachment in item.attachments:
                    _store_document(item.customer_id, self.dataset_id, item.key, attachment)
            if to_write:
                _lock_change_feed()
                seqs = allocate_seqs(len(to_write))
                _upsert([
                    (item.customer_id, self.dataset_id, self.source_id, item.key, item.data,
                     item.digest, item.record_at, now, seq, False)
                    for item, seq in zip(to_write, seqs, strict=True)
                ])
        self._pending.clear()

    def finish(self, *, all_customers: bool = False) -> WriteCounts:
        """Flush, then tombstone this source's live records that the complete read did not return.

        In scope: the customers seen or included, or — for a read of every customer — all of
        them, including customers who vanished from the source entirely.
        """
        self.flush()
        live = Record.objects.filter(dataset_id=self.dataset_id, source_id=self.source_id, deleted=False)
        if not all_customers:
            live = live.filter(customer_id__in=list(self._seen))
        gone: list[tuple[int, str, datetime | None]] = []
        for customer_id, key, record_at in live.values_list("customer_id", "key", "record_at").iterator(
                chunk_size=10_000):
            if key not in self._seen.get(customer_id, ()):
                gone.append((customer_id, key, record_at))
        for start in range(0, len(gone), self.chunk_size):
            self._tombstone(gone[start:start + self.chunk_size])
        return self.counts

    def _tombstone(self, gone: list[tuple[int, str, datetime | None]]) -> None:
        """Deletions keep the date their record last had: a client sees a deletion only if its
        consent's period covered that date (the key itself is data)."""
        now = timezone.now()
        with transaction.atomic():
            _lock_change_feed()
            seqs = allocate_seqs(len(gone))
            _upsert([
                (customer_id, self.dataset_id, self.source_id, key, None, "", record_at, now, seq, True)
                for (customer_id, key, record_at), seq in zip(gone, seqs, strict=True)
            ])
        self.counts.deleted += len(gone)


def _stored_versions(dataset_id: int, pairs: list[tuple[int, str]]) -> dict[tuple[int, str], tuple[str, bool]]:
    """(customer, key) → (content hash, deleted) of what is stored, for a chunk, in one query."""
    if not pairs:
        return {}
    if connection.vendor == "postgresql":
        customers, keys = zip(*pairs, strict=True)
        table = Record._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT r.customer_id, r.key, r.content_hash, r.deleted FROM "{table}" r '  # noqa: S608
                "JOIN unnest(%s::bigint[], %s::text[]) AS wanted(customer_id, key) "
                "ON r.customer_id = wanted.customer_id AND r.key = wanted.key "
                "WHERE r.dataset_id = %s",
                [list(customers), list(keys), dataset_id],
            )
            return {(c, k): (h, d) for c, k, h, d in cursor.fetchall()}
    by_customer: dict[int, list[str]] = {}
    for customer_id, key in pairs:
        by_customer.setdefault(customer_id, []).append(key)
    found: dict[tuple[int, str], tuple[str, bool]] = {}
    for customer_id, keys in by_customer.items():
        for start in range(0, len(keys), 500):
            rows = Record.objects.filter(dataset_id=dataset_id, customer_id=customer_id,
                                         key__in=keys[start:start + 500])
            for key, digest, deleted in rows.values_list("key", "content_hash", "deleted"):
                found[(customer_id, key)] = (digest, deleted)
    return found


_COLUMNS = ("customer_id", "dataset_id", "source_id", "key", "data", "content_hash", "record_at",
            "extracted_at", "seq", "deleted")
_PG_TYPES = ("bigint", "bigint", "bigint", "text", "jsonb", "text", "timestamptz", "timestamptz",
             "bigint", "boolean")


def _upsert(rows: list[tuple[Any, ...]]) -> None:
    """Insert or update records by natural key, in one statement.

    PostgreSQL gets one INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO UPDATE: a single
    round trip whatever the chunk size, and no per-row ORM work on this hot path. Other
    databases go through bulk_create(update_conflicts=True).
    """
    if not rows:
        return
    if connection.vendor == "postgresql":
        table = Record._meta.db_table
        columns = ", ".join(f'"{c}"' for c in _COLUMNS)
        arrays = ", ".join(f"%s::{t}[]" for t in _PG_TYPES)
        updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in _COLUMNS[2:] if c != "key")
        sql = (f'INSERT INTO "{table}" ({columns}) SELECT * FROM unnest({arrays}) '  # noqa: S608
               f'ON CONFLICT ("customer_id", "dataset_id", "key") DO UPDATE SET {updates}')
        params = [list(column) for column in zip(*rows, strict=True)]
        params[4] = [None if d is None else json.dumps(d, ensure_ascii=False) for d in params[4]]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    Record.objects.bulk_create(
        [Record(**dict(zip(_COLUMNS, row, strict=True))) for row in rows],
        update_conflicts=True,
        unique_fields=["customer", "dataset", "key"],
        update_fields=["data", "content_hash", "record_at", "extracted_at", "seq", "deleted", "source"],
    )


def _store_document(customer_id: int, dataset_id: int, key: str, attachment: Attachment) -> None:
    """Keep a record's file once per content (same bytes again → nothing written)."""
    digest = attachment.sha256
    if Document.objects.filter(customer_id=customer_id, dataset_id=dataset_id, record_key=key,
                               sha256=digest).exists():
        return
    document = Document(customer_id=customer_id, dataset_id=dataset_id, record_key=key,
                        filename=attachment.filename, content_type=attachment.content_type,
                        size=len(attachment.content), sha256=digest)
    document.file.save(f"{digest}-{attachment.filename}", ContentFile(attachment.content), save=False)
    document.save()


def live_counts(*, customer_id: int) -> dict[str, int]:
    """How many live records one customer has, per dataset slug."""
    from django.db.models import Count

    return dict(Record.objects.filter(customer_id=customer_id, deleted=False)
                .values_list("dataset__slug").annotate(n=Count("id")))
