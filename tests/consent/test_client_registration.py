"""Dynamic client registration (RFC 7591) and management (RFC 7592), from the registrant who
tries to take over an approved client, erase consent records or flood the approval queue."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db.models import ProtectedError
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from restitution.models import AccessEvent, ConsentFlow, Dataset, Grant, PimsClient
from tests.personas import CONTRACTS, CURVE, Flow

HONEST = "https://honest.example/callback"
TAKEOVER = "https://attacker.example/callback"
OFFICIAL = "Demo data holder (official app)"


def _address() -> str:
    """An address of its own per test: registration is rate-limited per address."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@pytest.fixture
def registrant() -> Client:
    return Client(REMOTE_ADDR=_address())


def post_json(api: Client, path: str, body, **extra):
    return api.post(path, body if isinstance(body, str) else json.dumps(body), content_type="application/json",
                    **extra)


def put_json(api: Client, path: str, body, token: str):
    return api.put(path, body if isinstance(body, str) else json.dumps(body), content_type="application/json",
                   HTTP_AUTHORIZATION=f"Bearer {token}")


def metadata(**overrides) -> dict:
    return {"client_name": "Honest cloud", "redirect_uris": [HONEST],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none", "client_uri": "https://honest.example/",
            "policy_uri": "https://honest.example/privacy", **overrides}


def register(api: Client, **overrides) -> dict:
    response = post_json(api, "/o/register/", metadata(**overrides))
    assert response.status_code == 201, response.content
    return response.json()


def approve(client_id: str) -> PimsClient:
    client = PimsClient.objects.get(client_id=client_id)
    client.approval = PimsClient.Approval.APPROVED
    client.save()
    client.allowed_datasets.set(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS]))
    return client


def manage(registered: dict) -> str:
    return registered["registration_client_uri"].removeprefix("http://testserver")


def alice_flow(personas, registered: dict, redirect_uri: str = HONEST) -> Flow:
    browser = Client()
    browser.force_login(personas.alice.user, backend="django.contrib.auth.backends.ModelBackend")
    return Flow(browser, Client(), client_id=registered["client_id"], redirect_uri=redirect_uri)


# --- 1. An approved client cannot be taken over through RFC 7592 --------------------------------


def test_an_update_of_an_approved_client_does_not_reach_customers_before_the_operator_approves(
        personas, registrant):
    registered = register(registrant)
    approve(registered["client_id"])
    tokens = alice_flow(personas, registered).tokens()
    response = put_json(registrant, manage(registered), metadata(
        client_id=registered["client_id"], client_name=OFFICIAL, redirect_uris=[TAKEOVER],
        logo_uri="https://attacker.example/official-logo.png"), registered["registration_access_token"])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["client_name"] == "Honest cloud" and body["redirect_uris"] == [HONEST]
    assert body["changes_awaiting_approval"]["client_name"] == OFFICIAL

    # The consent page still shows the approved name; codes never go to the new URI.
    page = alice_flow(personas, registered).open_consent()
    assert page.status_code == 200
    assert "Honest cloud" in page.content.decode() and OFFICIAL not in page.content.decode()
    hijack = alice_flow(personas, registered, redirect_uri=TAKEOVER).open_consent()
    assert not hijack.get("Location", "").startswith(TAKEOVER)
    assert OFFICIAL not in hijack.content.decode()
    # Customers already connected keep their service with the approved client.
    assert alice_flow(personas, registered).refresh(tokens["refresh_token"]).status_code == 200


def test_the_operator_sees_what_changed_and_applying_it_puts_it_in_force(personas, registrant, admin_client):
    registered = register(registrant)
    client = approve(registered["client_id"])
    put_json(registrant, manage(registered), metadata(client_name=OFFICIAL, redirect_uris=[TAKEOVER]),
             registered["registration_access_token"])
    queue = admin_client.get("/admin/restitution/pimsclient/?change=yes").content.decode()
    assert "Honest cloud" in queue
    page = admin_client.get(f"/admin/restitution/pimsclient/{client.pk}/change/").content.decode()
    assert "Honest cloud" in page and OFFICIAL in page and HONEST in page and TAKEOVER in page

    admin_client.post("/admin/restitution/pimsclient/", {"action": "apply_proposed_changes",
                                                          "_selected_action": [client.pk]})
    client.refresh_from_db()
    assert client.name == OFFICIAL and client.redirect_uris == TAKEOVER and client.proposed_changes == {}


