"""The load curve through the API: day blocks (schema 2.0.0) in JSON, NDJSON and CSV."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.api.test_records_api import _day_block, get, write
from tests.personas import CURVE

pytestmark = pytest.mark.django_db


@pytest.fixture
def blocks(personas):
    write(personas.alice, CURVE, [_day_block(d, (0, 1, 12)) for d in range(1, 4)])
    write(personas.bob, CURVE, [_day_block(1, (6,), kw=9.9, pdl="99999999999999")])
    return personas


def test_the_schema_is_version_2_with_one_record_per_meter_and_day(flow, blocks):
    token = flow.tokens(datasets=[CURVE])["access_token"]
    response = get(flow, token, f"/api/v1/datasets/{CURVE}/schema")
    assert response["X-Schema-Version"] == "2.0.0"
    schema = response.json()
    assert schema["$id"].endswith(":2.0.0")
    assert schema["properties"]["readings"]["items"]["required"] == ["start", "value"]
    assert {"day", "time_zone", "duration_seconds", "missing_count", "missing"} <= set(schema["required"])


def test_records_are_day_blocks_keyed_by_meter_and_day_and_only_the_customers(flow, blocks):
    token = flow.tokens(datasets=[CURVE])["access_token"]
    body = get(flow, token, f"/api/v1/datasets/{CURVE}/records").json()
    items = body["items"]
    assert [i["key"] for i in items] == [f"12345678901234|2025-01-0{d}" for d in (1, 2, 3)]
    first = items[0]
    assert first["date"] == "2024-12-31T23:00:00Z" == first["data"]["start"]
    data = first["data"]
    assert (data["expected_readings"], data["missing_count"], len(data["readings"])) == (48, 45, 3)
    assert data["readings"][0] == {"start": "2025-01-01T00:00:00Z", "value": 1.0}
    assert "99999999999999" not in json.dumps(body)  # bob's meter


def test_ndjson_gives_the_same_blocks_and_csv_one_row_per_block(flow, blocks):
    token = flow.tokens(datasets=[CURVE])["access_token"]
    as_json = get(flow, token, f"/api/v1/datasets/{CURVE}/records").json()["items"]
    nd = get(flow, token, f"/api/v1/datasets/{CURVE}/records?format=ndjson").content.decode()
    assert [json.loads(line) for line in nd.splitlines()] == as_json
    rows = list(csv.DictReader(io.StringIO(get(flow, token, f"/api/v1/datasets/{CURVE}/records?format=csv")
                                           .content.decode())))
    assert [r["key"] for r in rows] == [i["key"] for i in as_json]
    assert json.loads(rows[0]["readings"]) == as_json[0]["data"]["readings"]
    assert json.loads(rows[0]["missing"]) == as_json[0]["data"]["missing"]
    assert rows[0]["duration_seconds"] == "86400"


def test_a_window_takes_a_block_by_its_local_midnight(flow, blocks):
    token = flow.tokens(datasets=[CURVE])["access_token"]
    # A `from`/`to` day is a local day: 1 January holds its own block, whatever UTC says.
    body = get(flow, token, f"/api/v1/datasets/{CURVE}/records?from=2025-01-01&to=2025-01-01").json()
    assert [i["data"]["day"] for i in body["items"]] == ["2025-01-01"]
    # 2 January's block starts at 2025-01-01T23:00:00Z: inside the UTC day of 1 January.
    body = get(flow, token, f"/api/v1/datasets/{CURVE}/records?from=2025-01-01T00:00:00Z"
                            f"&to=2025-01-02T00:00:00Z").json()
    assert [i["data"]["day"] for i in body["items"]] == ["2025-01-02"]
