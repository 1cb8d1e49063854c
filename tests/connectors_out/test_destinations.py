"""Push to real personal-cloud servers started by the tests — WebDAV (wsgidav, Nextcloud
paths), Community Solid Server 7.2, armadietto (remoteStorage), the Cozy fake — each read
back through its own protocol: full data, changes only, an outage, revoked credentials."""

from __future__ import annotations

import pytest
from django.test import Client

from connectors_out.models import Delivery, DeliveryAttempt, Destination
from restitution.models import AccessEvent
from tests.connectors_out.conftest import run_queued
from tests.connectors_out.peers import (
    CozyPeer,
    RemoteStoragePeer,
    SolidPeer,
    WebDavPeer,
)

KINDS = ["webdav", "solid", "remotestorage", "cozy"]


@pytest.fixture(params=KINDS)
def peer(request, tmp_peer_dir, peers_log_dir):
    if request.param == "webdav":
        webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)
        webdav.process.start()
        yield webdav
        webdav.process.stop()
    elif request.param == "solid":
        yield SolidPeer(request.getfixturevalue("solid_server"))
    elif request.param == "remotestorage":
        yield RemoteStoragePeer(request.getfixturevalue("armadietto"))
    else:
        cozy = CozyPeer(tmp_peer_dir, peers_log_dir)
        cozy.process.start()
        yield cozy
        cozy.process.stop()


def _connect(demo, peer) -> Destination:
    from tests.connectors_out.conftest import connect

    if hasattr(peer, "connect"):
        return peer.connect(demo)
    return connect(demo, peer.kind, *peer.connection())


def _data(peer) -> dict:
    return {key: document["data"] for key, document in peer.read_all().items()}


def test_it_delivers_a_customers_full_data_that_reads_back_equal_to_the_ground_truth(demo_customer, peer):
    destination = _connect(demo_customer, peer)
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    delivered = _data(peer)
    assert delivered == demo_customer.truth()
    delivery = Delivery.objects.get(destination=destination)
    assert (delivery.status, delivery.written, delivery.removed) == ("succeeded", len(delivered), 0)
    event = AccessEvent.objects.get(customer=demo_customer.customer, kind=AccessEvent.Kind.DELIVERY)
    assert event.record_count == len(delivered) and event.detail["destination_kind"] == peer.kind


def test_a_second_delivery_after_a_legacy_change_sends_only_the_change(demo_customer, peer):
    destination = _connect(demo_customer, peer)
    run_queued(destination)
    before = peer.versions()
    contract, claim = demo_customer.change_one_contract_and_drop_one_claim()
    demo_customer.extract()  # the extraction hook queues the delivery
    second = Delivery.objects.get(destination=destination, status=Delivery.Status.QUEUED)
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    second.refresh_from_db()
    assert (second.written, second.removed) == (1, 1)
    after = peer.versions()
    rewritten = {name for name in before if name in after and before[name] != after[name]}
    assert len(rewritten) == 1 and set(before) - set(after) and len(after) == len(before) - 1
    delivered = _data(peer)
    assert delivered == demo_customer.stored()
    assert contract in delivered and claim not in delivered
    assert delivered[contract] != demo_customer.truth()[contract]


def test_an_outage_is_retried_and_the_delivery_completes_without_duplicates(demo_customer, peer):
    destination = _connect(demo_customer, peer)
    peer.process.stop()
    try:
        outcome = run_queued(destination)[-1]
    finally:
        peer.process.start()
    assert outcome.status == "retry" and outcome.retry_in is not None
    attempt = DeliveryAttempt.objects.get(delivery__destination=destination)
    assert attempt.outcome == "transient" and "ConnectError" in attempt.error
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    assert DeliveryAttempt.objects.filter(delivery__destination=destination).count() == 2
    assert _data(peer) == demo_customer.truth()  # read_all refuses duplicates


def test_revoked_credentials_are_a_permanent_failure_shown_to_the_customer(demo_customer, peer):
    destination = _connect(demo_customer, peer)
    peer.revoke()
    assert [o.status for o in run_queued(destination)] == ["failed"]
    delivery = Delivery.objects.get(destination=destination)
    assert delivery.status == "failed" and delivery.attempts == 1
    # 401/403 from the store, or 400 invalid_client from its token endpoint (OAuth 2.0 §5.2)
    assert delivery.error.endswith(("HTTP 400", "HTTP 401", "HTTP 403"))
    assert DeliveryAttempt.objects.get(delivery=delivery).outcome == "permanent"
    browser = Client()
    browser.force_login(demo_customer.customer.user, backend="django.contrib.auth.backends.ModelBackend")
    page = browser.get("/account/destinations/").content.decode()
    assert "refused the gateway" in page and "connect it again" in page
