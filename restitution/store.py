"""The record store: idempotent upserts by natural key, tombstones, the global change sequence.

Writers run in parallel. Every write that changes a record takes a fresh value of the change
sequence, so sequence order is not commit order: a slow writer may commit seq 10 after a fast
one committed seq 11. The promise to a client syncing with `since=<seq>` — it never misses a
change that commits late — is kept by the readers: they never serve past the **safe point**
(safe_seq()), the highest sequence below which every value handed out belongs to a finished
transaction. A writer publishes a lower bound of the values it is about to take, as a shared
transaction-scoped advisory lock, *before* it takes any (publish_in_flight()); the lock lasts
until its commit or rollback, and vanishes with its session if its process dies.
Unchanged rows (same content hash) are never rewritten. On PostgreSQL a chunk goes through
COPY into a session's staging table (a small one: arrays bound to the statement) and one merge
statement.
This module never reads a legacy system and never decides *what* to extract.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from .legacy_values import Attachment
from .models import ChangeCounter, Document, Record

_PG_SEQUENCE = "restitution_change_seq"

# --- The change feed's safe point (PostgreSQL) ---------------------------------------------------
#
# A writer's in-flight lock is the advisory lock (IN_FLIGHT_CLASS + (b >> 31), b & 0x7fffffff),
# two int4 keys, where b is a lower bound of every sequence value the writer's transaction takes:
# the sequence's next value when the lock was taken. Shared, so two writers that publish the same
# bound do not wait for each other. Sequence values up to 2**47 fit in the reserved class range.
IN_FLIGHT_CLASS = 0x5E58_0000
_IN_FLIGHT_CLASSES = 0xFFFF
_LOW_BITS = 0x7FFF_FFFF

#: The sequence's next value: what nextval() will return at the earliest.
_NEXT_VALUE = f"(SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {_PG_SEQUENCE})"
#: Publishes the writer's lower bound; held until its transaction ends.
PUBLISH_SQL = (f"SELECT pg_advisory_xact_lock_shared({IN_FLIGHT_CLASS} + (b >> 31)::int, (b & {_LOW_BITS})::int) "
               f"FROM (SELECT {_NEXT_VALUE} AS b) bound")
#: The highest value handed out (0 when none): read *before* IN_FLIGHT_SQL.
LAST_VALUE_SQL = f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {_PG_SEQUENCE}"
#: The in-flight writers' lower bounds in this database, lowest first (granted locks only). The
#: reader's own transaction is left out: what it wrote itself, it sees.
IN_FLIGHT_SQL = (
    f"SELECT DISTINCT (classid::bigint - {IN_FLIGHT_CLASS}) * 2147483648 + objid::bigint AS bound, classid, objid "
    "FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND pid <> pg_backend_pid() "
    f"AND classid BETWEEN {IN_FLIGHT_CLASS} AND {IN_FLIGHT_CLASS + _IN_FLIGHT_CLASSES} "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY bound")


def publish_in_flight(cursor) -> None:
    """Say, until this transaction ends, that it may write sequence values from the next one on.
    Call inside the writing transaction, before any nextval() of the change sequence."""
    cursor.execute(PUBLISH_SQL)


def safe_point(cursor) -> int:
    """The feed's safe point: every sequence value up to it was taken by a transaction that has
    ended (committed or rolled back), so a page read afterwards sees all that will ever be there.

    The order of the two reads matters: a writer that had not published its bound when the
    in-flight locks were read took it after the last value was read, so all its values are above.
    """
    cursor.execute(LAST_VALUE_SQL)
    last = int(cursor.fetchone()[0])
    cursor.execute(IN_FLIGHT_SQL)
    row = cursor.fetchone()
    return last if row is None else min(last, int(row[0]) - 1)


def safe_seq() -> int:
    """The change feed's safe point: pages and `since` cursors never go past it. On SQLite,
    which serialises writers, the committed counter (a reader never sees an uncommitted one)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            return safe_point(cursor)
    return current_seq()


