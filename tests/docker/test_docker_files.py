"""What can be checked of docker/ without an engine: paths, commands, compose's shape, the
package's data. `make image-check` runs the image itself (docs/operations.md)."""

from __future__ import annotations

import fnmatch
import importlib
import re
import shlex
import tomllib

import yaml

from tests.conftest import ROOT

DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
GATEWAY_SERVICES = ("migrate", "web", "worker", "beat")


def copied_from_the_context() -> list[str]:
    sources = []
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            *paths, _target = shlex.split(line)[1:]
            sources += paths
    return sources


def test_every_path_the_image_copies_exists():
    for source in copied_from_the_context():
        assert (ROOT / source).exists(), source


def test_the_build_context_lets_in_what_the_image_copies_and_nothing_else():
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for source in copied_from_the_context():
        assert source.rstrip("/").removeprefix("./") in allowed, source
    assert not {".venv", "var", "tests", "docs", ".git"} & allowed


def test_the_image_runs_as_a_non_root_user_with_a_health_check_that_follows_gunicorn_bind():
    assert re.search(r"^USER gateway$", DOCKERFILE, re.M)
    assert 'HEALTHCHECK' in DOCKERFILE and 'CMD ["gateway-healthcheck"]' in DOCKERFILE
    assert "COPY docker/healthcheck.py /usr/local/bin/gateway-healthcheck" in DOCKERFILE
    assert "127.0.0.1:8000" not in DOCKERFILE


def test_the_image_keeps_no_source_tree_or_build_leftovers():
    final_stage = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    assert "COPY restitution" not in final_stage and "COPY config" not in final_stage
    assert "pip wheel" in DOCKERFILE.rsplit("\nFROM ", 1)[0]


def test_templates_static_files_and_translations_are_package_data():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package in ("config", "restitution", "connectors_out"):
        patterns = package_data.get(package, [])
        for path in (ROOT / package).rglob("*"):
            if path.is_dir() or path.suffix in {".py", ".pyc"} or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT / package)
            inside_a_subpackage = (ROOT / package / relative.parts[0] / "__init__.py").exists()
            if inside_a_subpackage:
                continue
            assert any(fnmatch.fnmatch(str(relative), pattern.replace("**/", "*")) for pattern in patterns), \
                f"{package}/{relative} is not installed with the package"


def test_the_web_command_points_at_the_wsgi_application():
    cmd = re.search(r'^CMD \[(.*?)\]', DOCKERFILE, re.M | re.S).group(1)
    app = [part.strip(' "\\\n') for part in cmd.split(",")][1]
    module, _, attribute = app.partition(":")
    assert hasattr(importlib.import_module(module), attribute)


def celery_command(service: str) -> tuple[list[str], list[str]]:
    """(global options, the subcommand and its options) of a service's celery command."""
    command = SERVICES[service]["command"]
    assert command[:3] == ["celery", "-A", "config"]
    split = next(i for i, part in enumerate(command) if part in {"worker", "beat"})
    return command[3:split], command[split:]


def test_compose_has_the_production_shape():
    assert {"web", "worker", "beat", "postgres", "redis", "migrate", "proxy"} <= set(SERVICES)
    options, worker = celery_command("worker")
    assert worker[0] == "worker" and "extraction" in worker[worker.index("-Q") + 1]
    assert celery_command("beat")[1][0] == "beat"
    assert importlib.import_module("config.celery").app.main == "restitution"
    env = SERVICES["web"]["environment"]
    assert env["GATEWAY_MODE"] == "production"
    assert "DJANGO_SECRET_KEY" in env and ":?" in env["DJANGO_SECRET_KEY"]


def test_worker_and_beat_print_no_banner_outside_the_json_logs():
    for service in ("worker", "beat"):
        assert "--quiet" in celery_command(service)[0]


def test_every_gateway_container_gets_the_whole_env_file():
    for service in GATEWAY_SERVICES:
        assert SERVICES[service]["env_file"] == "${GATEWAY_ENV_FILE:-.env}", service


def test_the_deploy_step_migrates_publishes_the_catalogue_then_sets_up_the_schedules():
    command = SERVICES["migrate"]["command"]
    assert command[:2] == ["sh", "-c"]
    assert command[2] == (
        "django-admin migrate --noinput && django-admin publish_catalogue && django-admin setup_schedules")
    for service in ("web", "worker", "beat"):
        assert SERVICES[service]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}


def test_only_the_worker_and_web_are_health_checked_among_the_gateway_containers():
    assert SERVICES["migrate"]["healthcheck"] == {"test": ["NONE"]}
    assert SERVICES["beat"]["healthcheck"] == {"test": ["NONE"]}
    ping = SERVICES["worker"]["healthcheck"]["test"]
    assert ping[0] == "CMD-SHELL" and "celery -A config inspect ping --destination celery@$$(hostname)" in ping[1]
    assert "healthcheck" not in SERVICES["web"]  # the image's, which follows GUNICORN_BIND


def test_only_the_tls_proxy_is_published_and_gunicorn_is_reached_through_its_socket():
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"proxy"}
    assert any(port.endswith(":443") for port in SERVICES["proxy"]["ports"])
    bind = SERVICES["web"]["environment"]["GUNICORN_BIND"]
    assert bind.startswith("unix:/run/gateway/")
    assert "web-socket:/run/gateway" in SERVICES["web"]["volumes"]
    assert "web-socket:/run/gateway" in SERVICES["proxy"]["volumes"]
    caddyfile = (ROOT / "docker" / "Caddyfile").read_text()
    assert f"reverse_proxy unix/{bind.removeprefix('unix:')}" in caddyfile
    assert SERVICES["proxy"]["depends_on"] == {"web": {"condition": "service_healthy"}}


def test_liveness_is_answered_whatever_the_host(client):
    response = client.get("/healthz", HTTP_HOST="not-an-allowed-host.example")
    assert response.status_code == 200
