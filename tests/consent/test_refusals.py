"""Every access rule, tested from the side that must be refused."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from restitution import consent
from restitution.models import Grant
from tests.personas import CALLS, CURVE, INTRUDER_REDIRECT, TRUSTED_REDIRECT, Flow, pkce_pair, scope_of


def _error_page_or_redirect(response) -> str:
    """The error a refused authorization request reports: on the page (unsafe redirect) or to the client."""
    if response.status_code == 302:
        return Flow.redirect_params(response)["error"]
    return response.context["error"].error


def test_it_refuses_a_wrong_redirect_uri(flow):
    response = flow.open_consent(redirect_uri="https://evil.example/callback")
    assert response.status_code == 400
    assert "evil.example" not in response.get("Location", "")


def test_it_refuses_an_extra_path_or_query_on_the_redirect_uri(flow):
    for uri in (TRUSTED_REDIRECT + "/extra", TRUSTED_REDIRECT + "?next=https://evil.example",
                TRUSTED_REDIRECT.replace("https", "http"), TRUSTED_REDIRECT + "/"):
        response = flow.open_consent(redirect_uri=uri)
        assert response.status_code == 400, uri


def test_it_refuses_a_request_without_pkce(flow):
    response = flow.open_consent(code_challenge=None, code_challenge_method=None)
    assert _error_page_or_redirect(response) == "invalid_request"
    assert not Grant.objects.exists()


def test_it_refuses_the_plain_pkce_method(flow):
    response = flow.open_consent(code_challenge=flow.verifier, code_challenge_method="plain")
    assert _error_page_or_redirect(response) == "invalid_request"


def test_it_refuses_a_request_without_state(flow):
    response = flow.open_consent(state=None)
    assert _error_page_or_redirect(response) == "invalid_request"


def test_it_refuses_a_wrong_code_verifier(flow):
    code = flow.code()
    wrong, _ = pkce_pair()
    response = flow.exchange(code, verifier=wrong)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_it_refuses_a_code_used_twice(flow):
    code = flow.code()
    assert flow.exchange(code).status_code == 200
    again = flow.exchange(code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_it_refuses_a_code_exchanged_with_another_redirect_uri(flow):
    code = flow.code()
    response = flow.exchange(code, redirect_uri="https://trusted.example/other")
    assert response.status_code == 400


def test_a_replayed_refresh_token_revokes_the_whole_family(flow):
    tokens = flow.tokens()
    first = flow.refresh(tokens["refresh_token"])
    assert first.status_code == 200
    replay = flow.refresh(tokens["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # The replay burnt the family: the token obtained legitimately is dead too.
    assert flow.refresh(first.json()["refresh_token"]).status_code == 400
    assert flow.me(first.json()["access_token"]).status_code == 401


def test_it_refuses_a_scope_the_client_may_not_ask_for(flow):
    response = flow.open_consent(scope=scope_of(CURVE, CALLS))
    assert _error_page_or_redirect(response) == "invalid_scope"


def test_it_refuses_a_refresh_asking_for_more_than_the_grant(flow):
    tokens = flow.tokens(datasets=[CURVE])
    response = flow.refresh(tokens["refresh_token"], scope=scope_of(CURVE, "insurance-contracts"))
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_a_token_forged_wider_than_its_grant_is_refused(flow, personas):
    tokens = flow.tokens(datasets=[CURVE])
    from oauth2_provider.models import get_access_token_model

    token = get_access_token_model().objects.get(user=personas.alice.user)
    token.scope = scope_of(CURVE, "insurance-contracts")
    token.save()
    assert flow.me(tokens["access_token"]).status_code == 401


def test_it_refuses_refresh_after_the_grant_expired(flow, personas):
    tokens = flow.tokens()
    Grant.objects.filter(customer=personas.alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert flow.refresh(tokens["refresh_token"]).status_code == 400
    assert flow.me(tokens["access_token"]).status_code == 401


def test_expired_grants_lose_their_tokens_and_say_so_once(flow, personas):
    flow.tokens()
    Grant.objects.filter(customer=personas.alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert consent.expire_due_grants() == 1
    assert consent.expire_due_grants() == 0
    from oauth2_provider.models import get_access_token_model

    assert not get_access_token_model().objects.filter(user=personas.alice.user).exists()


def test_it_refuses_refresh_and_access_after_revocation(flow, personas):
    tokens = flow.tokens()
    consent.revoke_grant(grant=Grant.objects.get(customer=personas.alice))
    assert flow.me(tokens["access_token"]).status_code == 401
    assert flow.refresh(tokens["refresh_token"]).status_code == 400


def test_a_code_issued_before_revocation_cannot_be_exchanged(flow, personas):
    code = flow.code()
    consent.revoke_grant(grant=Grant.objects.get(customer=personas.alice))
    assert flow.exchange(code).status_code == 400


def test_an_unapproved_client_cannot_start_a_flow(personas):
    browser = Client()
    browser.force_login(personas.alice.user, backend="django.contrib.auth.backends.ModelBackend")
    intruder = Flow(browser, Client(), client_id="intruder", redirect_uri=INTRUDER_REDIRECT)
    response = intruder.open_consent(scope=scope_of(CURVE))
    assert response.status_code in (400, 401)
    assert not Grant.objects.exists()


def test_a_client_suspended_after_consent_loses_its_tokens_at_once(flow, personas):
    tokens = flow.tokens()
    personas.trusted.approval = "suspended"
    personas.trusted.save()
    assert flow.me(tokens["access_token"]).status_code == 401
    assert flow.refresh(tokens["refresh_token"]).status_code in (400, 401)


def test_the_implicit_and_password_grants_do_not_exist(flow, personas):
    implicit = flow.open_consent(response_type="token")
    assert implicit.status_code in (302, 400)
    if implicit.status_code == 302:
        assert "access_token" not in implicit["Location"]
    password = flow.api.post("/o/token/", {"grant_type": "password", "username": "alice",
                                           "password": "correct-horse-battery-staple", "client_id": "trusted-cloud"})
    assert password.status_code in (400, 401)
    assert "access_token" not in password.content.decode()


def test_a_customer_cannot_see_or_revoke_another_customers_grant(flow, personas):
    flow.tokens()
    grant = Grant.objects.get(customer=personas.alice)
    bob = Client()
    bob.force_login(personas.bob.user, backend="django.contrib.auth.backends.ModelBackend")
    assert bob.post(f"/account/grants/{grant.receipt_id}/revoke/").status_code == 404
    assert bob.get(f"/account/grants/{grant.receipt_id}/receipt.json").status_code == 404
    assert "Trusted cloud" not in bob.get("/account/").content.decode()
    grant.refresh_from_db()
    assert grant.is_active()


def test_bob_cannot_use_alices_code(flow, personas):
    code = flow.code()
    bob_flow = Flow(Client(), Client())
    assert bob_flow.exchange(code).status_code == 400  # another verifier: PKCE binds the code


def test_the_consent_page_needs_a_login(personas):
    response = Flow(Client(), Client()).open_consent()
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_staff_account_that_is_no_customer_cannot_consent(flow, personas):
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_user("operator", password="x" * 20, is_staff=True)
    flow.browser.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    assert flow.open_consent().status_code == 403


def test_the_consent_post_needs_the_csrf_token(flow, personas):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(personas.alice.user, backend="django.contrib.auth.backends.ModelBackend")
    response = strict.post("/o/authorize/", {"client_id": "trusted-cloud", "allow": "Authorize"})
    assert response.status_code == 403
