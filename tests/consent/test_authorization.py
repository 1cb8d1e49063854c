"""The authorization code flow with PKCE, as the RFCs and the consent page define it."""

from __future__ import annotations

import base64
import json

from django.test import Client

from restitution.models import AccessEvent, ExtractionRun, Grant
from tests.personas import CALLS, CONTRACTS, CURVE, TRUSTED_REDIRECT, pkce_pair


def test_the_consent_page_shows_who_asks_what_why_and_for_how_long(flow):
    page = flow.open_consent()
    html = page.content.decode()
    assert page.status_code == 200
    assert "Trusted cloud" in html and "https://trusted.example/privacy" in html
    assert "Show you your data." in html
    assert "Electricity load curve (30 minutes)" in html and "Insurance contracts" in html
    assert "12 months" in html and "One time" in html
    assert page["X-Frame-Options"] == "DENY"
    assert 'name="csrfmiddlewaretoken"' in html


def test_the_consent_page_speaks_french(flow):
    flow.browser.cookies["django_language"] = "fr"
    html = flow.open_consent().content.decode()
    assert "demande à accéder à vos données" in html
    assert "Courbe de charge électrique" in html


def test_approving_gives_a_code_then_tokens_with_the_chosen_scopes(flow, personas):
    tokens = flow.tokens()
    assert set(tokens["scope"].split()) == {f"dataset:{CURVE}", f"dataset:{CONTRACTS}"}
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    assert tokens["expires_in"] <= 600
    grant = Grant.objects.get(customer=personas.alice)
    assert grant.is_active() and grant.client == personas.trusted
    assert flow.me(tokens["access_token"]).status_code == 200


def test_the_authorization_response_names_the_issuer(flow):
    params = flow.redirect_params(flow.approve())
    assert params["iss"].startswith("http")  # RFC 9207 mix-up defence


def test_unticking_a_dataset_leaves_it_out_of_the_token(flow, personas):
    tokens = flow.tokens(datasets=[CURVE])
    assert tokens["scope"] == f"dataset:{CURVE}"
    grant = Grant.objects.get(customer=personas.alice)
    assert list(grant.datasets.values_list("slug", flat=True)) == [CURVE]
    assert flow.me(tokens["access_token"]).json()["datasets"] == [CURVE]


def test_unticking_everything_is_a_refusal(flow):
    params = flow.redirect_params(flow.approve(datasets=[]))
    assert params["error"] == "access_denied"
    assert not Grant.objects.exists()


def test_denying_returns_access_denied_to_the_client(flow):
    response = flow.approve(allow=False)
    params = flow.redirect_params(response)
    assert response["Location"].startswith(TRUSTED_REDIRECT)
    assert params["error"] == "access_denied" and params["state"] == "st-123"
    assert not Grant.objects.exists()


def test_a_grant_records_window_duration_receipt_and_queues_extraction(flow, personas):
    flow.tokens(duration="12m", window_start="2025-01-01", window_end="2025-06-30")
    grant = Grant.objects.get(customer=personas.alice)
    assert str(grant.window_start) == "2025-01-01" and str(grant.window_end) == "2025-06-30"
    assert 364 <= (grant.expires_at - grant.created_at).days <= 366
    receipt = grant.receipt
    assert receipt["receipt_id"] == str(grant.receipt_id)
    assert receipt["recipient"]["client_id"] == "trusted-cloud"
    assert {c["dataset"] for c in receipt["data_categories"]} == {CURVE, CONTRACTS}
    assert receipt["data_period"] == {"from": "2025-01-01", "to": "2025-06-30"}
    assert receipt["duration"]["type"] == "ongoing"
    assert receipt["purposes"][0]["purpose"] == "Show you your data."
    kinds = set(AccessEvent.objects.filter(customer=personas.alice).values_list("kind", flat=True))
    assert {"grant-created", "token-issued"} <= kinds
    # alice has no legacy identity in this test, so there is nothing to extract yet: the
    # request is made all the same (tested with identities in test_extraction_on_consent).
    assert ExtractionRun.objects.filter(customer=personas.alice).count() == 0