def test_an_update_cannot_turn_a_confidential_client_into_a_public_one(personas, registrant):
    registered = register(registrant, token_endpoint_auth_method="client_secret_basic")
    approve(registered["client_id"])
    response = put_json(registrant, manage(registered), metadata(token_endpoint_auth_method="none"),
                        registered["registration_access_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert PimsClient.objects.get(client_id=registered["client_id"]).client_type == PimsClient.CLIENT_CONFIDENTIAL


def test_a_registration_access_token_expires(personas, registrant, settings):
    registered = register(registrant)
    checksum = hashlib.sha256(registered["registration_access_token"].encode()).hexdigest()
    token = get_access_token_model().objects.get(token_checksum=checksum)
    lifetime = settings.OAUTH2_PROVIDER["DCR_REGISTRATION_TOKEN_EXPIRE_SECONDS"]
    assert token.expires <= timezone.now() + timedelta(seconds=lifetime)

    token.expires = timezone.now() - timedelta(seconds=1)
    token.save()
    response = registrant.get(manage(registered),
                              HTTP_AUTHORIZATION=f"Bearer {registered['registration_access_token']}")
    assert response.status_code == 401


def test_each_read_answers_a_new_registration_token_and_the_old_one_dies(personas, registrant):
    registered = register(registrant)
    first = registered["registration_access_token"]
    read = registrant.get(manage(registered), HTTP_AUTHORIZATION=f"Bearer {first}")
    assert read.status_code == 200
    second = read.json()["registration_access_token"]
    assert second != first
    assert registrant.get(manage(registered), HTTP_AUTHORIZATION=f"Bearer {first}").status_code == 401
    third = registrant.get(manage(registered), HTTP_AUTHORIZATION=f"Bearer {second}")
    assert third.status_code == 200
    updated = put_json(registrant, manage(registered), metadata(client_name="Honest cloud 2"),
                       third.json()["registration_access_token"])
    assert updated.status_code == 200
    assert updated.json()["registration_access_token"] != third.json()["registration_access_token"]
    assert registrant.get(manage(registered), HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 401


# --- 2. Deleting a client cannot erase customers' consent records ---------------------------------


def test_deleting_a_client_ends_its_grants_and_tokens_but_keeps_every_record(personas, registrant):
    registered = register(registrant)
    approve(registered["client_id"])
    flow = alice_flow(personas, registered)
    tokens = flow.tokens()
    assert flow.me(tokens["access_token"]).status_code == 200
    pending_code = flow.code()  # consented again, code not yet exchanged
    client = PimsClient.objects.get(client_id=registered["client_id"])
    grants = set(Grant.objects.filter(client=client).values_list("pk", flat=True))
    events = AccessEvent.objects.filter(client=client).count()
    flows = ConsentFlow.objects.filter(client=client).count()
    assert grants and events and flows

    response = registrant.delete(manage(registered),
                                 HTTP_AUTHORIZATION=f"Bearer {registered['registration_access_token']}")
    assert response.status_code == 204

    assert set(Grant.objects.filter(client=client).values_list("pk", flat=True)) == grants
    assert AccessEvent.objects.filter(client=client).count() > events  # its revocation is logged too
    assert ConsentFlow.objects.filter(client=client).count() == flows
    last = Grant.objects.filter(client=client).order_by("-created_at").first()
    assert last.revoked_at is not None and last.revoked_reason == "client deleted"
    assert last.receipt["recipient"]["name"] == "Honest cloud"
    assert flow.me(tokens["access_token"]).status_code == 401
    assert flow.refresh(tokens["refresh_token"]).status_code in (400, 401)
    assert flow.exchange(pending_code).status_code in (400, 401)
    assert not get_access_token_model().objects.filter(application=client).exists()
    assert not get_grant_model().objects.filter(application=client).exists()
    assert not get_refresh_token_model().objects.filter(application=client, revoked__isnull=True).exists()

    client.refresh_from_db()
    assert client.name == "Honest cloud" and client.approval == PimsClient.Approval.DEPROVISIONED
    assert client.redirect_uris == ""
    dashboard = flow.browser.get("/account/").content.decode()
    assert "Honest cloud" in dashboard and "Revoke access for Honest cloud" not in dashboard
    # It can never start a flow again.
    again = flow.open_consent()
    assert "code=" not in again.get("Location", "") and "Honest cloud asks" not in again.content.decode()


def test_the_admin_cannot_delete_a_client_only_deprovision_it(flow, personas, admin_client):
    flow.tokens()
    trusted = personas.trusted
    assert admin_client.post(f"/admin/restitution/pimsclient/{trusted.pk}/delete/", {"post": "yes"}).status_code == 403
    admin_client.post("/admin/restitution/pimsclient/", {"action": "delete_selected",
                                                          "_selected_action": [trusted.pk], "post": "yes"})
    assert PimsClient.objects.filter(pk=trusted.pk).exists()

    admin_client.post("/admin/restitution/pimsclient/", {"action": "deprovision", "_selected_action": [trusted.pk]})
    grant = Grant.objects.get(client=trusted)
    assert grant.revoked_at is not None and grant.revoked_reason == "client deleted"
    admin_client.post("/admin/restitution/pimsclient/", {"action": "approve", "_selected_action": [trusted.pk]})
    assert PimsClient.objects.get(pk=trusted.pk).approval == PimsClient.Approval.DEPROVISIONED


def test_the_database_refuses_to_delete_a_client_with_consents(flow, personas):
    flow.tokens()
    with pytest.raises(ProtectedError):
        personas.trusted.delete()


# --- 3. Open registration is bounded ---------------------------------------------------------------


def test_one_address_cannot_register_without_limit(personas, settings):
    settings.GATEWAY_REGISTRATION_RATE = "3/h"
    flooder, other = Client(REMOTE_ADDR=_address()), Client(REMOTE_ADDR=_address())
    for _ in range(3):
        register(flooder)
    refused = post_json(flooder, "/o/register/", metadata())
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    register(other)


def test_twenty_thousand_redirect_uris_are_refused(personas, registrant):
    uris = [f"https://flood.example/cb/{n}" for n in range(20_000)]
    response = post_json(registrant, "/o/register/", metadata(redirect_uris=uris))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert not PimsClient.objects.filter(name="Honest cloud").exists()


@pytest.mark.parametrize("uris", [
    [f"https://many.example/cb/{n}" for n in range(11)],
    ["https://long.example/" + "a" * 1200],
    ["https://a.example/cb https://b.example/cb"],
    "https://not-a-list.example/cb",
    [],
])
def test_redirect_uris_are_bounded_in_number_and_length(personas, registrant, uris):
    response = post_json(registrant, "/o/register/", metadata(redirect_uris=uris))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize("overrides", [
    {"client_name": "x" * 240},
    {"client_name": {"en": "a dict"}},
    {"logo_uri": "https://logo.example/" + "l" * 300},
    {"tos_uri": "javascript:alert(1)"},
])
def test_other_fields_are_bounded_and_typed(personas, registrant, overrides):
    response = post_json(registrant, "/o/register/", metadata(**overrides))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize("grant_types", [["client_credentials"], ["implicit"], ["password"]])
def test_only_the_authorization_code_grant_can_be_registered(personas, registrant, grant_types):
    response = post_json(registrant, "/o/register/", metadata(grant_types=grant_types))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize("response_types", [["token"], ["code", "token"], ["code id_token"]])
def test_only_the_code_response_type_can_be_registered(personas, registrant, response_types):
    response = post_json(registrant, "/o/register/", metadata(response_types=response_types))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_a_registered_client_is_marked_dynamic_and_answered_in_full_never_cached(personas, registrant):
    response = post_json(registrant, "/o/register/", metadata(token_endpoint_auth_method="client_secret_basic"))
    assert response.status_code == 201
    body = response.json()
    assert body["client_secret_expires_at"] == 0 and body["response_types"] == ["code"]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["client_uri"] == "https://honest.example/"
    assert "no-store" in _directives(response) and response["Pragma"] == "no-cache"
    client = PimsClient.objects.get(client_id=body["client_id"])
    assert client.registered_dynamically and client.approval == PimsClient.Approval.PENDING
    assert client.homepage_url == "https://honest.example/"

    read = registrant.get(manage(body), HTTP_AUTHORIZATION=f"Bearer {body['registration_access_token']}")
    assert "no-store" in _directives(read) and read["Pragma"] == "no-cache"
    assert read.json()["client_secret_expires_at"] == 0 and "client_secret" not in read.json()
    updated = put_json(registrant, manage(body), metadata(token_endpoint_auth_method="client_secret_basic"),
                       read.json()["registration_access_token"])
    assert "no-store" in _directives(updated) and updated["Pragma"] == "no-cache"
    assert updated.json()["response_types"] == ["code"]


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,
    "[" * 5_000 + "]" * 5_000,
    '{"client_name": ' + "[" * 5_000 + "]" * 5_000 + "}",
])
def test_a_malformed_body_is_a_400_never_a_500(personas, registrant, body):
    response = registrant.post("/o/register/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata" and response.json()["error_description"]


def test_a_malformed_update_is_a_400_never_a_500(personas, registrant):
    registered = register(registrant)
    response = put_json(registrant, manage(registered), "[" * 100_000 + "]" * 100_000,
                        registered["registration_access_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


@pytest.fixture
def admin_client(db) -> Client:
    staff = get_user_model().objects.create_superuser("operator", "operator@holder.example", "op-password-2025")
    browser = Client()
    browser.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    return browser


def _directives(response) -> set[str]:
    return {part.strip() for part in response["Cache-Control"].split(",")}
