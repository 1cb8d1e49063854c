"""docs/operations.md documents every environment variable the settings and the web server read."""

from __future__ import annotations

import re

from tests.conftest import ROOT

READS = re.compile(r"""(?:env\.(?:str|int|bool|float|list|db)\(\s*|_read_secret\(|os\.environ\.get\(|"""
                   r"""os\.environ\[)"([A-Z][A-Z0-9_]+)\"""")


def test_every_environment_variable_is_in_the_configuration_reference():
    read = set()
    for path in (ROOT / "config").glob("*.py"):
        read |= set(READS.findall(path.read_text()))
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "GATEWAY_METRICS_TOKEN", "WEB_CONCURRENCY"} <= read
    doc = (ROOT / "docs" / "operations.md").read_text()
    missing = sorted(name for name in read if f"`{name}`" not in doc)
    assert missing == [], f"not in docs/operations.md: {missing}"


def test_the_image_starts_gunicorn_with_the_config_module():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert '"--config", "python:config.gunicorn"' in dockerfile
    assert (ROOT / "config" / "gunicorn.py").exists()
