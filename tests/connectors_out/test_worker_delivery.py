"""Through a real Celery worker: the delivery queued by a connection meets a server that is
down, backs off, and completes once it is up, with nothing duplicated."""

from __future__ import annotations

import pytest

from connectors_out.models import Delivery, DeliveryAttempt
from tests.conftest import wait_until
from tests.connectors_out.conftest import connect
from tests.connectors_out.peers import WebDavPeer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_a_worker_backs_off_while_the_server_is_down_and_delivers_once_it_is_up(
        demo_customer, start_worker, tmp_peer_dir, peers_log_dir):
    webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)  # not started: the server is down
    start_worker(concurrency=1, env={"CONNECTORS_RETRY_BASE_SECONDS": "0.5", "CONNECTORS_RETRY_CAP_SECONDS": "2"})
    destination = connect(demo_customer, "webdav", *webdav.connection())
    wait_until(lambda: DeliveryAttempt.objects.filter(delivery__destination=destination, outcome="transient")
               .count() >= 2, timeout=60, message="two failed attempts")
    webdav.process.start()
    try:
        wait_until(lambda: Delivery.objects.get(destination=destination).status == "succeeded", timeout=60,
                   message="the delivery to complete")
        assert {k: d["data"] for k, d in webdav.read_all().items()} == demo_customer.truth()
    finally:
        webdav.process.stop()
    delivery = Delivery.objects.get(destination=destination)
    outcomes = list(delivery.attempt_rows.values_list("outcome", flat=True))
    assert outcomes[-1] == "succeeded" and set(outcomes[:-1]) == {"transient"}
    assert all(a.duration_ms is not None for a in delivery.attempt_rows.all())
