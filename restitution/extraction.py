"""The extraction pipeline: read a legacy source → map → validate → store, as one run.

A run is a row (ExtractionRun) before it is work: it is claimed with an atomic conditional
UPDATE, so two workers never run the same one, and everything it writes is idempotent, so a
run killed half-way is simply run again. Bad rows are quarantined with their reason and the
run goes on. This module never serves data and never talks to a personal cloud.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError

from . import events, quarantine, store
from .backoff import backoff
from .gate import SourceRateLimiter, get_gate
from .mapping import (
    Attachment,
    BlockRecord,
    CompiledMapping,
    MappingContext,
    MappingError,
    compile_mapping,
)
from .models import Dataset, ExtractionRun, LegacyIdentity, RejectedRow
from .runs import (  # noqa: F401 - requesting runs and reading them: runs.py (no adapters there)
    ACTIVE,
    CUSTOMER_REFRESH_COOLDOWN,
    RefreshTooSoon,
    customer_freshness,
    enqueue_run,
    request_customer_extraction,
    request_customer_refresh,
    request_extraction,
    retry_run,
    runs_in_progress,
)
from .sources import RawRow, SourceAdapter, SourceError, adapter_class
from .sources.base import connection_from_env
from .validation import record_validator

log = logging.getLogger(__name__)

#: Attempts of one run before a transient failure becomes final.
MAX_ATTEMPTS = 5
#: Backoff between attempts: base·2^n seconds, capped, with ±50% jitter.
RETRY_BASE_SECONDS = 5.0
RETRY_CAP_SECONDS = 300.0
#: When the source's concurrency cap is reached, ask again after about this long.
GATE_RETRY_SECONDS = 3.0
#: How often a running run writes its counters and heartbeat.
HEARTBEAT_SECONDS = 1.0

@dataclass(frozen=True)
class RunOutcome:
    """What the task should do next: nothing, or retry the run after `retry_in` seconds."""

    status: str
    retry_in: float | None = None


def run_synchronously(*, run: ExtractionRun, max_wait: float = 3600.0) -> ExtractionRun:
    """Perform a run in this process, honouring its retries (management commands, the demo)."""
    deadline = time.monotonic() + max_wait
    while True:
        outcome = execute_run(run_id=run.pk)
        if outcome.retry_in is None or time.monotonic() > deadline:
            break
        time.sleep(min(outcome.retry_in, max(0.0, deadline - time.monotonic())))
    run.refresh_from_db()
    return run


def recover_stalled_runs(*, stale_after: timedelta = timedelta(minutes=2),
                         requeue_after: timedelta = timedelta(minutes=10)) -> list[int]:
    """Put back runs whose worker died (no heartbeat) and re-send runs whose message was lost.

    Safe to call at any time: a re-sent run that is already being worked on is not claimed twice.
    """
    now = timezone.now()
    stalled = list(
        ExtractionRun.objects.filter(status=ExtractionRun.Status.RUNNING,
                                     heartbeat_at__lt=now - stale_after).values_list("pk", "source__slug")
    )
    gate = get_gate()
    recovered: list[int] = []
    for run_id, slug in stalled:
        changed = ExtractionRun.objects.filter(
            pk=run_id, status=ExtractionRun.Status.RUNNING, heartbeat_at__lt=now - stale_after
        ).update(status=ExtractionRun.Status.QUEUED, error="worker lost; run queued again",
                 queued_at=now)
        if changed:
            gate.release(slug, _lease_token(run_id))
            recovered.append(run_id)
    forgotten = ExtractionRun.objects.filter(status=ExtractionRun.Status.QUEUED,
                                             queued_at__lt=now - requeue_after)
    for run_id in list(forgotten.values_list("pk", flat=True)):
        ExtractionRun.objects.filter(pk=run_id).update(queued_at=now)
        recovered.append(run_id)
    for run_id in recovered:
        enqueue_run(run_id)
    if recovered:
        log.warning("re-queued extraction runs %s", recovered)
    return recovered


# --- Executing a run --------------------------------------------------------------------------

def _lease_token(run_id: int) -> str:
    return f"run:{run_id}"


def _backoff(attempt: int) -> float:
    return backoff(attempt, base=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS)


def execute_run(*, run_id: int) -> RunOutcome:
    """Claim and perform one queued run; return what the caller (the task) should do next."""
    run = ExtractionRun.objects.select_related("source", "customer").filter(pk=run_id).first()
    if run is None or run.status not in ACTIVE:
        return RunOutcome("done")
    if run.status == ExtractionRun.Status.RUNNING:
        return RunOutcome("running-elsewhere")
    source = run.source
    gate = get_gate()
    token = _lease_token(run.pk)
    if not gate.acquire(source.slug, token, source.max_concurrent_runs):
        return RunOutcome("waiting-for-source", retry_in=GATE_RETRY_SECONDS * random.uniform(0.5, 1.5))
    try:
        now = timezone.now()
        claimed = ExtractionRun.objects.filter(pk=run.pk, status=ExtractionRun.Status.QUEUED).update(
            status=ExtractionRun.Status.RUNNING, started_at=now, heartbeat_at=now, finished_at=None,
            attempts=F("attempts") + 1, progress=0.0,
        )
        if not claimed:
            return RunOutcome("claimed-elsewhere")
        run.refresh_from_db()
        return _perform(run)
    finally:
        try:
            gate.release(source.slug, token)
        except RedisError:
            pass  # Redis is away: the lease expires by itself (GATEWAY_SOURCE_LEASE_SECONDS)


def _perform(run: ExtractionRun) -> RunOutcome:
    source = run.source
    started = time.monotonic()
    progress = _Progress(run)
    adapter: SourceAdapter | None = None
    try:
        if not source.enabled:
            raise SourceError("the source is disabled", permanent=True)
        limiter = SourceRateLimiter(source.slug, source.max_requests_per_second)
        adapter = adapter_class(source.kind)(
            options=source.options, connection=connection_from_env(source.connection_env),
            limiter=limiter,
        )
        datasets = list(source.datasets.order_by("slug"))
        for index, dataset in enumerate(datasets):
            _extract_dataset(run, adapter, dataset, progress, index, len(datasets))
        progress.finish()
        with transaction.atomic():  # the event is committed with the run's success, or neither
            ExtractionRun.objects.filter(pk=run.pk).update(
                status=ExtractionRun.Status.SUCCEEDED, progress=1.0, finished_at=timezone.now(),
                heartbeat_at=timezone.now(), error="",
            )
            if any(progress.values[name] for name in ("created", "updated", "deleted")):
                events.publish(events.RUN_CHANGED_DATA, subject_id=run.pk)
        log.info("extraction run %s of %s succeeded in %.1fs: %s", run.pk, source.slug,
                 time.monotonic() - started, progress.summary())
        return RunOutcome("succeeded")
    except SourceError as exc:
        progress.finish()
        attempts = ExtractionRun.objects.values_list("attempts", flat=True).get(pk=run.pk)
        if not exc.permanent and attempts < MAX_ATTEMPTS:
            ExtractionRun.objects.filter(pk=run.pk).update(
                status=ExtractionRun.Status.QUEUED, error=f"attempt {attempts}: {exc}",
                queued_at=timezone.now(),
            )
            log.warning("extraction run %s of %s: transient failure, will retry: %s",
                        run.pk, source.slug, exc)
            return RunOutcome("retry", retry_in=_backoff(attempts))
        _fail(run, str(exc))
        return RunOutcome("failed")
    except RedisError as exc:
        # Redis (the broker, and the source caps that live in it) went away mid-run. The run goes
        # back to the queue through the outbox, so it resumes once Redis is back.
        log.warning("extraction run %s of %s: Redis unavailable (%s), run queued again",
                    run.pk, source.slug, type(exc).__name__)
        ExtractionRun.objects.filter(pk=run.pk, status=ExtractionRun.Status.RUNNING).update(
            status=ExtractionRun.Status.QUEUED, error="Redis unavailable; run queued again",
            queued_at=timezone.now())
        enqueue_run(run.pk)
        return RunOutcome("requeued")
    except (OperationalError, InterfaceError) as exc:
        # The gateway's own database went away (a restart, a failover). Writes are upserts, so
        # nothing is lost: the run goes back to the queue as soon as the database answers.
        log.warning("extraction run %s of %s: database unavailable (%s), will retry",
                    run.pk, source.slug, type(exc).__name__)
        return _requeue_after_database_error(run)
    except Exception as exc:
        # An unexpected failure is a bug or bad configuration: fail the run, keep the trace in
        # the worker's log, and never leave the run looking as if it were still running.
        log.exception("extraction run %s of %s failed", run.pk, source.slug)
        progress.finish()
        _fail(run, f"{type(exc).__name__}: {exc}")
        return RunOutcome("failed")
    finally:
        if adapter is not None:
            adapter.close()


def _requeue_after_database_error(run: ExtractionRun, *, patience: float = 30.0) -> RunOutcome:
    """Put a run interrupted by a database outage back in the queue, waiting up to `patience`
    seconds for the database; if it stays away, the error propagates (the task retries, and
    stalled-run recovery re-queues the run later)."""
    deadline = time.monotonic() + patience
    while True:
        connection.close()  # the broken connection; the next query opens a new one
        try:
            ExtractionRun.objects.filter(pk=run.pk, status=ExtractionRun.Status.RUNNING).update(
                status=ExtractionRun.Status.QUEUED, error="database unavailable; run queued again",
                queued_at=timezone.now())
            return RunOutcome("retry", retry_in=_backoff(1))
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _fail(run: ExtractionRun, message: str) -> None:
    ExtractionRun.objects.filter(pk=run.pk).update(
        status=ExtractionRun.Status.FAILED, error=message[:2000], finished_at=timezone.now(),
    )
    log.error("extraction run %s of %s failed: %s", run.pk, run.source.slug, message)


class _Progress:
    """Counters of a run, written to its row (with a heartbeat) at most once a second."""

    COUNTERS = ("read", "created", "updated", "unchanged", "deleted", "rejected", "skipped")

    def __init__(self, run: ExtractionRun) -> None:
        self.run = run
        self.values = dict.fromkeys(self.COUNTERS, 0)
        self.fraction = 0.0
        self._rejects: list[RejectedRow] = []
        self._last = 0.0

    def add(self, **counts: int) -> None:
        for name, value in counts.items():
            self.values[name] += value
        self.tick()

    def reject(self, *, values: Any, reason: str, dataset: Dataset | None,
               customer_id: int | None, locator: str) -> None:
        self.values["rejected"] += 1
        self._rejects.append(RejectedRow(
            run_id=self.run.pk, source_id=self.run.source_id, dataset=dataset,
            customer_id=customer_id, locator=locator[:500], reason=reason[:2000],
            raw=_jsonable(values),
        ))
        if len(self._rejects) >= 500:
            self._flush_rejects()
        self.tick()

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= HEARTBEAT_SECONDS:
            self._last = now
            self._flush_rejects()
            ExtractionRun.objects.filter(pk=self.run.pk).update(
                heartbeat_at=timezone.now(), progress=min(self.fraction, 0.99), **self.values
            )
            get_gate().refresh(self.run.source.slug, _lease_token(self.run.pk),
                               self.run.source.max_concurrent_runs)

    def _flush_rejects(self) -> None:
        if self._rejects:
            quarantine.save(self._rejects)
            self._rejects = []

    def finish(self) -> None:
        self.tick(force=True)

    def summary(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.values.items())


def _jsonable(value: Any) -> Any:
    """Raw legacy values as JSON, whatever their Python type, for the quarantine."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Attachment):
        return {"filename": value.filename, "content_type": value.content_type, "size": len(value.content)}
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return repr(value)


