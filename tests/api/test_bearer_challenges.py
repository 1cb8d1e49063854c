"""The API refuses a request as RFC 6750 §3 says, and says why in an RFC 9457 problem."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from tests.personas import CONTRACTS, CURVE, scope_of

PROBLEM = "application/problem+json"


def test_a_revoked_token_is_an_invalid_token_not_a_missing_one(flow):
    token = flow.tokens()["access_token"]
    assert flow.api.post("/o/revoke_token/", {"token": token, "client_id": "trusted-cloud"}).status_code == 200
    response = flow.me(token)
    assert response.status_code == 401 and response["Content-Type"] == PROBLEM
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    body = response.json()
    assert body["code"] == "invalid_token" and "not provided" not in body["detail"]


def test_an_expired_token_is_an_invalid_token(flow):
    token = flow.tokens()["access_token"]
    get_access_token_model().objects.update(expires=timezone.now() - timedelta(seconds=1))
    response = flow.me(token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert response.json()["code"] == "invalid_token" and "expired" in response.json()["detail"]


def test_no_token_is_a_bare_bearer_challenge(flow):
    response = flow.api.get("/api/v1/me")
    assert response.status_code == 401 and response["Content-Type"] == PROBLEM
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer") and "error=" not in challenge
    assert response.json()["code"] == "authentication_required"


def test_a_token_narrower_than_the_consent_gets_insufficient_scope(flow):
    tokens = flow.tokens()
    narrower = flow.refresh(tokens["refresh_token"], scope=scope_of(CURVE)).json()
    assert narrower["scope"] == scope_of(CURVE)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {narrower['access_token']}"}
    assert flow.api.get(f"/api/v1/datasets/{CURVE}/schema", **auth).status_code == 200
    response = flow.api.get(f"/api/v1/datasets/{CONTRACTS}/schema", **auth)
    assert response.status_code == 403 and response["Content-Type"] == PROBLEM
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert f'scope="dataset:{CONTRACTS}"' in response["WWW-Authenticate"]
    assert response.json()["code"] == "insufficient_scope"