def content_text(data: Any) -> str:
    """The canonical JSON of a record (sorted keys, no whitespace): hashed, and written as is."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(data: Any) -> str:
    """SHA-256 of the canonical JSON of a record (sorted keys, no whitespace)."""
    return _digest(content_text(data))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_key(data: dict[str, Any], natural_key: list[str]) -> str | None:
    """The natural key as one string ("a|b"); None when a key field is missing or empty."""
    parts = []
    for name in natural_key:
        value = data.get(name)
        if value is None or value == "":
            return None
        parts.append(str(value))
    return "|".join(parts)


def parse_record_date(value: Any, day_zone: str = "") -> datetime | None:
    """The date a record describes, as an aware datetime: a day at its local midnight in the
    dataset's `day_zone` (Dataset.day_zone; at 00:00 UTC without one)."""
    if value is None:
        return None
    text = str(value)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(day_zone) if day_zone else UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def allocate_seqs(count: int) -> list[int]:
    """`count` new change-sequence values, increasing. Call inside the writing transaction: on
    PostgreSQL it first publishes the transaction as in flight (publish_in_flight())."""
    if count <= 0:
        return []
    if connection.vendor == "postgresql":
        assert connection.in_atomic_block, "sequence values are taken inside the writing transaction"
        with connection.cursor() as cursor:
            publish_in_flight(cursor)
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
    """A new change-sequence value above every one already committed *or still being written*:
    a consent's first_seq. On PostgreSQL it waits for the writers in flight whose values may lie
    below it (never for those that published later: theirs are above), so once it returns the
    safe point is at least this value and a cursor raised to it skips no late commit."""
    if connection.vendor != "postgresql":
        with transaction.atomic():
            return allocate_seqs(1)[0]  # SQLite serialises writers: nothing is in flight
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT nextval('{_PG_SEQUENCE}')")  # noqa: S608
        floor = int(cursor.fetchone()[0])
        cursor.execute(IN_FLIGHT_SQL)
        for bound, classid, objid in cursor.fetchall():
            if bound <= floor:  # wait for that writer's commit or rollback, keep nothing
                cursor.execute("SELECT pg_advisory_lock(%s, %s), pg_advisory_unlock(%s, %s)",
                               [classid, objid, classid, objid])
    return floor


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


#: Up to this many customers in scope, the stored keys that may become tombstones are read in
#: one plain query: a server-side cursor held across transactions (DECLARE … WITH HOLD, which
#: PostgreSQL materialises at the implicit commit) costs a consent's one-customer run more
#: than the read itself. A few customers' keys fit in memory; a shard's or a batch's stream.
_PLAIN_SCAN_CUSTOMERS = 16


@dataclass
class _Pending:
    customer_id: int
    key: str
    data: dict[str, Any]
    text: str  # content_text(data): hashed, and written as the record's JSON (never dumped twice)
    digest: str
    record_at: datetime | None
    attachments: list[Attachment]
    source_digest: bytes | None = None


