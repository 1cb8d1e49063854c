"""The extraction pipeline: read a legacy source → map → validate → store, as one run.

A run is a row (ExtractionRun) before it is work: it is claimed with an atomic conditional
UPDATE, so two workers never run the same one, and everything it writes is idempotent, so a
run killed half-way is simply run again. Bad rows are quarantined with their reason and the
run goes on. This module never serves data and never talks to a personal cloud.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Avg, F, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone
from redis.exceptions import RedisError

from . import events, outbox, quarantine, store
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
from .models import Dataset, ExtractionRun, LegacyIdentity, Record, RejectedRow, RunShard, Source
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
    #: The run's row as read, when the outcome is "done" (a run already over: nothing to re-read).
    row: ExtractionRun | None = field(default=None, compare=False, repr=False)


def run_synchronously(*, run: ExtractionRun, max_wait: float = 3600.0) -> ExtractionRun:
    """Perform a run in this process, honouring its retries (management commands, the demo).

    A sharded run's shards are taken here too, one after the other, alongside any worker that
    takes some of them (each shard is claimed atomically)."""
    deadline = time.monotonic() + max_wait
    while True:
        outcome = execute_run(run_id=run.pk)
        if outcome.status == "sharded":
            _perform_shards_here(run.pk, deadline)
            break
        if outcome.retry_in is None or time.monotonic() > deadline:
            break
        time.sleep(min(outcome.retry_in, max(0.0, deadline - time.monotonic())))
    if outcome.row is None:
        run.refresh_from_db()
    else:  # the run was over when execute_run read it (an eager task performed it already)
        for column in ExtractionRun._meta.concrete_fields:
            setattr(run, column.attname, getattr(outcome.row, column.attname))
    return run


def _perform_shards_here(run_id: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not ExtractionRun.objects.filter(pk=run_id, status__in=ACTIVE).exists():
            return
        waits = []
        for shard_id in RunShard.objects.filter(run_id=run_id, status=RunShard.Status.QUEUED).values_list(
                "pk", flat=True):
            outcome = execute_shard(shard_id=shard_id)
            if outcome.retry_in is not None:
                waits.append(outcome.retry_in)
        time.sleep(min(waits, default=0.2))


def recover_stalled_runs(*, stale_after: timedelta = timedelta(minutes=2),
                         requeue_after: timedelta = timedelta(minutes=10)) -> list[int]:
    """Put back runs and shards whose worker died (no heartbeat), re-send those whose message
    was lost, and conclude sharded runs whose worker died between their last shard and the end.
    Returns the ids of the runs concerned.

    Safe to call at any time: a re-sent run that is already being worked on is not claimed twice.
    """
    now = timezone.now()
    stalled = list(
        ExtractionRun.objects.filter(status=ExtractionRun.Status.RUNNING, sharded=False,
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
    recovered_shards = _recover_stalled_shards(now, stale_after, requeue_after)
    if recovered or recovered_shards:
        log.warning("re-queued extraction runs %s and shards %s", recovered, recovered_shards)
    return recovered + sorted(set(recovered_shards.values()) - set(recovered))


def _recover_stalled_shards(now: datetime, stale_after: timedelta,
                            requeue_after: timedelta) -> dict[int, int]:
    """Shard id → run id of the shards put back in the queue; sharded runs left without a
    conclusion are concluded."""
    gate = get_gate()
    recovered: dict[int, int] = {}
    stalled = RunShard.objects.filter(status=RunShard.Status.RUNNING, heartbeat_at__lt=now - stale_after)
    for shard_id, run_id, slug in list(stalled.values_list("pk", "run_id", "run__source__slug")):
        changed = RunShard.objects.filter(
            pk=shard_id, status=RunShard.Status.RUNNING, heartbeat_at__lt=now - stale_after
        ).update(status=RunShard.Status.QUEUED, error="worker lost; shard queued again", queued_at=now)
        if changed:
            gate.release(slug, _shard_token(shard_id))
            recovered[shard_id] = run_id
    forgotten = RunShard.objects.filter(status=RunShard.Status.QUEUED, queued_at__lt=now - requeue_after,
                                        run__status=ExtractionRun.Status.RUNNING)
    for shard_id, run_id in list(forgotten.values_list("pk", "run_id")):
        RunShard.objects.filter(pk=shard_id).update(queued_at=now)
        recovered[shard_id] = run_id
    for shard_id in recovered:
        enqueue_shard(shard_id)
    # A worker died after its shard succeeded but before the run's conclusion.
    unconcluded = ExtractionRun.objects.filter(status=ExtractionRun.Status.RUNNING, sharded=True,
                                               heartbeat_at__lt=now - stale_after)
    for run_id in list(unconcluded.values_list("pk", flat=True)):
        if not RunShard.objects.filter(run_id=run_id).exclude(status=RunShard.Status.SUCCEEDED).exists():
            _conclude_sharded_run(run_id)
    return recovered


# --- Executing a run --------------------------------------------------------------------------

def _lease_token(run_id: int) -> str:
    return f"run:{run_id}"


def _shard_token(shard_id: int) -> str:
    return f"shard:{shard_id}"


def _backoff(attempt: int) -> float:
    return backoff(attempt, base=RETRY_BASE_SECONDS, cap=RETRY_CAP_SECONDS)


@dataclass
class _Unit:
    """What one worker performs: a whole run, or one shard of a sharded run."""

    run: ExtractionRun
    shard: RunShard | None = None

    @property
    def model(self) -> type[ExtractionRun] | type[RunShard]:
        return ExtractionRun if self.shard is None else RunShard

    @property
    def pk(self) -> int:
        return self.run.pk if self.shard is None else self.shard.pk

    @property
    def token(self) -> str:
        return _lease_token(self.run.pk) if self.shard is None else _shard_token(self.shard.pk)

    @property
    def label(self) -> str:
        return f"run {self.run.pk}" if self.shard is None else f"run {self.run.pk} shard {self.shard.number}"

    def rows(self):
        return self.model.objects.filter(pk=self.pk)


def execute_run(*, run_id: int) -> RunOutcome:
    """Claim and perform one queued run; return what the caller (the task) should do next.

    A batch run of a source with more customers than GATEWAY_RUN_SHARD_CUSTOMERS is split into
    shards instead (status "sharded"): the shards are queued, and workers perform them."""
    try:
        run = ExtractionRun.objects.select_related("source").get(pk=run_id)
    except ExtractionRun.DoesNotExist:
        return RunOutcome("done")
    if run.status not in ACTIVE:
        return RunOutcome("done", row=run)
    if run.sharded:
        return RunOutcome("sharded")
    if run.status == ExtractionRun.Status.RUNNING:
        return RunOutcome("running-elsewhere")
    source = run.source
    if run.customer_id is None:
        planned = _plan_shards(run)
        if planned is not None:
            return RunOutcome("sharded" if planned else "claimed-elsewhere")
    gate = get_gate()
    token = _lease_token(run.pk)
    if not gate.acquire(source.slug, token, source.max_concurrent_runs):
        return RunOutcome("waiting-for-source", retry_in=GATE_RETRY_SECONDS * random.uniform(0.5, 1.5))
    try:
        now = timezone.now()
        if not _claim(ExtractionRun, run.pk, now):
            return RunOutcome("claimed-elsewhere")
        run.status, run.started_at, run.heartbeat_at, run.attempts = (
            ExtractionRun.Status.RUNNING, now, now, run.attempts + 1)
        return _perform(_Unit(run))
    finally:
        try:
            gate.release(source.slug, token)
        except RedisError:
            pass  # Redis is away: the lease expires by itself (GATEWAY_SOURCE_LEASE_SECONDS)


def _claim(model: type[ExtractionRun] | type[RunShard], pk: int, now: datetime) -> bool:
    """Take a queued run or shard: running from now, one attempt more. False if another worker
    took it first. One plain statement (every consent's run claims one)."""
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{model._meta.db_table}" SET status = %s, started_at = %s, heartbeat_at = %s, '  # noqa: S608
            "finished_at = NULL, attempts = attempts + 1, progress = 0 WHERE id = %s AND status = %s",
            [ExtractionRun.Status.RUNNING.value, at, at, pk, ExtractionRun.Status.QUEUED.value])
        return cursor.rowcount == 1


