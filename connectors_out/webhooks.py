"""Signed webhooks to PIMS clients: `new-data` after an extraction changed granted data,
`grant-revoked` when a customer revokes. Each event is a row before it is sent, each try a
child row; transient failures (network, 5xx, 429) are retried with backoff and jitter.

Signature: the Standard Webhooks scheme (HMAC-SHA256 over id.timestamp.body, with a
per-client secret). Payloads carry no personal data: a pairwise subject, a grant id, dataset
slugs, a change sequence. This module never logs secrets or bodies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from restitution import consent, crypto, outbox
from restitution.models import ExtractionRun, Grant, PimsClient, Record

from .delivery import DeliveryOutcome
from .http import DeliveryError, http_client, retry_delay, send
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)


# --- Endpoints and secrets ----------------------------------------------------------------------

def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def register_endpoint(*, client: PimsClient, url: str) -> tuple[WebhookEndpoint, str]:
    """Set the client's webhook URL with a fresh secret; return the secret (shown once)."""
    secret = new_secret()
    endpoint, _ = WebhookEndpoint.objects.update_or_create(
        client=client, defaults={"url": url, "secret": crypto.encrypt(secret), "enabled": True})
    return endpoint, secret


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return crypto.decrypt(endpoint.secret)


def sign(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header value for one message (Standard Webhooks, v1)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# --- Events -------------------------------------------------------------------------------------

def _subject(grant: Grant) -> str:
    return consent.pairwise_subject(customer_reference=grant.customer.reference, client_id=grant.client.client_id)


def queue_event(*, endpoint: WebhookEndpoint, event: str, data: dict[str, Any]) -> WebhookDelivery:
    event_id = f"evt_{uuid.uuid4().hex}"
    payload = {"type": event, "id": event_id, "timestamp": timezone.now().isoformat(), "data": data}
    with transaction.atomic():
        row = WebhookDelivery.objects.create(endpoint=endpoint, event_id=event_id, event=event, payload=payload)
        # Through the outbox: committed with the event row, so a broker outage loses no event.
        outbox.enqueue(task="connectors_out.tasks.send_webhook", args=[row.pk])
        # Earlier events of this endpoint whose backoff step is over go again with it: where no
        # worker waits out a countdown (the embedded shape), nothing else would send them.
        due = WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.QUEUED,
                                             retry_at__lte=timezone.now()).exclude(pk=row.pk)
        for due_id in list(due.values_list("pk", flat=True)):
            WebhookDelivery.objects.filter(pk=due_id).update(retry_at=None)
            outbox.enqueue(task="connectors_out.tasks.send_webhook", args=[due_id])
    return row


def _endpoint_of(client: PimsClient) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(client=client, enabled=True).first()


def notify_new_data(*, run: ExtractionRun, customer_ids: list[int]) -> int:
    """After a run: one `new-data` event per active grant whose datasets it changed."""
    now = timezone.now()
    grants = (Grant.objects.filter(customer_id__in=customer_ids, revoked_at__isnull=True, ended_at__isnull=True,
                                   expires_at__gt=now, client__webhook__enabled=True)
              .select_related("customer", "client").prefetch_related("datasets"))
    sent = 0
    for grant in grants:
        changed = (Record.objects.filter(customer_id=grant.customer_id, source_id=run.source_id,
                                         extracted_at__gte=run.started_at, dataset__in=grant.datasets.all())
                   .values("dataset__slug").annotate(seq=Max("seq")))
        if not changed:
            continue
        endpoint = _endpoint_of(grant.client)
        if endpoint is None:
            continue
        queue_event(endpoint=endpoint, event=WebhookDelivery.Event.NEW_DATA, data={
            "sub": _subject(grant), "grant": str(grant.receipt_id),
            "datasets": sorted(row["dataset__slug"] for row in changed),
            "change_seq": max(row["seq"] for row in changed)})
        sent += 1
    return sent


def notify_grant_revoked(*, grant: Grant) -> WebhookDelivery | None:
    """Tell the client its grant ended (its tokens already stopped working); a deprovisioned
    client has no one left to tell."""
    if grant.client.approval == PimsClient.Approval.DEPROVISIONED:
        return None
    endpoint = _endpoint_of(grant.client)
    if endpoint is None:
        return None
    return queue_event(endpoint=endpoint, event=WebhookDelivery.Event.GRANT_REVOKED, data={
        "sub": _subject(grant), "grant": str(grant.receipt_id),
        "revoked_at": grant.revoked_at.isoformat() if grant.revoked_at else None})


