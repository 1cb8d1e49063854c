"""Personas (a pytest plugin, loaded by tests/conftest.py): customers alice and bob, a trusted
PIMS client and an intruder client, and a driver of the authorization code flow."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from restitution.catalogue import sync_catalogue
from restitution.models import Customer, Dataset, PimsClient

PASSWORD = "correct-horse-battery-staple"  # noqa: S105
TRUSTED_REDIRECT = "https://trusted.example/callback"
INTRUDER_REDIRECT = "https://intruder.example/callback"
CURVE, CONTRACTS, CALLS = "energy-load-curve", "insurance-contracts", "telco-call-log"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def scope_of(*slugs: str) -> str:
    return " ".join(f"dataset:{slug}" for slug in slugs)


@dataclass
class Personas:
    alice: Customer
    bob: Customer
    trusted: PimsClient
    intruder: PimsClient


def _customer(username: str, reference: str) -> Customer:
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    return Customer.objects.create(user=user, reference=reference, display_name=username.title())


@pytest.fixture
def personas(db) -> Personas:
    sync_catalogue()
    trusted = PimsClient.objects.create(
        name="Trusted cloud", client_id="trusted-cloud", client_type=PimsClient.CLIENT_PUBLIC,
        authorization_grant_type=PimsClient.GRANT_AUTHORIZATION_CODE, redirect_uris=TRUSTED_REDIRECT,
        algorithm="", approval=PimsClient.Approval.APPROVED, purpose_en="Show you your data.",
        homepage_url="https://trusted.example/", privacy_policy_url="https://trusted.example/privacy",
    )
    trusted.allowed_datasets.set(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS]))
    intruder = PimsClient.objects.create(
        name="Intruder", client_id="intruder", client_type=PimsClient.CLIENT_PUBLIC,
        authorization_grant_type=PimsClient.GRANT_AUTHORIZATION_CODE, redirect_uris=INTRUDER_REDIRECT,
        algorithm="",  # approval stays pending
    )
    intruder.allowed_datasets.set(Dataset.objects.all())
    return Personas(alice=_customer("alice", "C-ALICE"), bob=_customer("bob", "C-BOB"),
                    trusted=trusted, intruder=intruder)


class Flow:
    """Drives the authorization code flow through the real views, as a browser and a client would."""

    def __init__(self, browser: Client, api: Client, client_id: str = "trusted-cloud",
                 redirect_uri: str = TRUSTED_REDIRECT) -> None:
        self.browser, self.api = browser, api
        self.client_id, self.redirect_uri = client_id, redirect_uri
        self.verifier, self.challenge = pkce_pair()

    def authorize_params(self, **overrides) -> dict[str, str]:
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                  "scope": scope_of(CURVE, CONTRACTS), "state": "st-123", "code_challenge": self.challenge,
                  "code_challenge_method": "S256"}
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def open_consent(self, **overrides):
        return self.browser.get("/o/authorize/?" + urlencode(self.authorize_params(**overrides)))

    def approve(self, *, datasets=(CURVE, CONTRACTS), duration="3m", window_start="", window_end="",
                allow=True, **overrides):
        page = self.open_consent(**overrides)
        assert page.status_code == 200, page.content[:500]
        form = page.context["form"]
        data = {name: form[name].value() or "" for name in
                ("redirect_uri", "scope", "client_id", "state", "response_type", "code_challenge",
                 "code_challenge_method", "nonce", "claims")}
        data.update({"datasets": list(datasets), "duration": duration, "window_start": window_start,
                     "window_end": window_end})
        if allow:
            data["allow"] = "Authorize"
        return self.browser.post("/o/authorize/", data)

    @staticmethod
    def redirect_params(response) -> dict[str, str]:
        assert response.status_code == 302, response.content[:500]
        return {k: v[0] for k, v in parse_qs(urlparse(response["Location"]).query).items()}

    def code(self, **kwargs) -> str:
        response = self.approve(**kwargs)
        params = self.redirect_params(response)
        assert response["Location"].startswith(self.redirect_uri)
        assert params["state"] == "st-123"
        return params["code"]

    def exchange(self, code: str, *, verifier: str | None = None, **extra):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "client_id": self.client_id, "code_verifier": verifier or self.verifier, **extra}
        return self.api.post("/o/token/", data)

    def tokens(self, **kwargs) -> dict:
        response = self.exchange(self.code(**kwargs))
        assert response.status_code == 200, response.content
        return response.json()

    def refresh(self, refresh_token: str, **extra):
        return self.api.post("/o/token/", {"grant_type": "refresh_token", "refresh_token": refresh_token,
                                           "client_id": self.client_id, **extra})

    def me(self, access_token: str):
        return self.api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {access_token}")


@pytest.fixture
def flow(personas) -> Flow:
    browser = Client()
    browser.force_login(personas.alice.user, backend="django.contrib.auth.backends.ModelBackend")
    return Flow(browser, Client())


@pytest.fixture
def live_issuer(live_server, settings) -> str:
    """The live server is the issuer (GATEWAY_ISSUER is fixed, never read from the Host header)."""
    settings.GATEWAY_ISSUER = live_server.url
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url,
                                "OAUTH2_PROTECTED_RESOURCE_IDENTIFIER": live_server.url}
    return live_server.url
