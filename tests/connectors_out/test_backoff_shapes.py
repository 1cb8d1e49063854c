"""At most one attempt per backoff step, in every shape: with a worker (an early or duplicated
message makes no attempt), and in the embedded shape where tasks run eagerly (Celery would run
a retry at once whatever its countdown). The destinations page tells the states apart."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from config.celery import app
from connectors_out import delivery as deliveries
from connectors_out import webhooks
from connectors_out.models import Delivery, DeliveryAttempt, WebhookAttempt, WebhookDelivery
from restitution import consent
from restitution.models import Grant
from tests.conftest import deliver_events
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import WebDavPeer
from tests.connectors_out.receiver import Receiver


@contextmanager
def eager_tasks():
    """The embedded shape: no broker, every task runs in the calling process."""
    # The app reads Django's settings under the CELERY_ namespace: set the names it looks up.
    names = ("CELERY_TASK_ALWAYS_EAGER", "CELERY_TASK_EAGER_PROPAGATES", "task_always_eager", "task_eager_propagates")
    previous = {name: app.conf.get(name) for name in names}
    app.conf.update({name: True for name in names})
    try:
        yield
    finally:
        app.conf.update(previous)


def _attempts(destination) -> int:
    return DeliveryAttempt.objects.filter(delivery__destination=destination).count()


def _browser(customer) -> Client:
    browser = Client()
    browser.force_login(customer.user, backend="django.contrib.auth.backends.ModelBackend")
    return browser


def test_an_early_message_makes_no_attempt_before_the_backoff_step(demo_customer, tmp_peer_dir, peers_log_dir):
    webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)  # never started: the cloud is down
    destination = connect(demo_customer, "webdav", *webdav.connection())
    delivery = Delivery.objects.get(destination=destination)
    first = deliveries.execute_delivery(delivery_id=delivery.pk)
    assert first.status == "retry" and first.retry_in > 0
    delivery.refresh_from_db()
    assert delivery.retry_at > timezone.now()
    again = deliveries.execute_delivery(delivery_id=delivery.pk)  # a duplicated or early message
    assert again.status == "waiting" and 0 < again.retry_in <= first.retry_in
    assert _attempts(destination) == 1


@pytest.mark.django_db(transaction=True)  # commits run their on-commit work at once, as in production
def test_in_the_embedded_shape_an_update_makes_one_attempt_per_backoff_step(demo_customer, tmp_peer_dir,
                                                                            peers_log_dir):
    webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)  # never started: the cloud is down
    with eager_tasks():
        destination = connect(demo_customer, "webdav", *webdav.connection())
        assert _attempts(destination) == 1  # not CONNECTORS_MAX_ATTEMPTS in a fraction of a second
        delivery = Delivery.objects.get(destination=destination)
        assert delivery.status == "queued" and delivery.retry_at > timezone.now() and delivery.advice == ""

        # a later update, inside the backoff step: no attempt
        demo_customer.change_one_contract_and_drop_one_claim()
        demo_customer.extract()
        assert _attempts(destination) == 1 and Delivery.objects.filter(destination=destination).count() == 1

        # the step is over: the next update makes one attempt, and only one
        Delivery.objects.filter(pk=delivery.pk).update(retry_at=timezone.now() - timedelta(seconds=1))
        deliveries.queue_delivery(destination=destination, trigger="extraction")
        assert _attempts(destination) == 2
        delivery.refresh_from_db()
        assert delivery.status == "queued" and delivery.retry_at > timezone.now()

        # the customer's “Try again” is one attempt now, and the page says how it went
        browser = _browser(demo_customer.customer)
        answer = browser.post(f"/account/destinations/{destination.receipt_id}/retry/", follow=True)
        assert _attempts(destination) == 3
        page = answer.content.decode()
        assert "could not be reached" in page and "Sending again" not in page


@pytest.mark.django_db
def test_a_webhook_makes_no_attempt_before_its_backoff_step(personas):
    receiver = Receiver().start()
    try:
        receiver.fail_first, receiver.fail_status = 10, 503
        webhooks.register_endpoint(client=personas.trusted, url=receiver.url)
        grant = consent.create_grant(customer=personas.alice, client=personas.trusted, duration="3m",
                                     datasets=list(personas.trusted.allowed_datasets.all()))
        consent.revoke_grant(grant=Grant.objects.get(pk=grant.pk))
        assert deliver_events() == 1  # the grant-revoked event's subscriber writes the webhook
        row = WebhookDelivery.objects.get(event="grant-revoked")
        assert webhooks.execute_webhook(webhook_delivery_id=row.pk).status == "retry"
        assert webhooks.execute_webhook(webhook_delivery_id=row.pk).status == "waiting"
        assert len(receiver.requests) == 1 and WebhookAttempt.objects.filter(delivery=row).count() == 1
    finally:
        receiver.stop()


def test_the_page_tells_blocked_disconnected_and_connected_apart(demo_customer, tmp_peer_dir, peers_log_dir):
    webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)
    webdav.process.start()
    try:
        destination = connect(demo_customer, "webdav", *webdav.connection())
        browser = _browser(demo_customer.customer)
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        page = browser.get("/account/destinations/").content.decode()
        assert "connected" in page and "stopped: waiting for you" not in page

        webdav.revoke()  # the app password no longer opens the store: a permanent failure blocks
        demo_customer.change_one_contract_and_drop_one_claim()
        demo_customer.extract()
        assert [o.status for o in run_queued(destination)] == ["failed"]
        page = browser.get("/account/destinations/").content.decode()
        assert "stopped: waiting for you" in page and 'class="status active"' not in page
        assert "The last delivery failed." in page

        deliveries.disconnect_destination(destination=destination)
        page = browser.get("/account/destinations/").content.decode()
        assert "disconnected" in page
        assert "The last delivery failed." not in page and "Disconnect " not in page and "Try again" not in page
    finally:
        webdav.process.stop()
