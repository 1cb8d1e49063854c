"""Deliveries: connect and disconnect destinations, queue pushes, push the changes since the
last delivered change sequence, record every attempt and every delivery as an access event.

A delivery is a row before it is work and is claimed with an atomic conditional UPDATE; what
it writes has stable names, so a retried or repeated delivery never duplicates anything.
This module never reads a legacy system and never logs credentials or record contents.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from restitution import audit, crypto, outbox, portability
from restitution.consent import DURATIONS, ConsentError
from restitution.models import AccessEvent, Customer, Dataset, Document, ExtractionRun, Grant, Record

from .base import Change, File, Transport
from .http import DeliveryError, retry_delay
from .models import Delivery, DeliveryAttempt, Destination
from .registry import transport_class

log = logging.getLogger(__name__)

#: Changes read from the feed per page (and written before the delivered sequence advances).
PAGE_SIZE = 200
ACTIVE = (Delivery.Status.QUEUED, Delivery.Status.RUNNING)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What the task should do next: nothing, or try again after `retry_in` seconds."""

    status: str
    retry_in: float | None = None


# --- Connections --------------------------------------------------------------------------------

def connect_destination(*, customer: Customer, kind: str, label: str, settings_: dict[str, Any],
                        credentials: dict[str, Any], datasets: list[Dataset], duration: str,
                        window_start: date | None = None, window_end: date | None = None,
                        pending_authorization: bool = False,
                        request: HttpRequest | None = None) -> Destination:
    """Record the customer's consent to push some datasets to a store of theirs, and queue the
    first (full) delivery unless the store still has to authorize the gateway."""
    transport_class(kind)  # a kind the registry does not hold is a ValueError before anything is written
    if not datasets:
        raise ConsentError(_("choose at least one dataset"))
    if duration not in DURATIONS:
        raise ConsentError(f"unknown duration {duration!r}")
    if window_start and window_end and window_start > window_end:
        raise ConsentError(_("the start of the period is after its end"))
    now = timezone.now()
    with transaction.atomic():
        destination = Destination.objects.create(
            receipt_id=uuid.uuid4(), customer=customer, kind=kind, label=label[:200], settings=settings_,
            credentials=crypto.encrypt_json(credentials) if credentials else "", window_start=window_start,
            window_end=window_end, duration=duration, created_at=now, expires_at=now + DURATIONS[duration],
            pending_authorization=pending_authorization,
        )
        destination.datasets.set(datasets)
        audit.record_event(kind=AccessEvent.Kind.GRANT_CREATED, customer=customer, request=request,
                           detail=_event_detail(destination, datasets=[d.slug for d in datasets],
                                                duration=duration))
        if not pending_authorization:
            queue_delivery(destination=destination, trigger="connected")
    return destination


def authorize_destination(*, destination: Destination, credentials: dict[str, Any],
                          settings_: dict[str, Any] | None = None) -> Destination:
    """The store authorized the gateway (a token came back): keep it, start delivering."""
    with transaction.atomic():
        destination.credentials = crypto.encrypt_json(credentials)
        destination.pending_authorization = False
        if settings_:
            destination.settings = {**destination.settings, **settings_}
        destination.save(update_fields=["credentials", "pending_authorization", "settings"])
        queue_delivery(destination=destination, trigger="connected")
    return destination


def replace_credentials(*, destination: Destination, credentials: dict[str, Any]) -> Delivery | None:
    """The customer gave new credentials (already checked against the store): keep them and
    resume from the delivered sequence — nothing already delivered is sent again."""
    with transaction.atomic():
        Destination.objects.filter(pk=destination.pk).update(credentials=crypto.encrypt_json(credentials))
        return queue_delivery(destination=destination, trigger="new-credentials")


