"""While Redis (the rate-limit counters) is unreachable, the API keeps serving from the store."""

from __future__ import annotations

import pytest
from django.core.cache.backends.redis import RedisCache

from restitution.api.throttling import PerClientThrottle, PerCustomerThrottle
from tests.api.test_records_api import PROBLEM, _curve, write
from tests.conftest import reset_rate_limits
from tests.personas import CURVE

pytestmark = pytest.mark.django_db

# A real Redis client towards a loopback port where nothing listens: refused at once.
UNREACHABLE = "redis://127.0.0.1:1/0"


@pytest.fixture
def cache_down(monkeypatch):
    dead = RedisCache(UNREACHABLE, {"OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}})
    monkeypatch.setattr(PerCustomerThrottle, "cache", dead)
    monkeypatch.setattr(PerClientThrottle, "cache", dead)
    monkeypatch.setattr("restitution.api.throttling.caches", {"throttle": dead})
    return dead


@pytest.fixture
def token(flow, personas):
    write(personas.alice, CURVE, [_curve(2), _curve(3)])
    return flow.tokens()["access_token"]


def test_reads_are_served_while_the_rate_limit_cache_is_unreachable(flow, token, cache_down):
    for _ in range(3):
        response = flow.api.get(f"/api/v1/datasets/{CURVE}/records", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200
        assert len(response.json()["items"]) == 2


def test_a_refresh_request_is_accepted_while_the_cache_is_unreachable(flow, token, cache_down):
    response = flow.api.post("/api/v1/extractions", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 202


def test_the_limits_hold_again_once_the_cache_answers(flow, token, monkeypatch):
    # The other side: with the cache reachable, the same request is limited (fail-open only
    # while Redis is away).
    reset_rate_limits()
    monkeypatch.setattr(PerCustomerThrottle, "THROTTLE_RATES", {"customer": "2/min", "client": "50/s"})
    statuses = [flow.api.get("/api/v1/datasets", HTTP_AUTHORIZATION=f"Bearer {token}").status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = flow.api.get("/api/v1/datasets", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert limited["Content-Type"] == PROBLEM


def test_the_client_limit_holds_on_its_own(flow, token, monkeypatch):
    # The customer's limit is wide open: only the client's refuses the third call.
    reset_rate_limits()
    monkeypatch.setattr(PerCustomerThrottle, "THROTTLE_RATES", {"customer": "50/s", "client": "2/min"})
    monkeypatch.setattr(PerClientThrottle, "THROTTLE_RATES", {"customer": "50/s", "client": "2/min"})
    statuses = [flow.api.get("/api/v1/datasets", HTTP_AUTHORIZATION=f"Bearer {token}").status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    reset_rate_limits()
