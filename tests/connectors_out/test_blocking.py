"""A permanent failure blocks a destination: later extractions queue nothing more for it until
the customer acts; “Try again” then sends every change since the last delivered sequence,
once (a real WebDAV server, read back over WebDAV)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client

from connectors_out.models import Delivery, Destination
from restitution.models import Customer
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import WebDavPeer


def _browser(demo) -> Client:
    browser = Client(enforce_csrf_checks=False)
    browser.force_login(demo.customer.user, backend="django.contrib.auth.backends.ModelBackend")
    return browser


def _contracts(demo) -> list[tuple[str, str]]:
    return sorted(k for k in demo.stored() if k[0] == "insurance-contracts")


def test_after_a_permanent_failure_extractions_queue_nothing_until_the_customer_tries_again(
        demo_customer, tmp_peer_dir, peers_log_dir):
    webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)
    webdav.process.start()
    try:
        destination = connect(demo_customer, "webdav", *webdav.connection())
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        destination.refresh_from_db()
        delivered_before = destination.delivered_seq
        good_password = webdav.password
        webdav.revoke()

        first, claim = demo_customer.change_one_contract_and_drop_one_claim()
        demo_customer.extract()  # queues one delivery, which meets the revoked password
        assert [o.status for o in run_queued(destination)] == ["failed"]
        destination.refresh_from_db()
        assert destination.blocked_at is not None and destination.delivered_seq == delivered_before
        count = Delivery.objects.filter(destination=destination).count()

        second = _contracts(demo_customer)[1]
        demo_customer.legacy_sql("UPDATE T_CONTRAT SET MT_PRIME_ANNUELLE = MT_PRIME_ANNUELLE + 7 "
                                 "WHERE NUM_CONTRAT = ?", second[1])
        demo_customer.extract()
        demo_customer.extract()
        # blocked: no new doomed delivery, whatever the extractions found
        assert Delivery.objects.filter(destination=destination).count() == count
        assert not Delivery.objects.filter(destination=destination, status="queued").exists()
        page = _browser(demo_customer).get("/account/destinations/").content.decode()
        assert "Nothing more is sent to this cloud until you press" in page

        # the customer restores the access at their cloud, then presses “Try again”
        webdav.process.stop()
        webdav.password = good_password
        webdav.process = webdav._process()
        webdav.process.start()
        response = _browser(demo_customer).post(f"/account/destinations/{destination.receipt_id}/retry/")
        assert response.status_code == 302
        retry = Delivery.objects.get(destination=destination, status="queued")
        assert (retry.trigger, retry.from_seq) == ("retry", delivered_before)
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        retry.refresh_from_db()
        assert (retry.written, retry.removed) == (2, 1)  # both contracts changed, the claim removed
        delivered = {k: d["data"] for k, d in webdav.read_all().items()}  # read_all refuses duplicates
        assert delivered == demo_customer.stored()
        assert first in delivered and second in delivered and claim not in delivered
        destination.refresh_from_db()
        assert destination.blocked_at is None

        # unblocked: the next extraction with a change queues again
        demo_customer.legacy_sql("UPDATE T_CONTRAT SET MT_PRIME_ANNUELLE = MT_PRIME_ANNUELLE + 1 "
                                 "WHERE NUM_CONTRAT = ?", second[1])
        demo_customer.extract()
        assert Delivery.objects.filter(destination=destination, status="queued", trigger="extraction").exists()
    finally:
        webdav.process.stop()


def test_a_transient_final_failure_does_not_block(demo_customer, tmp_peer_dir, peers_log_dir, settings):
    """“Unreachable” after the last attempt is not permanent: the next extraction tries again."""
    settings.CONNECTORS_MAX_ATTEMPTS = 1
    webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)  # never started: the server is down
    destination = connect(demo_customer, "webdav", *webdav.connection())
    assert [o.status for o in run_queued(destination)] == ["failed"]
    assert Destination.objects.get(pk=destination.pk).blocked_at is None
    demo_customer.change_one_contract_and_drop_one_claim()
    demo_customer.extract()
    assert Delivery.objects.filter(destination=destination, status="queued").exists()


def test_new_credentials_lift_the_block_and_resume_where_deliveries_stopped(
        demo_customer, tmp_peer_dir, peers_log_dir):
    webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)
    webdav.process.start()
    try:
        destination = connect(demo_customer, "webdav", *webdav.connection())
        run_queued(destination)
        webdav.revoke()  # the customer deleted the app password; the new one is webdav.password
        contract, claim = demo_customer.change_one_contract_and_drop_one_claim()
        demo_customer.extract()
        assert [o.status for o in run_queued(destination)] == ["failed"]
        url = f"/account/destinations/{destination.receipt_id}/credentials/"
        browser = _browser(demo_customer)
        assert "Save the new credentials" in browser.get("/account/destinations/").content.decode()

        # refused: a wrong password (checked at the cloud first), and anyone else's request
        stored = Destination.objects.get(pk=destination.pk).credentials
        assert browser.post(url, {"app_password": "wrong"}).status_code == 302
        intruder = Client()  # another customer of the gateway, logged in
        user = get_user_model().objects.create_user(username="intruder", password="x-9f2c1e")
        Customer.objects.create(reference="C-INTRUDER", user=user)
        intruder.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        assert intruder.post(url, {"app_password": webdav.password}).status_code == 404
        refreshed = Destination.objects.get(pk=destination.pk)
        assert refreshed.blocked_at is not None and refreshed.credentials == stored
        assert not Delivery.objects.filter(destination=destination, status="queued").exists()

        assert browser.post(url, {"app_password": webdav.password}).status_code == 302
        resumed = Delivery.objects.get(destination=destination, status="queued")
        assert resumed.trigger == "new-credentials" and Destination.objects.get(pk=destination.pk).blocked_at is None
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        resumed.refresh_from_db()
        assert (resumed.written, resumed.removed) == (1, 1)  # only what changed, not everything again
        delivered = {k: d["data"] for k, d in webdav.read_all().items()}
        assert delivered == demo_customer.stored() and claim not in delivered
    finally:
        webdav.process.stop()
