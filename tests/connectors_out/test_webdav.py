"""Push to a Nextcloud-style WebDAV server (wsgidav, a real process): full delivery read back,
changes only, an outage, a revoked app password."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import httpx
import pytest
from django.test import Client

from connectors_out.models import Delivery, DeliveryAttempt
from restitution.models import AccessEvent
from tests.connectors_out.conftest import connect, free_port, python_server, run_queued

USER, APP_PASSWORD = "alice", "app-pass-9f3Kq-2Lm"
DAV = "{DAV:}"


class WebDavPeer:
    def __init__(self, root, log_dir) -> None:
        self.root, self.log_dir = root, log_dir
        self.port = free_port()
        self.password = APP_PASSWORD
        self.process = self._process()

    def _process(self):
        return python_server("wsgidav", "tests.connectors_out.webdav_server",
                             [str(self.root), str(self.port), USER, self.password], self.port, self.log_dir)

    @property
    def server(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def revoke_app_password(self) -> None:
        """As when the user deletes the app password in Nextcloud: it no longer opens anything."""
        self.process.stop()
        self.password = "a-new-password-only-the-user-knows"
        self.process = self._process()
        self.process.start()

    def read_all(self) -> dict[tuple[str, str], dict]:
        """Every record file, read back over WebDAV (PROPFIND, then GET)."""
        found = {}
        with httpx.Client(auth=(USER, self.password), base_url=self.server) as http:
            for href in self._listing(http, f"/remote.php/dav/files/{USER}/Restitution/"):
                if not href.endswith("/"):
                    continue
                for item in self._listing(http, href):
                    if item.endswith(".json"):
                        document = http.get(item).raise_for_status().json()
                        assert (document["dataset"], document["key"]) not in found
                        found[(document["dataset"], document["key"])] = document
        return found

    def etags(self) -> dict[str, str]:
        with httpx.Client(auth=(USER, self.password), base_url=self.server) as http:
            return {href: http.head(href).headers["etag"]
                    for folder in self._listing(http, f"/remote.php/dav/files/{USER}/Restitution/")
                    if folder.endswith("/") for href in self._listing(http, folder)}

    @staticmethod
    def _listing(http: httpx.Client, path: str) -> list[str]:
        response = http.request("PROPFIND", path, headers={"Depth": "1"})
        if response.status_code == 404:
            return []
        assert response.status_code == 207, response.text
        hrefs = [node.text for node in ElementTree.fromstring(response.content).iter(f"{DAV}href")]
        return [h for h in hrefs if h.rstrip("/") != path.rstrip("/")]


@pytest.fixture
def webdav(tmp_peer_dir, peers_log_dir):
    peer = WebDavPeer(tmp_peer_dir, peers_log_dir)
    peer.process.start()
    yield peer
    peer.process.stop()


def _connect(demo, webdav):
    return connect(demo, "webdav", {"server": webdav.server, "username": USER, "folder": "Restitution"},
                   {"app_password": APP_PASSWORD})


def test_it_delivers_a_customers_full_data_that_reads_back_equal_to_the_ground_truth(demo_customer, webdav):
    destination = _connect(demo_customer, webdav)
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    delivered = {k: doc["data"] for k, doc in webdav.read_all().items()}
    assert delivered == demo_customer.truth()
    delivery = Delivery.objects.get(destination=destination)
    assert (delivery.status, delivery.written, delivery.removed) == ("succeeded", len(delivered), 0)
    event = AccessEvent.objects.get(customer=demo_customer.customer, kind=AccessEvent.Kind.DELIVERY)
    assert event.record_count == len(delivered) and event.detail["destination_kind"] == "webdav"


def test_a_second_delivery_after_a_legacy_change_sends_only_the_change(demo_customer, webdav):
    destination = _connect(demo_customer, webdav)
    run_queued(destination)
    before = webdav.etags()
    contract, claim = demo_customer.change_one_contract_and_drop_one_claim()
    demo_customer.extract()  # the extraction hook queues the delivery
    second = Delivery.objects.get(destination=destination, status=Delivery.Status.QUEUED)
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    second.refresh_from_db()
    assert (second.written, second.removed) == (1, 1)
    after = webdav.etags()
    changed = {href for href in before if href in after and before[href] != after[href]}
    assert len(changed) == 1 and contract[1] in next(iter(changed))
    assert set(before) - set(after) == {h for h in before if claim[1] in h}
    delivered = {k: doc["data"] for k, doc in webdav.read_all().items()}
    assert delivered == demo_customer.stored()
    assert delivered[contract] != demo_customer.truth()[contract]


def test_an_outage_is_retried_and_the_delivery_completes_without_duplicates(demo_customer, webdav):
    destination = _connect(demo_customer, webdav)
    webdav.process.stop()
    outcome = run_queued(destination)[-1]
    assert outcome.status == "retry" and outcome.retry_in is not None
    attempt = DeliveryAttempt.objects.get(delivery__destination=destination)
    assert attempt.outcome == "transient" and "ConnectError" in attempt.error
    webdav.process.start()
    assert [o.status for o in run_queued(destination)] == ["succeeded"]
    assert DeliveryAttempt.objects.filter(delivery__destination=destination).count() == 2
    delivered = {k: doc["data"] for k, doc in webdav.read_all().items()}  # read_all refuses duplicates
    assert delivered == demo_customer.truth()


def test_a_revoked_app_password_is_a_permanent_failure_shown_to_the_customer(demo_customer, webdav):
    destination = _connect(demo_customer, webdav)
    webdav.revoke_app_password()
    assert [o.status for o in run_queued(destination)] == ["failed"]
    delivery = Delivery.objects.get(destination=destination)
    assert delivery.status == "failed" and "401" in delivery.error and delivery.attempts == 1
    browser = Client()
    browser.force_login(demo_customer.customer.user, backend="django.contrib.auth.backends.ModelBackend")
    page = browser.get("/account/destinations/").content.decode()
    assert "refused the gateway" in page and "connect it again" in page
    assert APP_PASSWORD not in page and json.dumps(APP_PASSWORD) not in destination.credentials
