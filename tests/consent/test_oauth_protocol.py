"""The OAuth endpoints to the letter of their RFCs, each rule tested from the side it refuses."""

from __future__ import annotations

import base64

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

from restitution.models import ConsentFlow, Dataset, Grant, PimsClient
from tests.personas import CALLS, CONTRACTS, CURVE, Flow, scope_of

VAULT_REDIRECT = "https://vault.example/callback"
VAULT_SECRET = "vault-secret-" + "v" * 50  # noqa: S105


@pytest.fixture
def vault(personas) -> PimsClient:
    """A second approved client, confidential: it authenticates with a secret."""
    client = PimsClient(name="Vault", client_id="vault", client_type=PimsClient.CLIENT_CONFIDENTIAL,
                        authorization_grant_type=PimsClient.GRANT_AUTHORIZATION_CODE, redirect_uris=VAULT_REDIRECT,
                        algorithm="", approval=PimsClient.Approval.APPROVED, client_secret=VAULT_SECRET,
                        purpose_en="Keep your papers.")
    client.save()
    client.allowed_datasets.set(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS]))
    return client


@pytest.fixture
def vault_flow(flow, vault) -> Flow:
    return Flow(flow.browser, Client(), client_id="vault", redirect_uri=VAULT_REDIRECT)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def vault_tokens(vault_flow: Flow) -> dict:
    response = vault_flow.exchange(vault_flow.code(), client_secret=VAULT_SECRET)
    assert response.status_code == 200, response.content
    return response.json()


def introspect(token: str, *, auth: str | None = basic("vault", VAULT_SECRET), **extra):
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    return Client().post("/o/introspect/", {"token": token, **extra}, **headers)


# --- Introspection (RFC 7662) ----------------------------------------------------------------

def test_a_client_introspecting_its_token_learns_the_pairwise_subject_never_the_login(vault_flow, personas):
    from restitution.consent import pairwise_subject

    tokens = vault_tokens(vault_flow)
    body = introspect(tokens["access_token"]).json()
    assert body["active"] is True and body["client_id"] == "vault"
    assert set(body["scope"].split()) == {f"dataset:{CURVE}", f"dataset:{CONTRACTS}"}
    assert body["sub"] == pairwise_subject(customer_reference=personas.alice.reference, client_id="vault")
    assert "username" not in body
    assert "alice" not in str(body) and personas.alice.reference not in str(body)
    assert str(personas.alice.pk) not in body.values() and personas.alice.user.pk not in body.values()


def test_a_client_learns_nothing_of_another_clients_token(flow, vault):
    trusted_tokens = flow.tokens()
    for token in (trusted_tokens["access_token"], trusted_tokens["refresh_token"]):
        response = introspect(token)
        assert response.status_code == 200
        assert response.json() == {"active": False}


def test_refresh_tokens_are_found_with_or_without_the_hint(vault_flow):
    tokens = vault_tokens(vault_flow)
    for hint in ({}, {"token_type_hint": "refresh_token"}, {"token_type_hint": "access_token"}):
        body = introspect(tokens["refresh_token"], **hint).json()
        assert body["active"] is True and body["client_id"] == "vault", hint
    assert introspect(tokens["access_token"], token_type_hint="refresh_token").json()["active"] is True


def test_a_revoked_or_ended_token_is_inactive(vault_flow, personas):
    tokens = vault_tokens(vault_flow)
    Grant.objects.filter(customer=personas.alice).update(ended_at=Grant.objects.get().created_at)
    assert introspect(tokens["access_token"]).json() == {"active": False}
    assert introspect(tokens["refresh_token"]).json() == {"active": False}


def test_bad_client_credentials_are_an_invalid_client_with_a_basic_challenge(vault_flow):
    token = vault_tokens(vault_flow)["access_token"]
    for auth, extra in ((basic("vault", "wrong"), {}), (None, {}), (None, {"client_id": "trusted-cloud"}),
                        (None, {"client_id": "vault", "client_secret": "wrong"}), (f"Bearer {token}", {})):
        response = introspect(token, auth=auth, **extra)
        assert response.status_code == 401, (auth, extra)
        assert response.json()["error"] == "invalid_client"
        assert response["WWW-Authenticate"].startswith("Basic ")


def test_introspection_is_post_only(vault_flow):
    token = vault_tokens(vault_flow)["access_token"]
    response = Client().get(f"/o/introspect/?token={token}", HTTP_AUTHORIZATION=basic("vault", VAULT_SECRET))
    assert response.status_code == 405


# --- The consent page is always shown ---------------------------------------------------------

def test_approval_prompt_auto_does_not_skip_the_consent_page(flow):
    flow.tokens()
    page = flow.open_consent(approval_prompt="auto")
    assert page.status_code == 200 and page.context["form"] is not None
    assert "code=" not in page.get("Location", "")


