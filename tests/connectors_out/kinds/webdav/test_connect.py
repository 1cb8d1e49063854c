"""WebDAV's connect page, from both sides: a customer connects a WebDAV cloud (with an app password
or Nextcloud's Login Flow v2); a wrong app password and an unreachable server are refused with
what to do, and nothing is saved."""

from __future__ import annotations

import pytest

from connectors_out.models import Delivery, Destination
from restitution.models import AccessEvent, Dataset
from tests.connectors_out.peers import WebDavPeer, customer_browser


@pytest.fixture
def webdav(tmp_peer_dir, peers_log_dir):
    peer = WebDavPeer(tmp_peer_dir, peers_log_dir)
    peer.process.start()
    yield peer
    peer.process.stop()


def _form(webdav, **overrides) -> dict:
    settings_, credentials = webdav.connection()
    return {"server": settings_["server"], "username": settings_["username"], "folder": "Restitution",
            "app_password": credentials["app_password"], "duration": "3m",
            "datasets": [Dataset.objects.get(slug="insurance-contracts").pk], **overrides}


def test_a_customer_connects_a_webdav_cloud_from_the_dashboard(personas, webdav):
    browser = customer_browser(personas.alice)
    assert "/account/destinations/" in browser.get("/account/").content.decode()
    response = browser.post("/account/destinations/connect/webdav/", _form(webdav))
    assert response.status_code == 302
    destination = Destination.objects.get(customer=personas.alice)
    assert destination.is_active() and list(destination.datasets.values_list("slug", flat=True)) == [
        "insurance-contracts"]
    assert webdav.password not in destination.credentials and webdav.password not in destination.label
    assert Delivery.objects.filter(destination=destination, status="queued").exists()
    assert AccessEvent.objects.filter(customer=personas.alice, kind="grant-created").exists()
    page = browser.get("/account/destinations/").content.decode()
    assert destination.label in page and webdav.password not in page
    assert destination.label in browser.get("/account/").content.decode()  # in the access history


def test_a_wrong_app_password_is_refused_and_nothing_is_saved(personas, webdav):
    response = customer_browser(personas.alice).post("/account/destinations/connect/webdav/",
                                             _form(webdav, app_password="wrong"))
    page = response.content.decode()
    assert response.status_code == 200 and "refused the gateway" in page
    assert "Try again" not in page and "connect again" in page  # no such button on the connect page
    assert not Destination.objects.exists()


def test_a_cloud_unreachable_at_first_connect_says_to_check_it_and_connect_again(personas, webdav):
    closed = "http://127.0.0.1:9"  # discard port: nothing listens there
    response = customer_browser(personas.alice).post("/account/destinations/connect/webdav/",
                                                     _form(webdav, server=closed))
    page = response.content.decode()
    assert response.status_code == 200 and "could not be reached" in page
    assert "Try again" not in page and "for a long time" not in page and "then connect again" in page
    assert not Destination.objects.exists()


def test_a_customer_connects_a_nextcloud_with_login_flow_v2(personas, webdav):
    import httpx

    from restitution import crypto

    browser = customer_browser(personas.alice)
    form = {k: v for k, v in _form(webdav).items() if k not in ("username", "app_password")}
    started = browser.post("/account/destinations/connect/webdav/", {**form, "login_flow": "1"})
    assert started.status_code == 302 and started["Location"].endswith("/nextcloud-login/")
    login_url = browser.get(started["Location"]).context["login_url"]
    assert login_url.startswith(webdav.server)
    not_yet = browser.post("/account/destinations/nextcloud-login/", follow=True)
    assert "Not yet" in not_yet.content.decode() and not Destination.objects.exists()
    # the customer logs in to their Nextcloud and grants access (the test server's stand-in page)
    httpx.post(login_url, auth=(webdav.user, webdav.password)).raise_for_status()
    done = browser.post("/account/destinations/nextcloud-login/")
    assert done.status_code == 302 and done["Location"].endswith("/account/destinations/")
    destination = Destination.objects.get(customer=personas.alice)
    assert destination.settings["username"] == webdav.user
    assert crypto.decrypt_json(destination.credentials) == {"app_password": webdav.password}
    assert browser.post("/account/destinations/nextcloud-login/").status_code == 302  # the flow is over
