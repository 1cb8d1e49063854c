"""Production settings pass `manage.py check --deploy` with zero warnings, and the responses
carry the security headers: HSTS, CSP, nosniff, secure cookies, X-Frame-Options DENY."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import ROOT, missing, on_real_services

PRODUCTION_PROBE = """
import django, json, os
django.setup()
from django.conf import settings
from django.test import Client, override_settings
# The hashed-name manifest comes from collectstatic at image build time (docker/Dockerfile).
override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
browser = Client(HTTP_HOST="gateway.example")
plain = browser.get("/accounts/login/")
secure = browser.get("/accounts/login/", secure=True)
print(json.dumps({
    "plain_status": plain.status_code, "plain_location": plain.get("Location", ""),
    "headers": {k.lower(): v for k, v in secure.headers.items()},
    "cookies": {name: {"secure": bool(c["secure"]), "httponly": bool(c["httponly"])}
                for name, c in secure.cookies.items()},
}))
"""


def _production_env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    # The browser tests switch Django's async-safety check off in this process; production never does.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {**inherited, "GATEWAY_MODE": "production", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "gateway.example",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": settings.REDIS_URL, "DJANGO_SETTINGS_MODULE": "config.settings"}


@pytest.fixture
def production_env(transactional_db) -> dict[str, str]:
    if not on_real_services():
        missing("needs PostgreSQL and Redis")
    return _production_env()


def test_check_deploy_gives_zero_warnings_with_production_settings(production_env):
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=production_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_production_responses_carry_the_security_headers(production_env):
    done = subprocess.run([sys.executable, "-c", PRODUCTION_PROBE], cwd=ROOT, env=production_env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["plain_status"] == 301 and result["plain_location"].startswith("https://gateway.example/")
    headers = result["headers"]
    assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert result["cookies"]["csrftoken"]["secure"] is True


def test_the_consent_page_cannot_be_framed(flow):
    page = flow.open_consent()
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]


def test_the_dashboard_script_runs_only_with_the_response_nonce(personas):
    browser = Client()
    browser.force_login(personas.alice.user, backend="django.contrib.auth.backends.ModelBackend")
    response = browser.get("/account/")
    policy = response["Content-Security-Policy"]
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<script nonce="{nonce}">' in response.content.decode()
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
