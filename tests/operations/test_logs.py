"""Logs: one JSON object per line with the request id, which also reaches the Celery task a
request queued; and no token, code, verifier, secret or password in any line of a full flow."""

from __future__ import annotations

import datetime
import io
import json
import logging
import logging.config
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from django.test import Client

from restitution.models import Customer, ExtractionRun
from restitution.observability import redact
from tests.conftest import ROOT, wait_until
from tests.connectors_out.conftest import free_port, port_open
from tests.personas import PASSWORD, Flow


@pytest.fixture
def captured_logs():
    """Every log line of the test, through the configured handler's formatter and filters, with
    the root logger at DEBUG (the configured per-library levels stay as deployed)."""
    stream = io.StringIO()
    console = logging.getLogger().handlers[0] if logging.getLogger().handlers else None
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.config.DictConfigurator(settings.LOGGING).configure_formatter(
        settings.LOGGING["formatters"]["json"]))
    for log_filter in (console.filters if console else []):
        handler.addFilter(log_filter)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def test_a_full_flow_logs_no_token_code_secret_or_password(personas, captured_logs):
    browser, api = Client(), Client()
    # A real password login (not force_login), a wrong one first.
    browser.post("/accounts/login/", {"username": "alice", "password": "wrong-" + PASSWORD})
    assert browser.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    flow = Flow(browser, api)
    code = flow.code()
    tokens = flow.exchange(code).json()
    refreshed = flow.refresh(tokens["refresh_token"]).json()
    assert flow.me(refreshed["access_token"]).status_code == 200
    replay = flow.refresh(tokens["refresh_token"])  # reuse of a rotated token: refused and logged
    assert replay.status_code == 400
    api.get("/api/v1/me?access_token=" + refreshed["access_token"])  # refused: tokens go in headers
    api.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer " + tokens["access_token"])  # a dead token
    registered = api.post("/o/register/", json.dumps({
        "client_name": "Confidential cloud", "redirect_uris": ["https://conf.example/cb"],
        "grant_types": ["authorization_code"], "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic"}), content_type="application/json").json()
    assert api.post("/o/revoke_token/", {"token": refreshed["refresh_token"],
                                         "client_id": "trusted-cloud"}).status_code == 200

    text = captured_logs.getvalue()
    assert text.count("\n") >= 5, "the flow logged next to nothing: the capture is not working"
    secrets = {"access token": tokens["access_token"], "refresh token": tokens["refresh_token"],
               "new access token": refreshed["access_token"], "new refresh token": refreshed["refresh_token"],
               "code": code, "code verifier": flow.verifier, "password": PASSWORD,
               "client secret": registered["client_secret"], "secret key": settings.SECRET_KEY}
    leaked = [name for name, value in secrets.items() if value and value in text]
    assert leaked == [], f"found in the logs: {leaked}: " + "\n".join(
        line for line in text.splitlines() if any(secrets[name] in line for name in leaked))
    for line in text.splitlines():
        entry = json.loads(line)  # every line is one JSON object
        assert {"time", "level", "logger", "message", "request_id"} <= set(entry)
    request_lines = [json.loads(line) for line in text.splitlines() if "django.request" in line]
    assert request_lines and all(entry["request_id"] for entry in request_lines)


