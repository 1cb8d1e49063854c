"""Per-source caps on concurrent runs and request rate, across workers (Redis) and in-process."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.test import override_settings

from restitution.gate import LocalGate, RedisGate
from tests.conftest import missing


@pytest.fixture
def redis_gate(flush_gate) -> RedisGate:
    if not settings.REDIS_URL:
        missing("needs Redis")
    return RedisGate(settings.REDIS_URL)


@pytest.fixture(params=["local", "redis"])
def gate(request):
    if request.param == "local":
        return LocalGate()
    return request.getfixturevalue("redis_gate")


def test_it_refuses_a_lease_beyond_the_cap(gate):
    assert gate.acquire("src", "run:1", 2)
    assert gate.acquire("src", "run:2", 2)
    assert not gate.acquire("src", "run:3", 2)
    assert gate.holders("src") == 2
    gate.release("src", "run:1")
    assert gate.acquire("src", "run:3", 2)


def test_a_holder_may_renew_its_own_lease(gate):
    assert gate.acquire("src", "run:1", 1)
    assert gate.refresh("src", "run:1", 1)
    assert not gate.acquire("src", "run:2", 1)


def test_caps_are_per_source(gate):
    assert gate.acquire("a", "run:1", 1)
    assert gate.acquire("b", "run:2", 1)


def test_expired_leases_of_dead_workers_free_their_place(gate):
    with override_settings(GATEWAY_SOURCE_LEASE_SECONDS=0):
        assert gate.acquire("src", "run:dead", 1)
    assert gate.acquire("src", "run:2", 1)


def test_the_cap_holds_when_many_threads_race_for_it(redis_gate):
    granted: list[str] = []
    barrier = threading.Barrier(16)

    def contend(n: int) -> None:
        barrier.wait()
        if RedisGate(settings.REDIS_URL).acquire("race", f"run:{n}", 3):
            granted.append(f"run:{n}")

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 3
    assert redis_gate.holders("race") == 3


def test_the_rate_limiter_spaces_requests_by_the_source_interval(redis_gate):
    # Drive the limiter's clock by hand: at 2 requests/s with no burst, a second request at
    # the same instant must wait half a second, and one half a second later may go.
    key = ["restitution:gate:rated:rate"]
    assert float(redis_gate._rate(keys=key, args=[0.5, 0, 1000.0])) == 0
    assert float(redis_gate._rate(keys=key, args=[0.5, 0, 1000.0])) == pytest.approx(0.5)
    assert float(redis_gate._rate(keys=key, args=[0.5, 0, 1000.5])) == 0
    assert float(redis_gate._rate(keys=key, args=[0.5, 0, 1000.6])) == pytest.approx(0.4)


def test_the_rate_limiter_allows_a_burst_then_spaces(redis_gate):
    key = ["restitution:gate:bursty:rate"]
    waits = [float(redis_gate._rate(keys=key, args=[0.1, 9, 2000.0])) for _ in range(11)]
    assert waits[:10] == [0] * 10
    assert waits[10] > 0