# --- Sharded runs -------------------------------------------------------------------------------

def _shard_bounds(system: str, size: int) -> tuple[int, list[str]]:
    """How many identities the system has, and every `size`-th identity value in the database's
    own ordering: the inclusive upper bounds of all shards but the last (which is open)."""
    table = LegacyIdentity._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT COUNT(*) FROM "{table}" WHERE system = %s', [system])  # noqa: S608
        total = cursor.fetchone()[0]
        if total <= size:
            return total, []
        cursor.execute(
            f'SELECT value FROM (SELECT value, ROW_NUMBER() OVER (ORDER BY value) AS n FROM "{table}" '  # noqa: S608
            "WHERE system = %s) AS numbered WHERE n %% %s = 0 AND n < %s ORDER BY n",
            [system, size, total])
        return total, [row[0] for row in cursor.fetchall()]


#: The identity hash of shards by hash, computed by the database: the first 32 bits of the value's
#: MD5, unsigned (identity_hash is the same in Python).
IDENTITY_HASH_SQL = "('x' || substr(md5({column}), 1, 8))::bit(32)::bigint"


def identity_hash(value: str) -> int:
    """The first 32 bits of the identity value's MD5 (its UTF-8 bytes), unsigned: which shard by
    hash a customer's rows belong to. MD5 here only spreads values evenly; nothing is secret."""
    return int.from_bytes(hashlib.md5(value.encode(), usedforsecurity=False).digest()[:4], "big")


