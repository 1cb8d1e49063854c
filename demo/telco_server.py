"""The demo telco's billing API: a small threaded WSGI server over the generated files.

Endpoints (all but /_stats need `Authorization: Bearer <token>`, else 401):

    GET  /v2/accounts/{account_id}/calls?page=N&per_page=M     paginated call records
    GET  /v2/accounts/{account_id}/invoices?page=N&per_page=M  paginated invoices
    GET  /v2/invoices/{invoice_id}.pdf                         an invoice document
    GET  /_stats        {"requests", "max_in_flight", "max_in_flight_per_account", "failures",
                         "timeouts"} (no token)
    POST /_stats/reset  zero the counters

Pages are 1-based; per_page defaults to 100, at most 500. The envelope is
{"items", "page", "per_page", "total", "next_page"} (next_page null on the last page).
It can misbehave on purpose, like a fragile legacy service: with probability `failure_rate` a
request gets 503 with `Retry-After: 1`; with probability `timeout_rate` the answer is delayed by
`delay_seconds` (so a client with a shorter timeout gives up). `requests` counts every /v2
request received (401s included); `max_in_flight` is the highest number of requests the service
was answering at once (delays included) and `max_in_flight_per_account` the same for one
account: what the gateway's per-source caps must bound, measured at the legacy system.

    python -m demo.telco_server DATA_DIR --port 8081 --token T \\
        --failure-rate 0.1 --timeout-rate 0.05
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any, cast
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .telco import ACCOUNTS_FILE, DATA_DIR

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500

_LIST = re.compile(r"^/v2/accounts/(?P<account>[^/]+)/(?P<kind>calls|invoices)/?$")
_PDF = re.compile(r"^/v2/invoices/(?P<invoice>[^/]+)\.pdf$")

StartResponse = Callable[..., Any]


def resolve_data_dir(path: Path) -> Path:
    """Accept either the generator's output directory or its `telco/` folder."""
    if (path / ACCOUNTS_FILE).is_file():
        return path
    if (path / DATA_DIR / ACCOUNTS_FILE).is_file():
        return path / DATA_DIR
    raise FileNotFoundError(f"no {ACCOUNTS_FILE} in {path} or {path / DATA_DIR}")


