"""Rate limits per customer and per client (defaults after the CDR traffic thresholds), in
Redis so they hold across web processes; 429 with Retry-After."""

from __future__ import annotations

from django.core.cache import caches
from rest_framework.throttling import SimpleRateThrottle


class _TokenThrottle(SimpleRateThrottle):
    cache = caches["throttle"]

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


def claim_refresh_slot(*, grant_id: int, interval: int) -> bool:
    """True at most once per `interval` seconds per grant (an atomic add in the shared cache)."""
    return caches["throttle"].add(f"refresh:{grant_id}", 1, timeout=interval)
