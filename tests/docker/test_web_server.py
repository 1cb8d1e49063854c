"""The image's web server as it runs: gunicorn with `config.gunicorn`, probed by the image's
health check (`docker/healthcheck.py`), over TCP on a non-default address and on a unix socket."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import ROOT, on_real_services, wait_until

HEALTHCHECK = ROOT / "docker" / "healthcheck.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health_check(bind: str) -> int:
    return subprocess.run([sys.executable, str(HEALTHCHECK)], env={**os.environ, "GUNICORN_BIND": bind},
                          capture_output=True, timeout=30).returncode


class Gunicorn:
    """`gunicorn config.wsgi:application --config python:config.gunicorn`, production settings."""

    def __init__(self, bind: str, log: Path, **env: str) -> None:
        db = settings.DATABASES["default"]
        database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        self.bind, self.log = bind, log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--config", "python:config.gunicorn"],
            cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "GATEWAY_MODE": "production", "GUNICORN_BIND": bind, "WEB_CONCURRENCY": "1",
                 "GUNICORN_THREADS": "2", "DJANGO_SECRET_KEY": "a-web-server-test-key-" + "x" * 40,
                 "DJANGO_ALLOWED_HOSTS": "localhost", "LOG_FORMAT": "json",
                 "DATABASE_URL": database_url,
                 "REDIS_URL": settings.REDIS_URL, **env})
        wait_until(lambda: self.process.poll() is not None or health_check(bind) == 0, timeout=60, interval=0.3)
        assert self.process.poll() is None, log.read_text()[-2000:]

    def get(self, path: str, **headers: str) -> http.client.HTTPResponse:
        if self.bind.startswith("unix:"):
            conn = http.client.HTTPConnection("localhost")
            conn.sock = socket.socket(socket.AF_UNIX)
            conn.sock.connect(self.bind[len("unix:"):])
        else:
            host, _, port = self.bind.rpartition(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", path, headers={"Host": "localhost", **headers})
        response = conn.getresponse()
        response.read()
        conn.close()
        return response

    def stop(self) -> str:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=30)
        self._out.close()
        return self.log.read_text()


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[dict[str, Gunicorn]]:
    """One gunicorn on a non-default TCP address trusting no proxy, one on a unix socket."""
    if not on_real_services():
        pytest.fail("needs PostgreSQL and Redis")
    logs = tmp_path_factory.mktemp("gunicorn")
    started = {"tcp": Gunicorn(f"127.0.0.1:{free_port()}", logs / "tcp.log", FORWARDED_ALLOW_IPS="192.0.2.1"),
               "unix": Gunicorn(f"unix:{logs / 'web.sock'}", logs / "unix.log")}
    yield started
    for server in started.values():
        server.stop()


def test_the_health_check_probes_the_address_gunicorn_is_bound_to(servers):
    assert health_check(servers["tcp"].bind) == 0
    assert health_check(servers["unix"].bind) == 0


def test_the_health_check_is_unhealthy_when_nothing_listens_where_gunicorn_should():
    assert health_check(f"127.0.0.1:{free_port()}") == 1
    assert health_check("unix:/nonexistent/web.sock") == 1


def test_the_health_check_does_not_take_another_server_for_the_gateway():
    class Other(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"some other service\n")

        def log_message(self, *args):
            pass

    other = HTTPServer(("127.0.0.1", 0), Other)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        assert health_check(f"127.0.0.1:{other.server_port}") == 1
    finally:
        other.shutdown()


def test_a_client_that_is_not_a_trusted_proxy_cannot_claim_https(servers):
    response = servers["tcp"].get("/api/v1/me", **{"X-Forwarded-Proto": "https"})
    assert response.status == 301
    assert response.getheader("Location") == "https://localhost/api/v1/me"


def test_the_proxy_on_the_unix_socket_is_believed_when_it_says_https(servers):
    assert servers["unix"].get("/api/v1/me", **{"X-Forwarded-Proto": "https"}).status == 401  # served
    assert servers["unix"].get("/api/v1/me").status == 301


def test_gunicorn_logs_json_lines_with_a_utc_time_and_no_error(servers, tmp_path):
    (tmp_path / "not-writable").mkdir(mode=0o500)  # as the image user's home was
    server = Gunicorn(f"127.0.0.1:{free_port()}", tmp_path / "gunicorn.log", HOME=str(tmp_path / "not-writable"),
                      # Not in the image, which has collected its static files.
                      PYTHONWARNINGS="ignore:No directory at")
    server.get("/healthz")
    lines = [json.loads(line) for line in server.stop().splitlines() if line.strip()]
    assert any(line["logger"] == "gunicorn.error" and "Listening at" in line["message"] for line in lines)
    assert any(line["logger"] == "gunicorn.access" and "GET /healthz" in line["message"] for line in lines)
    assert all(line["time"].endswith("+00:00") for line in lines)
    assert [line for line in lines if line["level"] in {"ERROR", "CRITICAL"}] == []
