"""Switching language on the consent page keeps what the customer chose (real Chromium)."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlencode

import pytest

from tests.personas import CONTRACTS, CURVE, PASSWORD, scope_of
from tests.web.test_consent_browser import client_callback

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def authorize_url(live_server, personas) -> str:
    verifier = "language-test-verifier-" + "y" * 30
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return live_server.url + "/o/authorize/?" + urlencode({
        "response_type": "code", "client_id": "trusted-cloud", "redirect_uri": client_callback(live_server, personas),
        "scope": scope_of(CURVE, CONTRACTS), "state": "lang-state", "code_challenge": challenge,
        "code_challenge_method": "S256"})


def test_switching_language_keeps_the_customers_ticks(live_server, personas, page, artifacts_dir):
    page.goto(authorize_url(live_server, personas))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Trusted cloud asks to access your data").wait_for()
    page.get_by_label(re.compile("Insurance contracts")).uncheck()
    page.get_by_label("12 months (the longest possible)").check()

    page.select_option("#language", "fr")
    page.locator("form.lang button[type=submit]").click()
    page.wait_for_load_state("load")
    page.locator("html[lang=fr]").wait_for()
    assert page.locator(f"#ds-{CURVE}").is_checked()
    assert not page.locator(f"#ds-{CONTRACTS}").is_checked()  # still unticked, in French too
    assert page.locator("input[name=duration][value='12m']").is_checked()
    page.screenshot(path=str(artifacts_dir / "consent-page-fr-after-switch.png"), full_page=True)

    # A new request starts from the client's full request again.
    page.evaluate("() => sessionStorage.clear()")
    page.reload()
    assert page.locator(f"#ds-{CONTRACTS}").is_checked()
