"""Celery tasks of the push side: thin wrappers that take ids and call delivery.py / webhooks.py.

The `on_*` tasks are the subscribers to the domain's events (restitution/events.py), registered
in apps.py; the outbox sends them at least once, so each is idempotent or harmless twice."""

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


@shared_task(ignore_result=True)
def on_run_changed_data(run_id: int) -> None:
    """An extraction run changed customers' data: queue deliveries to their destinations."""
    from .delivery import after_extraction

    after_extraction(run_id=run_id)


@shared_task(ignore_result=True)
def announce_new_data(run_id: int) -> int:
    """An extraction run changed customers' data: a `new-data` webhook per grant it concerns."""
    from restitution.models import ExtractionRun

    from .delivery import changed_customers
    from .webhooks import notify_new_data

    run = ExtractionRun.objects.filter(pk=run_id).first()
    customers = changed_customers(run=run) if run is not None else []
    return notify_new_data(run=run, customer_ids=customers) if customers else 0


@shared_task(ignore_result=True)
def on_grant_revoked(grant_id: int) -> None:
    """A grant was revoked: tell the client's webhook."""
    from restitution.models import Grant

    from .webhooks import notify_grant_revoked

    grant = Grant.objects.select_related("customer", "client").filter(pk=grant_id).first()
    if grant is not None:
        notify_grant_revoked(grant=grant)
