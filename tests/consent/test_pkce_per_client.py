"""PKCE: always required of public clients; the operator may relax it for one confidential
client (PimsClient.pkce_optional, e.g. a personal cloud whose OAuth flow sends none)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from restitution.models import PimsClient
from tests.consent.test_oauth_protocol import VAULT_REDIRECT, VAULT_SECRET, basic, vault, vault_flow  # noqa: F401
from tests.personas import Flow

NO_PKCE = {"code_challenge": None, "code_challenge_method": None}


def _code_without_pkce(flow: Flow):
    """The authorization without a code challenge: a code, or the refusal's redirect parameters."""
    return flow.redirect_params(flow.approve(**NO_PKCE) if flow.open_consent(**NO_PKCE).status_code == 200
                                else flow.open_consent(**NO_PKCE))


def _exchange_without_verifier(code: str, *, client_id: str, redirect_uri: str, secret: str | None = None):
    headers = {"HTTP_AUTHORIZATION": basic(client_id, secret)} if secret else {}
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if not secret:
        data["client_id"] = client_id
    return Client().post("/o/token/", data, **headers)


def test_a_public_client_without_pkce_is_refused(flow):
    params = _code_without_pkce(flow)
    assert params.get("error") == "invalid_request" and "code" not in params


def test_a_public_client_cannot_be_given_the_relaxation(personas):
    personas.trusted.pkce_optional = True
    with pytest.raises(ValidationError) as refused:
        personas.trusted.full_clean()
    assert "pkce_optional" in refused.value.message_dict
    # And should it be stored anyway (a bulk update, raw SQL), PKCE is still required of it.
    PimsClient.objects.filter(pk=personas.trusted.pk).update(pkce_optional=True)
    personas.trusted.refresh_from_db()
    assert personas.trusted.needs_pkce


def test_a_public_client_stored_with_the_flag_is_still_refused_without_pkce(flow, personas):
    PimsClient.objects.filter(pk=personas.trusted.pk).update(pkce_optional=True)
    params = _code_without_pkce(flow)
    assert params.get("error") == "invalid_request" and "code" not in params


def test_a_confidential_client_without_the_flag_is_refused_without_pkce(vault_flow):  # noqa: F811
    params = _code_without_pkce(vault_flow)
    assert params.get("error") == "invalid_request" and "code" not in params


def test_a_confidential_client_with_the_flag_gets_a_token_without_pkce(vault_flow, vault):  # noqa: F811
    vault.pkce_optional = True
    vault.full_clean()
    vault.save()
    params = _code_without_pkce(vault_flow)
    assert "code" in params, params
    response = _exchange_without_verifier(params["code"], client_id="vault", redirect_uri=VAULT_REDIRECT,
                                          secret=VAULT_SECRET)
    assert response.status_code == 200, response.content
    assert vault_flow.me(response.json()["access_token"]).status_code == 200


def test_the_relaxation_never_spares_the_secret(vault_flow, vault):  # noqa: F811
    vault.pkce_optional = True
    vault.save()
    code = _code_without_pkce(vault_flow)["code"]
    response = _exchange_without_verifier(code, client_id="vault", redirect_uri=VAULT_REDIRECT)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_a_relaxed_client_that_sends_pkce_is_held_to_it(vault_flow, vault):  # noqa: F811
    # A code issued with a challenge needs its verifier, flag or not.
    vault.pkce_optional = True
    vault.save()
    code = vault_flow.code()
    response = _exchange_without_verifier(code, client_id="vault", redirect_uri=VAULT_REDIRECT, secret=VAULT_SECRET)
    assert response.status_code == 400 and response.json()["error"] in ("invalid_grant", "invalid_request")
    assert vault_flow.exchange(vault_flow.code(), client_secret=VAULT_SECRET).status_code == 200


def _admin_post(operator, client_type: str, client_id: str):
    return operator.post("/admin/restitution/pimsclient/add/", {
        "client_id": client_id, "client_secret": "s" * 40, "client_type": client_type,
        "authorization_grant_type": "authorization-code", "name": client_id.title(),
        "redirect_uris": f"https://{client_id}.example/cb", "post_logout_redirect_uris": "", "allowed_origins": "",
        "approval": "pending", "algorithm": "", "hash_client_secret": "on", "pkce_optional": "on"})


def test_the_operator_sets_the_flag_in_the_admin_on_a_confidential_client_only(personas):
    from django.contrib.auth import get_user_model

    operator = Client()
    operator.force_login(get_user_model().objects.create_superuser("operator", "op@holder.example", "op-pw-2025-x"),
                         backend="django.contrib.auth.backends.ModelBackend")
    refused = _admin_post(operator, "public", "phone-app")
    assert refused.status_code == 200 and "A public client always needs PKCE" in refused.content.decode()
    assert not PimsClient.objects.filter(client_id="phone-app").exists()
    accepted = _admin_post(operator, "confidential", "cozy")
    assert accepted.status_code == 302, accepted.content.decode()[:2000]
    assert PimsClient.objects.get(client_id="cozy").pkce_optional is True
