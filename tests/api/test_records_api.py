"""The portability API: datasets, schemas, records, changes, documents, refresh — and its refusals."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.base import ContentFile

from restitution import store
from restitution.api.throttling import PerCustomerThrottle
from restitution.models import AccessEvent, Dataset, Document, Grant, Record
from tests.conftest import reset_rate_limits
from tests.personas import CONTRACTS, CURVE, Flow

PROBLEM = "application/problem+json"


def _curve(day: int, hour: int = 0, kw: float = 1.0) -> dict:
    """A half-hour reading in the load curve's schema 1.0.0 shape (one record per reading), as a
    store holds them until the first extraction after the upgrade to day blocks: the API serves
    stored records whatever their shape, which these tests of paging, windows and isolation use.
    `_day_block` gives the current shape."""
    start = f"2025-01-{day:02d}T{hour:02d}:00:00Z"
    return {"delivery_point": "12345678901234", "start": start, "end": start.replace(":00:00Z", ":30:00Z"),
            "average_power_kw": kw}


def _day_block(day: int, hours: tuple[int, ...] = (0, 12), kw: float = 1.0,
               pdl: str = "12345678901234") -> dict:
    """A load-curve day block of 2025-01-<day> (Europe/Paris) with readings at the given UTC hours
    only: the other half hours are listed missing."""
    from datetime import UTC, datetime, timedelta

    first = datetime(2025, 1, day - 1, 23, tzinfo=UTC) if day > 1 else datetime(2024, 12, 31, 23, tzinfo=UTC)
    slots = [first + timedelta(minutes=30 * n) for n in range(48)]
    text = [moment.strftime("%Y-%m-%dT%H:%M:%SZ") for moment in slots]
    have = {f"2025-01-{day:02d}T{hour:02d}:00:00Z" for hour in hours}
    return {"delivery_point": pdl, "day": f"2025-01-{day:02d}", "time_zone": "Europe/Paris",
            "start": text[0], "duration_seconds": 86400, "interval_seconds": 1800, "unit": "kW",
            "quantity": "average_power", "expected_readings": 48,
            "missing_count": 48 - len(have), "missing": [t for t in text if t not in have],
            "readings": [{"start": t, "value": kw} for t in text if t in have]}


def _contract(cid: str, premium: float = 100.0) -> dict:
    return {"contract_id": cid, "product_code": "HAB", "product": "Home", "status": "active",
            "start_date": "2024-06-01", "end_date": None, "annual_premium": premium, "currency": "EUR",
            "insured_object": None, "deductible": None}


def write(customer, slug: str, records: list[dict], *, finish: bool = True) -> None:
    dataset = Dataset.objects.get(slug=slug)
    writer = store.SnapshotWriter(dataset_id=dataset.pk, source_id=None)
    writer.include(customer.pk)
    for data in records:
        # A schema 1.0.0 reading (`_curve`) has no `day`: its key was delivery point and start.
        key = store.record_key(data, dataset.natural_key) or store.record_key(data, ["delivery_point", "start"])
        writer.add(customer_id=customer.pk, key=key, data=data, locator="test",
                   record_at=store.parse_record_date(data[dataset.date_field], dataset.day_zone))
    writer.finish() if finish else writer.flush()


@pytest.fixture
def data(personas):
    write(personas.alice, CURVE, [_curve(d, h) for d in range(1, 11) for h in (0, 12)])  # 20 readings
    write(personas.alice, CONTRACTS, [_contract("A1"), _contract("A2")])
    write(personas.bob, CURVE, [_curve(d, 6, kw=9.9) for d in range(1, 4)])
    write(personas.bob, CONTRACTS, [_contract("B1")])
    return personas


def get(flow: Flow, token: str, path: str, **extra):
    return flow.api.get(path, HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def all_pages(flow: Flow, token: str, path: str) -> list[dict]:
    items, url = [], path
    while url:
        response = get(flow, token, url)
        assert response.status_code == 200, response.content
        body = response.json()
        items += body["items"]
        url = body["next"]
    return items


def test_the_dataset_list_shows_only_what_was_granted(flow, data):
    token = flow.tokens(datasets=[CURVE])["access_token"]
    body = get(flow, token, "/api/v1/datasets").json()
    assert [d["slug"] for d in body["items"]] == [CURVE]
    item = body["items"][0]
    assert item["record_count"] == 20
    assert item["title"]["fr"].startswith("Courbe de charge")
    assert item["schema_url"].endswith(f"/api/v1/datasets/{CURVE}/schema")
    assert item["date_range"]["from"].startswith("2025-01-01")


def test_a_dataset_outside_the_grant_is_a_404_problem_like_an_unknown_one(flow, data):
    token = flow.tokens(datasets=[CURVE])["access_token"]
    for slug in (CONTRACTS, "no-such-dataset"):
        response = get(flow, token, f"/api/v1/datasets/{slug}/records")
        assert response.status_code == 404
        assert response["Content-Type"] == PROBLEM
        assert response.json()["code"] == "not_found"


def test_the_schema_is_the_datasets_json_schema(flow, data):
    token = flow.tokens()["access_token"]
    response = get(flow, token, f"/api/v1/datasets/{CONTRACTS}/schema")
    assert response.json()["properties"]["contract_id"]["type"] == "string"
    assert response["X-Schema-Version"] == "1.0.0"


def test_paging_returns_every_record_once_and_only_alices(flow, data):
    token = flow.tokens()["access_token"]
    items = all_pages(flow, token, f"/api/v1/datasets/{CURVE}/records?page_size=3")
    assert len(items) == 20 and len({i["key"] for i in items}) == 20
    assert all(i["data"]["average_power_kw"] == 1.0 for i in items)  # bob's are 9.9
    assert [i["seq"] for i in items] == sorted(i["seq"] for i in items)


def test_ndjson_and_csv_by_accept_or_format(flow, data):
    token = flow.tokens()["access_token"]
    nd = get(flow, token, f"/api/v1/datasets/{CONTRACTS}/records", HTTP_ACCEPT="application/x-ndjson")
    assert nd["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in nd.content.decode().splitlines()]
    assert {line["key"] for line in lines} == {"A1", "A2"}
    as_csv = get(flow, token, f"/api/v1/datasets/{CONTRACTS}/records?format=csv")
    assert as_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert {r["contract_id"] for r in rows} == {"A1", "A2"} and rows[0]["annual_premium"] == "100.0"


def test_from_and_to_filter_by_record_date(flow, data):
    token = flow.tokens()["access_token"]
    items = all_pages(flow, token, f"/api/v1/datasets/{CURVE}/records?from=2025-01-03&to=2025-01-04")
    assert sorted(i["data"]["start"] for i in items) == [
        "2025-01-03T00:00:00Z", "2025-01-03T12:00:00Z", "2025-01-04T00:00:00Z", "2025-01-04T12:00:00Z"]


def test_the_grants_window_always_wins(flow, data):
    token = flow.tokens(window_start="2025-01-05", window_end="2025-01-06")["access_token"]
    items = all_pages(flow, token, f"/api/v1/datasets/{CURVE}/records?from=2024-01-01&to=2026-01-01")
    assert {i["data"]["start"][:10] for i in items} == {"2025-01-05", "2025-01-06"}
    listed = get(flow, token, "/api/v1/datasets").json()["items"]
    assert {d["slug"]: d["record_count"] for d in listed}[CURVE] == 4


def test_since_returns_exactly_the_changes_and_deletions(flow, data, personas):
    token = flow.tokens()["access_token"]
    last = get(flow, token, f"/api/v1/datasets/{CONTRACTS}/records").json()["last_seq"]
    write(personas.alice, CONTRACTS, [_contract("A1", premium=150.5), _contract("A3")])  # A2 vanished
    changes = all_pages(flow, token, f"/api/v1/datasets/{CONTRACTS}/records?since={last}")
    summary = {(c["key"], c.get("deleted", False)) for c in changes}
    assert summary == {("A1", False), ("A3", False), ("A2", True)}
    assert next(c for c in changes if c["key"] == "A1")["data"]["annual_premium"] == 150.5
    newest = max(c["seq"] for c in changes)
    assert get(flow, token, f"/api/v1/datasets/{CONTRACTS}/records?since={newest}").json()["items"] == []


def test_the_change_feed_spans_the_granted_datasets(flow, data, personas):
    token = flow.tokens()["access_token"]
    first = all_pages(flow, token, "/api/v1/changes?page_size=7")
    assert {(c["dataset"]) for c in first} == {CURVE, CONTRACTS} and len(first) == 22
    since = max(c["seq"] for c in first)
    write(personas.alice, CONTRACTS, [_contract("A1")])
    delta = all_pages(flow, token, f"/api/v1/changes?since={since}")
    assert [(c["key"], c.get("deleted", False)) for c in delta] == [("A2", True)]


def test_a_one_time_grant_ends_after_the_first_complete_sync(flow, data, personas):
    token = flow.tokens(duration="one-time")["access_token"]
    all_pages(flow, token, "/api/v1/changes?page_size=10")
    grant = Grant.objects.get(customer=personas.alice)
    assert grant.status() == "used"
    assert get(flow, token, "/api/v1/changes").status_code == 401


def test_etag_gives_304_when_nothing_changed(flow, data):
    token = flow.tokens()["access_token"]
    first = get(flow, token, f"/api/v1/datasets/{CONTRACTS}/records")
    again = get(flow, token, f"/api/v1/datasets/{CONTRACTS}/records", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


@pytest.mark.parametrize("query", ["page_size=0", "page_size=10001", "page_size=abc", "cursor=%%%",
                                   "cursor=eyJhZnRlciI6IC0xfQ", "from=2025-13-01", "to=yesterday",
                                   "since=-1", "from=2025-02-01&to=2025-01-01", "from=2025-01-01T00:00:00"])
def test_bad_parameters_are_400_problems(flow, data, query):
    token = flow.tokens()["access_token"]
    response = get(flow, token, f"/api/v1/datasets/{CURVE}/records?{query}")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] in ("invalid_parameter", "invalid_request")


def test_no_token_is_a_401_problem_with_a_challenge(flow, data):
    response = flow.api.get("/api/v1/datasets")
    assert response.status_code == 401 and response["Content-Type"] == PROBLEM
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_every_read_is_in_the_customers_access_history(flow, data, personas):
    token = flow.tokens()["access_token"]
    get(flow, token, f"/api/v1/datasets/{CURVE}/records?page_size=5", HTTP_X_REQUEST_ID="req-abc-12345")
    event = AccessEvent.objects.filter(customer=personas.alice, kind="data-read").latest("id")
    assert event.dataset.slug == CURVE and event.record_count == 5 and event.request_id == "req-abc-12345"
    assert event.client == personas.trusted
    page = flow.browser.get("/account/").content.decode()
    assert "Trusted cloud read 5 days of your electricity load curve" in page


def test_documents_stream_with_type_and_length_and_stay_private(flow, data, personas):
    invoices = Dataset.objects.get(slug="telco-invoices")
    personas.trusted.allowed_datasets.add(invoices)
    pdf = b"%PDF-1.4\n% test document\n"
    import hashlib

    digest = hashlib.sha256(pdf).hexdigest()
    record = {"invoice_id": "F1", "issued_on": "2025-01-31", "period_start": "2025-01-01",
              "period_end": "2025-01-31", "amount_incl_tax": 19.99, "currency": "EUR", "status": "paid",
              "document": {"filename": "F1.pdf", "content_type": "application/pdf", "size": len(pdf),
                           "sha256": digest}}
    write(personas.alice, "telco-invoices", [record])
    document = Document(customer=personas.alice, dataset=invoices, record_key="F1", filename="F1.pdf",
                        content_type="application/pdf", size=len(pdf), sha256=digest)
    document.file.save("F1.pdf", ContentFile(pdf), save=True)
    token = flow.tokens(datasets=[CURVE, "telco-invoices"], scope="dataset:energy-load-curve dataset:telco-invoices"
                        )["access_token"]
    response = get(flow, token, f"/api/v1/datasets/telco-invoices/documents/{digest}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf" and response["Content-Length"] == str(len(pdf))
    assert b"".join(response.streaming_content) == pdf
    bob = Flow(flow.browser.__class__(), flow.api.__class__())
    bob.browser.force_login(personas.bob.user, backend="django.contrib.auth.backends.ModelBackend")
    bob_token = bob.tokens(datasets=[CURVE, "telco-invoices"],
                           scope="dataset:energy-load-curve dataset:telco-invoices")["access_token"]
    assert get(bob, bob_token, f"/api/v1/datasets/telco-invoices/documents/{digest}").status_code == 404


def test_a_refresh_request_is_accepted_then_rate_limited(flow, data):
    token = flow.tokens()["access_token"]

    reset_rate_limits()
    first = flow.api.post("/api/v1/extractions", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert first.status_code == 202
    second = flow.api.post("/api/v1/extractions", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert second.status_code == 429 and int(second["Retry-After"]) > 0
    assert second["Content-Type"] == PROBLEM


def test_throttling_answers_429_with_retry_after(flow, data, monkeypatch):
    token = flow.tokens()["access_token"]

    reset_rate_limits()
    monkeypatch.setattr(PerCustomerThrottle, "THROTTLE_RATES", {"customer": "3/min", "client": "50/s"})
    statuses = [get(flow, token, "/api/v1/datasets").status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
    limited = get(flow, token, "/api/v1/datasets")
    assert int(limited["Retry-After"]) > 0 and limited.json()["code"] == "rate_limited"


def test_the_openapi_schema_and_docs_are_served(client, data):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "/api/v1/datasets/{slug}/records" in schema["paths"]
    flows = schema["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"]
    assert f"dataset:{CURVE}" in flows["scopes"]
    assert "EnergyLoadCurveData" in schema["components"]["schemas"]
    assert client.get("/api/docs/").status_code == 200


def test_records_are_counted_by_record_not_by_row(flow, data, personas):
    assert Record.objects.filter(customer=personas.alice).count() == 22


def test_an_unknown_api_path_is_a_404_problem(client, settings):
    settings.DEBUG = False
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response["Content-Type"] == PROBLEM


def test_an_empty_ndjson_change_page_keeps_its_content_type(data, flow):
    token = flow.tokens()["access_token"]
    response = get(flow, token, "/api/v1/changes?since=999999999&format=ndjson")
    assert response.status_code == 200 and response.content == b""
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"


def test_the_scope_catalogue_follows_a_dataset_change_at_once(data):
    from restitution.oauth import published_scopes

    curve = Dataset.objects.get(slug=CURVE)
    assert curve.scope in published_scopes()  # now kept by this process
    curve.is_published = False
    curve.save(update_fields=["is_published"])
    assert curve.scope not in published_scopes()


def test_a_page_writes_its_access_event_and_api_call_in_one_statement(flow, data):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from restitution.models import ApiCall

    token = flow.tokens()["access_token"]
    with CaptureQueriesContext(connection) as queries:
        response = get(flow, token, f"/api/v1/datasets/{CURVE}/records?page_size=5", HTTP_X_REQUEST_ID="page-one")
    assert response.status_code == 200
    inserts = [q["sql"] for q in queries if "INSERT" in q["sql"]]
    assert len(inserts) == 1
    assert "restitution_accessevent" in inserts[0] and "restitution_apicall" in inserts[0]
    event = AccessEvent.objects.get(request_id="page-one")
    assert (event.kind, event.dataset.slug, event.record_count) == (AccessEvent.Kind.DATA_READ, CURVE, 5)
    assert ApiCall.objects.filter(endpoint="api-records", status=200).count() == 1


def test_without_the_api_call_recorder_the_access_event_is_still_written(flow, data, settings):
    from restitution.models import ApiCall

    token = flow.tokens()["access_token"]
    settings.GATEWAY_RECORD_API_CALLS = False
    response = get(flow, token, f"/api/v1/datasets/{CURVE}/records?page_size=3", HTTP_X_REQUEST_ID="no-recorder")
    assert response.status_code == 200
    assert AccessEvent.objects.get(request_id="no-recorder").record_count == 3
    assert not ApiCall.objects.filter(endpoint="api-records").exists()


def test_with_the_api_call_recorder_left_out_the_access_event_is_still_written(flow, data, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from restitution.models import ApiCall

    token = flow.tokens()["access_token"]
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "restitution.observability.ApiMetricsMiddleware"]
    api = type(flow.api)()  # a client loads the middleware once: a new one for the new list
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"/api/v1/datasets/{CURVE}/records?page_size=2", HTTP_AUTHORIZATION=f"Bearer {token}",
                           HTTP_X_REQUEST_ID="no-metrics")
    assert response.status_code == 200
    inserts = [q["sql"] for q in queries if "INSERT" in q["sql"]]
    assert len(inserts) == 1 and "restitution_accessevent" in inserts[0] and "restitution_apicall" not in inserts[0]
    assert AccessEvent.objects.get(request_id="no-metrics").record_count == 2
    assert not ApiCall.objects.filter(endpoint="api-records").exists()


def _table_gone(model) -> None:
    """The model's table renamed away (in the test's transaction, so rolled back with it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {model._meta.db_table} RENAME TO {model._meta.db_table}_away")


def test_when_the_api_call_cannot_be_written_the_access_event_still_is(flow, data):
    from restitution.models import ApiCall

    token = flow.tokens()["access_token"]
    _table_gone(ApiCall)  # the operator metrics fail: their row's insert is refused
    response = get(flow, token, f"/api/v1/datasets/{CURVE}/records?page_size=4", HTTP_X_REQUEST_ID="metrics-down")
    assert response.status_code == 200 and len(response.json()["items"]) == 4
    assert AccessEvent.objects.get(request_id="metrics-down").record_count == 4


def test_when_the_access_event_cannot_be_written_the_data_does_not_leave(flow, data):
    token = flow.tokens()["access_token"]
    _table_gone(AccessEvent)
    response = get(flow, token, f"/api/v1/datasets/{CURVE}/records?page_size=4", HTTP_X_REQUEST_ID="log-down")
    assert response.status_code == 503 and response["Content-Type"] == PROBLEM
    assert response["Retry-After"] and b"delivery_point" not in response.content
