"""Production settings refuse to start when misconfigured; the embedded default needs nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

GOOD_SECRET = "x" * 50


def _setup(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DATABASE_URL", "REDIS_URL", "GATEWAY_MODE", "DJANGO_SECRET_KEY", "DJANGO_DEBUG"}}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER)"],
        cwd=ROOT, env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True, text=True, timeout=60,
    )


def test_the_embedded_default_uses_sqlite_and_eager_tasks():
    result = _setup({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True"]


def test_production_refuses_debug():
    result = _setup({"GATEWAY_MODE": "production", "DJANGO_DEBUG": "true",
                     "DJANGO_SECRET_KEY": GOOD_SECRET})
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be off" in result.stderr


def test_production_refuses_a_missing_or_default_secret_key():
    result = _setup({"GATEWAY_MODE": "production"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
    short = _setup({"GATEWAY_MODE": "production", "DJANGO_SECRET_KEY": "short"})
    assert short.returncode != 0


def test_a_database_url_means_production_unless_told_otherwise():
    result = _setup({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"})
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_production_starts_with_a_real_secret_and_a_broker():
    result = _setup({"GATEWAY_MODE": "production", "DJANGO_SECRET_KEY": GOOD_SECRET,
                     "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
                     "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "False"]


def test_the_secret_key_can_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(GOOD_SECRET)
    result = _setup({"GATEWAY_MODE": "production", "DJANGO_SECRET_KEY_FILE": str(secret)})
    assert result.returncode == 0, result.stderr


def test_a_malformed_registration_limit_stops_the_start():
    for env in ({"OAUTH_REGISTRATION_RATE": "twenty per hour"}, {"OAUTH_REGISTRATION_TOKEN_SECONDS": "0"},
                {"OAUTH_REGISTRATION_MAX_BYTES": "-1"}):
        result = _setup(env)
        assert result.returncode != 0, env
        assert "OAUTH_REGISTRATION_" in result.stderr