def _identities(run: ExtractionRun) -> dict[str, int]:
    """Legacy identity value → customer id, for this run's source (one customer or all)."""
    qs = LegacyIdentity.objects.filter(system=run.source.identity_system)
    if run.customer_id is not None:
        qs = qs.filter(customer_id=run.customer_id)
    return dict(qs.values_list("value", "customer_id"))


def _extract_dataset(run: ExtractionRun, adapter: SourceAdapter, dataset: Dataset,
                     progress: _Progress, index: int, total: int) -> None:
    source = run.source
    if dataset.slug not in source.mappings:
        raise SourceError(f"no mapping for dataset {dataset.slug}", permanent=True)
    try:
        mapping = compile_mapping(source.mappings[dataset.slug], dataset.schema)
    except ValueError as exc:
        raise SourceError(f"mapping of {dataset.slug} is invalid: {exc}", permanent=True) from None
    identities = _identities(run)
    pipeline = _DatasetPipeline(run, dataset, mapping, progress, identities)
    if run.customer_id is None and adapter.supports_full_scan:
        progress.fraction = index / total
        pipeline.consume(adapter.read(dataset.slug, customer_key=None,
                                      customer_field=mapping.customer_field), expected_key=None)
    else:
        keys = sorted(identities)
        for position, key in enumerate(keys):
            progress.fraction = (index + position / max(1, len(keys))) / total
            pipeline.consume(adapter.read(dataset.slug, customer_key=key,
                                          customer_field=mapping.customer_field), expected_key=key)
    # The read is complete: only now may records that were not seen become tombstones.
    pipeline.finish(all_customers=run.customer_id is None)