def disconnect_destination(*, destination: Destination, reason: str = "disconnected by the customer",
                           request: HttpRequest | None = None) -> None:
    """Stop pushing at once and forget the credentials; the connection stays visible as history."""
    with transaction.atomic():
        if destination.revoked_at is not None:
            return
        destination.revoked_at = timezone.now()
        destination.revoked_reason = reason[:200]
        destination.credentials = ""
        destination.save(update_fields=["revoked_at", "revoked_reason", "credentials"])
        Delivery.objects.filter(destination=destination, status=Delivery.Status.QUEUED).update(
            status=Delivery.Status.FAILED, finished_at=timezone.now(), error="destination disconnected")
        audit.record_event(kind=AccessEvent.Kind.GRANT_REVOKED, customer=destination.customer,
                           request=request, detail=_event_detail(destination, reason=reason))


def expire_due_destinations(*, now: datetime | None = None) -> int:
    """Scheduled: a destination past its expiry loses its credentials (the gateway keeps no
    access it may no longer use), its queued deliveries are cancelled, and the customer sees
    it expire — once per destination."""
    now = now or timezone.now()
    count = 0
    for destination in Destination.objects.filter(expires_at__lte=now, revoked_at__isnull=True).exclude(
            credentials="").select_related("customer"):
        with transaction.atomic():
            Destination.objects.filter(pk=destination.pk).update(credentials="")
            Delivery.objects.filter(destination=destination, status=Delivery.Status.QUEUED).update(
                status=Delivery.Status.FAILED, finished_at=now, error="destination expired")
            audit.record_event(kind=AccessEvent.Kind.GRANT_EXPIRED, customer=destination.customer,
                               detail=_event_detail(destination))
        count += 1
    return count


def _event_detail(destination: Destination, **extra: Any) -> dict[str, Any]:
    return {"destination": destination.label, "destination_kind": destination.kind,
            "destination_id": str(destination.receipt_id), **extra}


def rotate_credentials() -> int:
    """Re-encrypt every stored credential with the newest key (after adding a key)."""
    count = 0
    for destination in Destination.objects.exclude(credentials="").only("pk", "credentials"):
        Destination.objects.filter(pk=destination.pk).update(credentials=crypto.rotate(destination.credentials))
        count += 1
    return count


# --- Queueing -----------------------------------------------------------------------------------

def has_pending_changes(*, destination: Destination) -> bool:
    return Record.objects.filter(customer_id=destination.customer_id, seq__gt=destination.delivered_seq,
                                 dataset__in=destination.datasets.all()).exists()


#: Triggers that are the customer acting (connecting, authorizing again, “Try again”): they lift a
#: block left by a permanent failure. Any other trigger (an extraction) queues nothing while blocked.
CUSTOMER_TRIGGERS = frozenset({"connected", "retry", "new-credentials"})


def queue_delivery(*, destination: Destination, trigger: str = "extraction") -> Delivery | None:
    """A delivery of the destination's pending changes; the one already queued if there is one.
    None when the destination is not active, or when a permanent failure blocked it and the
    trigger is not the customer acting (the next extraction must not queue another doomed try)."""
    with transaction.atomic():
        destination = Destination.objects.select_for_update().get(pk=destination.pk)
        if not destination.is_active():
            return None
        if destination.blocked_at is not None:
            if trigger not in CUSTOMER_TRIGGERS:
                return None
            Destination.objects.filter(pk=destination.pk).update(blocked_at=None)
        queued = Delivery.objects.filter(destination=destination, status=Delivery.Status.QUEUED).first()
        if queued is not None:
            if queued.retry_at is not None and (trigger in CUSTOMER_TRIGGERS or queued.retry_at <= timezone.now()):
                # The customer acts (“Try again”), or the backoff step is over and nothing ran it
                # (no worker waits on it: the embedded shape): one attempt now.
                Delivery.objects.filter(pk=queued.pk).update(retry_at=None)
                _enqueue_on_commit(queued.pk)
            return queued
        delivery = Delivery.objects.create(destination=destination, trigger=trigger,
                                           from_seq=destination.delivered_seq)
        _enqueue_on_commit(delivery.pk)
    return delivery


def retry_delivery(*, delivery: Delivery) -> Delivery | None:
    """The customer's “Try again” after a failure: a new delivery from where the last one stopped."""
    return queue_delivery(destination=delivery.destination, trigger="retry")