class TelcoData:
    """The generated telco files, read once (accounts, invoice index) or on demand (lists)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = resolve_data_dir(data_dir)
        with open(self.root / ACCOUNTS_FILE, encoding="utf-8") as handle:
            accounts = json.load(handle)
        self.accounts: dict[str, dict[str, Any]] = {a["account_id"]: a for a in accounts}
        self.invoice_files: dict[str, tuple[str, Path]] = {}
        for account_id in self.accounts:
            folder = self.root / "accounts" / account_id / "invoices"
            if folder.is_dir():
                for pdf in folder.glob("*.pdf"):
                    self.invoice_files[pdf.stem] = (account_id, pdf)
        self._load = lru_cache(maxsize=512)(self._read_list)

    def _read_list(self, account_id: str, kind: str) -> list[dict[str, Any]]:
        path = self.root / "accounts" / account_id / f"{kind}.json"
        if not path.is_file():
            return []
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def items(self, account_id: str, kind: str) -> list[dict[str, Any]]:
        return self._load(account_id, kind)


class Faults:
    """Injected failures and delays, plus the counters /_stats reports. Thread-safe."""

    def __init__(self, *, failure_rate: float, timeout_rate: float, delay_seconds: float,
                 seed: int | None) -> None:
        self.failure_rate = failure_rate
        self.timeout_rate = timeout_rate
        self.delay_seconds = delay_seconds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.failures = 0
            self.timeouts = 0
            self.max_in_flight_per_account = max(self._in_flight.values(), default=0)
            self.max_in_flight = sum(self._in_flight.values())

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self.requests, "max_in_flight": self.max_in_flight,
                    "max_in_flight_per_account": self.max_in_flight_per_account,
                    "failures": self.failures, "timeouts": self.timeouts}

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def draw(self) -> tuple[bool, bool]:
        """(fail with 503?, delay the answer?) for one request."""
        with self._lock:
            fail = self._rng.random() < self.failure_rate
            delay = not fail and self._rng.random() < self.timeout_rate
            self.failures += fail
            self.timeouts += delay
        return fail, delay

    def enter(self, account_id: str) -> None:
        with self._lock:
            current = self._in_flight.get(account_id, 0) + 1
            self._in_flight[account_id] = current
            self.max_in_flight_per_account = max(self.max_in_flight_per_account, current)
            self.max_in_flight = max(self.max_in_flight, sum(self._in_flight.values()))

    def leave(self, account_id: str) -> None:
        with self._lock:
            current = self._in_flight.get(account_id, 1) - 1
            if current:
                self._in_flight[account_id] = current
            else:
                self._in_flight.pop(account_id, None)


def _json(start_response: StartResponse, status: str, body: Any,
          headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    start_response(status, [("Content-Type", "application/json; charset=utf-8"),
                            ("Content-Length", str(len(payload))), *headers])
    return [payload]


def _error(start_response: StartResponse, status: str, message: str,
           headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    code = status.split(" ", 1)[1].lower().replace(" ", "_")
    return _json(start_response, status, {"error": code, "detail": message}, headers)


def _positive_int(query: dict[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    if len(values) > 1 or not re.fullmatch(r"[0-9]{1,9}", values[0]):
        raise ValueError(f"{name} must be a positive integer")
    value = int(values[0])
    if value < 1:
        raise ValueError(f"{name} must be a positive integer")
    return value


class TelcoApp:
    """The WSGI application."""

    def __init__(self, data: TelcoData, *, token: str, faults: Faults) -> None:
        self.data = data
        self.token = token
        self.faults = faults

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/_stats":
            if method != "GET":
                return _error(start_response, "405 Method Not Allowed", "use GET")
            return _json(start_response, "200 OK", self.faults.stats())
        if path == "/_stats/reset":
            if method != "POST":
                return _error(start_response, "405 Method Not Allowed", "use POST")
            self.faults.reset()
            return _json(start_response, "200 OK", self.faults.stats())
        if not path.startswith("/v2/"):
            return _error(start_response, "404 Not Found", "no such endpoint")

        self.faults.count_request()
        if environ.get("HTTP_AUTHORIZATION", "") != f"Bearer {self.token}":
            return _error(start_response, "401 Unauthorized", "a valid bearer token is required",
                          [("WWW-Authenticate", 'Bearer realm="telco"')])
        if method != "GET":
            return _error(start_response, "405 Method Not Allowed", "use GET")

        account_id = self._account_of(path)
        if account_id:
            self.faults.enter(account_id)
        try:
            fail, delay = self.faults.draw()
            if delay:
                time.sleep(self.faults.delay_seconds)
            if fail:
                return _error(start_response, "503 Service Unavailable",
                              "the billing system is busy, try again", [("Retry-After", "1")])
            return self._route(path, environ, start_response)
        finally:
            if account_id:
                self.faults.leave(account_id)

    def _account_of(self, path: str) -> str | None:
        match = _LIST.match(path)
        if match and match["account"] in self.data.accounts:
            return match["account"]
        match = _PDF.match(path)
        if match and match["invoice"] in self.data.invoice_files:
            return self.data.invoice_files[match["invoice"]][0]
        return None

    def _route(self, path: str, environ: dict[str, Any],
               start_response: StartResponse) -> list[bytes]:
        match = _LIST.match(path)
        if match:
            if match["account"] not in self.data.accounts:
                return _error(start_response, "404 Not Found", "unknown account")
            query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            try:
                page = _positive_int(query, "page", 1)
                per_page = _positive_int(query, "per_page", DEFAULT_PAGE_SIZE)
            except ValueError as exc:
                return _error(start_response, "400 Bad Request", str(exc))
            if per_page > MAX_PAGE_SIZE:
                return _error(start_response, "400 Bad Request",
                              f"per_page must be at most {MAX_PAGE_SIZE}")
            items = self.data.items(match["account"], match["kind"])
            first = (page - 1) * per_page
            return _json(start_response, "200 OK", {
                "items": items[first:first + per_page],
                "page": page,
                "per_page": per_page,
                "total": len(items),
                "next_page": page + 1 if first + per_page < len(items) else None,
            })
        match = _PDF.match(path)
        if match:
            entry = self.data.invoice_files.get(match["invoice"])
            if entry is None:
                return _error(start_response, "404 Not Found", "unknown invoice")
            content = entry[1].read_bytes()
            start_response("200 OK", [
                ("Content-Type", "application/pdf"),
                ("Content-Length", str(len(content))),
                ("Content-Disposition", f'attachment; filename="{match["invoice"]}.pdf"'),
            ])
            return [content]
        return _error(start_response, "404 Not Found", "no such endpoint")


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per request; `shutdown()` stops serving and closes the socket."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def shutdown(self) -> None:
        super().shutdown()
        self.server_close()


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return None


def make_app(data_dir: Path, *, token: str, failure_rate: float = 0.0, timeout_rate: float = 0.0,
             delay_seconds: float = 3.0, seed: int | None = None) -> TelcoApp:
    faults = Faults(failure_rate=failure_rate, timeout_rate=timeout_rate,
                    delay_seconds=delay_seconds, seed=seed)
    return TelcoApp(TelcoData(data_dir), token=token, faults=faults)


def serve_in_thread(data_dir: Path, *, port: int = 0, token: str, failure_rate: float = 0.0,
                    timeout_rate: float = 0.0, delay_seconds: float = 3.0,
                    seed: int | None = None, host: str = "127.0.0.1",
                    ) -> tuple[ThreadingWSGIServer, str]:
    """Start the API in a background thread; returns (server, "http://127.0.0.1:PORT").

    Stop it with `server.shutdown()`.
    """
    app = make_app(data_dir, token=token, failure_rate=failure_rate, timeout_rate=timeout_rate,
                   delay_seconds=delay_seconds, seed=seed)
    server = cast(ThreadingWSGIServer, make_server(host, port, app,
                                                  server_class=ThreadingWSGIServer,
                                                  handler_class=QuietHandler))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name=f"telco-api-{server.server_port}", daemon=True)
    thread.start()
    return server, f"http://{host}:{server.server_port}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("data_dir", type=Path, help="the generator's output (or its telco/) folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", required=True)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--timeout-rate", type=float, default=0.0)
    parser.add_argument("--delay-seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    app = make_app(args.data_dir, token=args.token, failure_rate=args.failure_rate,
                   timeout_rate=args.timeout_rate, delay_seconds=args.delay_seconds,
                   seed=args.seed)
    server = make_server(args.host, args.port, app, server_class=ThreadingWSGIServer,
                         handler_class=WSGIRequestHandler if args.verbose else QuietHandler)
    print(f"telco API on http://{args.host}:{server.server_port} "  # noqa: T201
          f"serving {app.data.root}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
