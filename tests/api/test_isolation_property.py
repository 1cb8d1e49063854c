"""Property: for random customers, grants and parameters, no response ever contains another
customer's data, a dataset outside the grant, or a record outside the grant's window."""

from __future__ import annotations

import csv
import io
import json
import secrets
from datetime import date, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oauth2_provider.models import get_access_token_model, set_token_value

from restitution import consent, portability
from restitution.models import Dataset
from tests.api.test_records_api import _contract, _curve, write
from tests.conftest import reset_rate_limits
from tests.personas import CONTRACTS, CURVE

SLUGS = [CURVE, CONTRACTS, "telco-call-log", "no-such-dataset"]
days = st.dates(min_value=date(2024, 12, 25), max_value=date(2025, 1, 15))


def issue_token(grant) -> str:
    raw = secrets.token_urlsafe(24)
    token = get_access_token_model()(user=grant.customer.user, application=grant.client,
                                     expires=timezone.now() + timedelta(minutes=5),
                                     scope=" ".join(d.scope for d in grant.datasets.all()))
    set_token_value(token, raw)
    token.save()
    return raw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(who=st.sampled_from(["alice", "bob"]),
       granted=st.sets(st.sampled_from([CURVE, CONTRACTS]), min_size=1),
       window=st.tuples(st.none() | days, st.none() | days),
       asked=st.sampled_from(SLUGS + ["changes"]),
       params=st.fixed_dictionaries({}, optional={
           "from": st.none() | days.map(str), "to": st.none() | days.map(str),
           "page_size": st.integers(min_value=1, max_value=30).map(str),
           "since": st.integers(min_value=0, max_value=80).map(str),
           "format": st.sampled_from(["json", "ndjson", "csv"])}))
def test_no_response_leaks_beyond_the_grant(isolation_data, who, granted, window, asked, params):
    reset_rate_limits()  # rate limits are tested elsewhere; here every request must be served
    customer = getattr(isolation_data, who)
    other_marks = isolation_data.marks["bob" if who == "alice" else "alice"]
    start, end = sorted(window, key=lambda d: d or date.min) if all(window) else window
    grant = consent.create_grant(customer=customer, client=isolation_data.trusted,
                                 datasets=list(Dataset.objects.filter(slug__in=granted)), duration="1m",
                                 window_start=start, window_end=end)
    token = issue_token(grant)
    path = "/api/v1/changes" if asked == "changes" else f"/api/v1/datasets/{asked}/records"
    query = {k: v for k, v in params.items() if v is not None}
    response = Client().get(path, query, HTTP_AUTHORIZATION=f"Bearer {token}")
    if asked not in granted and asked != "changes":
        assert response.status_code == 404
        return
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        return
    for item in _items(response):
        assert item["dataset"] in granted
        if item.get("deleted"):
            continue
        assert not (other_marks & set(map(str, item["data"].values()))), item
        if len(item["date"]) == 10:  # a dataset of days: the period's days hold it
            assert (start or date.min) <= date.fromisoformat(item["date"]) <= (end or date.max), item
            continue
        moment = datetime.fromisoformat(item["date"].replace("Z", "+00:00"))
        if start:  # the period's days are local days
            assert moment >= portability.local_day_start(start)
        if end:
            assert moment < portability.local_day_start(end + timedelta(days=1))


def _items(response) -> list[dict]:
    """The items of a page in any of its formats (CSV: the dataset's fields as `data`)."""
    kind = response["Content-Type"]
    if kind.startswith("application/json"):
        return response.json()["items"]
    text = response.content.decode()
    if kind.startswith("application/x-ndjson"):
        return [json.loads(line) for line in text.splitlines()]
    assert kind.startswith("text/csv"), kind
    items = []
    for row in csv.DictReader(io.StringIO(text)):
        item = {name: row.pop(name) for name in ("dataset", "key", "seq", "date")}
        item["deleted"] = row.pop("deleted") == "true"
        item["data"] = row
        items.append(item)
    return items


@pytest.fixture
def isolation_data(personas):
    write(personas.alice, CURVE, [_curve(d, h, kw=1.0) for d in range(1, 11) for h in (0, 12)])
    write(personas.alice, CONTRACTS, [_contract("A1"), _contract("A2")])
    write(personas.bob, CURVE, [_curve(d, 6, kw=9.9) for d in range(1, 6)])
    write(personas.bob, CONTRACTS, [_contract("B1", premium=999.0)])
    # Values only one of them has: seeing one in the other's response is a leak.
    personas.marks = {"alice": {"1.0", "A1", "A2", "100.0"}, "bob": {"9.9", "B1", "999.0"}}
    return personas