def _enqueue_on_commit(delivery_id: int) -> None:
    """Through the outbox: committed with the delivery row, so a broker outage loses no push."""
    outbox.enqueue(task="connectors_out.tasks.deliver", args=[delivery_id])


def changed_customers(*, run: ExtractionRun) -> list[int]:
    """Customers whose records a finished run created, changed or deleted."""
    if not (run.created or run.updated or run.deleted):
        return []
    if run.customer_id is not None:
        return [run.customer_id]
    return list(Record.objects.filter(source_id=run.source_id, extracted_at__gte=run.started_at)
                .values_list("customer_id", flat=True).distinct())


def after_extraction(*, run_id: int) -> None:
    """After an extraction run changed data (the RUN_CHANGED_DATA event): queue a delivery to each
    active destination with pending changes. Never raises: the run has succeeded whatever happens
    here (the next run queues again what failed to queue)."""
    try:
        run = ExtractionRun.objects.get(pk=run_id)
        customers = changed_customers(run=run)
        if not customers:
            return
        now = timezone.now()
        destinations = Destination.objects.filter(customer_id__in=customers, revoked_at__isnull=True,
                                                  pending_authorization=False, expires_at__gt=now,
                                                  blocked_at__isnull=True)
        for destination in destinations:
            if has_pending_changes(destination=destination):
                queue_delivery(destination=destination, trigger="extraction")
    except Exception:
        log.exception("queueing deliveries after extraction run %s failed", run_id)


# --- Executing ----------------------------------------------------------------------------------

def execute_delivery(*, delivery_id: int) -> DeliveryOutcome:
    """Claim one queued delivery, push its changes, record the attempt; say what to do next."""
    delivery = Delivery.objects.select_related("destination__customer").filter(pk=delivery_id).first()
    if delivery is not None and delivery.status == Delivery.Status.RUNNING:
        _release_if_orphaned(delivery)
    if delivery is None or delivery.status != Delivery.Status.QUEUED:
        return DeliveryOutcome("done")
    destination = delivery.destination
    now = timezone.now()
    if delivery.retry_at is not None and delivery.retry_at > now and destination.is_active():
        # Too early for the next attempt (an eager re-run, a duplicated or early message): none now.
        return DeliveryOutcome("waiting", retry_in=(delivery.retry_at - now).total_seconds())
    if not destination.is_active():
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.QUEUED).update(
            status=Delivery.Status.FAILED, finished_at=now, error=f"destination {destination.status()}")
        return DeliveryOutcome("cancelled")
    claimed = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.RUNNING, started_at=delivery.started_at or now, attempts=F("attempts") + 1,
        retry_at=None)
    if not claimed:
        return DeliveryOutcome("claimed-elsewhere")
    delivery.refresh_from_db()
    attempt = DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempts, started_at=now)
    started = time.monotonic()
    transport: Transport | None = None
    try:
        transport = transport_class(destination.kind)(
            settings=destination.settings, credentials=crypto.decrypt_json(destination.credentials))
        _push(delivery, destination, transport)
    except DeliveryError as exc:
        return _failed_attempt(delivery, attempt, started, exc)
    except Exception as exc:
        # A bug or a misconfiguration: fail the delivery, keep the trace in the worker's log.
        log.exception("delivery %s to a %s destination failed", delivery.pk, destination.kind)
        return _failed_attempt(delivery, attempt, started,
                               DeliveryError(f"{type(exc).__name__}", permanent=True))
    finally:
        if transport is not None:
            _save_renewed_credentials(destination, transport)
            transport.close()
    _finish_attempt(attempt, started, DeliveryAttempt.Outcome.SUCCEEDED)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SUCCEEDED, finished_at=timezone.now(),
                                                   error="", advice="")
    delivery.refresh_from_db()
    _record_delivery_events(delivery)
    if destination.duration == Grant.Duration.ONE_TIME:
        disconnect_destination(destination=destination, reason="one-time delivery complete")
    # Changes that arrived while this delivery ran go out in the next one.
    elif has_pending_changes(destination=Destination.objects.get(pk=destination.pk)):
        queue_delivery(destination=destination, trigger="extraction")
    return DeliveryOutcome("succeeded")


