"""Requesting extraction runs and reading where they stand: what the views, the admin and the
consent need. The runs themselves are performed by workers (extraction.py, which uses the legacy
systems' adapters); this module never imports those adapters, so neither does any view.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from . import outbox
from .models import Customer, ExtractionRun, Source

ACTIVE = (ExtractionRun.Status.QUEUED, ExtractionRun.Status.RUNNING)
#: A customer's own "update my data" (dashboard or API) starts a new run of a source at most
#: this often: each click would otherwise cost the legacy system a full read of their data.
CUSTOMER_REFRESH_COOLDOWN = timedelta(minutes=5)


# --- Requesting runs --------------------------------------------------------------------------

def request_extraction(*, source: Source, customer: Customer | None = None,
                       trigger: str = ExtractionRun.Trigger.MANUAL) -> ExtractionRun:
    """Queue a run of `source` (for one customer, or all); reuse one already queued or running."""
    with transaction.atomic():
        active = _lock_source_and_find_active(source.pk, None if customer is None else customer.pk)
        if active is not None:
            return ExtractionRun.objects.get(pk=active)
        run = ExtractionRun.objects.create(source=source, customer=customer, trigger=trigger)
        enqueue_run(run.pk)
    return run


def _lock_source_and_find_active(source_id: int, customer_id: int | None) -> int | None:
    """Inside the caller's transaction: lock the source's row, so that two requests at once
    cannot both create a run, then the id of a run of it for this customer (or of a batch run)
    that is queued or running, the latest. Two plain statements: every consent's run passes
    here, and building them through the ORM cost more than the database answering them. The
    second statement sees what a request that held the lock before committed."""
    runs, sources = ExtractionRun._meta.db_table, Source._meta.db_table
    customer_test = "customer_id IS NULL" if customer_id is None else "customer_id = %s"
    with connection.cursor() as cursor:
        if connection.features.has_select_for_update:
            cursor.execute(f'SELECT 1 FROM "{sources}" WHERE id = %s FOR UPDATE', [source_id])  # noqa: S608
        cursor.execute(
            f'SELECT id FROM "{runs}" WHERE source_id = %s AND {customer_test} '  # noqa: S608
            "AND status IN (%s, %s) ORDER BY queued_at DESC LIMIT 1",
            [source_id, *([] if customer_id is None else [customer_id]), *(status.value for status in ACTIVE)])
        row = cursor.fetchone()
    return None if row is None else row[0]


def _customer_sources(customer: Customer) -> list[Source]:
    systems = set(customer.identities.values_list("system", flat=True))
    return list(Source.objects.filter(enabled=True, identity_system__in=systems).order_by("slug"))


def request_customer_extraction(*, customer: Customer,
                                trigger: str = ExtractionRun.Trigger.CUSTOMER) -> list[ExtractionRun]:
    """Queue a run of every enabled source that knows this customer."""
    return [request_extraction(source=source, customer=customer, trigger=trigger)
            for source in _customer_sources(customer)]


class RefreshTooSoon(Exception):
    """The customer asked for fresh data a moment ago: every source is in its cooldown."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("fresh data was asked for a moment ago")
        self.retry_after = retry_after

    @property
    def seconds(self) -> int:
        return max(1, int(self.retry_after.total_seconds() + 0.999))


def request_customer_refresh(*, customer: Customer, cooldown: timedelta = CUSTOMER_REFRESH_COOLDOWN,
                             now: datetime | None = None) -> list[ExtractionRun]:
    """The customer's "update my data" (the dashboard's button, the API's POST /extractions),
    bounded per customer and source: a source with a run queued or running gives that run (no new
    one); a source whose last run asked by the customer was queued less than `cooldown` ago is
    left alone. Raises RefreshTooSoon, with how long to wait, when every source is left alone."""
    now = now or timezone.now()
    sources = _customer_sources(customer)
    customer_runs = ExtractionRun.objects.filter(customer=customer, source__in=sources)
    active = set(customer_runs.filter(status__in=ACTIVE).values_list("source_id", flat=True))
    recent = dict(customer_runs.filter(trigger=ExtractionRun.Trigger.CUSTOMER, queued_at__gt=now - cooldown)
                  .values("source_id").annotate(last=Max("queued_at")).values_list("source_id", "last"))
    runs, waits = [], []
    for source in sources:
        if source.pk in recent and source.pk not in active:
            waits.append(recent[source.pk] + cooldown - now)
            continue
        runs.append(request_extraction(source=source, customer=customer, trigger=ExtractionRun.Trigger.CUSTOMER))
    if not runs and waits:
        raise RefreshTooSoon(min(waits))
    return runs


def retry_run(*, run: ExtractionRun) -> ExtractionRun:
    """Operator's retry: a new run of the same source and customer."""
    return request_extraction(source=run.source, customer=run.customer, trigger=ExtractionRun.Trigger.RETRY)


def enqueue_run(run_id: int) -> None:
    # Through the outbox: the message is committed with the run, so a broker outage loses nothing.
    outbox.enqueue(task="restitution.tasks.run_extraction", args=[run_id])


# --- Reading runs ------------------------------------------------------------------------------

def customer_freshness(*, customer: Customer) -> dict[str, datetime | None]:
    """Per dataset slug, when this customer's data was last extracted successfully (their own
    runs and batch runs over everyone both count)."""
    last_by_source = dict(
        ExtractionRun.objects.filter(status=ExtractionRun.Status.SUCCEEDED)
        .filter(Q(customer=customer) | Q(customer__isnull=True))
        .values("source_id").annotate(last=Max("finished_at")).values_list("source_id", "last")
    )
    result: dict[str, datetime | None] = {}
    for source in Source.objects.prefetch_related("datasets"):
        seen = last_by_source.get(source.pk)
        for dataset in source.datasets.all():
            current = result.get(dataset.slug)
            result[dataset.slug] = max(filter(None, (seen, current)), default=None)
    return result


def runs_in_progress(*, customer: Customer) -> tuple[list[ExtractionRun], float]:
    """The customer's queued or running runs, and how far they are together (0..1; 1 if none)."""
    runs = list(ExtractionRun.objects.filter(customer=customer, status__in=ACTIVE).select_related("source"))
    return runs, (sum(r.progress for r in runs) / len(runs) if runs else 1.0)