def test_an_upside_down_window_is_refused_on_the_page(flow):
    response = flow.approve(window_start="2025-06-30", window_end="2025-01-01")
    assert response.status_code == 400
    assert "must be before its end" in response.content.decode()
    assert not Grant.objects.exists()


def test_a_new_consent_replaces_the_previous_one(flow, personas):
    first = flow.tokens()
    flow.verifier, flow.challenge = pkce_pair()
    second = flow.tokens(datasets=[CURVE])
    assert Grant.objects.filter(customer=personas.alice, revoked_at__isnull=True).count() == 1
    assert flow.me(first["access_token"]).status_code == 401
    assert flow.me(second["access_token"]).status_code == 200


def test_refresh_rotates_and_carries_the_same_scopes(flow):
    tokens = flow.tokens()
    response = flow.refresh(tokens["refresh_token"])
    assert response.status_code == 200
    renewed = response.json()
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert set(renewed["scope"].split()) == set(tokens["scope"].split())
    assert flow.me(renewed["access_token"]).status_code == 200


def test_the_server_metadata_lists_endpoints_scopes_and_methods(client, personas):
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["authorization_endpoint"].endswith("/o/authorize/")
    assert meta["token_endpoint"].endswith("/o/token/")
    assert meta["revocation_endpoint"].endswith("/o/revoke_token/")
    assert meta["introspection_endpoint"].endswith("/o/introspect/")
    assert meta["registration_endpoint"].endswith("/o/register/")
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert meta["response_types_supported"] == ["code"]
    assert f"dataset:{CALLS}" in meta["scopes_supported"]


def test_revocation_endpoint_kills_the_token(flow):
    tokens = flow.tokens()
    response = flow.api.post("/o/revoke_token/", {"token": tokens["access_token"], "client_id": "trusted-cloud"})
    assert response.status_code == 200
    assert flow.me(tokens["access_token"]).status_code == 401


def test_introspection_tells_a_resource_server_nothing_of_a_token_it_does_not_hold(flow, personas):
    from restitution.models import PimsClient

    tokens = flow.tokens()
    resource = PimsClient(name="Resource server", client_id="rs", client_type=PimsClient.CLIENT_CONFIDENTIAL,
                          authorization_grant_type=PimsClient.GRANT_AUTHORIZATION_CODE,
                          redirect_uris="https://rs.example/cb", algorithm="",
                          approval=PimsClient.Approval.APPROVED, client_secret="rs-secret-" + "x" * 40)
    resource.save()
    introspect = Client().post("/o/introspect/", {"token": tokens["access_token"]},
                               HTTP_AUTHORIZATION="Basic " + base64.b64encode(
                                   b"rs:rs-secret-" + b"x" * 40).decode())
    assert introspect.status_code == 200
    assert introspect.json() == {"active": False}  # RFC 7662 §2.2: not its token
    anonymous = Client().post("/o/introspect/", {"token": tokens["access_token"]})
    assert anonymous.status_code == 401


def test_client_secrets_are_stored_hashed_with_the_fast_hasher(personas):
    from restitution.models import PimsClient

    client = PimsClient(name="Confidential", client_id="conf", client_type=PimsClient.CLIENT_CONFIDENTIAL,
                        authorization_grant_type=PimsClient.GRANT_AUTHORIZATION_CODE,
                        redirect_uris="https://conf.example/cb", algorithm="", client_secret="s3cr3t" * 10)
    client.save()
    stored = PimsClient.objects.get(pk=client.pk).client_secret
    assert stored.startswith("restitution-client-secret-sha256$") and "s3cr3t" not in stored


def test_dynamic_registration_lands_in_the_approval_queue(client, personas):
    response = client.post("/o/register/", json.dumps({
        "client_name": "New cloud", "redirect_uris": ["https://new.example/cb"],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }), content_type="application/json")
    assert response.status_code == 201, response.content
    from restitution.models import PimsClient

    registered = PimsClient.objects.get(client_id=response.json()["client_id"])
    assert registered.approval == PimsClient.Approval.PENDING