def test_redaction_hides_credentials_a_message_carries_by_mistake():
    line = ("GET /cb?code=abc123&state=s access_token=tok.en refresh_token: r3f "
            'Authorization: Bearer eyJhbGci.x.y {"client_secret": "sh"} redis://:hunter2@cache:6379/0')
    cleaned = redact(line)
    for secret in ("abc123", "tok.en", "r3f", "eyJhbGci", "sh\"", "hunter2"):
        assert secret not in cleaned
    assert "state=s" in cleaned and "cache:6379/0" in cleaned


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_the_request_id_reaches_the_celery_task_it_queued(demo_dir, demo_env, start_worker):
    from demo.install import install_demo

    install_demo(demo_dir, with_users=True)
    customer = Customer.objects.filter(user__isnull=False, identities__system="telco").first()
    worker = start_worker(concurrency=1, env={**demo_env, "LOG_FORMAT": "json"})
    browser = Client()
    browser.force_login(customer.user, backend="django.contrib.auth.backends.ModelBackend")
    request_id = "req-operations-0001"
    response = browser.post("/account/refresh/", HTTP_X_REQUEST_ID=request_id)
    assert response.status_code == 302 and response["X-Request-ID"] == request_id
    runs = ExtractionRun.objects.filter(customer=customer)
    assert runs.exists()
    wait_until(lambda: all(r.status in {"succeeded", "failed"} for r in runs.all()), timeout=120,
               message="the customer's runs to finish")
    lines = []
    for raw in worker.log_path.read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue  # the worker's start-up banner
    finished = [e for e in lines if e.get("logger") == "restitution.extraction" and "extraction run" in e["message"]]
    assert finished, worker.log_path.read_text()[-3000:]
    assert {e["request_id"] for e in finished} == {request_id}


def test_the_web_server_access_log_leaves_query_strings_out():
    import importlib

    gunicorn = importlib.import_module("config.gunicorn")
    assert "%(U)s" in gunicorn.access_log_format
    assert not any(f"%({field})s" in gunicorn.access_log_format for field in ("r", "q", "f"))


def test_json_lines_carry_their_time_in_utc_with_the_offset():
    from restitution.observability import JsonFormatter

    formatter = JsonFormatter(fmt=settings.LOGGING["formatters"]["json"]["fmt"],
                              rename_fields=settings.LOGGING["formatters"]["json"]["rename_fields"])
    record = logging.LogRecord("restitution.extraction", logging.INFO, __file__, 1, "a line", None, None)
    line = json.loads(formatter.format(record))
    assert line["time"].endswith("+00:00")
    assert datetime.datetime.fromisoformat(line["time"]).utcoffset() == datetime.timedelta(0)


def test_the_development_servers_request_log_hides_archive_links_and_tokens(tmp_path):
    """`manage.py demo_serve` (runserver inside) logs every request line, query string included:
    the signed archive link and a token a client put in the URL come out redacted."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "GATEWAY_", "DJANGO_", "LOG_"))}
    env["GATEWAY_VAR_DIR"] = str(tmp_path / "var")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)
    telco = tmp_path / "var" / "demo" / "telco"  # the demo's telco service, with no account
    telco.mkdir(parents=True)
    (telco / "accounts.json").write_text("[]")
    port, telco_port = free_port(), free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, "manage.py", "demo_serve", "--port", str(port),
                                   "--telco-port", str(telco_port)], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    link_token, access_token = "b3f1c2d4:1vQzX9:SignedLinkSignatureValue", "AccessTokenValueInTheUrl"
    try:
        deadline = time.monotonic() + 60
        while not port_open(port):
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        for path in (f"/api/v1/exports/0b0e5c6a-8d1e-4b8e-9a57-3f1f0e4a2b10/archive?token={link_token}",
                     f"/api/v1/me?access_token={access_token}"):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30).close()
            except urllib.error.HTTPError:
                pass  # refused, as it should be: the line is logged all the same
        # runserver logs a request once its answer is sent: wait for both lines, however busy the
        # machine (a fixed pause was too short for a loaded one, and idle time on a quiet one).
        wait_until(lambda: "/api/v1/exports/" in log_path.read_text() and "/api/v1/me?" in log_path.read_text(),
                   timeout=30, interval=0.1, message="both request lines in the server's log")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    logged = log_path.read_text()
    assert "/api/v1/exports/" in logged and "/api/v1/me?" in logged  # the request lines are there
    assert "SignedLinkSignatureValue" not in logged and access_token not in logged
    assert "token=[redacted]" in logged and "access_token=[redacted]" in logged
