"""What can be checked of docker/ without a Docker engine: paths, commands, compose structure."""

from __future__ import annotations

import importlib
import re
import shlex

import yaml

from tests.conftest import ROOT

DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())


def test_every_path_the_image_copies_exists():
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY "):
            *sources, _target = shlex.split(line)[1:]
            for source in sources:
                assert (ROOT / source).exists(), source


def test_the_image_runs_as_a_non_root_user_with_a_health_check():
    assert re.search(r"^USER gateway$", DOCKERFILE, re.M)
    assert "HEALTHCHECK" in DOCKERFILE and "/healthz" in DOCKERFILE


def test_the_web_command_points_at_the_wsgi_application():
    cmd = re.search(r'^CMD \[(.*?)\]', DOCKERFILE, re.M | re.S).group(1)
    app = [part.strip(' "\\\n') for part in cmd.split(",")][1]
    module, _, attribute = app.partition(":")
    assert hasattr(importlib.import_module(module), attribute)


def test_compose_has_the_production_shape():
    services = COMPOSE["services"]
    assert {"web", "worker", "beat", "postgres", "redis", "migrate"} <= set(services)
    worker = services["worker"]["command"]
    assert worker[:4] == ["celery", "-A", "config", "worker"]
    assert "extraction" in worker[worker.index("-Q") + 1]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    assert importlib.import_module("config.celery").app.main == "restitution"
    env = services["web"]["environment"]
    assert env["GATEWAY_MODE"] == "production"
    assert "DJANGO_SECRET_KEY" in env and ":?" in env["DJANGO_SECRET_KEY"]


def test_liveness_is_answered_whatever_the_host(client):
    response = client.get("/healthz", HTTP_HOST="not-an-allowed-host.example")
    assert response.status_code == 200
