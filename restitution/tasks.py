"""Celery tasks: thin wrappers that load ids and call the domain modules.

Tasks are queued after commit (extraction runs through the outbox, restitution/outbox.py), take
ids, and return quietly when the work is done.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import extraction
from .models import ExtractionRun, Source

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             max_retries=None, autoretry_for=(OperationalError, InterfaceError), retry_backoff=2,
             retry_backoff_max=60, retry_jitter=True)
def run_extraction(self, run_id: int) -> str:
    """Run one extraction run. Idempotent: the run row is claimed atomically, writes are upserts."""
    outcome = extraction.execute_run(run_id=run_id)
    if outcome.retry_in is not None:
        # Waiting for the source's concurrency cap or backing off after a transient failure;
        # the run row counts attempts, so Celery's own retry count is not the limit here.
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             max_retries=None, autoretry_for=(OperationalError, InterfaceError), retry_backoff=2,
             retry_backoff_max=60, retry_jitter=True)
def run_extraction_shard(self, shard_id: int) -> str:
    """Run one shard of a sharded batch run: claimed atomically like a run, writes are upserts."""
    outcome = extraction.execute_shard(shard_id=shard_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(ignore_result=True)
def extract_source(source_id: int) -> int | None:
    """Scheduled (beat): a batch run of one source over all its customers."""
    source = Source.objects.filter(pk=source_id, enabled=True).first()
    if source is None:
        return None
    run = extraction.request_extraction(source=source, trigger=ExtractionRun.Trigger.SCHEDULE)
    return run.pk


@shared_task(ignore_result=True)
def recover_stalled_runs(stale_after_seconds: int = 120) -> list[int]:
    """Scheduled (beat, every minute): re-queue runs whose worker died or whose message was lost."""
    return extraction.recover_stalled_runs(stale_after=timedelta(seconds=stale_after_seconds))


@shared_task(ignore_result=True)
def expire_grants() -> int:
    """Scheduled (beat, every minute): end the tokens of grants that reached their expiry."""
    from .consent import expire_due_grants

    return expire_due_grants()


@shared_task(ignore_result=True)
def apply_retention() -> dict:
    """Scheduled (beat, nightly): the retention purges of retention.py."""
    from dataclasses import asdict

    from .retention import apply_retention as apply

    return asdict(apply())


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def build_export(job_id: int) -> str:
    """Build one archive. Idempotent: the job row is claimed atomically; a done job is skipped."""
    from .exports import execute_export

    return execute_export(job_id=job_id)


@shared_task(ignore_result=True)
def purge_exports() -> dict[str, object]:
    """Scheduled (beat, hourly): delete archives past retention; re-send exports whose worker died."""
    from .exports import purge_expired_exports, requeue_stalled_exports

    return {"purged": purge_expired_exports(), "requeued": requeue_stalled_exports()}


@shared_task(ignore_result=True)
def relay_outbox() -> int:
    """Scheduled (beat, every 10 s): publish the task messages the broker could not take."""
    from . import outbox

    return outbox.relay()