def _hash_shard_sizes(system: str, count: int) -> list[int]:
    """How many identities of the system each of `count` shards by hash has (number 1 first)."""
    table = LegacyIdentity._meta.db_table
    expression = IDENTITY_HASH_SQL.format(column="value")
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT {expression} %% %s, COUNT(*) FROM "{table}" '  # noqa: S608
                       "WHERE system = %s GROUP BY 1", [count, system])
        sizes = dict(cursor.fetchall())
    return [sizes.get(remainder, 0) for remainder in range(count)]


def _planned_shards(run: ExtractionRun, size: int) -> list[RunShard] | None:
    """The shards of a batch run, not saved yet; None when it stays one unit."""
    kind = adapter_class(run.source.kind)
    system = run.source.identity_system
    if kind.supports_customer_shards:
        total, bounds = _shard_bounds(system, size)
        if not bounds:
            return None
        lowers: list[str | None] = [None, *bounds]
        uppers: list[str | None] = [*bounds, None]
        return [RunShard(run=run, number=number, key_after=low, key_upto=high,
                         customers=min(size, total - (number - 1) * size))
                for number, (low, high) in enumerate(zip(lowers, uppers, strict=True), start=1)]
    if kind.supports_hash_shards:
        # Every shard reads every file: their number is capped (the workers to use at once).
        total = LegacyIdentity.objects.filter(system=system).count()
        count = min(-(-total // size), settings.GATEWAY_RUN_FILE_SHARDS)
        if count <= 1:
            return None
        return [RunShard(run=run, number=number, hash_of=count, customers=customers)
                for number, customers in enumerate(_hash_shard_sizes(system, count), start=1)]
    return None


def _plan_shards(run: ExtractionRun) -> bool | None:
    """Split a queued batch run into shards and queue them: ranges of identity values for
    sources that read a set of customers (SQL, HTTP), identity hashes for file sources.

    None: the run stays one unit (small source, sharding off, or an adapter that cannot be
    sharded). True: planned here. False: another worker claimed it first."""
    size = settings.GATEWAY_RUN_SHARD_CUSTOMERS
    source = run.source
    if size <= 0:
        return None
    planned = _planned_shards(run, size)
    if planned is None:
        return None
    now = timezone.now()
    with transaction.atomic():
        claimed = ExtractionRun.objects.filter(pk=run.pk, status=ExtractionRun.Status.QUEUED,
                                               sharded=False).update(
            status=ExtractionRun.Status.RUNNING, sharded=True, started_at=now, heartbeat_at=now,
            finished_at=None, attempts=F("attempts") + 1, progress=0.0)
        if not claimed:
            return False
        for shard in planned:
            shard.queued_at = now
        shards = RunShard.objects.bulk_create(planned)
        for shard in shards:
            enqueue_shard(shard.pk)
    log.info("extraction run %s of %s: %s customers in %s shards%s", run.pk, source.slug,
             sum(s.customers for s in shards), len(shards), " by identity hash" if shards[0].hash_of else "")
    return True


def enqueue_shard(shard_id: int) -> None:
    outbox.enqueue(task="restitution.tasks.run_extraction_shard", args=[shard_id])


def execute_shard(*, shard_id: int) -> RunOutcome:
    """Claim and perform one queued shard of a sharded run (the same rules as a run: one
    worker at a time, the source's caps, retries, recovery)."""
    shard = RunShard.objects.select_related("run__source").filter(pk=shard_id).first()
    if shard is None or shard.status not in ACTIVE:
        return RunOutcome("done")
    if shard.status == RunShard.Status.RUNNING:
        return RunOutcome("running-elsewhere")
    run = shard.run
    if run.status != ExtractionRun.Status.RUNNING:  # the run failed through another shard
        RunShard.objects.filter(pk=shard.pk, status=RunShard.Status.QUEUED).update(
            status=RunShard.Status.FAILED, error="not performed: the run had already failed",
            finished_at=timezone.now())
        return RunOutcome("done")
    source = run.source
    gate = get_gate()
    token = _shard_token(shard.pk)
    if not gate.acquire(source.slug, token, source.max_concurrent_runs):
        return RunOutcome("waiting-for-source", retry_in=GATE_RETRY_SECONDS * random.uniform(0.5, 1.5))
    try:
        now = timezone.now()
        if not _claim(RunShard, shard.pk, now):
            return RunOutcome("claimed-elsewhere")
        shard.refresh_from_db()
        return _perform(_Unit(run, shard))
    finally:
        try:
            gate.release(source.slug, token)
        except RedisError:
            pass


_RUN_COUNTERS = ("read", "created", "updated", "unchanged", "deleted", "rejected", "skipped")


def _shard_sums(run_id: int) -> dict[str, Any]:
    """A sharded run's counters (the sums of its shards') and progress (their average), read in
    one aggregate query."""
    sums = RunShard.objects.filter(run_id=run_id).aggregate(
        **{name: Coalesce(Sum(name), 0) for name in _RUN_COUNTERS}, progress=Coalesce(Avg("progress"), 0.0))
    return sums


def _aggregate_run(run_id: int, **extra: Any) -> None:
    """Write a sharded run's counters from its shards, with a heartbeat."""
    sums = _shard_sums(run_id)
    sums["progress"] = min(sums["progress"], 0.99)
    ExtractionRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now(), **sums, **extra)


def _conclude_sharded_run(run_id: int) -> None:
    """Once every shard succeeded: the whole-run step (tombstones of customers that vanished
    from the source entirely), then the run's success, with its event. Runs once: the run row
    is locked, and the step is idempotent should the worker die half-way."""
    with transaction.atomic():
        run = ExtractionRun.objects.select_for_update().select_related("source").filter(
            pk=run_id, status=ExtractionRun.Status.RUNNING).first()
        if run is None or RunShard.objects.filter(run_id=run_id).exclude(
                status=RunShard.Status.SUCCEEDED).exists():
            return
        vanished = _tombstone_vanished_customers(run)
        sums = _shard_sums(run_id)
        sums["deleted"] += vanished
        ExtractionRun.objects.filter(pk=run_id).update(
            status=ExtractionRun.Status.SUCCEEDED, progress=1.0, finished_at=timezone.now(),
            heartbeat_at=timezone.now(), error="", **{k: v for k, v in sums.items() if k != "progress"})
        run.refresh_from_db()
        if run.created or run.updated or run.deleted:
            events.publish(events.RUN_CHANGED_DATA, subject_id=run.pk)
    log.info("sharded extraction run %s of %s succeeded: %s (of which %s tombstones of vanished "
             "customers)", run.pk, run.source.slug,
             ", ".join(f"{name}={getattr(run, name)}" for name in _RUN_COUNTERS), vanished)


def _tombstone_vanished_customers(run: ExtractionRun) -> int:
    """Tombstone this source's live records of customers no longer known to its identity
    system: no shard covered them (shards are ranges of the identities that exist)."""
    source = run.source
    known = LegacyIdentity.objects.filter(system=source.identity_system).values("customer_id")
    deleted = 0
    for dataset in source.datasets.order_by("slug"):
        gone = (Record.objects.filter(dataset=dataset, source=source, deleted=False)
                .exclude(customer_id__in=known).order_by().values_list("customer_id", flat=True).distinct())
        customers = list(gone)
        if not customers:
            continue
        writer = store.SnapshotWriter(dataset_id=dataset.pk, source_id=source.pk)
        for customer_id in customers:
            writer.include(customer_id)  # nothing seen: every live record of theirs goes
        deleted += writer.finish(all_customers=False).deleted
    return deleted


# --- Performing a run or a shard ------------------------------------------------------------------

def _perform(unit: _Unit) -> RunOutcome:
    run = unit.run
    source = run.source
    started = time.monotonic()
    progress = _Progress(unit)
    adapter: SourceAdapter | None = None
    try:
        if not source.enabled:
            raise SourceError("the source is disabled", permanent=True)
        limiter = SourceRateLimiter(source.slug, source.max_requests_per_second)
        adapter = adapter_class(source.kind)(
            options=source.options, connection=connection_from_env(source.connection_env),
            limiter=limiter,
        )
        datasets = _datasets(source.pk)
        identities = _identities(unit)  # once per run, whatever its number of datasets
        for index, dataset in enumerate(datasets):
            _extract_dataset(unit, adapter, dataset, progress, index, len(datasets), identities)
        if unit.shard is not None:
            progress.finish()
            RunShard.objects.filter(pk=unit.pk).update(
                status=RunShard.Status.SUCCEEDED, progress=1.0, finished_at=timezone.now(),
                heartbeat_at=timezone.now(), error="")
            log.info("extraction %s of %s succeeded in %.1fs: %s", unit.label, source.slug,
                     time.monotonic() - started, progress.summary())
            _conclude_sharded_run(run.pk)
            return RunOutcome("succeeded")
        progress.flush_rejects()
        changed = any(progress.values[name] for name in ("created", "updated", "deleted"))
        # The last counters go with the success, in one statement; the event is committed with
        # it, or neither (a transaction only when there is an event).
        with transaction.atomic() if changed else nullcontext():
            _succeed(run.pk, progress.values)
            if changed:
                events.publish(events.RUN_CHANGED_DATA, subject_id=run.pk)
        log.info("extraction run %s of %s succeeded in %.1fs: %s", run.pk, source.slug,
                 time.monotonic() - started, progress.summary())
        return RunOutcome("succeeded")
    except SourceError as exc:
        progress.finish()
        attempts = unit.model.objects.values_list("attempts", flat=True).get(pk=unit.pk)
        if not exc.permanent and attempts < MAX_ATTEMPTS:
            unit.rows().update(status=ExtractionRun.Status.QUEUED, error=f"attempt {attempts}: {exc}",
                               queued_at=timezone.now())
            log.warning("extraction %s of %s: transient failure, will retry: %s",
                        unit.label, source.slug, exc)
            return RunOutcome("retry", retry_in=_backoff(attempts))
        _fail(unit, str(exc))
        return RunOutcome("failed")
    except RedisError as exc:
        # Redis (the broker, and the source caps that live in it) went away mid-run. The run goes
        # back to the queue through the outbox, so it resumes once Redis is back.
        log.warning("extraction %s of %s: Redis unavailable (%s), queued again",
                    unit.label, source.slug, type(exc).__name__)
        unit.rows().filter(status=ExtractionRun.Status.RUNNING).update(
            status=ExtractionRun.Status.QUEUED, error="Redis unavailable; queued again",
            queued_at=timezone.now())
        _enqueue(unit)
        return RunOutcome("requeued")
    except (OperationalError, InterfaceError) as exc:
        # The gateway's own database went away (a restart, a failover). Writes are upserts, so
        # nothing is lost: the run goes back to the queue as soon as the database answers.
        log.warning("extraction %s of %s: database unavailable (%s), will retry",
                    unit.label, source.slug, type(exc).__name__)
        return _requeue_after_database_error(unit)
    except Exception as exc:
        # An unexpected failure is a bug or bad configuration: fail the run, keep the trace in
        # the worker's log, and never leave the run looking as if it were still running.
        log.exception("extraction %s of %s failed", unit.label, source.slug)
        progress.finish()
        _fail(unit, f"{type(exc).__name__}: {exc}")
        return RunOutcome("failed")
    finally:
        if adapter is not None:
            adapter.close()


def _succeed(run_id: int, counters: dict[str, int]) -> None:
    """An unsharded run's success with its last counters, in one plain statement."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    columns = "".join(f', "{name}" = %s' for name in _RUN_COUNTERS)
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{ExtractionRun._meta.db_table}" SET status = %s, progress = 1, finished_at = %s, '  # noqa: S608
            f"heartbeat_at = %s, error = ''{columns} WHERE id = %s",
            [ExtractionRun.Status.SUCCEEDED.value, now, now, *(counters[name] for name in _RUN_COUNTERS), run_id])


def _enqueue(unit: _Unit) -> None:
    if unit.shard is None:
        enqueue_run(unit.pk)
    else:
        enqueue_shard(unit.pk)


def _requeue_after_database_error(unit: _Unit, *, patience: float = 30.0) -> RunOutcome:
    """Put a run interrupted by a database outage back in the queue, waiting up to `patience`
    seconds for the database; if it stays away, the error propagates (the task retries, and
    stalled-run recovery re-queues the run later)."""
    deadline = time.monotonic() + patience
    while True:
        connection.close()  # the broken connection; the next query opens a new one
        try:
            unit.rows().filter(status=ExtractionRun.Status.RUNNING).update(
                status=ExtractionRun.Status.QUEUED, error="database unavailable; queued again",
                queued_at=timezone.now())
            return RunOutcome("retry", retry_in=_backoff(1))
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _fail(unit: _Unit, message: str) -> None:
    """A run fails; a shard fails with its run, which names the shard (the other shards that
    have not started are not performed)."""
    now = timezone.now()
    with transaction.atomic():
        unit.rows().update(status=ExtractionRun.Status.FAILED, error=message[:2000], finished_at=now)
        if unit.shard is not None:
            _aggregate_run(unit.run.pk)
            ExtractionRun.objects.filter(pk=unit.run.pk, status=ExtractionRun.Status.RUNNING).update(
                status=ExtractionRun.Status.FAILED, finished_at=now,
                error=f"shard {unit.shard.number}: {message}"[:2000])
            RunShard.objects.filter(run_id=unit.run.pk, status=RunShard.Status.QUEUED).update(
                status=RunShard.Status.FAILED, finished_at=now,
                error=f"not performed: shard {unit.shard.number} failed")
    log.error("extraction %s of %s failed: %s", unit.label, unit.run.source.slug, message)


class _Progress:
    """Counters of a run or shard, written to its row (with a heartbeat) at most once a second;
    a shard's run gets the sums of its shards' at the same time."""

    COUNTERS = _RUN_COUNTERS

    def __init__(self, unit: _Unit) -> None:
        self.unit = unit
        self.run = unit.run
        self.values = dict.fromkeys(self.COUNTERS, 0)
        self.fraction = 0.0
        self._rejects: list[RejectedRow] = []
        self._last = time.monotonic()  # the claim just wrote the heartbeat

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
            self.flush_rejects()
        self.tick()

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= HEARTBEAT_SECONDS:
            self._last = now
            self.flush_rejects()
            self.unit.rows().update(
                heartbeat_at=timezone.now(), progress=min(self.fraction, 0.99), **self.values
            )
            if self.unit.shard is not None:
                _aggregate_run(self.run.pk)
            get_gate().refresh(self.run.source.slug, self.unit.token,
                               self.run.source.max_concurrent_runs)

    def flush_rejects(self) -> None:
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


def _datasets(source_id: int) -> list[Dataset]:
    """The source's datasets, by slug, in one plain query (its many-to-many table joined)."""
    through = Source.datasets.through._meta
    table = Dataset._meta.db_table
    return list(Dataset.objects.raw(
        f'SELECT d.* FROM "{table}" d JOIN "{through.db_table}" t ON t.dataset_id = d.id '  # noqa: S608
        "WHERE t.source_id = %s ORDER BY d.slug", [source_id]))


def _identities(unit: _Unit) -> dict[str, int]:
    """Legacy identity value → customer id, for this run's source (one customer, a shard's
    range, or all)."""
    run = unit.run
    if run.customer_id is not None and unit.shard is None:
        # A consent's run: the customer's identities in one plain query.
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT value, customer_id FROM "{LegacyIdentity._meta.db_table}" '  # noqa: S608
                           "WHERE system = %s AND customer_id = %s", [run.source.identity_system, run.customer_id])
            return dict(cursor.fetchall())
    qs = LegacyIdentity.objects.filter(system=run.source.identity_system)
    shard = unit.shard
    if shard is not None and shard.hash_of:
        hashed = RawSQL(f"{IDENTITY_HASH_SQL.format(column='value')} %% %s",  # noqa: S611 - constant SQL
                        [shard.hash_of])  # the shard count is a bound parameter
        qs = qs.alias(part=hashed).filter(part=shard.number - 1)
    elif shard is not None:
        if shard.key_after is not None:
            qs = qs.filter(value__gt=shard.key_after)
        if shard.key_upto is not None:
            qs = qs.filter(value__lte=shard.key_upto)
    return dict(qs.values_list("value", "customer_id"))


