"""The destination pages of every kind, from both sides: the owner sees and disconnects; another
customer, an anonymous visitor, a forged form, a private address and an unknown kind are refused.
(Each kind's own connect steps are tested in tests/connectors_out/kinds/<kind>/.)"""

from __future__ import annotations

import pytest
from django.test import Client

from connectors_out import delivery
from connectors_out.models import Delivery, Destination
from restitution.models import AccessEvent, Dataset
from tests.connectors_out.peers import customer_browser


@pytest.fixture
def alices_destination(personas) -> Destination:
    return delivery.connect_destination(
        customer=personas.alice, kind="webdav", label="alice @ https://dav.example",
        settings_={"server": "https://dav.example", "username": "alice"}, credentials={"app_password": "pw-alice"},
        datasets=list(Dataset.objects.filter(slug="insurance-contracts")), duration="3m")


def test_each_kind_says_what_it_is_and_how_to_get_one_in_both_languages(personas):
    from django.utils import translation

    from connectors_out import registry

    browser = customer_browser(personas.alice)
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
    browser = customer_browser(personas.alice)
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
    browser = customer_browser(personas.alice)
    response = browser.post(f"/account/destinations/{alices_destination.receipt_id}/disconnect/")
    assert response.status_code == 302
    alices_destination.refresh_from_db()
    assert alices_destination.revoked_at and alices_destination.credentials == ""
    assert set(Delivery.objects.filter(destination=alices_destination).values_list("status", flat=True)) == {"failed"}
    assert AccessEvent.objects.filter(customer=personas.alice, kind="grant-revoked").exists()
    assert delivery.queue_delivery(destination=alices_destination) is None


def test_another_customer_can_neither_see_nor_touch_a_destination(personas, alices_destination):
    bob = customer_browser(personas.bob)
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
    browser = customer_browser(personas.alice, enforce_csrf_checks=True)
    assert browser.post(f"/account/destinations/{alices_destination.receipt_id}/disconnect/").status_code == 403
    alices_destination.refresh_from_db()
    assert alices_destination.revoked_at is None


def test_an_authorization_callback_with_a_foreign_state_is_refused(personas):
    browser = customer_browser(personas.alice)
    assert browser.get("/account/destinations/callback/cozy/?code=x&state=forged").status_code == 404
    assert browser.post("/account/destinations/callback/remotestorage/",
                        {"access_token": "t", "state": "forged"}).status_code == 404


def test_an_unknown_kind_is_a_404(personas):
    assert customer_browser(personas.alice).get("/account/destinations/connect/ftp/").status_code == 404


def test_a_failed_delivery_is_flagged_on_the_dashboard(personas, alices_destination):
    Delivery.objects.filter(destination=alices_destination).update(status="failed", error="write a record: HTTP 401",
                                                                   advice="Disconnect and connect it again.")
    page = customer_browser(personas.alice).get("/account/").content.decode()
    assert "failed: see what to do" in page


def test_the_pages_speak_french(personas, alices_destination):
    page = customer_browser(personas.alice).get("/account/destinations/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
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
