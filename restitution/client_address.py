"""Where a request comes from: the client's address, read behind the reverse proxies the operator
trusts (GATEWAY_TRUSTED_PROXY_COUNT). The one place that decides it: login lockout (django-axes),
the access log's "from where" and any throttle keyed on an address.

It never believes an address the client wrote itself: only the entries the trusted proxies
appended to X-Forwarded-For count, and with no proxy trusted the header is ignored.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _address(value: str) -> str | None:
    """An IP address literal, from an entry that may carry a port (`1.2.3.4:80`, `[::1]:80`)."""
    value = value.strip()
    candidates = [value]
    if value.startswith("[") and "]" in value:
        candidates.append(value[1:value.index("]")])
    elif value.count(":") == 1:
        candidates.append(value.split(":")[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address (RFC 7239 §5.2 semantics for the de facto X-Forwarded-For header).

    Each trusted proxy appends the address of the peer it received the request from, so with
    N trusted proxies the client is the N-th entry from the right: entries further left were
    written by the client and could name anyone. With fewer entries than N, every entry was
    written by a trusted proxy and the leftmost is the client. With no proxy trusted (the
    default), the address of the TCP peer (REMOTE_ADDR)."""
    if request is None:
        return None
    remote = _address(request.META.get("REMOTE_ADDR") or "")
    trusted = settings.GATEWAY_TRUSTED_PROXY_COUNT
    if trusted <= 0:
        return remote
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if not hops:
        return remote
    return _address(hops[-min(trusted, len(hops))]) or remote
