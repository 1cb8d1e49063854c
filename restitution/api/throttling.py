"""Rate limits per customer and per client (defaults after the CDR traffic thresholds), and per
address on open client registration, in Redis so they hold across web processes; 429 with Retry-After.

They fail open: while Redis is unreachable the counters cannot be read, and the API keeps
serving from the record store rather than answering 500 to every request."""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass

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


class PerCustomerDocumentThrottle(PerCustomerThrottle):
    """Documents (PDFs) have a budget of their own: a client paging records does not spend the
    budget of the invoices it then fetches, and the reverse."""

    scope = "customer_documents"


class PerClientDocumentThrottle(PerClientThrottle):
    scope = "client_documents"


class PerAddressRegistrationThrottle(_SharedThrottle):
    """Open dynamic registration (RFC 7591), counted per client address at
    GATEWAY_REGISTRATION_RATE: one address cannot fill the approval queue."""

    scope = "registration"

    def get_rate(self) -> str:
        return settings.GATEWAY_REGISTRATION_RATE

    def get_cache_key(self, request, view):
        return f"throttle:{self.scope}:{client_ip(request) or 'unknown'}"


#: Every counter of a request in one round trip: for each key (a sorted set of request moments),
#: forget the moments older than its window, then record this request if the key still has room.
#: Each answer reads "<allowed 1|0> <remaining> <seconds until the oldest moment leaves the window>".
#: Atomic, unlike DRF's get + set.
_COUNT_ALL = """
local now = tonumber(ARGV[1])
local answers = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  local allowed = 0
  if count < limit then
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
    count = count + 1
    allowed = 1
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  answers[i] = allowed .. ' ' .. tostring(limit - count) .. ' ' .. tostring(tonumber(oldest[2]) + window - now)
end
return answers
"""


@dataclass(frozen=True)
class Quota:
    """One limit's state after a request: the IETF RateLimit-Policy / RateLimit items."""

    policy: str  # the throttle's scope
    limit: int  # q: requests per window
    window: int  # w: seconds
    remaining: int  # r
    reset: float  # t: seconds until one more request is allowed again (the oldest leaves the window)
    allowed: bool


def ratelimit_headers(quotas: list[Quota]) -> dict[str, str]:
    """draft-ietf-httpapi-ratelimit-headers: both fields as structured-field lists, one item per
    limit that counted the request ({} when none did, e.g. while the counters are unreachable)."""
    if not quotas:
        return {}
    return {
        "RateLimit-Policy": ", ".join(f'"{q.policy}";q={q.limit};w={q.window}' for q in quotas),
        "RateLimit": ", ".join(f'"{q.policy}";r={q.remaining};t={math.ceil(q.reset)}' for q in quotas),
    }


def check_all(throttles: list[_SharedThrottle], request, view) -> list[float]:
    """The waits of the throttles that refuse this request ([] when all allow it); see count_all."""
    return [q.reset for q in count_all(throttles, request, view) if not q.allowed]


def count_all(throttles: list[_SharedThrottle], request, view) -> list[Quota]:
    """Each throttle's quota after this request, every counter of one cache read and updated in
    a single Redis round trip; those with allowed=False refuse it.

    Same rules as each throttle's own allow_request() (rate from THROTTLE_RATES, key from
    get_cache_key, a request counted by every throttle that allows it), failing open the same
    way while the cache is unreachable (no quota then: nothing is known)."""
    groups: dict[int, tuple[RedisCache, list[tuple[str, _SharedThrottle]]]] = {}
    quotas: list[Quota] = []
    for throttle in throttles:
        if not isinstance(throttle.cache, RedisCache):  # embedded mode: the process's own memory
            if throttle.rate is None:
                continue
            try:
                allowed = throttle.allow_request(request, view)
            except CACHE_DOWN as exc:  # pragma: no cover - a local memory cache is never away
                _warn_cache_down(exc)
                continue
            history = getattr(throttle, "history", None)
            if history is None:
                continue
            reset = (history[-1] - (throttle.now - throttle.duration)) if history else 0.0
            quotas.append(Quota(throttle.scope, throttle.num_requests, throttle.duration,
                                max(throttle.num_requests - len(history), 0), max(reset, 0.0), allowed))
            continue
        key = throttle.get_cache_key(request, view) if throttle.rate is not None else None
        if key is None:
            continue
        # Sorted sets under keys of their own (":z"): never a value DRF's list-based throttles wrote.
        key += ":z"
        entry = groups.setdefault(id(throttle.cache), (throttle.cache, []))
        entry[1].append((throttle.cache.make_and_validate_key(key), throttle))
    now = time.time()
    member = f"{now:.6f}:{os.urandom(4).hex()}"  # two requests in one microsecond stay two
    for cache, counters in groups.values():
        try:
            client = cache._cache.get_client(write=True)
            arguments = [repr(now), member]
            for _, throttle in counters:
                arguments += [throttle.num_requests, throttle.duration]
            answers = client.eval(_COUNT_ALL, len(counters), *(key for key, _ in counters), *arguments)
        except CACHE_DOWN as exc:
            _warn_cache_down(exc)
            continue
        for (_, throttle), answer in zip(counters, answers, strict=True):
            allowed, remaining, reset = (answer.decode() if isinstance(answer, bytes) else answer).split()
            quotas.append(Quota(throttle.scope, throttle.num_requests, throttle.duration,
                                max(int(float(remaining)), 0), max(float(reset), 0.0), allowed == "1"))
    return quotas


def claim_refresh_slot(*, grant_id: int, interval: int) -> bool:
    """True at most once per `interval` seconds per grant (an atomic add in the shared cache).

    True as well while the cache is unreachable: the request is kept in the outbox and the
    legacy systems stay protected by the per-source caps of the workers."""
    try:
        return caches["throttle"].add(f"refresh:{grant_id}", 1, timeout=interval)
    except CACHE_DOWN as exc:
        _warn_cache_down(exc)
        return True
