"""Celery tasks of the push side: thin wrappers that take ids and call delivery.py / webhooks.py."""

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=None)
def deliver(self, delivery_id: int) -> str:
    """Push one delivery. Transient failures come back with a backoff (with jitter) to wait;
    the delivery row counts attempts, so Celery's own retry count is not the limit here."""
    from .delivery import execute_delivery

    outcome = execute_delivery(delivery_id=delivery_id)
    if outcome.retry_in is not None and not self.request.is_eager:
        raise self.retry(countdown=outcome.retry_in)
    # Eager (embedded shape, no broker): Celery would run the retry at once, whatever the
    # countdown; the delivery stays queued with its `retry_at` and the next trigger sends it.
    return outcome.status


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=None)
def send_webhook(self, webhook_delivery_id: int) -> str:
    """POST one signed webhook event; retried with backoff until it succeeds or gives up."""
    from .webhooks import execute_webhook

    outcome = execute_webhook(webhook_delivery_id=webhook_delivery_id)
    if outcome.retry_in is not None and not self.request.is_eager:  # eager: see deliver
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(ignore_result=True)
def expire_destinations() -> int:
    """Scheduled (beat, every minute): forget the credentials of destinations past their expiry."""
    from .delivery import expire_due_destinations

    return expire_due_destinations()


@shared_task(ignore_result=True)
def sweep_deliveries() -> int:
    """Scheduled (beat, every 5 minutes): send again deliveries whose broker message was lost."""
    from .delivery import sweep_deliveries as sweep

    return sweep()