@dataclass
class SnapshotWriter:
    """Writes the snapshot of one dataset from one source, for one customer or many, in chunks.

    `add()` records as they are mapped (any customer, any order); every `chunk_size` records
    are written in one transaction, only those new or changed (content hash): on PostgreSQL
    one COPY into the session's staging table, or arrays for a small chunk, and one merge
    statement (_merge_chunk()).
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

    def keep(self, customer_id: int, key: str, locator: str) -> None:
        """A stored record read again from the very same legacy row: seen, and unchanged."""
        self._seen.setdefault(customer_id, {})[key] = locator
        self.counts.unchanged += 1

    def add(self, *, customer_id: int, key: str, data: dict[str, Any], record_at: datetime | None,
            locator: str, attachments: Iterable[Attachment] = (), source_digest: bytes | None = None) -> None:
        self._seen.setdefault(customer_id, {})[key] = locator
        text = content_text(data)
        self._pending.append(_Pending(customer_id, key, data, text, _digest(text), record_at,
                                      list(attachments), source_digest))
        if len(self._pending) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        now = timezone.now()
        with transaction.atomic():
            for item in self._pending:
                for attachment in item.attachments:
                    _store_document(item.customer_id, self.dataset_id, item.key, attachment)
            if connection.vendor == "postgresql":
                created, written = _merge_chunk(self.dataset_id, self.source_id, self._pending, now)
                self.counts.created += created
                self.counts.updated += written - created
                self.counts.unchanged += len(self._pending) - written
            else:
                self._flush_portable(now)
        self._pending.clear()

    def _flush_portable(self, now: datetime) -> None:
        """The chunk on other databases (SQLite): read the stored hashes, write what changed."""
        existing = _stored_versions(self.dataset_id, [(p.customer_id, p.key) for p in self._pending])
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
        seqs = allocate_seqs(len(to_write))
        _upsert([
            (item.customer_id, self.dataset_id, self.source_id, item.key, item.data,
             item.digest, item.record_at, now, seq, False)
            for item, seq in zip(to_write, seqs, strict=True)
        ])

    def finish(self, *, all_customers: bool = False,
               candidates: list[tuple[int, str, int]] | None = None) -> WriteCounts:
        """Flush, then tombstone this source's live records that the complete read did not return.

        In scope: the customers seen or included, or — for a read of every customer — all of
        them, including customers who vanished from the source entirely. `candidates`: the
        scope's live records (customer, key, record id), when the run read them before reading
        the legacy system (stored_scope); a record another run writes meanwhile is then left to
        the next run.
        """
        stored: Iterable[tuple[int, str, datetime | None]]
        live = Record.objects.filter(dataset_id=self.dataset_id, source_id=self.source_id, deleted=False)
        if not all_customers:
            live = live.filter(customer_id__in=list(self._seen))  # lazy: read only below, if at all
        if candidates is not None:
            self.flush()
            stored = candidates
        elif all_customers or len(self._seen) > _PLAIN_SCAN_CUSTOMERS:
            self.flush()
            # Many customers: streamed, so memory stays bounded whatever the dataset holds.
            stored = live.values_list("customer_id", "key", "record_at").iterator(chunk_size=10_000)
        else:
            # A few customers (a consent's run): their live records read once, with their
            # hashes, before the last chunk is written. What the read brought back unchanged
            # is counted and not sent, so a run that changed nothing writes nothing at all.
            # The records it read are the ones that may become tombstones: a record the last
            # chunk writes is one the read returned, never one of those.
            rows = self._live_of_few(live)
            self._drop_unchanged({(customer_id, key): (digest, None if source is None else bytes(source))
                                  for customer_id, key, _, digest, source in rows})
            self.flush()
            stored = [row[:3] for row in rows]
        gone: list[tuple[int, str, Any]] = []
        for customer_id, key, record_at in stored:
            if key not in self._seen.get(customer_id, ()):
                gone.append((customer_id, key, record_at))
        if candidates is not None and gone:
            gone = _with_record_dates(gone)
        for start in range(0, len(gone), self.chunk_size):
            self._tombstone(gone[start:start + self.chunk_size])
        return self.counts

    def _live_of_few(self, live: Any) -> list[tuple[int, str, datetime | None, str, bytes | None]]:
        """The live records of the few customers in scope, with their hashes: on PostgreSQL in
        one plain statement (every consent's run reads them; building it through the ORM cost
        more than the database answering it), elsewhere through the ORM (`live`), whose
        converters give aware dates on every database."""
        columns = ("customer_id", "key", "record_at", "content_hash", "source_digest")
        if connection.vendor != "postgresql":
            return list(live.values_list(*columns))
        source_test = "source_id IS NULL" if self.source_id is None else "source_id = %s"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(columns)} FROM {Record._meta.db_table} WHERE dataset_id = %s "  # noqa: S608
                f"AND {source_test} AND NOT deleted AND customer_id = ANY(%s)",
                [self.dataset_id, *([] if self.source_id is None else [self.source_id]), list(self._seen)])
            return cursor.fetchall()

    def _drop_unchanged(self, live: dict[tuple[int, str], tuple[str, bytes | None]]) -> None:
        """Count as unchanged, and take out of the chunk, the pending records whose live version
        has the same content hash (the merge would leave them alone too) and the same source
        digest, or none to give. One with attachments stays: its files are checked at the
        flush; one with a new digest too: the merge writes it, as no change."""
        def same(item: _Pending) -> bool:
            stored = live.get((item.customer_id, item.key))
            return (stored is not None and stored[0] == item.digest
                    and (item.source_digest is None or stored[1] == item.source_digest))

        kept = [item for item in self._pending if item.attachments or not same(item)]
        self.counts.unchanged += len(self._pending) - len(kept)
        self._pending = kept

    def _tombstone(self, gone: list[tuple[int, str, datetime | None]]) -> None:
        """Deletions keep the date their record last had: a client sees a deletion only if its
        consent's period covered that date (the key itself is data)."""
        now = timezone.now()
        with transaction.atomic():
            seqs = allocate_seqs(len(gone))
            _upsert([
                (customer_id, self.dataset_id, self.source_id, key, None, "", record_at, now, seq, True)
                for (customer_id, key, record_at), seq in zip(gone, seqs, strict=True)
            ])
        self.counts.deleted += len(gone)


