"""The calls docs/pims-guide.md shows, made with the two most used Python OAuth libraries
(requests-oauthlib, Authlib) against the live server, as a public client with PKCE S256; and
requests-oauthlib's default call, which authenticates a public client with HTTP Basic and an
empty password, refused as the guide says."""

from __future__ import annotations

import secrets
from urllib.parse import urljoin

import pytest
import requests
from requests_oauthlib import OAuth2Session as OAuthlibSession

from tests.consent.test_independent_client import Customer
from tests.personas import TRUSTED_REDIRECT, scope_of

pytestmark = pytest.mark.django_db(transaction=True)

SCOPES = ["dataset:energy-load-curve", "dataset:insurance-contracts"]


def _me(base: str, token: dict) -> requests.Response:
    return requests.get(urljoin(base, "/api/v1/me"), headers={"Authorization": f"Bearer {token['access_token']}"})


def _authorize_with_requests_oauthlib(base: str) -> tuple[OAuthlibSession, str, dict]:
    meta = requests.get(urljoin(base, "/.well-known/oauth-authorization-server")).json()
    # As in the guide: a public client, PKCE S256 done by the library.
    session = OAuthlibSession("trusted-cloud", redirect_uri=TRUSTED_REDIRECT, scope=SCOPES, pkce="S256")
    url, _state = session.authorization_url(meta["authorization_endpoint"])
    callback = Customer(base, "alice").approve(url, datasets=["energy-load-curve"])
    return session, callback, meta


def test_requests_oauthlib_as_the_guide_shows_gets_a_token_refreshes_and_reads(live_server, live_issuer,
                                                                              personas, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the live test server is plain http
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")  # the customer may untick datasets
    base = live_server.url
    session, callback, meta = _authorize_with_requests_oauthlib(base)
    # The guide's call: include_client_id=True puts client_id in the body and sends no Basic header.
    token = session.fetch_token(meta["token_endpoint"], authorization_response=callback, include_client_id=True)
    assert token["scope"] == ["dataset:energy-load-curve"]  # oauthlib splits it
    me = session.get(urljoin(base, "/api/v1/me"))
    assert me.status_code == 200 and me.json()["datasets"] == ["energy-load-curve"]
    session.scope = token["scope"]  # refresh asks for the session's scope: what was granted, no more
    renewed = session.refresh_token(meta["token_endpoint"], client_id="trusted-cloud", include_client_id=True)
    assert renewed["access_token"] != token["access_token"] and _me(base, renewed).status_code == 200
    assert _me(base, token).status_code == 401  # the old access token went with the rotation


def test_requests_oauthlib_defaults_send_an_empty_basic_password_which_is_refused(live_server, live_issuer,
                                                                                   personas, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    session, callback, meta = _authorize_with_requests_oauthlib(live_server.url)
    sent = []
    session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request.headers))
    with pytest.raises(Exception) as refused:
        session.fetch_token(meta["token_endpoint"], authorization_response=callback)
    assert sent and sent[0].get("Authorization", "").startswith("Basic ")  # client_id and ""
    assert "invalid_client" in str(refused.value)


def test_authlib_as_the_guide_shows_gets_a_token_and_reads(live_server, live_issuer, personas):
    from authlib.integrations.requests_client import OAuth2Session

    base = live_server.url
    meta = requests.get(urljoin(base, "/.well-known/oauth-authorization-server")).json()
    client = OAuth2Session(client_id="trusted-cloud", redirect_uri=TRUSTED_REDIRECT,
                           scope=scope_of("energy-load-curve", "insurance-contracts"),
                           code_challenge_method="S256", token_endpoint_auth_method="none")
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier)
    callback = Customer(base, "alice").approve(url, datasets=["insurance-contracts"])
    token = client.fetch_token(meta["token_endpoint"], authorization_response=callback, code_verifier=verifier,
                               state=state)
    assert token["scope"] == "dataset:insurance-contracts"
    assert client.get(urljoin(base, "/api/v1/me")).json()["datasets"] == ["insurance-contracts"]
