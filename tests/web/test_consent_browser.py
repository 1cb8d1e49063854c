"""In real headless Chromium: log in, consent with one dataset unticked, land on the client with a
code; the dashboard shows the grant; revoking it works. Screenshots kept as test artefacts."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from restitution.models import Grant
from tests.personas import CONTRACTS, CURVE, PASSWORD, scope_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def client_callback(live_server, personas) -> str:
    """Point the trusted client's redirect URI at this server (its real site is not reachable
    here): the browser then lands on a URL the test can read, code and state included."""
    callback = live_server.url + "/_trusted-client/callback"
    personas.trusted.redirect_uris = callback
    personas.trusted.save()
    return callback


def test_a_customer_consents_sees_the_grant_and_revokes_it(live_server, personas, page, artifacts_dir):
    redirect_uri = client_callback(live_server, personas)
    verifier = "browser-test-verifier-" + "x" * 30
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = live_server.url + "/o/authorize/?" + urlencode({
        "response_type": "code", "client_id": "trusted-cloud", "redirect_uri": redirect_uri,
        "scope": scope_of(CURVE, CONTRACTS), "state": "browser-state", "code_challenge": challenge,
        "code_challenge_method": "S256"})

    page.goto(authorize)
    assert "/accounts/login/" in page.url
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("heading", name="Trusted cloud asks to access your data").wait_for()
    assert page.get_by_label(re.compile("Electricity load curve")).is_checked()
    page.screenshot(path=str(artifacts_dir / "consent-page.png"), full_page=True)
    page.get_by_label(re.compile("Insurance contracts")).uncheck()  # share the load curve only
    page.get_by_label("12 months (the longest possible)").check()
    page.get_by_role("button", name="Share the selected data").click()
    page.wait_for_url(redirect_uri + "?*")

    params = {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}
    assert params["state"] == "browser-state" and params["code"]
    grant = Grant.objects.get(customer=personas.alice)
    assert list(grant.datasets.values_list("slug", flat=True)) == [CURVE]

    page.goto(live_server.url + "/account/")
    page.get_by_role("heading", name="Where your data goes").wait_for()
    assert page.get_by_text("Trusted cloud").first.is_visible()
    page.screenshot(path=str(artifacts_dir / "dashboard.png"), full_page=True)
    page.get_by_role("button", name="Revoke access for Trusted cloud").click()
    page.get_by_text("can no longer read your data").wait_for()
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    assert page.get_by_text("No app or service can read your data.").is_visible()


def test_the_consent_page_works_with_the_keyboard_alone(live_server, personas, page):
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"k" * 50).digest()).rstrip(b"=").decode()
    redirect_uri = client_callback(live_server, personas)
    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/account/")
    page.goto(live_server.url + "/o/authorize/?" + urlencode({
        "response_type": "code", "client_id": "trusted-cloud", "redirect_uri": redirect_uri,
        "scope": scope_of(CURVE), "state": "k", "code_challenge": challenge, "code_challenge_method": "S256"}))
    page.get_by_role("button", name="Do not share").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(redirect_uri + "?*")
    assert parse_qs(urlparse(page.url).query)["error"] == ["access_denied"]