#: The staging table of a session's chunks (temporary, never logged). Ensured in every chunk's
#: transaction (one cheap statement): behind a transaction-pooling proxy (PgBouncer) two chunks
#: of one process may meet different server sessions. Emptied by truncation at each commit: the
#: merge's DELETE leaves dead rows that no vacuum reaches in a temporary table, which every later
#: merge of a long-lived worker session would scan.
_STAGING = "restitution_record_staging_v2"
_STAGING_DDL = (f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} (ord integer, customer_id bigint, key text, "
                "data text, content_hash text, record_at timestamptz, source_digest bytea) ON COMMIT DELETE ROWS")


#: Up to this many records, a chunk reaches the merge as arrays bound to the statement itself
#: (unnest): no staging table to ensure, fill and truncate at commit, two statements fewer. A
#: consent's one-customer run writes a few records per dataset; bigger chunks go through COPY,
#: which sends the canonical JSON as is, without quoting it into the statement.
_ARRAY_CHUNK_ROWS = 100
#: The staged rows of a small chunk, from arrays (the staging table's columns, in its order).
_STAGED_FROM_ARRAYS = (
    "SELECT * FROM unnest(%(ord)s::integer[], %(customer)s::bigint[], %(key)s::text[], %(data)s::text[], "
    "%(hash)s::text[], %(record_at)s::timestamptz[], %(source_digest)s::bytea[]) "
    "AS s(ord, customer_id, key, data, content_hash, record_at, source_digest)")


def _merge_statement(staged: str = f"DELETE FROM {_STAGING} RETURNING *") -> str:
    """Takes the staged chunk (by default emptying the staging table), writes the rows that are
    new or whose content hash changed, each with a new sequence value in the chunk's order, and
    counts (created, written). The conflict clause re-checks the hash: a row another writer
    wrote meanwhile with the same content is left alone. Also returns the ids and source digests
    of unchanged records whose stored source digest differs (written apart: not a change)."""
    table = Record._meta.db_table
    return (
        f"WITH staged AS ({staged}), "  # noqa: S608
        # One index lookup per staged row (LATERAL … LIMIT 1 is never turned into a hash join):
        # the merge costs what the chunk holds, never what the dataset holds, whatever the
        # planner's statistics say (a hash join read all 41 037 stored records of a dataset to
        # merge 2).
        "matched AS (SELECT s.*, old.id AS old_id, old.deleted AS old_deleted, old.content_hash AS old_hash, "
        f"old.source_digest AS old_digest FROM staged s LEFT JOIN LATERAL (SELECT o.id, o.deleted, "
        f"o.content_hash, o.source_digest FROM {table} o WHERE o.customer_id = s.customer_id "
        "AND o.dataset_id = %(dataset)s AND o.key = s.key LIMIT 1) old ON true), "
        f"written AS (INSERT INTO {table} AS r (customer_id, dataset_id, source_id, key, data, content_hash, "
        "record_at, extracted_at, seq, deleted, source_digest) "
        f"SELECT c.customer_id, %(dataset)s, %(source)s, c.key, c.data::jsonb, c.content_hash, c.record_at, "
        f"%(now)s, nextval('{_PG_SEQUENCE}'), false, c.source_digest FROM ("
        "SELECT * FROM matched m WHERE m.old_id IS NULL OR m.old_deleted OR m.old_hash <> m.content_hash "
        "ORDER BY m.ord) c "
        "ON CONFLICT (customer_id, dataset_id, key) DO UPDATE SET source_id = EXCLUDED.source_id, "
        "data = EXCLUDED.data, content_hash = EXCLUDED.content_hash, record_at = EXCLUDED.record_at, "
        "extracted_at = EXCLUDED.extracted_at, seq = EXCLUDED.seq, deleted = false, "
        "source_digest = EXCLUDED.source_digest "
        "WHERE r.deleted OR r.content_hash <> EXCLUDED.content_hash "
        "RETURNING (r.xmax = 0) AS created), "
        "stale AS (SELECT m.old_id, m.source_digest FROM matched m WHERE NOT m.old_deleted "
        "AND m.old_hash = m.content_hash AND m.source_digest IS NOT NULL "
        "AND m.old_digest IS DISTINCT FROM m.source_digest) "
        "SELECT (SELECT count(*) FILTER (WHERE created) FROM written), (SELECT count(*) FROM written), "
        "(SELECT array_agg(old_id ORDER BY old_id) FROM stale), "
        "(SELECT array_agg(source_digest ORDER BY old_id) FROM stale)"
    )


_DIGEST_UPDATE = (f"UPDATE {Record._meta.db_table} r SET source_digest = v.digest "  # noqa: S608
                  "FROM unnest(%s::bigint[], %s::bytea[]) AS v(id, digest) WHERE r.id = v.id")


