"""The operator console in a real browser: its home and lists pass axe-core (no serious or
critical violation: target sizes, labels) after a client registered dynamically."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import Page

from tests.web.a11y import axe_violations

pytestmark = pytest.mark.browser

USERNAME = "console-operator"
PASSWORD = "correct-horse-battery-staple-43"  # noqa: S105

PAGES = ["/admin/", "/admin/restitution/pimsclient/", "/admin/oauth2_provider/accesstoken/",
         "/admin/restitution/extractionrun/", "/admin/restitution/grant/", "/admin/operator-metrics/",
         "/admin/connectors_out/destination/", "/admin/restitution/pimsclient/add/"]


@pytest.fixture
def operator(transactional_db: None) -> object:
    from django.contrib.auth.models import User

    return User.objects.create_superuser(USERNAME, "operator@example.test", PASSWORD)


def test_the_console_passes_axe_after_a_dynamic_registration(live_server, operator, page: Page,
                                                             artifacts_dir: Path) -> None:
    from oauth2_provider.models import get_access_token_model

    body = {"client_name": "Honest cloud", "redirect_uris": ["https://honest.example/callback"],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none"}
    assert Client(REMOTE_ADDR="10.1.2.3").post("/o/register/", json.dumps(body),
                                               content_type="application/json").status_code == 201
    get_access_token_model().objects.update(expires=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    problems = {}
    for path in PAGES:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        found = axe_violations(page)
        if found:
            problems[path] = found
    page.goto(f"{live_server.url}/admin/")
    page.screenshot(path=str(artifacts_dir / "admin-console-home.png"), full_page=True)
    assert problems == {}
