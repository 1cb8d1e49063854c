"""The one HTTP layer of the push side: every request to an address a customer typed (a
destination, a Nextcloud login flow, a Cozy registration, a PIMS client's webhook) goes through
`http_client()` and `send()`.

- **The address guard** (SSRF): a destination's name is resolved once per connection, every
  address must be public (unless `CONNECTORS_ALLOW_LOCAL_DESTINATIONS`), and the socket is opened
  on the address that was checked; redirects are never followed.
- **One classification of answers**: `check_response` turns an answer into success or a
  `DeliveryError` — transient (network, 429, 5xx) or permanent (any other 4xx, a redirect, an
  address that is not public), with advice for the customer.
- **One backoff**: `retry_delay(n)` after the n-th failed try (`restitution.backoff`, with the
  push side's base and cap).

Never logs credentials, tokens or bodies.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings as django_settings
from django.utils.translation import gettext_lazy as _

from restitution.backoff import backoff

ADVICE_REAUTHORIZE = _("Your cloud refused the gateway's access: it was probably revoked or has expired. "
                       "Disconnect this destination and connect it again to resume deliveries.")
ADVICE_FULL = _("Your cloud says it is full. Free some space there, then press “Try again”.")
ADVICE_MISSING = _("The folder or storage the gateway writes to no longer exists. Check it, or disconnect "
                   "and connect the destination again.")
ADVICE_UNREACHABLE = _("Your cloud could not be reached for a long time. Check that it is online, then "
                       "press “Try again”.")
ADVICE_NOT_PUBLIC = _("The address of your cloud now leads to a private network, where the gateway does not "
                      "write. Check the address, then disconnect and connect the destination again.")
ADVICE_OTHER = _("Your cloud refused the data. Press “Try again”; if it fails again, contact us.")

#: The same failures met while connecting (the first check, a login flow, an authorization):
#: there is no destination yet, so no “Try again” button; the customer connects again.
CONNECT_ADVICE = (
    (ADVICE_REAUTHORIZE, _("Your cloud refused the gateway's access: check the credentials or grant access "
                           "again, then connect again.")),
    (ADVICE_FULL, _("Your cloud says it is full. Free some space there, then connect again.")),
    (ADVICE_MISSING, _("The folder or storage to write to does not exist at this address. Check the address, "
                       "then connect again.")),
    (ADVICE_UNREACHABLE, _("Your cloud could not be reached. Check the address and that your cloud is online, "
                           "then connect again.")),
    (ADVICE_NOT_PUBLIC, _("This address leads to a private network, where the gateway does not write. Use your "
                          "cloud's public address.")),
    (ADVICE_OTHER, _("Your cloud refused the connection. Check the address, then connect again; if it fails "
                     "again, contact us.")),
)


class DeliveryError(Exception):
    """A write that failed. `permanent` says whether trying again later can help."""

    def __init__(self, message: str, *, permanent: bool, status_code: int | None = None,
                 advice: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status_code = status_code
        source = advice or (ADVICE_OTHER if permanent else ADVICE_UNREACHABLE)
        self.advice = str(source)
        #: What to do when this failure happens while connecting (no “Try again” button there).
        self.connect_advice = next((str(on_connect) for on_delivery, on_connect in CONNECT_ADVICE
                                    if on_delivery is source), self.advice)


def check_response(response: httpx.Response, *, what: str, ok_missing: bool = False) -> httpx.Response:
    """Raise DeliveryError for a failed answer: 429 and 5xx are transient, other 4xx permanent;
    a redirect is never followed, and is a permanent failure (nothing was written)."""
    code = response.status_code
    if 300 <= code < 400:
        raise DeliveryError(f"{what}: HTTP {code} (redirects are not followed)", permanent=True, status_code=code,
                            advice=ADVICE_MISSING)
    if code < 400 or (ok_missing and code in (404, 410)):
        return response
    message = f"{what}: HTTP {code}"
    if code == 429 or code >= 500:
        raise DeliveryError(message, permanent=False, status_code=code)
    if code in (401, 403):
        raise DeliveryError(message, permanent=True, status_code=code, advice=ADVICE_REAUTHORIZE)
    if code in (413, 507):
        raise DeliveryError(message, permanent=True, status_code=code, advice=ADVICE_FULL)
    if code in (404, 409, 410):
        raise DeliveryError(message, permanent=True, status_code=code, advice=ADVICE_MISSING)
    raise DeliveryError(message, permanent=True, status_code=code)


class AddressRefused(httpx.TransportError):
    """The name of a destination resolved to an address the gateway does not connect to."""


def network_error(exc: httpx.TransportError, what: str) -> DeliveryError:
    """A failed connection as a DeliveryError: transient, unless the address was refused."""
    if isinstance(exc, AddressRefused):
        return DeliveryError(f"{what}: the address is not public", permanent=True, advice=ADVICE_NOT_PUBLIC)
    return DeliveryError(f"{what}: {type(exc).__name__}", permanent=False)


#: IPv6 prefixes whose last 32 bits are an IPv4 address the packets end up at: IPv4-mapped
#: (RFC 4291 §2.5.5.2), IPv4-compatible (§2.5.5.1, deprecated), IPv4-translated (RFC 2765 §2.1)
#: and the NAT64 well-known prefix (RFC 6052 §2.1).
_IPV4_IN_LAST_32_BITS = tuple(ipaddress.IPv6Network(prefix) for prefix in
                              ("::ffff:0:0/96", "::/96", "::ffff:0:0:0/96", "64:ff9b::/96"))
#: IPv6 ranges that tunnel or translate to IPv4 where the IPv4 address cannot be checked from the
#: address alone: Teredo (RFC 4380 §4, relayed to an obfuscated client address) and the NAT64
#: local-use prefix (RFC 8215 §4, the operator chooses where the IPv4 address sits). Refused.
_OPAQUE_TUNNELS = tuple(ipaddress.IPv6Network(prefix) for prefix in ("2001::/32", "64:ff9b:1::/48"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (mapped, compatible, translated, NAT64, 6to4)."""
    if any(ip in network for network in _IPV4_IN_LAST_32_BITS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour  # 2002::/16 (RFC 3056 §2): bits 16-47


def _is_public(address: str) -> bool:
    """Whether the gateway may connect to this address: a global unicast address, and for IPv6
    forms that carry an IPv4 address, that IPv4 address is global too (SSRF: ::ffff:127.0.0.1,
    64:ff9b::a00:1 or 2002:7f00:1:: reach the holder's network as surely as 127.0.0.1)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _OPAQUE_TUNNELS):
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return embedded.is_global
    return ip.is_global


def resolve_public(host: str, port: int) -> list[str]:
    """The addresses of a name, every one of them public unless local destinations are allowed.
    Raises AddressRefused (some address is not public) or OSError (the name does not resolve)."""
    addresses = list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))
    if not addresses:
        raise OSError(f"no address for {host}")
    if not django_settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS and not all(_is_public(a) for a in addresses):
        raise AddressRefused("the destination's address is not public")
    return addresses


class _PinnedBackend(httpcore.SyncBackend):
    """Resolves the server's name once per connection, checks those addresses and connects to
    one of them — the address checked is the address used, so the name cannot be re-pointed at
    an internal host between the check and the connection (DNS rebinding). TLS still verifies
    the certificate against the name (httpcore gives it as the server name)."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        try:
            addresses = resolve_public(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve the name: {type(exc).__name__}") from None
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError("no address")


class PinnedTransport(httpx.HTTPTransport):
    """httpx's own transport on a connection pool whose connections go only to checked
    addresses; no proxy from the environment (a proxy would resolve the name itself)."""

    def __init__(self) -> None:
        super().__init__(trust_env=False)
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, network_backend=_PinnedBackend())


def http_client(**kwargs: Any) -> httpx.Client:
    """The client of every request to an address a customer typed: public addresses only (unless
    CONNECTORS_ALLOW_LOCAL_DESTINATIONS), pinned per connection, redirects never followed."""
    return httpx.Client(timeout=django_settings.CONNECTORS_HTTP_TIMEOUT, follow_redirects=False,
                        headers={"User-Agent": "restitution-gateway"}, transport=PinnedTransport(), **kwargs)


def send(client: httpx.Client, method: str, url: str, *, what: str, ok_missing: bool = False,
         **kwargs: Any) -> httpx.Response:
    """One request through a guarded client: network failures become DeliveryErrors (transient,
    or permanent when the address was refused), answers are classified by `check_response`."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise network_error(exc, what) from None
    return check_response(response, what=what, ok_missing=ok_missing)


def retry_delay(attempt: int) -> float:
    """Seconds to wait after the `attempt`-th failed try of a delivery or a webhook event."""
    return backoff(attempt, base=django_settings.CONNECTORS_RETRY_BASE_SECONDS,
                   cap=django_settings.CONNECTORS_RETRY_CAP_SECONDS)


class DestinationURLError(ValueError):
    """A destination address the gateway will not write to."""


def check_destination_url(url: str) -> str:
    """An http(s) URL of a public server (https only), unless local destinations are allowed
    (embedded and test modes): the customer chooses the address, so the gateway must not be
    made to write into the holder's own network (SSRF). Returns the URL without a trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationURLError(str(_("Enter the address of your server, starting with https://.")))
    if parts.username or parts.password:
        raise DestinationURLError(str(_("Do not put a name or password in the address.")))
    if django_settings.CONNECTORS_ALLOW_LOCAL_DESTINATIONS:
        return url.strip().rstrip("/")
    if parts.scheme != "https":
        raise DestinationURLError(str(_("The address must start with https://.")))
    try:
        resolve_public(parts.hostname, parts.port or 443)
    except AddressRefused:
        raise DestinationURLError(str(_("This server is not on the public Internet."))) from None
    except OSError:
        raise DestinationURLError(str(_("This server name does not exist."))) from None
    return url.strip().rstrip("/")