# --- A code used twice (RFC 6749 §4.1.2) ------------------------------------------------------

def test_a_code_exchanged_twice_revokes_the_tokens_of_the_first_exchange(flow):
    code = flow.code()
    first = flow.exchange(code).json()
    renewed = flow.refresh(first["refresh_token"]).json()  # rotation keeps the family
    again = flow.exchange(code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert flow.me(first["access_token"]).status_code == 401
    assert flow.me(renewed["access_token"]).status_code == 401
    assert flow.refresh(renewed["refresh_token"]).status_code == 400


# --- Server metadata (RFC 8414) and the issuer --------------------------------------------------

def test_the_metadata_lists_each_endpoints_real_authentication_methods(client, personas):
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"none", "client_secret_basic",
                                                                  "client_secret_post"}
    assert set(meta["revocation_endpoint_auth_methods_supported"]) == {"none", "client_secret_basic",
                                                                       "client_secret_post"}
    assert set(meta["introspection_endpoint_auth_methods_supported"]) == {"client_secret_basic",
                                                                          "client_secret_post"}


def test_a_forged_host_changes_neither_the_issuer_nor_any_endpoint(client, personas, settings):
    settings.ALLOWED_HOSTS = ["*"]  # as behind a proxy that passes any Host through
    meta = client.get("/.well-known/oauth-authorization-server", HTTP_HOST="evil.example").json()
    assert meta["issuer"] == settings.GATEWAY_ISSUER
    urls = [v for k, v in meta.items() if k.endswith("_endpoint")]
    assert len(urls) >= 5 and all(url.startswith(settings.GATEWAY_ISSUER + "/") for url in urls)
    assert "evil.example" not in str(meta)


def test_a_forged_host_does_not_change_the_iss_of_the_authorization_response(flow, settings):
    settings.ALLOWED_HOSTS = ["*"]
    flow.browser.defaults["HTTP_HOST"] = "evil.example"
    assert flow.redirect_params(flow.approve())["iss"] == settings.GATEWAY_ISSUER


# --- iss in error responses too (RFC 9207 §2) ---------------------------------------------------

def test_a_refusal_names_the_issuer(flow):
    params = flow.redirect_params(flow.approve(allow=False))
    assert params["error"] == "access_denied" and params["iss"] == settings.GATEWAY_ISSUER


def test_an_invalid_request_names_the_issuer(flow):
    for overrides in ({"scope": scope_of(CALLS)}, {"code_challenge_method": "plain"}, {"state": None}):
        params = flow.redirect_params(flow.open_consent(**overrides))
        assert params["error"] in ("invalid_scope", "invalid_request"), overrides
        assert params["iss"] == settings.GATEWAY_ISSUER, overrides


# --- Token endpoint: a failed client authentication (RFC 6749 §5.2) ----------------------------

def test_a_wrong_client_secret_at_the_token_endpoint_gets_a_basic_challenge(vault_flow):
    code = vault_flow.code()
    response = Client().post("/o/token/", {"grant_type": "authorization_code", "code": code,
                                           "redirect_uri": VAULT_REDIRECT, "code_verifier": vault_flow.verifier},
                             HTTP_AUTHORIZATION=basic("vault", "wrong"))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert response["WWW-Authenticate"].startswith("Basic ")


def test_a_wrong_client_secret_at_the_revocation_endpoint_gets_a_basic_challenge(vault_flow):
    token = vault_tokens(vault_flow)["access_token"]
    response = Client().post("/o/revoke_token/", {"token": token}, HTTP_AUTHORIZATION=basic("vault", "wrong"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic ")


# --- Anonymous visitors write within a budget --------------------------------------------------

def test_anonymous_requests_for_the_consent_page_write_a_bounded_number_of_rows(personas, settings):
    settings.GATEWAY_CONSENT_FLOWS_PER_IP_HOUR = 3
    browser = Flow(Client(), Client())
    for n in range(8):
        browser.browser = Client()  # a new visitor each time, no cookie kept
        response = browser.open_consent(state=f"st-{n}")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert ConsentFlow.objects.count() == 3
    assert Session.objects.count() <= 3


# --- A consent form altered on its way back -----------------------------------------------------

def test_a_consent_form_adding_a_dataset_the_client_may_not_ask_for_is_refused_on_the_page(flow):
    page = flow.open_consent()
    form = page.context["form"]
    data = {name: form[name].value() or "" for name in
            ("redirect_uri", "client_id", "state", "response_type", "code_challenge", "code_challenge_method")}
    data.update({"scope": scope_of(CURVE, CONTRACTS, CALLS), "datasets": [CURVE, CALLS], "duration": "3m",
                 "allow": "Authorize"})
    response = flow.browser.post("/o/authorize/", data)
    assert response.status_code == 400
    assert "may not ask for" in response.content.decode()
    assert not Grant.objects.exists()
