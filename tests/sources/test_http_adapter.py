"""HTTPJSONAdapter against a small threaded WSGI server started by the tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from restitution.mapping import Attachment
from restitution.sources import adapter_class
from restitution.sources.base import RawRow, SourceError, content_hash
from restitution.sources.http import HTTPJSONAdapter, safe_url

TOKEN = "tok-Secret-123"

Response = tuple[int, dict[str, str], bytes]
Handler = Callable[[dict[str, Any]], Response]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ["RAW_PATH"] = self.path.split("?", 1)[0]
        return environ


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that timed out and went away


@dataclass
class FakeAPI:
    base_url: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["RAW_PATH"]
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        self.requests.append({"path": path, "query": query,
                              "authorization": environ.get("HTTP_AUTHORIZATION"),
                              "method": environ["REQUEST_METHOD"]})
        handler = self.routes.get(path)
        status, headers, body = handler(query) if handler else (404, {}, b"not found")
        start_response(f"{status} X", list(headers.items()))
        return [body]


def json_response(data: Any, status: int = 200, **headers: str) -> Response:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode()


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    fake = FakeAPI()
    server = make_server("127.0.0.1", 0, fake.app, server_class=_ThreadingServer,
                         handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELCO_API_TOKEN", TOKEN)


def options(**dataset: Any) -> dict[str, Any]:
    calls = {"path": "/v2/accounts/{customer}/calls", "items_field": "items",
             "page_param": "page", "page_size_param": "per_page", "page_size": 2,
             "next_field": "next_page", **dataset}
    return {"token_env": "TELCO_API_TOKEN", "timeout": 0.3, "max_attempts": 3,
            "backoff_base": 0.01, "backoff_cap": 0.5, "datasets": {"calls": calls}}


def read(api: FakeAPI, customer: str | None = "C1", limiter: Any = None,
         opts: dict[str, Any] | None = None, connection: str | None = None) -> list[RawRow]:
    adapter = HTTPJSONAdapter(options=opts or options(), connection=connection or api.base_url,
                              limiter=limiter)
    try:
        return list(adapter.read("calls", customer_key=customer, customer_field="account"))
    finally:
        adapter.close()


def paged(pages: dict[int, Response]) -> Handler:
    return lambda query: pages[int(query.get("page", "1"))]


def test_registered_and_customer_by_customer_only(api: FakeAPI) -> None:
    assert adapter_class("http-json") is HTTPJSONAdapter
    assert HTTPJSONAdapter.supports_full_scan is False
    with pytest.raises(SourceError) as caught:
        read(api, customer=None)
    assert caught.value.permanent
    assert api.requests == []


def test_pages_are_followed(api: FakeAPI, limiter: Any) -> None:
    api.routes["/v2/accounts/C1/calls"] = paged({
        1: json_response({"items": [{"id": 1, "account": "C1"}, {"id": 2}], "next_page": 2}),
        2: json_response({"items": [{"id": 3}], "next_page": None}),
    })
    rows = read(api, limiter=limiter)
    # Without an `id_field`, an item is located by its endpoint and its content, not its page.
    assert [(row.locator, row.values["id"]) for row in rows] == [
        ("/v2/accounts/C1/calls " + content_hash({"id": 1, "account": "C1"}), 1),
        ("/v2/accounts/C1/calls " + content_hash({"id": 2}), 2),
        ("/v2/accounts/C1/calls " + content_hash({"id": 3}), 3)]
    assert all(row.error is None and row.values["account"] == "C1" for row in rows)
    assert rows[1].extra == {"customer_from_request": True}
    assert [r["query"] for r in api.requests] == [{"page": "1", "per_page": "2"},
                                                  {"page": "2", "per_page": "2"}]
    assert {r["authorization"] for r in api.requests} == {f"Bearer {TOKEN}"}
    assert {r["method"] for r in api.requests} == {"GET"}
    assert limiter.calls == len(api.requests) == 2


def test_an_id_field_locates_an_item_by_endpoint_and_id_whatever_its_page(api: FakeAPI) -> None:
    api.routes["/v2/accounts/C1/calls"] = paged({
        1: json_response({"items": [{"id": 7}, {"id": None, "x": 1}], "next_page": 2}),
        2: json_response({"items": [{"id": 9}], "next_page": None}),
    })
    rows = read(api, opts=options(id_field="id"))
    assert [row.locator for row in rows] == [
        "/v2/accounts/C1/calls id=7", "/v2/accounts/C1/calls " + content_hash({"id": None, "x": 1}),
        "/v2/accounts/C1/calls id=9"]


def test_customer_is_quoted_in_the_path(api: FakeAPI) -> None:
    assert read(api, customer="A/B C?x=1") == []
    assert api.requests[0]["path"] == "/v2/accounts/A%2FB%20C%3Fx%3D1/calls"


def test_unknown_account_is_an_empty_read(api: FakeAPI) -> None:
    assert read(api, customer="nobody") == []
    assert len(api.requests) == 1


def test_item_of_another_customer_is_an_error_row_without_values(api: FakeAPI) -> None:
    api.routes["/v2/accounts/C1/calls"] = lambda q: json_response(
        {"items": [{"id": 1, "account": "C2", "number": "+33600000000"}, "oops"],
         "next_page": None})
    rows = read(api)
    assert [(row.values, row.error) for row in rows] == [
        ({}, "item belongs to another customer"),
        ({"item": "oops"}, "item is not a JSON object")]


def test_server_error_then_success_is_retried(api: FakeAPI, limiter: Any) -> None:
    answers = iter([(503, {}, b"busy"), (429, {"Retry-After": "0"}, b""),
                    json_response({"items": [{"id": 1}], "next_page": None})])
    api.routes["/v2/accounts/C1/calls"] = lambda q: next(answers)
    rows = read(api, limiter=limiter)
    assert [row.values["id"] for row in rows] == [1]
    assert limiter.calls == len(api.requests) == 3


def test_persistent_server_errors_are_transient(api: FakeAPI) -> None:
    api.routes["/v2/accounts/C1/calls"] = lambda q: (500, {}, b"boom")
    with pytest.raises(SourceError) as caught:
        read(api)
    assert not caught.value.permanent
    assert "HTTP 500 after 3 attempts" in str(caught.value)
    assert len(api.requests) == 3


def test_long_retry_after_ends_the_read_at_once(api: FakeAPI) -> None:
    api.routes["/v2/accounts/C1/calls"] = lambda q: (429, {"Retry-After": "120"}, b"")
    with pytest.raises(SourceError) as caught:
        read(api)
    assert not caught.value.permanent
    assert "retry after 120 s" in str(caught.value)
    assert len(api.requests) == 1


def test_timeouts_are_retried_then_transient(api: FakeAPI, limiter: Any) -> None:
    def slow(query: dict[str, str]) -> Response:
        time.sleep(0.5)
        return json_response({"items": [], "next_page": None})

    api.routes["/v2/accounts/C1/calls"] = slow
    opts = options()
    opts.update(timeout=0.1, max_attempts=2)
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        read(api, limiter=limiter, opts=opts)
    assert not caught.value.permanent
    assert "timed out after 2 attempts" in str(caught.value)
    assert limiter.calls == 2
    assert time.monotonic() - started < 2


def test_connection_refused_is_transient(api: FakeAPI) -> None:
    with pytest.raises(SourceError) as caught:
        read(api, connection="http://127.0.0.1:1")
    assert not caught.value.permanent
    assert "connection failed" in str(caught.value)


def test_invalid_json_is_retried_then_transient(api: FakeAPI) -> None:
    api.routes["/v2/accounts/C1/calls"] = lambda q: (200, {}, b"<html>maintenance</html>")
    with pytest.raises(SourceError) as caught:
        read(api)
    assert not caught.value.permanent
    assert "invalid JSON" in str(caught.value)
    assert len(api.requests) == 3


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_permanent(api: FakeAPI, status: int) -> None:
    api.routes["/v2/accounts/C1/calls"] = lambda q: (status, {}, b"")
    with pytest.raises(SourceError) as caught:
        read(api)
    assert caught.value.permanent
    assert "credentials refused" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert len(api.requests) == 1


def test_other_client_errors_are_permanent(api: FakeAPI) -> None:
    api.routes["/v2/accounts/C1/calls"] = lambda q: (400, {}, b"bad request C1")
    with pytest.raises(SourceError) as caught:
        read(api)
    assert caught.value.permanent
    assert "HTTP 400" in str(caught.value) and "C1" not in str(caught.value)


def test_unexpected_payload_is_permanent(api: FakeAPI) -> None:
    api.routes["/v2/accounts/C1/calls"] = lambda q: json_response({"error": "nope"})
    with pytest.raises(SourceError) as caught:
        read(api)
    assert caught.value.permanent


def test_missing_token_is_permanent(api: FakeAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELCO_API_TOKEN")
    with pytest.raises(SourceError) as caught:
        read(api)
    assert caught.value.permanent
    assert api.requests == []


def test_messages_hide_credentials_and_query(api: FakeAPI) -> None:
    connection = f"http://user:pa55w0rd@127.0.0.1:1/api?key={TOKEN}"
    with pytest.raises(SourceError) as caught:
        read(api, connection=connection)
    message = str(caught.value)
    assert "pa55w0rd" not in message and TOKEN not in message and "user" not in message
    assert "http://127.0.0.1:1/api" in message
    assert safe_url("https://u:p@h.example:8443/a/b?q=1#f") == "https://h.example:8443/a/b"


def test_path_without_customer_placeholder_is_refused(api: FakeAPI) -> None:
    with pytest.raises(SourceError) as caught:
        read(api, opts=options(path="/v2/calls"))
    assert caught.value.permanent
    assert api.requests == []


def test_full_pages_continue_without_next_field(api: FakeAPI) -> None:
    api.routes["/v2/accounts/C1/calls"] = paged({
        1: json_response({"items": [{"id": 1}, {"id": 2}]}),
        2: json_response({"items": [{"id": 3}]}),
    })
    rows = read(api, opts=options(next_field=None))
    assert [row.values["id"] for row in rows] == [1, 2, 3]


def test_attachments_are_fetched(api: FakeAPI, limiter: Any) -> None:
    api.routes["/v2/accounts/C1/calls"] = lambda q: json_response({"items": [
        {"invoice_id": "INV-1", "pdf_url": "/files/inv-1.pdf"},
        {"invoice_id": "INV-2", "pdf_url": None},
        {"invoice_id": "INV-3", "pdf_url": f"{api.base_url}/files/inv-3"},
        {"invoice_id": "INV-4", "pdf_url": "/files/missing.pdf"},
        {"invoice_id": "INV-5", "pdf_url": "https://elsewhere.example/inv-5.pdf"},
    ], "next_page": None})
    api.routes["/files/inv-1.pdf"] = lambda q: (200, {"Content-Type": "application/pdf"},
                                                b"%PDF-1.4 one")
    api.routes["/files/inv-3"] = lambda q: (200, {}, b"%PDF-1.4 three")
    opts = options(attachments={"pdf_url": {"content_type": "application/pdf",
                                            "filename": "{invoice_id}.pdf"}})
    rows = read(api, limiter=limiter, opts=opts)
    assert rows[0].values["pdf_url"] == Attachment(filename="INV-1.pdf",
                                                   content_type="application/pdf",
                                                   content=b"%PDF-1.4 one")
    assert rows[1].values["pdf_url"] is None and rows[1].error is None
    assert rows[2].values["pdf_url"].content == b"%PDF-1.4 three"
    assert rows[2].values["pdf_url"].content_type == "application/pdf"
    assert rows[3].error == "attachment pdf_url: HTTP 404"
    assert rows[4].error == "attachment pdf_url: link to another host than the source's, " \
                            "not fetched"
    fetched = [r["path"] for r in api.requests if r["path"].startswith("/files/")]
    assert fetched == ["/files/inv-1.pdf", "/files/inv-3", "/files/missing.pdf"]
    assert {r["authorization"] for r in api.requests} == {f"Bearer {TOKEN}"}
    assert limiter.calls == len(api.requests) == 4


def test_attachment_server_errors_are_retried(api: FakeAPI) -> None:
    api.routes["/v2/accounts/C1/calls"] = lambda q: json_response(
        {"items": [{"invoice_id": "A/1", "pdf_url": "/files/a"}], "next_page": None})
    answers = iter([(502, {}, b""), (200, {"Content-Type": "application/pdf"}, b"%PDF")])
    api.routes["/files/a"] = lambda q: next(answers)
    opts = options(attachments={"pdf_url": {"filename": "{invoice_id}.pdf"}})
    rows = read(api, opts=opts)
    assert rows[0].values["pdf_url"].filename == "A_1.pdf"
    assert rows[0].values["pdf_url"].content == b"%PDF"
