"""Rate limits per customer and per client (defaults after the CDR traffic thresholds), in
Redis so they hold across web processes; 429 with Retry-After.

They fail open: while Redis is unreachable the counters cannot be read, and the API keeps
serving from the record store rather than answering 500 to every request."""

from __future__ import annotations

import logging
import time

from django.core.cache import caches
from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle

log = logging.getLogger(__name__)
#: The errors of an unreachable shared cache (redis-py's own, and socket errors).
CACHE_DOWN = (RedisError, OSError)
_last_warning = 0.0


def _warn_cache_down(exc: Exception) -> None:
    """One warning every 10 s per process, not one per request, while Redis is away."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= 10:
        _last_warning = now
        log.warning("rate-limit cache unreachable (%s): limits not enforced meanwhile", type(exc).__name__)


class _TokenThrottle(SimpleRateThrottle):
    cache = caches["throttle"]

    def ident(self, token) -> str:
        raise NotImplementedError

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        if token is None:
            return None  # unauthenticated requests are refused before they cost anything
        return f"throttle:{self.scope}:{self.ident(token)}"

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except CACHE_DOWN as exc:
            _warn_cache_down(exc)
            return True


class PerCustomerThrottle(_TokenThrottle):
    scope = "customer"

    def ident(self, token) -> str:
        return str(token.user_id)


class PerClientThrottle(_TokenThrottle):
    scope = "client"

    def ident(self, token) -> str:
        return str(token.application_id)


def claim_refresh_slot(*, grant_id: int, interval: int) -> bool:
    """True at most once per `interval` seconds per grant (an atomic add in the shared cache).

    True as well while the cache is unreachable: the request is kept in the outbox and the
    legacy systems stay protected by the per-source caps of the workers."""
    try:
        return caches["throttle"].add(f"refresh:{grant_id}", 1, timeout=interval)
    except CACHE_DOWN as exc:
        _warn_cache_down(exc)
        return True
