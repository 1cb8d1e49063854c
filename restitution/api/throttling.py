"""Rate limits per customer and per client (defaults after the CDR traffic thresholds), and per
address on open client registration, in Redis so they hold across web processes; 429 with Retry-After.

They fail open: while Redis is unreachable the counters cannot be read, and the API keeps
serving from the record store rather than answering 500 to every request."""

from __future__ import annotations

import logging
import os
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle

from ..client_address import client_ip

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


class _SharedThrottle(SimpleRateThrottle):
    """A DRF throttle counting in the shared cache, failing open while it is unreachable."""

    cache = caches["throttle"]

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except CACHE_DOWN as exc:
            _warn_cache_down(exc)
            return True


class _TokenThrottle(_SharedThrottle):
    def ident(self, token) -> str:
        raise NotImplementedError

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        if token is None:
            return None  # unauthenticated requests are refused before they cost anything
        return f"throttle:{self.scope}:{self.ident(token)}"


class PerCustomerThrottle(_TokenThrottle):
    scope = "customer"

    def ident(self, token) -> str:
        return str(token.user_id)


class PerClientThrottle(_TokenThrottle):
    scope = "client"

    def ident(self, token) -> str:
        return str(token.application_id)


class PerAddressRegistrationThrottle(_SharedThrottle):
    """Open dynamic registration (RFC 7591), counted per client address at
    GATEWAY_REGISTRATION_RATE: one address cannot fill the approval queue."""

    scope = "registration"

    def get_rate(self) -> str:
        return settings.GATEWAY_REGISTRATION_RATE

    def get_cache_key(self, request, view):
        return f"throttle:{self.scope}:{client_ip(request) or 'unknown'}"


#: Every counter of a request in one round trip: for each key (a sorted set of request moments),
#: forget the moments older than its window, then record this request if the key still has room,
#: else answer how long until its oldest moment leaves the window. Atomic, unlike DRF's get + set.
_COUNT_ALL = """
local now = tonumber(ARGV[1])
local answers = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) < limit then
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
    answers[i] = ''
  else
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    answers[i] = tostring(tonumber(oldest[2]) + window - now)
  end
end
return answers
"""


def check_all(throttles: list[_SharedThrottle], request, view) -> list[float]:
    """The waits of the throttles that refuse this request ([] when all allow it), every
    counter of one cache read and updated in a single Redis round trip.

    Same rules as each throttle's own allow_request() (rate from THROTTLE_RATES, key from
    get_cache_key, a request counted by every throttle that allows it), failing open the same
    way while the cache is unreachable."""
    groups: dict[int, tuple[RedisCache, list[tuple[str, int, int]]]] = {}
    waits: list[float] = []
    for throttle in throttles:
        if not isinstance(throttle.cache, RedisCache):  # embedded mode: the process's own memory
            if not throttle.allow_request(request, view):
                waits.append(throttle.wait() or 0.0)
            continue
        key = throttle.get_cache_key(request, view) if throttle.rate is not None else None
        if key is None:
            continue
        # Sorted sets under keys of their own (":z"): never a value DRF's list-based throttles wrote.
        key += ":z"
        entry = groups.setdefault(id(throttle.cache), (throttle.cache, []))
        entry[1].append((throttle.cache.make_and_validate_key(key), throttle.num_requests, throttle.duration))
    now = time.time()
    member = f"{now:.6f}:{os.urandom(4).hex()}"  # two requests in one microsecond stay two
    for cache, counters in groups.values():
        try:
            client = cache._cache.get_client(write=True)
            arguments = [repr(now), member]
            for _, limit, window in counters:
                arguments += [limit, window]
            answers = client.eval(_COUNT_ALL, len(counters), *(key for key, _, _ in counters), *arguments)
        except CACHE_DOWN as exc:
            _warn_cache_down(exc)
            continue
        waits += [max(float(answer), 0.0) for answer in answers if answer]
    return waits


def claim_refresh_slot(*, grant_id: int, interval: int) -> bool:
    """True at most once per `interval` seconds per grant (an atomic add in the shared cache).

    True as well while the cache is unreachable: the request is kept in the outbox and the
    legacy systems stay protected by the per-source caps of the workers."""
    try:
        return caches["throttle"].add(f"refresh:{grant_id}", 1, timeout=interval)
    except CACHE_DOWN as exc:
        _warn_cache_down(exc)
        return True
