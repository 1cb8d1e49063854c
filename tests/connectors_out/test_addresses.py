"""Addresses typed by customers (SSRF): with local destinations off, a name resolving to
127.0.0.1 is refused when connecting and again when a delivery connects (the address checked is
the address used: no second lookup a rebinding DNS could answer differently), and redirects
are never followed. Real sockets and real servers on this machine."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import translation

from connectors_out import delivery as deliveries
from connectors_out.http import DeliveryError, DestinationURLError, check_destination_url
from connectors_out.kinds.webdav.transport import WebDavTransport
from connectors_out.models import Delivery
from tests.connectors_out.conftest import connect, run_queued
from tests.connectors_out.peers import WebDavPeer


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port that accepts connections and lets the test see whether any was made."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.3)
    yield server
    server.close()


def _connections(listener: socket.socket) -> int:
    count = 0
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            return count
        connection.close()
        count += 1


def _transport(server: str) -> WebDavTransport:
    return WebDavTransport(settings={"server": server, "username": "alice", "folder": "R"},
                           credentials={"app_password": "not-used"})


def test_a_name_resolving_to_loopback_is_refused_when_connecting(settings, listener):
    settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS = False
    assert "127.0.0.1" in {info[4][0] for info in socket.getaddrinfo("localhost", None)}
    port = listener.getsockname()[1]
    for url in (f"https://localhost:{port}", f"https://127.0.0.1:{port}", f"https://[::ffff:127.0.0.1]:{port}"):
        with translation.override("en"), pytest.raises(DestinationURLError, match="not on the public Internet"):
            check_destination_url(url)
    assert _connections(listener) == 0


#: IPv6 forms that lead to an IPv4 address, each wrapping a loopback or private one.
WRAPPED_PRIVATE = {
    "NAT64 well-known prefix, loopback": "64:ff9b::7f00:1",
    "NAT64 well-known prefix, private": "64:ff9b::a00:1",
    "NAT64 local-use prefix": "64:ff9b:1::7f00:1",
    "6to4, loopback": "2002:7f00:1::1",
    "6to4, private": "2002:c0a8:101::1",
    "IPv4-compatible, loopback": "::127.0.0.1",
    "IPv4-compatible, private": "::10.0.0.1",
    "IPv4-translated, loopback": "::ffff:0:7f00:1",
    "Teredo, client 127.0.0.1": "2001:0:4136:e378:8000:63bf:80ff:fffe",
}


@pytest.mark.parametrize("address", WRAPPED_PRIVATE.values(), ids=WRAPPED_PRIVATE.keys())
def test_an_ipv6_address_wrapping_a_private_ipv4_address_is_refused(settings, listener, address):
    settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS = False
    port = listener.getsockname()[1]
    with translation.override("en"), pytest.raises(DestinationURLError, match="not on the public Internet"):
        check_destination_url(f"https://[{address}]:{port}")
    assert _connections(listener) == 0


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:7f00:1::1", "::127.0.0.1"])
def test_a_delivery_to_an_ipv6_address_wrapping_loopback_fails_permanently_without_connecting(settings, address):
    settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS = False
    transport = _transport(f"https://[{address}]:8443")
    with pytest.raises(DeliveryError) as refused:
        transport.check()
    transport.close()
    assert refused.value.permanent and str(refused.value).endswith("the address is not public")


def test_an_ipv6_address_wrapping_a_public_ipv4_address_is_accepted(settings):
    settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS = False
    for address in ("64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"):
        assert check_destination_url(f"https://[{address}]/dav/") == f"https://[{address}]/dav"


def test_a_delivery_does_not_connect_to_a_name_that_now_leads_to_loopback(
        demo_customer, settings, tmp_peer_dir, peers_log_dir):
    """A destination connected while its name was public; the name now resolves to 127.0.0.1
    (a WebDAV server really listens there). The delivery refuses to connect, permanently."""
    webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)
    webdav.process.start()
    try:
        settings_, credentials = webdav.connection()
        settings_["server"] = f"http://localhost:{webdav.port}"
        destination = connect(demo_customer, "webdav", settings_, credentials)
        settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS = False
        assert [o.status for o in run_queued(destination)] == ["failed"]
        delivery = Delivery.objects.get(destination=destination)
        assert delivery.error.endswith("the address is not public")
        assert "private network" in delivery.advice and delivery.written == 0
        assert webdav.read_all() == {}
        # the same destination with local destinations allowed (the demo): delivered
        settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS = True
        assert deliveries.queue_delivery(destination=destination, trigger="retry") is not None
        assert [o.status for o in run_queued(destination)] == ["succeeded"]
        assert {k: d["data"] for k, d in webdav.read_all().items()} == demo_customer.truth()
    finally:
        webdav.process.stop()


def test_the_name_is_resolved_once_and_the_connection_goes_to_the_checked_address(
        settings, tmp_peer_dir, peers_log_dir, monkeypatch):
    """A spy on the real resolver: one lookup of the name per connection; the socket is then
    opened on an address literal (which needs no lookup a DNS server could answer)."""
    webdav = WebDavPeer(tmp_peer_dir, peers_log_dir)
    webdav.process.start()
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def spy(host, *args, **kwargs):
        looked_up.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    try:
        transport = WebDavTransport(settings={"server": f"http://localhost:{webdav.port}", "username": "alice",
                                              "folder": "R"}, credentials={"app_password": webdav.password})
        transport.check()
        transport.close()
    finally:
        webdav.process.stop()
    names = [h for h in looked_up if not _is_literal(h)]
    assert names == ["localhost"] and any(_is_literal(h) for h in looked_up)


def _is_literal(host) -> bool:
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host)
    except ValueError:
        return False
    return True


class _Redirecting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_PROPFIND(self) -> None:  # noqa: N802 - http.server's naming
        self.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", "/elsewhere/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_redirect_is_a_permanent_failure_and_is_not_followed():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        transport = _transport(f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(DeliveryError) as refused:
            transport.check()
        transport.close()
    finally:
        server.shutdown()
        server.server_close()
    assert refused.value.permanent and refused.value.status_code == 302
    assert _Redirecting.hits == ["/remote.php/dav/files/alice/"]  # /elsewhere/ never asked
