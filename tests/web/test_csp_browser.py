"""The Content Security Policy breaks nothing: Swagger UI and Redoc load their self-hosted assets
and render in Chromium with no script, style or font refused."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from restitution.catalogue import sync_catalogue

pytestmark = pytest.mark.browser


def _violations(page: Page) -> list[str]:
    found: list[str] = []
    page.on("console", lambda message: found.append(message.text)
            if "Content Security Policy" in message.text else None)
    return found


def test_swagger_ui_and_redoc_render_under_the_policy(live_server, transactional_db, page: Page) -> None:
    sync_catalogue()
    violations = _violations(page)
    response = page.goto(f"{live_server.url}/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    page.goto(f"{live_server.url}/api/redoc/")
    expect(page.locator("redoc h1, [role=navigation]").first).to_be_visible()
    expect(page.get_by_text("Restitution gateway — portability API").first).to_be_visible()
    # The one thing refused is Redoc's own branding image on its CDN (cosmetic, by design):
    # no script, style, font or API call of either page is.
    assert [v for v in violations if "cdn.redoc.ly/redoc/logo-mini.svg" not in v] == []
