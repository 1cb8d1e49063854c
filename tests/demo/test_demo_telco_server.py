"""The demo telco API: authentication, pagination, PDFs, injected faults and statistics."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.telco_server import serve_in_thread
from demo.truth import read_ndjson

TOKEN = "test-token"  # noqa: S105
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(small_demo: Any) -> Iterator[str]:
    server, base_url = serve_in_thread(small_demo.out_dir / "telco", token=TOKEN, seed=1)
    try:
        yield base_url
    finally:
        server.shutdown()


def _bob_account(small_demo: Any) -> str:
    return small_demo.customers[1]["identities"]["telco"]


def _stored(small_demo: Any, account: str, kind: str) -> list[dict[str, Any]]:
    path = Path(small_demo.out_dir) / "telco" / "accounts" / account / f"{kind}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_base_url_and_data_dir_forms(small_demo: Any) -> None:
    # The generator's output directory works as well as its telco/ folder.
    server, base_url = serve_in_thread(small_demo.out_dir, token=TOKEN)
    try:
        assert base_url.startswith("http://127.0.0.1:") and not base_url.endswith(":0")
        assert httpx.get(f"{base_url}/_stats").status_code == 200
    finally:
        server.shutdown()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base_url}/_stats", timeout=1)


def test_bearer_token_is_required(api: str, small_demo: Any) -> None:
    path = f"{api}/v2/accounts/{_bob_account(small_demo)}/calls"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = httpx.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"] == "unauthorized"
    assert httpx.get(path, headers=AUTH).status_code == 200


@pytest.mark.parametrize("kind", ["calls", "invoices"])
def test_pagination_returns_every_item_once(api: str, small_demo: Any, kind: str) -> None:
    account = _bob_account(small_demo)
    items: list[dict[str, Any]] = []
    page: int | None = 1
    while page is not None:
        body = httpx.get(f"{api}/v2/accounts/{account}/{kind}",
                         params={"page": page, "per_page": 7}, headers=AUTH).json()
        assert body["page"] == page and body["per_page"] == 7
        assert len(body["items"]) <= 7
        items += body["items"]
        page = body["next_page"]
    stored = _stored(small_demo, account, kind)
    assert items == stored and body["total"] == len(stored)
    default = httpx.get(f"{api}/v2/accounts/{account}/{kind}", headers=AUTH).json()
    assert default["per_page"] == 100 and default["page"] == 1
    beyond = httpx.get(f"{api}/v2/accounts/{account}/{kind}", params={"page": 999},
                       headers=AUTH).json()
    assert beyond["items"] == [] and beyond["next_page"] is None


@pytest.mark.parametrize("query", ["page=0", "page=abc", "per_page=0", "per_page=501",
                                   "page=-1", "per_page=", "page=1&page=2"])
def test_bad_paging_parameters(api: str, small_demo: Any, query: str) -> None:
    response = httpx.get(f"{api}/v2/accounts/{_bob_account(small_demo)}/calls?{query}",
                         headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_unknown_account_and_invoice(api: str) -> None:
    for path in ("/v2/accounts/ACC-999999/calls", "/v2/accounts/ACC-999999/invoices",
                 "/v2/invoices/FAC-000000-0000000.pdf", "/v2/nothing"):
        response = httpx.get(f"{api}{path}", headers=AUTH)
        assert response.status_code == 404
        assert "error" in response.json()


def test_invoice_pdf_matches_ground_truth(api: str, small_demo: Any) -> None:
    account = _bob_account(small_demo)
    invoices = httpx.get(f"{api}/v2/accounts/{account}/invoices", headers=AUTH).json()["items"]
    assert len(invoices) == 12
    truth = {line["key"]: line["data"] for line in
             read_ndjson(small_demo.out_dir / "ground_truth" / "telco-invoices.ndjson")}
    for invoice in invoices[:3]:
        assert invoice["pdf_url"] == f"/v2/invoices/{invoice['invoice_id']}.pdf"
        response = httpx.get(f"{api}{invoice['pdf_url']}", headers=AUTH)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert int(response.headers["content-length"]) == len(response.content)
        assert response.content.startswith(b"%PDF-1.4")
        document = truth[invoice["invoice_id"]]["document"]
        assert document["size"] == len(response.content)
        assert document["sha256"] == hashlib.sha256(response.content).hexdigest()


def test_failure_injection_and_stats(small_demo: Any) -> None:
    server, base_url = serve_in_thread(small_demo.out_dir, token=TOKEN, failure_rate=1.0)
    try:
        path = f"{base_url}/v2/accounts/{_bob_account(small_demo)}/calls"
        for _ in range(3):
            response = httpx.get(path, headers=AUTH)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
        assert httpx.get(f"{base_url}/_stats").json() == {
            "requests": 3, "max_in_flight": 1, "max_in_flight_per_account": 1, "failures": 3,
            "timeouts": 0}
        reset = httpx.post(f"{base_url}/_stats/reset")
        assert reset.status_code == 200
        assert httpx.get(f"{base_url}/_stats").json() == {
            "requests": 0, "max_in_flight": 0, "max_in_flight_per_account": 0, "failures": 0,
            "timeouts": 0}
        assert httpx.post(f"{base_url}/_stats").status_code == 405
    finally:
        server.shutdown()


def test_delay_makes_short_timeouts_expire(small_demo: Any) -> None:
    server, base_url = serve_in_thread(small_demo.out_dir, token=TOKEN, timeout_rate=1.0,
                                       delay_seconds=0.6)
    try:
        path = f"{base_url}/v2/accounts/{_bob_account(small_demo)}/calls"
        with pytest.raises(httpx.TimeoutException):
            httpx.get(path, headers=AUTH, timeout=0.2)
        assert httpx.get(path, headers=AUTH, timeout=5).status_code == 200
        assert httpx.get(f"{base_url}/_stats").json()["timeouts"] == 2
    finally:
        server.shutdown()


def test_concurrent_requests_per_account_are_counted(small_demo: Any) -> None:
    server, base_url = serve_in_thread(small_demo.out_dir, token=TOKEN, timeout_rate=1.0,
                                       delay_seconds=0.4)
    try:
        path = f"{base_url}/v2/accounts/{_bob_account(small_demo)}/calls"
        statuses: list[int] = []

        def fetch() -> None:
            statuses.append(httpx.get(path, headers=AUTH, timeout=5).status_code)

        threads = [threading.Thread(target=fetch) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert statuses == [200] * 4
        stats = httpx.get(f"{base_url}/_stats").json()
        assert stats["requests"] == 4 and stats["max_in_flight_per_account"] >= 2
        assert stats["max_in_flight"] >= stats["max_in_flight_per_account"]
        # Another account alone never exceeds one in flight.
        httpx.post(f"{base_url}/_stats/reset")
        alice = small_demo.customers[0]["identities"]["telco"]
        httpx.get(f"{base_url}/v2/accounts/{alice}/invoices", headers=AUTH, timeout=5)
        assert httpx.get(f"{base_url}/_stats").json()["max_in_flight"] == 1
    finally:
        server.shutdown()