def _hash_part(shard: RunShard) -> Callable[[str | None], bool]:
    """Whether a row whose customer key is this belongs to the shard by hash: its identity's
    hash modulo the shard count is the shard's; a row that names no customer is the first
    shard's. So every row of a full read is read for exactly one shard."""
    count, remainder = shard.hash_of, shard.number - 1
    last_owner: str | None = None  # rows come grouped by customer: one hash per group
    last_verdict = remainder == 0

    def mine(owner: str | None) -> bool:
        nonlocal last_owner, last_verdict
        if owner is None:
            return remainder == 0
        if owner != last_owner:
            last_owner, last_verdict = owner, identity_hash(owner) % count == remainder
        return last_verdict
    return mine


def _compiled_mapping(spec: Any, schema: dict[str, Any]) -> CompiledMapping:
    """The compiled mapping of a dataset, compiled once per process and per content (a source's
    mapping edited in the admin compiles anew: the key is the mapping itself)."""
    key = json.dumps([spec, schema], sort_keys=True, default=str)
    mapping = _MAPPINGS.get(key)
    if mapping is None:
        mapping = compile_mapping(spec, schema)
        if len(_MAPPINGS) >= 64:
            _MAPPINGS.pop(next(iter(_MAPPINGS)))
        _MAPPINGS[key] = mapping
    return mapping


