"""The browser harness end to end: real Chromium, the live server, the PostgreSQL test database."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

USERNAME = "smoke-admin"
PASSWORD = "correct-horse-battery-staple-42"  # noqa: S105


@pytest.fixture
def staff_user(transactional_db: None) -> object:
    from django.contrib.auth.models import User

    return User.objects.create_superuser(USERNAME, "smoke-admin@example.test", PASSWORD)


def log_in(page: Page, base_url: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def test_admin_login(live_server, staff_user, page: Page, artifacts_dir: Path) -> None:
    log_in(page, live_server.url, "not-the-password")
    expect(page.locator(".errornote")).to_contain_text("Please enter the correct username and password")
    expect(page).to_have_url(f"{live_server.url}/admin/login/")

    log_in(page, live_server.url, PASSWORD)
    expect(page).to_have_url(f"{live_server.url}/admin/")
    expect(page.locator("h1")).to_have_text("What needs attention")
    expect(page.locator("#user-tools")).to_contain_text(USERNAME)
    page.screenshot(path=str(artifacts_dir / "admin-smoke.png"), full_page=True)
    assert (artifacts_dir / "admin-smoke.png").stat().st_size > 0
