"""Protection of fragile legacy systems: per-source caps on concurrent runs and request rate.

The caps hold across every worker on every host because they live in Redis (a lease set and
a GCRA rate limiter, each one Lua script, so atomic). Without Redis (the embedded quick
start, one process) an in-process equivalent is used. This module never runs extraction.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from typing import Protocol

from django.conf import settings

# Both scripts read the server's clock themselves (one clock for every worker, and no round
# trip of its own before each call); a caller may pass the time instead (tests drive it by
# hand). TIME before a write needs effects replication: the default since Redis 5.
_CLOCK = """
local function clock(given)
  if given then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

_ACQUIRE = _CLOCK + """
local key, token, cap = KEYS[1], ARGV[1], tonumber(ARGV[2])
local ttl, now = tonumber(ARGV[3]), clock(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZSCORE', key, token) then
  redis.call('ZADD', key, now + ttl, token)
  return 1
end
if redis.call('ZCARD', key) < cap then
  redis.call('ZADD', key, now + ttl, token)
  redis.call('EXPIRE', key, ttl * 2)
  return 1
end
return 0
"""

# Generic cell rate algorithm: one request every `interval` seconds, bursts up to `burst`.
# Returns 0 when the request may go now, else the seconds to wait before asking again.
_RATE = _CLOCK + """
local key = KEYS[1]
local interval, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), clock(ARGV[3])
local tat = tonumber(redis.call('GET', key) or now)
if tat < now then tat = now end
local allowed_at = tat - interval * burst
if now < allowed_at then return tostring(allowed_at - now) end
redis.call('SET', key, tostring(tat + interval), 'PX', math.ceil((tat + interval - now) * 1000) + 1000)
return '0'
"""


class Gate(Protocol):
    def acquire(self, source_slug: str, token: str, cap: int) -> bool: ...
    def refresh(self, source_slug: str, token: str, cap: int) -> bool: ...
    def release(self, source_slug: str, token: str) -> None: ...
    def holders(self, source_slug: str) -> int: ...
    def wait_for_request(self, source_slug: str, rate: float) -> float: ...


class RedisGate:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._rate = self.client.register_script(_RATE)

    @staticmethod
    def _leases(slug: str) -> str:
        return f"restitution:gate:{slug}:leases"

    def _now(self) -> float:
        seconds, micros = self.client.time()  # one clock for every worker: the server's
        return seconds + micros / 1_000_000

    def acquire(self, source_slug: str, token: str, cap: int) -> bool:
        ttl = settings.GATEWAY_SOURCE_LEASE_SECONDS
        return bool(self._acquire(keys=[self._leases(source_slug)], args=[token, cap, ttl]))

    def refresh(self, source_slug: str, token: str, cap: int) -> bool:
        return self.acquire(source_slug, token, cap)

    def release(self, source_slug: str, token: str) -> None:
        self.client.zrem(self._leases(source_slug), token)

    def holders(self, source_slug: str) -> int:
        key = self._leases(source_slug)
        self.client.zremrangebyscore(key, "-inf", self._now())
        return int(self.client.zcard(key))

    def wait_for_request(self, source_slug: str, rate: float) -> float:
        """Block until one more request is allowed; return the seconds waited."""
        if rate <= 0:
            return 0.0
        interval = 1.0 / rate
        burst = max(1.0, rate)  # at most one second's worth of requests at once
        waited = 0.0
        while True:
            delay = float(self._rate(keys=[f"restitution:gate:{source_slug}:rate"],
                                     args=[interval, burst - 1]))
            if delay <= 0:
                return waited
            time.sleep(delay)
            waited += delay


class LocalGate:
    """The same caps within one process (embedded mode, eager tasks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, dict[str, float]] = {}
        self._next_request: dict[str, float] = {}

    def acquire(self, source_slug: str, token: str, cap: int) -> bool:
        now = time.monotonic()
        with self._lock:
            leases = {t: exp for t, exp in self._leases.get(source_slug, {}).items() if exp > now}
            if token in leases or len(leases) < cap:
                leases[token] = now + settings.GATEWAY_SOURCE_LEASE_SECONDS
                self._leases[source_slug] = leases
                return True
            self._leases[source_slug] = leases
            return False

    def refresh(self, source_slug: str, token: str, cap: int) -> bool:
        return self.acquire(source_slug, token, cap)

    def release(self, source_slug: str, token: str) -> None:
        with self._lock:
            self._leases.get(source_slug, {}).pop(token, None)

    def holders(self, source_slug: str) -> int:
        now = time.monotonic()
        with self._lock:
            return sum(1 for exp in self._leases.get(source_slug, {}).values() if exp > now)

    def wait_for_request(self, source_slug: str, rate: float) -> float:
        if rate <= 0:
            return 0.0
        interval = 1.0 / rate
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next_request.get(source_slug, now))
            self._next_request[source_slug] = at + interval
        delay = at - now
        if delay > 0:
            time.sleep(delay)
        return max(0.0, delay)


@lru_cache(maxsize=1)
def get_gate() -> Gate:
    return RedisGate(settings.REDIS_URL) if settings.REDIS_URL else LocalGate()


class SourceRateLimiter:
    """What an adapter calls before each request: waits for the source's rate cap."""

    def __init__(self, source_slug: str, rate: float, gate: Gate | None = None) -> None:
        self.source_slug = source_slug
        self.rate = rate
        self.gate = gate or get_gate()
        self.requests = 0

    def wait(self) -> None:
        self.gate.wait_for_request(self.source_slug, self.rate)
        self.requests += 1