# --- Sending ------------------------------------------------------------------------------------

def execute_webhook(*, webhook_delivery_id: int, http: httpx.Client | None = None) -> DeliveryOutcome:
    """Claim one queued event, POST it signed, log the attempt; say whether to try again."""
    row = WebhookDelivery.objects.select_related("endpoint").filter(pk=webhook_delivery_id).first()
    if row is not None and row.status == WebhookDelivery.Status.RUNNING:
        _release_if_orphaned(row)
    if row is None or row.status != WebhookDelivery.Status.QUEUED:
        return DeliveryOutcome("done")
    if row.retry_at is not None and row.retry_at > timezone.now():  # before its backoff step: no attempt
        return DeliveryOutcome("waiting", retry_in=(row.retry_at - timezone.now()).total_seconds())
    claimed = WebhookDelivery.objects.filter(pk=row.pk, status=WebhookDelivery.Status.QUEUED).update(
        status=WebhookDelivery.Status.RUNNING, attempts=F("attempts") + 1, retry_at=None)
    if not claimed:
        return DeliveryOutcome("claimed-elsewhere")
    row.refresh_from_db()
    body = json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "restitution-gateway",
               "webhook-id": row.event_id, "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(secret=endpoint_secret(row.endpoint), message_id=row.event_id,
                                         timestamp=timestamp, body=body)}
    attempt = WebhookAttempt.objects.create(delivery=row, number=row.attempts)
    started = time.monotonic()
    status_code: int | None = None
    failure: DeliveryError | None = None
    # The one HTTP layer of the push side: the URL's name resolved once, every address checked
    # public (unless CONNECTORS_ALLOW_LOCAL_DESTINATIONS), the socket opened on the checked
    # address, no redirect; answers classified as for deliveries (network, 429, 5xx: transient).
    client = http or http_client()
    try:
        status_code = send(client, "POST", row.endpoint.url, what="webhook", content=body,
                           headers=headers).status_code
    except DeliveryError as exc:
        failure, status_code = exc, exc.status_code
    finally:
        if http is None:
            client.close()
    attempt.duration_ms = int((time.monotonic() - started) * 1000)
    attempt.status_code = status_code
    attempt.error = str(failure) if failure is not None and status_code is None else ""
    attempt.save(update_fields=["duration_ms", "status_code", "error"])
    now = timezone.now()
    if failure is None:
        WebhookDelivery.objects.filter(pk=row.pk).update(status=WebhookDelivery.Status.SUCCEEDED, finished_at=now,
                                                         last_status_code=status_code, error="")
        return DeliveryOutcome("succeeded")
    message = f"HTTP {status_code}" if status_code is not None else attempt.error
    if not failure.permanent and row.attempts < settings.CONNECTORS_MAX_ATTEMPTS:
        delay = retry_delay(row.attempts)
        WebhookDelivery.objects.filter(pk=row.pk).update(status=WebhookDelivery.Status.QUEUED,
                                                         last_status_code=status_code, error=message,
                                                         retry_at=now + timedelta(seconds=delay))
        return DeliveryOutcome("retry", retry_in=delay)
    WebhookDelivery.objects.filter(pk=row.pk).update(status=WebhookDelivery.Status.FAILED, finished_at=now,
                                                     last_status_code=status_code, error=message)
    log.warning("webhook %s to client %s failed: %s", row.event_id, row.endpoint.client_id, message)
    return DeliveryOutcome("failed")


def _release_if_orphaned(row: WebhookDelivery) -> None:
    """Redelivered while still marked running: its worker died mid-POST; send it again (the
    receiver deduplicates on webhook-id)."""
    stale = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    last = row.attempt_rows.order_by("-number").first()
    if (last is None or last.started_at < stale) and WebhookDelivery.objects.filter(
            pk=row.pk, status=WebhookDelivery.Status.RUNNING).update(status=WebhookDelivery.Status.QUEUED):
        row.status = WebhookDelivery.Status.QUEUED


def rotate_endpoint_secrets() -> int:
    """Re-encrypt every webhook secret with the newest key (the secrets themselves do not change)."""
    count = 0
    for endpoint in WebhookEndpoint.objects.only("pk", "secret"):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret=crypto.rotate(endpoint.secret))
        count += 1
    return count
