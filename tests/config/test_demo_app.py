"""The demo is a client of the product: its app and commands exist in the embedded and test
shapes, never in production."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

GOOD_SECRET = "x" * 50
PROBE = ("import django; django.setup(); from django.apps import apps; "
         "from django.core.management import get_commands; commands = get_commands(); "
         "print(apps.is_installed('demo'), 'demo' in commands, 'demo_serve' in commands, "
         "'publish_catalogue' in commands)")


def _probe(env: dict[str, str]) -> list[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DATABASE_URL", "REDIS_URL", "GATEWAY_MODE", "DJANGO_SECRET_KEY", "DJANGO_DEBUG"}}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_production_has_neither_the_demo_app_nor_its_commands():
    assert _probe({"GATEWAY_MODE": "production", "DJANGO_SECRET_KEY": GOOD_SECRET,
                   "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
                   "REDIS_URL": "redis://127.0.0.1:6379/0",
                   "DJANGO_ALLOWED_HOSTS": "gateway.example"}) == ["False", "False", "False", "True"]


def test_the_embedded_and_test_shapes_have_the_demo():
    assert _probe({}) == ["True", "True", "True", "True"]
    assert _probe({"GATEWAY_MODE": "test", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x"}) == [
        "True", "True", "True", "True"]
