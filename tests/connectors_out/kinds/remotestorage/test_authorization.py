"""remoteStorage: a refusal at the storage's authorization page (armadietto's) ends the pending
connection with a message — only the connection this browser started; a success still needs the
state this browser was given."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from connectors_out.models import Delivery, Destination
from tests.connectors_out.peers import REFUSED, RemoteStoragePeer, _browser, _connect_form, messages_of


def test_a_refusal_at_the_remotestorage_ends_the_pending_connection(demo_customer, armadietto):
    storage = RemoteStoragePeer(armadietto)
    browser = _browser(demo_customer)
    started = browser.post("/account/destinations/connect/remotestorage/",
                           _connect_form(demo_customer, address=f"{storage.user}@127.0.0.1:{armadietto.port}"))
    query = {k: v[0] for k, v in parse_qs(urlsplit(started["Location"]).query).items()}
    answer = httpx.post(f"{armadietto.origin}/oauth", data={**query, "username": storage.user,
                                                            "password": storage.password, "deny": "Deny"})
    assert answer.status_code == 302
    callback = urlsplit(answer.headers["location"])
    fragment = parse_qs(callback.fragment)
    assert fragment["error"] == ["access_denied"] and "state" not in fragment  # armadietto sends none
    destination = Destination.objects.get(customer=demo_customer.customer)
    assert destination.status() == "pending"

    page = browser.get(callback.path)  # the page whose script posts what the fragment holds
    assert page.status_code == 200 and b'"error"' in page.content

    # refused side: another browser session of the same customer cannot end this connection
    other = _browser(demo_customer)
    assert other.post(callback.path, {"access_token": "", "state": "", "error": "access_denied"}).status_code == 302
    destination.refresh_from_db()
    assert destination.status() == "pending"

    done = browser.post(callback.path, {"access_token": "", "state": "", "error": "access_denied"}, follow=True)
    assert done.redirect_chain[-1][0] == "/account/destinations/" and REFUSED in messages_of(done)
    destination.refresh_from_db()
    assert destination.status() == "revoked" and destination.revoked_reason == "authorization refused at the cloud"
    assert not Delivery.objects.filter(destination=destination).exists()
    assert "waiting for your authorization" not in done.content.decode()


def test_a_remotestorage_callback_without_error_still_needs_its_state(demo_customer, armadietto):
    storage = RemoteStoragePeer(armadietto)
    browser = _browser(demo_customer)
    browser.post("/account/destinations/connect/remotestorage/",
                 _connect_form(demo_customer, address=f"{storage.user}@127.0.0.1:{armadietto.port}"))
    response = browser.post("/account/destinations/callback/remotestorage/", {"access_token": "stolen", "state": ""})
    assert response.status_code == 404
    assert Destination.objects.get(customer=demo_customer.customer).status() == "pending"


