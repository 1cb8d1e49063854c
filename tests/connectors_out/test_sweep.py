"""The scheduled sweep: a delivery whose broker message was lost (queued, never published) and
one whose worker died (running, its attempt never finished) are sent again and completed by a
real worker, read back from real WebDAV servers; recent ones are left alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from connectors_out import delivery as deliveries
from connectors_out.models import Delivery, DeliveryAttempt, Destination
from tests.conftest import wait_until
from tests.connectors_out.conftest import connect
from tests.connectors_out.peers import WebDavPeer

LONG_AGO = timedelta(hours=3)


def _connected_without_delivery(demo, webdav: WebDavPeer) -> Destination:
    """A destination whose first delivery was never queued (pending, then authorized in the database)."""
    destination = connect(demo, "webdav", *webdav.connection(), pending_authorization=True)
    Destination.objects.filter(pk=destination.pk).update(pending_authorization=False)
    return destination


def _lost(destination: Destination) -> Delivery:
    """A queued delivery row whose message never reached the broker (a crash before the commit hook)."""
    return Delivery.objects.create(destination=destination, queued_at=timezone.now() - LONG_AGO)


def _orphaned(destination: Destination) -> Delivery:
    """A delivery its worker was running when it died: running, one attempt with no outcome."""
    started = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) - LONG_AGO
    delivery = Delivery.objects.create(destination=destination, status="running", attempts=1,
                                       queued_at=started, started_at=started)
    DeliveryAttempt.objects.create(delivery=delivery, number=1, started_at=started)
    return delivery


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_the_sweep_sends_lost_and_orphaned_deliveries_to_a_real_worker(
        demo_customer, start_worker, tmp_path, peers_log_dir):
    peers = []
    for name in ("lost", "orphaned"):
        (tmp_path / name).mkdir()
        peers.append(WebDavPeer(tmp_path / name, peers_log_dir))
        peers[-1].process.start()
    try:
        lost = _lost(_connected_without_delivery(demo_customer, peers[0]))
        orphaned = _orphaned(_connected_without_delivery(demo_customer, peers[1]))
        worker = start_worker(concurrency=1)
        worker.wait_ready()
        # nothing is in the broker: without the sweep, neither delivery would ever run
        from connectors_out.tasks import sweep_deliveries

        sweep_deliveries.delay()
        wait_until(lambda: set(Delivery.objects.filter(pk__in=[lost.pk, orphaned.pk])
                               .values_list("status", flat=True)) == {"succeeded"},
                   timeout=60, message="both deliveries to complete")
        for peer in peers:
            assert {k: d["data"] for k, d in peer.read_all().items()} == demo_customer.truth()
        outcomes = list(DeliveryAttempt.objects.filter(delivery=orphaned).order_by("number")
                        .values_list("outcome", flat=True))
        assert outcomes == ["transient", "succeeded"]  # the dead worker's attempt is closed, not lost
        assert Delivery.objects.filter(destination__customer=demo_customer.customer).count() == 2
    finally:
        for peer in peers:
            peer.process.stop()


def test_the_sweep_leaves_recent_deliveries_alone(demo_customer, tmp_peer_dir, peers_log_dir):
    webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)
    fresh = Delivery.objects.create(destination=_connected_without_delivery(demo_customer, webdav))
    waiting = _lost(_connected_without_delivery(demo_customer, webdav))
    # tried recently (waiting out its backoff): its retry message is still in the broker
    DeliveryAttempt.objects.create(delivery=waiting, number=1, outcome="transient",
                                   started_at=timezone.now() - timedelta(minutes=5))
    running = Delivery.objects.create(destination=_connected_without_delivery(demo_customer, webdav),
                                      status="running", attempts=1, started_at=timezone.now())
    DeliveryAttempt.objects.create(delivery=running, number=1)
    before = dict(Delivery.objects.values_list("pk", "queued_at"))
    assert deliveries.sweep_deliveries() == 0
    assert dict(Delivery.objects.values_list("pk", "queued_at")) == before
    assert Delivery.objects.get(pk=running.pk).status == "running"
    assert Delivery.objects.get(pk=fresh.pk).status == "queued"
    # and the same rows, once old enough, are swept (the running one only past the time limit)
    assert deliveries.sweep_deliveries(now=timezone.now() + LONG_AGO) == 2