def sweep_deliveries(*, now: datetime | None = None) -> int:
    """Scheduled: send again the deliveries whose broker message was lost. A running delivery
    whose worker died (its last attempt older than the task's hard time limit, never finished)
    goes back to the queue; a queued delivery neither queued nor tried for
    `CONNECTORS_SWEEP_AFTER_SECONDS` gets a new message (its `queued_at` becomes now, so it is
    sent at most once per period). A message that was not lost after all is harmless: the first
    worker to claim the delivery runs it, the other finds it claimed. Returns how many were sent."""
    now = now or timezone.now()
    sent: list[int] = []
    for delivery in Delivery.objects.filter(status=Delivery.Status.RUNNING):
        _release_if_orphaned(delivery)
        if delivery.status == Delivery.Status.QUEUED:
            sent.append(delivery.pk)
    stale = now - timedelta(seconds=settings.CONNECTORS_SWEEP_AFTER_SECONDS)
    for delivery in Delivery.objects.filter(status=Delivery.Status.QUEUED, queued_at__lt=stale).exclude(
            pk__in=sent).exclude(attempt_rows__started_at__gte=stale):
        sent.append(delivery.pk)
    for delivery_id in sent:
        with transaction.atomic():
            if Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.QUEUED).update(queued_at=now):
                _enqueue_on_commit(delivery_id)
                log.info("delivery %s sent again by the sweep", delivery_id)
    return len(sent)


def _release_if_orphaned(delivery: Delivery) -> None:
    """A message redelivered for a delivery still marked running: its worker died (the broker
    redelivers only after the visibility timeout, beyond the task's hard time limit). Put it back
    in the queue; what it had written is rewritten under the same names."""
    stale = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    last = delivery.attempt_rows.order_by("-number").first()
    if last is not None and last.started_at < stale and not last.outcome:
        DeliveryAttempt.objects.filter(pk=last.pk).update(outcome=DeliveryAttempt.Outcome.TRANSIENT,
                                                          error="the worker stopped during the attempt")
        if Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.RUNNING).update(
                status=Delivery.Status.QUEUED):
            delivery.status = Delivery.Status.QUEUED


def _push(delivery: Delivery, destination: Destination, transport: Transport) -> None:
    """Write every change after the delivered sequence, page by page; after each page the
    destination's delivered sequence advances, so a retry resumes there (re-writing at most
    one page, under the same names)."""
    window = portability.request_window(destination, since_date=None, until_date=None)
    after = destination.delivered_seq
    while True:
        page = portability.change_page(destination, window, after=after, size=PAGE_SIZE)  # type: ignore[arg-type]
        changes = [Change.from_feed(item) for item in page.items]
        written = removed = files = 0
        documents = _documents_of(destination, changes)
        for change in changes:
            current, stale = _split_files(change, documents.get((change.dataset, change.key), []))
            for file in stale:  # an older version's file, or every file of a deleted record
                transport.delete_file(file)
            if change.deleted:
                transport.delete_record(change)
                removed += 1
            else:
                transport.put_record(change)
                written += 1
            for file in current:
                transport.put_file(file)
                files += 1
        if changes:
            with transaction.atomic():
                Destination.objects.filter(pk=destination.pk).update(delivered_seq=page.last_seq,
                                                                     delivered_at=timezone.now())
                Delivery.objects.filter(pk=delivery.pk).update(
                    to_seq=page.last_seq, written=F("written") + written, removed=F("removed") + removed,
                    files=F("files") + files)
        after = page.last_seq
        if page.next_after is None:
            break
    destination.delivered_seq = after


def _documents_of(destination: Destination, changes: list[Change]) -> dict[tuple[str, str], list[Document]]:
    """Every stored document of the page's records, current or not, by (dataset, key)."""
    found: dict[tuple[str, str], list[Document]] = {}
    if not changes:
        return found
    documents = (Document.objects.filter(customer_id=destination.customer_id,
                                         dataset__slug__in={c.dataset for c in changes},
                                         record_key__in={c.key for c in changes})
                 .select_related("dataset").order_by("pk"))
    for document in documents:
        found.setdefault((document.dataset.slug, document.record_key), []).append(document)
    return found


