"""The IETF RateLimit / RateLimit-Policy headers (draft-ietf-httpapi-ratelimit-headers) on API
answers, from the limits that counted the request; documents on a budget of their own, so a
client that honours the headers never gets a 429 problem in place of a PDF."""

from __future__ import annotations

import re
import time

import pytest

from restitution.api.throttling import PerClientThrottle, PerCustomerThrottle
from tests.api.test_document_accept import PDF, invoice  # noqa: F401 (fixture)
from tests.api.test_rate_limit_cache_down import cache_down  # noqa: F401 (fixture)
from tests.api.test_records_api import get
from tests.conftest import reset_rate_limits
from tests.personas import CURVE

pytestmark = pytest.mark.django_db

ITEM = re.compile(r'"(?P<name>[a-z_]+)";(?P<params>[a-z]+=\d+(?:;[a-z]+=\d+)*)')


def parse(value: str) -> dict[str, dict[str, int]]:
    """A structured-field list of named items with integer parameters → {name: {param: value}}."""
    items = {}
    for part in value.split(", "):
        match = ITEM.fullmatch(part)
        assert match, f"not a RateLimit item: {part!r}"
        items[match["name"]] = {k: int(v) for k, v in (p.split("=") for p in match["params"].split(";"))}
    return items


def rates(monkeypatch, **rates):
    every = {"customer": "50/s", "client": "50/s", "customer_documents": "50/s", "client_documents": "50/s",
             **rates}
    for throttle in (PerCustomerThrottle, PerClientThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", every)
    reset_rate_limits()


@pytest.fixture
def token(flow, invoice):  # noqa: F811
    return flow.tokens(datasets=[CURVE, "telco-invoices"],
                       scope="dataset:energy-load-curve dataset:telco-invoices")["access_token"]


def test_a_successful_answer_states_each_limit_and_what_is_left(flow, token, monkeypatch):
    rates(monkeypatch, customer="5/min", client="7/min")
    answers = [get(flow, token, "/api/v1/datasets") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert parse(answers[0]["RateLimit-Policy"]) == {"customer": {"q": 5, "w": 60}, "client": {"q": 7, "w": 60}}
    last = parse(answers[2]["RateLimit"])
    assert last["customer"]["r"] == 2 and last["client"]["r"] == 4
    assert 0 < last["customer"]["t"] <= 60


def test_the_headers_announce_the_refusal_the_next_call_gets(flow, token, monkeypatch):
    # The refused side: once a remaining count reads 0, the next call is the 429.
    rates(monkeypatch, customer="2/min")
    second = [get(flow, token, "/api/v1/datasets") for _ in range(2)][-1]
    assert parse(second["RateLimit"])["customer"]["r"] == 0
    refused = get(flow, token, "/api/v1/datasets")
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert int(refused["Retry-After"]) <= parse(second["RateLimit"])["customer"]["t"]


def test_documents_do_not_spend_the_budget_of_the_other_calls(flow, token, invoice, monkeypatch):  # noqa: F811
    rates(monkeypatch, customer="2/min", customer_documents="3/min")
    for _ in range(2):
        assert get(flow, token, f"/api/v1/datasets/{CURVE}/records").status_code == 200
    assert get(flow, token, f"/api/v1/datasets/{CURVE}/records").status_code == 429
    document = get(flow, token, f"/api/v1/datasets/telco-invoices/documents/{invoice}", HTTP_ACCEPT="application/pdf")
    assert document.status_code == 200 and b"".join(document.streaming_content) == PDF
    assert set(parse(document["RateLimit-Policy"])) == {"customer_documents", "client_documents"}
    assert parse(document["RateLimit"])["customer_documents"]["r"] == 2


def test_a_client_honouring_the_headers_never_gets_a_problem_in_place_of_a_pdf(flow, token, invoice, monkeypatch):  # noqa: F811
    rates(monkeypatch, customer_documents="2/s")
    path = f"/api/v1/datasets/telco-invoices/documents/{invoice}"
    pauses = 0
    for _ in range(5):
        response = get(flow, token, path, HTTP_ACCEPT="application/pdf")
        assert response.status_code == 200, response.content
        assert b"".join(response.streaming_content) == PDF
        left = parse(response["RateLimit"])
        for limit in left.values():
            if limit["r"] == 0:
                pauses += 1
                time.sleep(limit["t"])
    assert pauses >= 2
    # The other side: the same client not waiting gets the 429 its headers announced.
    statuses = [get(flow, token, path, HTTP_ACCEPT="application/pdf").status_code for _ in range(3)]
    assert 429 in statuses


def test_no_headers_while_the_counters_are_unreachable(flow, token, cache_down):  # noqa: F811
    # The limits fail open: served, and nothing claimed about a budget nobody can read.
    response = get(flow, token, "/api/v1/datasets")
    assert response.status_code == 200
    assert "RateLimit" not in response and "RateLimit-Policy" not in response


def test_the_openapi_description_declares_both_fields(client, personas):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path, method, code in [("/api/v1/datasets", "get", "200"), ("/api/v1/changes", "get", "429"),
                               ("/api/v1/datasets/{slug}/documents/{sha256}", "get", "200")]:
        headers = schema["paths"][path][method]["responses"][code]["headers"]
        assert {"RateLimit", "RateLimit-Policy"} <= set(headers), (path, code)
    # The signed archive link counts against no token's limits: nothing declared there.
    archive = schema["paths"]["/api/v1/exports/{export_id}/archive"]["get"]["responses"]["200"]
    assert "RateLimit" not in archive.get("headers", {})


def test_the_embedded_mode_counts_in_memory_and_says_so_too(flow, token, monkeypatch):
    # No Redis (the embedded mode): DRF's own throttles in the process's memory, same headers.
    from django.core.cache.backends.locmem import LocMemCache

    memory = LocMemCache("ratelimit-test", {})
    monkeypatch.setattr(PerCustomerThrottle, "cache", memory)
    monkeypatch.setattr(PerClientThrottle, "cache", memory)
    rates(monkeypatch, customer="2/min")
    first, second = (get(flow, token, "/api/v1/datasets") for _ in range(2))
    assert parse(first["RateLimit"])["customer"]["r"] == 1 and parse(second["RateLimit"])["customer"]["r"] == 0
    assert parse(second["RateLimit-Policy"])["customer"] == {"q": 2, "w": 60}
    refused = get(flow, token, "/api/v1/datasets")
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60
