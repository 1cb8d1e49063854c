"""Production settings refuse to start when misconfigured; the embedded default needs nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cryptography.fernet import Fernet

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
                     "DJANGO_ALLOWED_HOSTS": "gateway.example",
                     "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
                     "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "False"]


def test_the_secret_key_can_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(GOOD_SECRET)
    result = _setup({"GATEWAY_MODE": "production", "DJANGO_SECRET_KEY_FILE": str(secret),
                     "DJANGO_ALLOWED_HOSTS": "gateway.example"})
    assert result.returncode == 0, result.stderr


INSTALL_SECRETS = ("import django, json; django.setup(); from django.conf import settings; "
                   "print(json.dumps([settings.SECRET_KEY, settings.GATEWAY_ENCRYPTION_KEYS]))")


def _install_secrets(var_dir, mode: str = "embedded") -> list:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "GATEWAY_", "DJANGO_"))}
    result = subprocess.run([sys.executable, "-c", INSTALL_SECRETS], cwd=ROOT, capture_output=True, text=True,
                            env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "GATEWAY_MODE": mode,
                                 "GATEWAY_VAR_DIR": str(var_dir)}, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_each_installation_makes_its_own_secret_and_encryption_keys_and_keeps_them(tmp_path):
    """Nobody can forge an archive link or read stored cloud credentials of a demo installation
    with a key published in the source: each one makes its own, kept private under its var dir."""
    first = _install_secrets(tmp_path / "one")
    assert _install_secrets(tmp_path / "two") != first
    assert _install_secrets(tmp_path / "one") == first  # a restart keeps them
    assert _install_secrets(tmp_path / "one", mode="test") == first
    for name in ("secret_key", "encryption_key"):
        assert (tmp_path / "one" / name).stat().st_mode & 0o777 == 0o600
    assert len(first[0]) >= 50 and Fernet(first[1][0].encode())
    assert "embedded-demo-only-secret-key" not in (ROOT / "config" / "settings.py").read_text()


def test_a_configured_secret_key_wins_over_the_installation_one(tmp_path):
    result = _setup({"GATEWAY_VAR_DIR": str(tmp_path), "DJANGO_SECRET_KEY": GOOD_SECRET})
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_a_malformed_registration_limit_stops_the_start():
    for env in ({"OAUTH_REGISTRATION_RATE": "twenty per hour"}, {"OAUTH_REGISTRATION_TOKEN_SECONDS": "0"},
                {"OAUTH_REGISTRATION_MAX_BYTES": "-1"}):
        result = _setup(env)
        assert result.returncode != 0, env
        assert "OAUTH_REGISTRATION_" in result.stderr


def _issuer(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DATABASE_URL", "REDIS_URL", "GATEWAY_MODE", "DJANGO_SECRET_KEY", "DJANGO_DEBUG",
                          "GATEWAY_ISSUER", "DJANGO_ALLOWED_HOSTS"}}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.GATEWAY_ISSUER, settings.OAUTH2_PROVIDER['OIDC_ISS_ENDPOINT'])"],
        cwd=ROOT, env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "GATEWAY_MODE": "production",
                       "DJANGO_SECRET_KEY": GOOD_SECRET, **env},
        capture_output=True, text=True, timeout=60,
    )


def test_production_takes_its_issuer_from_the_setting_or_its_first_host():
    assert _issuer({"GATEWAY_ISSUER": "https://data.holder.example/"}).stdout.split() == [
        "https://data.holder.example", "https://data.holder.example"]
    assert _issuer({"DJANGO_ALLOWED_HOSTS": "gateway.example,.other.example"}).stdout.split()[0] == (
        "https://gateway.example")


def test_production_refuses_an_issuer_it_cannot_stand_by():
    for env in ({}, {"GATEWAY_ISSUER": "http://gateway.example"}, {"GATEWAY_ISSUER": "https://gateway.example/o?x=1"},
                {"DJANGO_ALLOWED_HOSTS": "*"}):
        result = _issuer(env)
        assert result.returncode != 0, env
        assert "ImproperlyConfigured: GATEWAY_ISSUER must be" in result.stderr, env
