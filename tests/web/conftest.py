"""Browser tests: a real headless Chromium, driven by Playwright, against Django's live server.

Debian's Chromium (/usr/bin/chromium, installed by .ci/run) is used, not a Playwright-downloaded
build. Tests in this folder are marked `browser`; they fail, naming it, where Chromium is missing.

Fixtures:
- browser (session): the Playwright `Browser`, shared by all tests of the session.
- page (function): a fresh context (en-GB, 1280x900) and page; on failure a screenshot is saved
  to tests/artifacts/<test>-failure.png.
- artifacts_dir (session): tests/artifacts/, git-ignored, where screenshots are kept.
- live_server (pytest-django): the app served from a thread, on the test database. Using it gives
  the test transactional_db semantics: data the test creates is committed, so the server thread
  sees it, and every table is flushed after the test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Playwright's sync API runs an asyncio event loop in the test's thread (in a greenlet). While it
# is alive, Django's async-safety check sees a running loop and raises SynchronousOnlyOperation
# on every ORM call made by the test or its fixtures (creating users, database setup and flush),
# although those calls are in fact synchronous. This is the documented way to turn the check off.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

WEB_DIR = Path(__file__).resolve().parent
ARTIFACTS = WEB_DIR.parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    # Without these Chromium keeps calling home (updates, sync, field trials, QUIC probes).
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DEFAULT_TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in this folder is a browser test (`-m "not browser"` leaves them out)."""
    for item in items:
        if WEB_DIR in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Keep each phase's report on the item, so `page` can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser, artifacts_dir: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.nodeid).strip("-")
            try:
                page.screenshot(path=str(artifacts_dir / f"{name}-failure.png"), full_page=True)
            except Exception:  # a broken page must not hide the test's own failure
                pass
        context.close()