_MAPPINGS: dict[str, CompiledMapping] = {}

#: Part of every source digest: change it when what a mapping or the validation makes of a row
#: changes in code, so that stored digests stop matching and rows are mapped again.
SOURCE_DIGEST_VERSION = "2"
#: A batch run or shard holds the records in its scope (source digest, key, date: about 150
#: bytes each) only up to this many; beyond, it maps every row and scans for tombstones at the end.
STORED_SCOPE_LIMIT = 2_000_000


def _mapping_fingerprint(spec: Any, dataset: Dataset) -> bytes:
    """What, besides the row, decides a record: the mapping, the dataset's schema, natural key,
    date field and day zone, and the code's version of all that."""
    text = json.dumps([SOURCE_DIGEST_VERSION, spec, dataset.schema, dataset.natural_key,
                       dataset.date_field, dataset.day_zone], sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def source_digest(fingerprint: bytes, values: dict[str, Any]) -> bytes | None:
    """The digest of a legacy row's values (their names, order, types and values: `repr` of
    str, int, Decimal, date, None… is the same in every process), keyed by a mapping fingerprint.
    None for a row with a fetched file: its document is written with the record."""
    if Attachment in map(type, values.values()):
        return None
    return hashlib.blake2b(repr(values).encode("utf-8", "backslashreplace"), digest_size=16,
                           key=fingerprint).digest()


def _extract_dataset(unit: _Unit, adapter: SourceAdapter, dataset: Dataset,
                     progress: _Progress, index: int, total: int, identities: dict[str, int]) -> None:
    run = unit.run
    source = run.source
    if dataset.slug not in source.mappings:
        raise SourceError(f"no mapping for dataset {dataset.slug}", permanent=True)
    try:
        mapping = _compiled_mapping(source.mappings[dataset.slug], dataset.schema)
    except ValueError as exc:
        raise SourceError(f"mapping of {dataset.slug} is invalid: {exc}", permanent=True) from None
    pipeline = _DatasetPipeline(run, dataset, mapping, progress, identities)
    if connection.vendor == "postgresql":
        if mapping.row_by_row:
            pipeline.fingerprint = _mapping_fingerprint(source.mappings[dataset.slug], dataset)
        if run.customer_id is None:
            # A batch run reads its scope's stored records once, first: a row read again,
            # unchanged, is known by its digest and not mapped, and the records not seen by the
            # end are the tombstones (no second scan). A per-customer run reads a few rows:
            # looking their digests up would cost more than it saves.
            scope = None if unit.shard is None else list(identities.values())
            pipeline.scope = store.stored_scope(dataset.pk, source.pk, scope, STORED_SCOPE_LIMIT)
    progress.fraction = index / total
    if unit.shard is not None and unit.shard.hash_of:
        # A shard by hash (a file source): every file read, only its customers' rows kept; only
        # their records may become tombstones.
        for customer_id in identities.values():
            pipeline.writer.include(customer_id)
        mine = _hash_part(unit.shard)
        pipeline.consume_part(adapter.read_part(dataset.slug, customer_field=mapping.customer_field,
                                                keep=mine), mine)
    elif unit.shard is not None:
        # A shard: its customers, read together; only their records may become tombstones.
        keys = sorted(identities)
        for key in keys:
            pipeline.writer.include(identities[key])
        pipeline.consume_pairs(adapter.read_customers(dataset.slug, customer_keys=keys,
                                                      customer_field=mapping.customer_field))
    elif run.customer_id is None and adapter.supports_full_scan:
        pipeline.consume(adapter.read(dataset.slug, customer_key=None,
                                      customer_field=mapping.customer_field), expected_key=None)
    else:
        keys = sorted(identities)
        for position, key in enumerate(keys):
            progress.fraction = (index + position / max(1, len(keys))) / total
            pipeline.consume(adapter.read(dataset.slug, customer_key=key,
                                          customer_field=mapping.customer_field), expected_key=key)
    # The read is complete: only now may records that were not seen become tombstones.
    pipeline.finish(all_customers=run.customer_id is None and unit.shard is None)



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
        # Source digests (row-by-row mappings on PostgreSQL): written with each record; those of
        # the stored records in scope, when a batch run holds them: digest → (customer, key).
        self.fingerprint: bytes | None = None
        self.scope: store.StoredScope | None = None
        # Interval data: rows are readings folded into day blocks (mapping "group" section).
        self.blocks = mapping.blocks()
        if self.blocks is not None:
            self.validate_reading = record_validator(
                dataset.schema.get("properties", {}).get("readings", {}).get("items", {}))

    def consume_pairs(self, pairs: Iterable[tuple[str | None, RawRow]]) -> None:
        """Rows each with the customer key their read was for (None: several customers')."""
        for expected_key, row in _guarded(pairs):
            self.progress.values["read"] += 1
            self._one(row, expected_key)
            self.progress.tick()

    def consume_part(self, rows: Iterable[RawRow], mine: Callable[[str | None], bool]) -> None:
        """The rows of a full read that belong to this shard by hash (whose customer key, or
        the one an unreadable row could still name, `mine` accepts); the others are another
        shard's and not counted here."""
        customer_key = self.mapping.customer_key
        for row in _guarded(rows):
            if mine(row.extra.get("customer") if row.error else customer_key(row.values)):
                self.progress.values["read"] += 1
                self._one(row, None)
            self.progress.tick()  # the heartbeat goes on through other shards' rows too
        if self.blocks is not None:
            self._store_blocks(self.blocks.drain())

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
        digest = None
        if self.fingerprint is not None:
            digest = source_digest(self.fingerprint, row.values)
            hit = None if digest is None or self.scope is None else self.scope.digests.get(digest)
            if hit is not None and hit[0] == customer_id and writer.seen_at(customer_id, hit[1]) is None:
                # The very row its stored record was mapped from, under the same mapping:
                # the same record (a repeated row still goes the full way: a duplicate).
                writer.keep(customer_id, hit[1], row.locator)
                return
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
        self._store(customer_id, data, row.values, row.locator, attachments, digest)

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
               attachments: list[Attachment], digest: bytes | None = None) -> None:
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
                   record_at=store.parse_record_date(data.get(self.dataset.date_field), self.dataset.day_zone),
                   source_digest=digest)

    def finish(self, *, all_customers: bool) -> None:
        if self.blocks is not None:
            self._store_blocks(self.blocks.drain())
        counts = self.writer.finish(all_customers=all_customers,
                                    candidates=None if self.scope is None else self.scope.live)
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
