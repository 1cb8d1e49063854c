"""The tests' reset of the API's rate-limit counters works in every shape, Redis or not."""

from __future__ import annotations

from django.core.cache import caches
from django.test import override_settings

from tests.conftest import reset_rate_limits

IN_PROCESS = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
              "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}}


def test_rate_limit_counters_are_forgotten_without_redis():
    with override_settings(REDIS_URL=None, CACHES=IN_PROCESS):
        caches["throttle"].set("throttle_customer_alice", [1.0, 2.0])

        reset_rate_limits()

        assert caches["throttle"].get("throttle_customer_alice") is None
