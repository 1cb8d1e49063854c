"""/readyz: ready with PostgreSQL, Redis, the broker and storage up; not ready (500) when
PostgreSQL or Redis cannot be reached. The unreachable cases run the real view in a child
process whose settings point at a closed port: the shared servers are never touched."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import ROOT, missing, on_real_services

PROBE = """
import django, json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.test import Client
response = Client().get("/readyz", HTTP_ACCEPT="application/json")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _probe(**env: str) -> dict:
    full_env = {**os.environ, "GATEWAY_MODE": "test", "DATABASE_URL": _database_url(),
                "REDIS_URL": settings.REDIS_URL, "CELERY_TASK_ALWAYS_EAGER": "false", **env}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def real_services(transactional_db):
    if not on_real_services():
        missing("needs PostgreSQL and Redis")


def test_it_is_ready_when_every_service_answers(real_services):
    result = _probe()
    assert result["status"] == 200
    assert set(result["body"]) == {"Database(alias='default')", "Storage(alias='default')", "RedisPing()", "Broker()"}
    assert set(result["body"].values()) == {"OK"}


def test_it_is_not_ready_when_postgresql_is_unreachable(real_services):
    dead = f"postgres://postgres@127.0.0.1:{_closed_port()}/restitution"
    result = _probe(DATABASE_URL=dead)
    assert result["status"] == 500
    assert result["body"]["Database(alias='default')"] != "OK"
    assert result["body"]["RedisPing()"] == "OK"


def test_it_is_not_ready_when_redis_is_unreachable(real_services):
    result = _probe(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0")
    assert result["status"] == 500
    assert "Redis unreachable" in result["body"]["RedisPing()"]
    assert "broker unreachable" in result["body"]["Broker()"]  # the broker is that Redis too
    assert result["body"]["Database(alias='default')"] == "OK"


def test_liveness_never_touches_the_services(db):
    # /healthz answers before host checks and without a database round trip.
    response = Client(HTTP_HOST="10.1.2.3").get("/healthz")
    assert response.status_code == 200 and response.content == b"ok\n"


def test_the_probe_answers_json_without_credentials(db):
    response = Client().get("/readyz")
    assert response["Content-Type"].startswith("application/json")
    text = response.content.decode()
    assert "redis://" not in text and "postgres://" not in text