class _DatasetPipeline:
    """Maps, validates and stores the rows of one dataset for one run."""

    def __init__(self, run: ExtractionRun, dataset: Dataset, mapping: CompiledMapping,
                 progress: _Progress, identities: dict[str, int]) -> None:
        self.run = run
        self.dataset = dataset
        self.mapping = mapping
        self.progress = progress
        self.identities = identities
        self.validate = record_validator(dataset.schema)
        self.context = MappingContext()
        self.writer = store.SnapshotWriter(dataset_id=dataset.pk, source_id=run.source_id)
        # Interval data: rows are readings folded into day blocks (mapping "group" section).
        self.blocks = mapping.blocks()
        if self.blocks is not None:
            self.validate_reading = record_validator(
                dataset.schema.get("properties", {}).get("readings", {}).get("items", {}))

    def consume(self, rows: Iterable[RawRow], *, expected_key: str | None) -> None:
        if expected_key is not None and expected_key in self.identities:
            self.writer.include(self.identities[expected_key])  # even a customer with no rows
        for row in _guarded(rows):
            self.progress.values["read"] += 1
            self._one(row, expected_key)
            self.progress.tick()
        if self.blocks is not None:
            self._store_blocks(self.blocks.drain())

    def _one(self, row: RawRow, expected_key: str | None) -> None:
        reject = self.progress.reject
        if row.error:
            # Whose row it is: the customer being read, or what the adapter could still cut out.
            owner = expected_key or row.extra.get("customer")
            customer_id = self.identities.get(owner) if owner else None
            reject(values=row.values, reason=row.error, dataset=self.dataset,
                   customer_id=customer_id, locator=row.locator)
            return
        customer_key = self.mapping.customer_key(row.values)
        if customer_key is None:
            reject(values=row.values, reason="missing customer identity "
                   f"(legacy field {self.mapping.customer_field})", dataset=self.dataset,
                   customer_id=None, locator=row.locator)
            return
        if expected_key is not None and customer_key != expected_key:
            return  # not this customer's row: the adapter's filter is a pre-filter only
        customer_id = self.identities.get(customer_key)
        if customer_id is None:
            self.progress.values["skipped"] += 1  # a person who is not a gateway customer
            return
        writer = self.writer
        self.context.customer_key = customer_key
        try:
            data, attachments = self.mapping.apply(row.values, self.context)
        except MappingError as exc:
            if self.blocks is not None:  # the reading is missing from its day, which is still written
                self._store_blocks(self.blocks.arriving(customer_id, exc.partial))
                self.blocks.touch(customer_id, exc.partial, row.locator)
                reject(values=row.values, reason=f"mapping: {exc}", dataset=self.dataset,
                       customer_id=customer_id, locator=row.locator)
                return
            key = store.record_key(exc.partial, self.dataset.natural_key)
            if key is not None:
                writer.protect(customer_id, key, row.locator)  # keep its last good version
            reject(values=row.values, reason=f"mapping: {exc}", dataset=self.dataset,
                   customer_id=customer_id, locator=row.locator)
            return
        if self.blocks is not None:
            self._reading(customer_id, data, row)
            return
        self._store(customer_id, data, row.values, row.locator, attachments)

    def _reading(self, customer_id: int, data: dict[str, Any], row: RawRow) -> None:
        """One mapped reading into its day block; blocks it completes are stored."""
        assert self.blocks is not None
        group = self.blocks.spec
        self._store_blocks(self.blocks.arriving(customer_id, data))
        reading = {"start": data.get(group.start), "value": data.get(group.value)}
        if group.quality and data.get(group.quality) is not None:
            reading["quality"] = data[group.quality]
        problem = self.validate_reading(reading)
        if problem is not None:
            self.blocks.touch(customer_id, data, row.locator)
            problem = f"schema: reading {problem}"
        else:
            problem = self.blocks.add(customer_id, data, row.locator)
        if problem is not None:
            self.progress.reject(values=row.values, reason=problem, dataset=self.dataset,
                                 customer_id=customer_id, locator=row.locator)

    def _store_blocks(self, blocks: Iterable[BlockRecord]) -> None:
        for block in blocks:
            self._store(block.customer_id, block.data, block.data, block.locator, [])

    def _store(self, customer_id: int, data: dict[str, Any], raw: Any, locator: str,
               attachments: list[Attachment]) -> None:
        """Validate one mapped record and hand it to the writer, or quarantine it."""
        reject = self.progress.reject
        writer = self.writer
        key = store.record_key(data, self.dataset.natural_key)
        if key is None:
            reject(values=raw, reason="missing natural key "
                   f"({', '.join(self.dataset.natural_key)})", dataset=self.dataset,
                   customer_id=customer_id, locator=locator)
            return
        problem = self.validate(data)
        if problem is not None:
            writer.protect(customer_id, key, locator)
            reject(values=raw, reason=f"schema: {problem}",
                   dataset=self.dataset, customer_id=customer_id, locator=locator)
            return
        first = writer.seen_at(customer_id, key)
        if first is not None:
            reject(values=raw, reason=f"duplicate natural key {key!r} "
                   f"(first seen at {first})", dataset=self.dataset, customer_id=customer_id,
                   locator=locator)
            return
        writer.add(customer_id=customer_id, key=key, data=data, locator=locator, attachments=attachments,
                   record_at=store.parse_record_date(data.get(self.dataset.date_field)))

    def finish(self, *, all_customers: bool) -> None:
        if self.blocks is not None:
            self._store_blocks(self.blocks.drain())
        counts = self.writer.finish(all_customers=all_customers)
        self.progress.add(created=counts.created, updated=counts.updated,
                          unchanged=counts.unchanged, deleted=counts.deleted)


def _guarded(rows: Iterable[RawRow]) -> Iterator[RawRow]:
    """Let SourceError through; turn anything else an adapter raises into a transient SourceError."""
    try:
        yield from rows
    except SourceError:
        raise
    except (OSError, TimeoutError) as exc:
        raise SourceError(f"{type(exc).__name__} while reading", permanent=False) from exc