def named_documents(data: Any) -> set[str]:
    """The sha256 of every file a record's data names (the mapping's `attachment` references:
    objects with `filename` and `sha256`), wherever they sit in the record."""
    if isinstance(data, dict):
        names = {data["sha256"]} if isinstance(data.get("sha256"), str) and "filename" in data else set()
        for value in data.values():
            names |= named_documents(value)
        return names
    if isinstance(data, list):
        return set().union(*(named_documents(value) for value in data)) if data else set()
    return set()


def _split_files(change: Change, documents: list[Document]) -> tuple[list[File], list[File]]:
    """A record's files are the ones its current version names: those are written; every other
    stored document of the record (an older version's, or all of a deleted record's) is removed
    from the destination (already gone is fine)."""
    named = set() if change.deleted else named_documents(change.data)
    current, stale = [], []
    for document in documents:
        if document.sha256 in named:
            with document.file.open("rb") as handle:
                content = handle.read()
            current.append(_file(document, change, content))
        else:
            stale.append(_file(document, change, b""))
    return current, stale


def _file(document: Document, change: Change, content: bytes) -> File:
    return File(dataset=change.dataset, key=change.key, filename=document.filename,
                content_type=document.content_type, sha256=document.sha256, content=content, record=change)


def _finish_attempt(attempt: DeliveryAttempt, started: float, outcome: str, *,
                    status_code: int | None = None, error: str = "") -> None:
    attempt.duration_ms = int((time.monotonic() - started) * 1000)
    attempt.outcome = outcome
    attempt.status_code = status_code
    attempt.error = error[:2000]
    attempt.save(update_fields=["duration_ms", "outcome", "status_code", "error"])


def _failed_attempt(delivery: Delivery, attempt: DeliveryAttempt, started: float,
                    exc: DeliveryError) -> DeliveryOutcome:
    outcome = DeliveryAttempt.Outcome.PERMANENT if exc.permanent else DeliveryAttempt.Outcome.TRANSIENT
    _finish_attempt(attempt, started, outcome, status_code=exc.status_code, error=str(exc))
    if not exc.permanent and delivery.attempts < settings.CONNECTORS_MAX_ATTEMPTS:
        delay = retry_delay(delivery.attempts)
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.QUEUED,
                                                       error=f"attempt {delivery.attempts}: {exc}",
                                                       retry_at=timezone.now() + timedelta(seconds=delay))
        log.warning("delivery %s: transient failure, next attempt in %.0f s: %s", delivery.pk, delay, exc)
        return DeliveryOutcome("retry", retry_in=delay)
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, finished_at=timezone.now(),
                                                       error=str(exc)[:2000], advice=exc.advice)
        if exc.permanent:  # trying again cannot help until the customer acts
            Destination.objects.filter(pk=delivery.destination_id).update(blocked_at=timezone.now())
    log.warning("delivery %s failed: %s", delivery.pk, exc)
    delivery.refresh_from_db()
    if delivery.written or delivery.removed:  # some data did leave before the failure
        _record_delivery_events(delivery)
    return DeliveryOutcome("failed")


def _record_delivery_events(delivery: Delivery) -> None:
    """Every delivery that sent data is an access event the customer sees, with what it wrote
    and removed (a failure that sent nothing shows on the destinations page instead)."""
    destination = delivery.destination
    detail = _event_detail(destination, delivery=delivery.pk, status=delivery.status,
                           written=delivery.written, removed=delivery.removed, files=delivery.files)
    audit.record_event(kind=AccessEvent.Kind.DELIVERY, customer=destination.customer,
                       record_count=delivery.written + delivery.removed, detail=detail)


def _save_renewed_credentials(destination: Destination, transport: Transport) -> None:
    if transport.renewed_credentials is not None:
        Destination.objects.filter(pk=destination.pk, revoked_at__isnull=True).update(
            credentials=crypto.encrypt_json(transport.renewed_credentials))

