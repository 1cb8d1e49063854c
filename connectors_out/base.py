"""The interface every destination implements, the one error type, and shared helpers.

A transport writes one customer's records and files to one store, under stable names, so a
repeated write replaces instead of duplicating. It never decides *what* to send (delivery.py
does) and never logs credentials, tokens or record contents.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import httpcore
import httpx
from django.conf import settings as django_settings
from django.utils.translation import gettext_lazy as _

#: A resource name is the record key when it is made of these; otherwise a readable part plus a hash.
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")

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


class DeliveryError(Exception):
    """A write that failed. `permanent` says whether trying again later can help."""

    def __init__(self, message: str, *, permanent: bool, status_code: int | None = None,
                 advice: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status_code = status_code
        self.advice = str(advice) if advice else str(ADVICE_OTHER if permanent else ADVICE_UNREACHABLE)


@dataclass(frozen=True)
class Change:
    """One entry of the change feed: a record written, or (deleted=True) a record removed."""

    dataset: str
    key: str
    seq: int
    deleted: bool = False
    data: Any = None
    date: str | None = None
    extracted_at: str | None = None

    @classmethod
    def from_feed(cls, item: dict[str, Any]) -> Change:
        return cls(dataset=item["dataset"], key=item["key"], seq=item["seq"],
                   deleted=bool(item.get("deleted")), data=item.get("data"), date=item.get("date"),
                   extracted_at=item.get("extracted_at"))

    def document(self) -> dict[str, Any]:
        """The JSON body every destination stores for a record (the API's record shape)."""
        return {"dataset": self.dataset, "key": self.key, "date": self.date,
                "extracted_at": self.extracted_at, "data": self.data}


@dataclass(frozen=True)
class File:
    """A document attached to a record (an invoice PDF)."""

    dataset: str
    key: str
    filename: str
    content_type: str
    sha256: str
    content: bytes
    #: The record the file belongs to (an invoice's amount and date, for Cozy's bills).
    record: Change | None = None


def resource_name(key: str) -> str:
    """A stable file/resource name for a record key: the same key always gives the same name."""
    if _SAFE_KEY.match(key):
        return key
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._-")[:60] or "record"
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def file_name(file: File) -> str:
    """A stable name for a record's document: one per record and content."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", file.filename).strip("._") or "document"
    return f"{resource_name(file.key)}-{file.sha256[:12]}-{safe}"


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


class Transport(ABC):
    """One destination kind. Built per delivery from the destination's settings and credentials."""

    kind: ClassVar[str]

    def __init__(self, *, settings: dict[str, Any], credentials: dict[str, Any],
                 http: httpx.Client | None = None) -> None:
        self.settings = settings
        self.credentials = dict(credentials)
        self.http = http or http_client()
        #: Set when the transport renewed its credentials (a refreshed token): the caller saves them.
        self.renewed_credentials: dict[str, Any] | None = None

    def request(self, method: str, url: str, *, what: str, ok_missing: bool = False,
                **kwargs: Any) -> httpx.Response:
        """One HTTP call; network failures become transient DeliveryErrors."""
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise network_error(exc, what) from None
        return check_response(response, what=what, ok_missing=ok_missing)

    @abstractmethod
    def check(self) -> None:
        """Prove the destination accepts the credentials (raises DeliveryError)."""

    @abstractmethod
    def put_record(self, change: Change) -> None:
        """Create or replace the record's resource (same name every time)."""

    @abstractmethod
    def delete_record(self, change: Change) -> None:
        """Remove the record's resource; already gone is fine."""

    @abstractmethod
    def put_file(self, file: File) -> None:
        """Store a record's document (same name every time)."""

    def close(self) -> None:
        self.http.close()


class DestinationURLError(ValueError):
    """A destination address the gateway will not write to."""


def check_destination_url(url: str) -> str:
    """An http(s) URL of a public server (https only), unless local destinations are allowed
    (embedded and test modes): the customer chooses the address, so the gateway must not be
    made to write into the holder's own network (SSRF). Returns the URL without a trailing slash."""
    from urllib.parse import urlsplit

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