def _merge_chunk(dataset_id: int, source_id: int | None, pending: list[_Pending], now: datetime) -> tuple[int, int]:
    """A chunk on PostgreSQL, inside the writing transaction: COPY into the staging table (no
    parameter quoting, the canonical JSON text as is), the transaction published as in flight,
    then one merge statement. Returns (created, written). A small chunk skips the staging
    table: published, then merged from arrays."""
    if len(pending) <= _ARRAY_CHUNK_ROWS:
        with connection.cursor() as cursor:
            publish_in_flight(cursor)
            cursor.execute(_merge_statement(_STAGED_FROM_ARRAYS), {
                "dataset": dataset_id, "source": source_id, "now": now,
                "ord": list(range(len(pending))), "customer": [item.customer_id for item in pending],
                "key": [item.key for item in pending], "data": [item.text for item in pending],
                "hash": [item.digest for item in pending], "record_at": [item.record_at for item in pending],
                "source_digest": [item.source_digest for item in pending]})
            return _merged(cursor)
    with connection.cursor() as cursor:
        cursor.execute(_STAGING_DDL)
        columns = "ord, customer_id, key, data, content_hash, record_at, source_digest"
        with cursor.copy(f"COPY {_STAGING} ({columns}) FROM STDIN") as copy:
            for ord_, item in enumerate(pending):
                copy.write_row((ord_, item.customer_id, item.key, item.text, item.digest, item.record_at,
                                item.source_digest))
        publish_in_flight(cursor)
        cursor.execute(_merge_statement(), {"dataset": dataset_id, "source": source_id, "now": now})
        return _merged(cursor)


def _merged(cursor) -> tuple[int, int]:
    """(created, written) from the merge just executed, once the digests it found stale are written."""
    created, written, stale_ids, stale_digests = cursor.fetchone()
    if stale_ids:
        # Same content from a legacy row not seen before (a column the mapping ignores
        # changed, or the record predates digests): the digest only, not a change (no seq).
        cursor.execute(_DIGEST_UPDATE, [stale_ids, stale_digests])
    return int(created), int(written)


@dataclass
class StoredScope:
    """This source's live records of a dataset in a batch run's scope, read once before the run
    reads the legacy system: their source digests, and all of them as tombstone candidates."""

    digests: dict[bytes, tuple[int, str]]  # source digest → (customer, key)
    #: (customer, key, record id): the dates are read for the few that become tombstones only.
    live: list[tuple[int, str, int]]


def stored_scope(dataset_id: int, source_id: int, customer_ids: list[int] | None,
                 limit: int) -> StoredScope | None:
    """The scope's live records of this source (of these customers; None: all), or None when
    there are more than `limit` (too many to hold: the run then maps every row and scans the
    store for tombstones at the end)."""
    table = Record._meta.db_table
    sql = (f"SELECT source_digest, customer_id, key, id FROM {table} WHERE dataset_id = %s "  # noqa: S608
           "AND source_id = %s AND NOT deleted")
    params: list[Any] = [dataset_id, source_id]
    if customer_ids is not None:
        sql += " AND customer_id = ANY(%s::bigint[])"
        params.append(customer_ids)
    sql += " LIMIT %s"
    params.append(limit + 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if len(rows) > limit:
        return None
    return StoredScope(
        digests={bytes(digest): (customer_id, key) for digest, customer_id, key, _ in rows if digest is not None},
        live=[(customer_id, key, record_id) for _, customer_id, key, record_id in rows])


def _with_record_dates(gone: list[tuple[int, str, int]]) -> list[tuple[int, str, datetime | None]]:
    """(customer, key, record id) → (customer, key, record date): a tombstone keeps its
    record's date, read here for the records that become tombstones, not for every one held.
    A record gone meanwhile (its customer erased) has nothing left to tombstone."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, record_at FROM {Record._meta.db_table} WHERE id = ANY(%s::bigint[])",  # noqa: S608
                       [[record_id for _, _, record_id in gone]])
        dates = dict(cursor.fetchall())
    return [(customer_id, key, dates[record_id]) for customer_id, key, record_id in gone if record_id in dates]


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

    PostgreSQL (tombstones: keys and dates only) gets one INSERT … SELECT FROM unnest(arrays)
    ON CONFLICT DO UPDATE: a single round trip whatever the chunk size. Other databases go
    through bulk_create(update_conflicts=True). Records with content go through _merge_chunk().
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
