"""The destination pages, from both sides: the owner connects, sees and disconnects; another
customer, an anonymous visitor, a forged form and a private address are refused."""

from __future__ import annotations

import pytest
from django.test import Client

from connectors_out import delivery
from connectors_out.models import Delivery, Destination
from restitution.models import AccessEvent, Dataset
from tests.connectors_out.peers import WebDavPeer


def _browser(customer, **kwargs) -> Client:
    browser = Client(**kwargs)
    browser.force_login(customer.user, backend="django.contrib.auth.backends.ModelBackend")
    return browser


@pytest.fixture
def alices_destination(personas) -> Destination:
    return delivery.connect_destination(
        customer=personas.alice, kind="webdav", label="alice @ https://dav.example",
        settings_={"server": "https://dav.example", "username": "alice"}, credentials={"app_password": "pw-alice"},
        datasets=list(Dataset.objects.filter(slug="insurance-contracts")), duration="3m")


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
    browser = _browser(personas.alice)
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
    response = _browser(personas.alice).post("/account/destinations/connect/webdav/",
                                             _form(webdav, app_password="wrong"))
    page = response.content.decode()
    assert response.status_code == 200 and "refused the gateway" in page
    assert "Try again" not in page and "connect again" in page  # no such button on the connect page
    assert not Destination.objects.exists()


def test_a_cloud_unreachable_at_first_connect_says_to_check_it_and_connect_again(personas, webdav):
    closed = "http://127.0.0.1:9"  # discard port: nothing listens there
    response = _browser(personas.alice).post("/account/destinations/connect/webdav/", _form(webdav, server=closed))
    page = response.content.decode()
    assert response.status_code == 200 and "could not be reached" in page
    assert "Try again" not in page and "for a long time" not in page and "then connect again" in page
    assert not Destination.objects.exists()


def test_each_kind_says_what_it_is_and_how_to_get_one_in_both_languages(personas):
    from django.utils import translation

    from connectors_out import registry

    browser = _browser(personas.alice)
    english = browser.get("/account/destinations/").content.decode()
    french = browser.get("/account/destinations/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    for kind in registry.kinds():
        if kind.name == "localfolder":
            continue
        assert kind.about, kind.name
        with translation.override("en"):
            assert str(kind.about) in english, kind.name
        with translation.override("fr"):
            assert str(kind.about) in french and str(kind.about) not in english, kind.name
        connect_page = browser.get(f"/account/destinations/connect/{kind.name}/").content.decode()
        with translation.override("en"):
            assert str(kind.about) in connect_page, kind.name


def test_a_private_address_is_refused_in_production(personas, settings):
    settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS = False
    browser = _browser(personas.alice)
    expected = {"http://127.0.0.1:8080": "must start with https://", "https://127.0.0.1": "not on the public Internet",
                "https://10.1.2.3": "not on the public Internet", "https://localhost": "not on the public Internet"}
    for server, message in expected.items():
        response = browser.post("/account/destinations/connect/webdav/", {
            "server": server, "username": "a", "app_password": "b", "folder": "R", "duration": "3m",
            "datasets": [Dataset.objects.get(slug="insurance-contracts").pk]})
        assert response.status_code == 200, server
        assert message in response.content.decode(), server
    assert not Destination.objects.exists()


def test_the_owner_disconnects_and_the_gateway_forgets_the_credentials(personas, alices_destination):
    response = _browser(personas.alice).post(f"/account/destinations/{alices_destination.receipt_id}/disconnect/")
    assert response.status_code == 302
    alices_destination.refresh_from_db()
    assert alices_destination.revoked_at and alices_destination.credentials == ""
    assert set(Delivery.objects.filter(destination=alices_destination).values_list("status", flat=True)) == {"failed"}
    assert AccessEvent.objects.filter(customer=personas.alice, kind="grant-revoked").exists()
    assert delivery.queue_delivery(destination=alices_destination) is None


def test_another_customer_can_neither_see_nor_touch_a_destination(personas, alices_destination):
    bob = _browser(personas.bob)
    assert alices_destination.label not in bob.get("/account/destinations/").content.decode()
    for action in ("disconnect", "retry"):
        assert bob.post(f"/account/destinations/{alices_destination.receipt_id}/{action}/").status_code == 404
    alices_destination.refresh_from_db()
    assert alices_destination.revoked_at is None


def test_anonymous_visitors_go_to_the_login_page(personas, alices_destination):
    response = Client().get("/account/destinations/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert Client().post(f"/account/destinations/{alices_destination.receipt_id}/disconnect/").status_code == 302
    alices_destination.refresh_from_db()
    assert alices_destination.revoked_at is None


def test_a_forged_form_without_csrf_token_is_refused(personas, alices_destination):
    browser = _browser(personas.alice, enforce_csrf_checks=True)
    assert browser.post(f"/account/destinations/{alices_destination.receipt_id}/disconnect/").status_code == 403
    alices_destination.refresh_from_db()
    assert alices_destination.revoked_at is None


def test_an_authorization_callback_with_a_foreign_state_is_refused(personas):
    browser = _browser(personas.alice)
    assert browser.get("/account/destinations/callback/cozy/?code=x&state=forged").status_code == 404
    assert browser.post("/account/destinations/callback/remotestorage/",
                        {"access_token": "t", "state": "forged"}).status_code == 404


def test_an_unknown_kind_is_a_404(personas):
    assert _browser(personas.alice).get("/account/destinations/connect/ftp/").status_code == 404


def test_a_failed_delivery_is_flagged_on_the_dashboard(personas, alices_destination):
    Delivery.objects.filter(destination=alices_destination).update(status="failed", error="write a record: HTTP 401",
                                                                   advice="Disconnect and connect it again.")
    page = _browser(personas.alice).get("/account/").content.decode()
    assert "failed: see what to do" in page


def test_a_customer_connects_a_nextcloud_with_login_flow_v2(personas, webdav):
    import httpx

    from restitution import crypto

    browser = _browser(personas.alice)
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


def test_the_pages_speak_french(personas, alices_destination):
    page = _browser(personas.alice).get("/account/destinations/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Mes destinations" in page and "Déconnecter" in page and "Pod Solid" in page


def test_an_expired_destination_loses_its_credentials_and_the_customer_sees_it(personas, alices_destination):
    from datetime import timedelta

    from django.utils import timezone

    assert delivery.expire_due_destinations() == 0  # not yet
    Destination.objects.filter(pk=alices_destination.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert delivery.expire_due_destinations() == 1
    assert delivery.expire_due_destinations() == 0  # once
    alices_destination.refresh_from_db()
    assert alices_destination.credentials == "" and alices_destination.status() == "expired"
    assert delivery.queue_delivery(destination=alices_destination) is None
    assert AccessEvent.objects.filter(customer=personas.alice, kind="grant-expired").count() == 1
