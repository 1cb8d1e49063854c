"""Adapter for legacy JSON-over-HTTP APIs (paginated, per-customer endpoints), with httpx.

The connection is the API's base URL; the bearer token comes from the environment variable
named by the ``token_env`` option. Each dataset is a per-customer path whose ``{customer}``
placeholder receives the URL-quoted customer key (or a ``customer_param`` query parameter).
Pages are followed through ``next_field`` (a page number, null on the last page); items are
yielded as they arrive, one page in memory at a time. Attachment fields (invoice PDFs) are
fetched and replaced by ``legacy_values.Attachment`` values.

Source options::

    {"token_env": "TELCO_API_TOKEN", "timeout": 2.0,
     "max_attempts": 4, "backoff_base": 0.2, "backoff_cap": 5.0,
     "datasets": {"calls": {
         "path": "/v2/accounts/{customer}/calls", "items_field": "items",
         "page_param": "page", "page_size_param": "per_page", "page_size": 200,
         "next_field": "next_page",
         "attachments": {"pdf_url": {"content_type": "application/pdf",
                                     "filename": "{invoice_id}.pdf"}}}}}

Failure policy, per request: connection errors, timeouts, 5xx, 429 and invalid JSON are
retried with exponential backoff (after a timeout, never sooner than the timeout itself, so
the request given up on can end at the source before the next one starts, and the source's
concurrency cap holds; Retry-After honoured when it is at most ``backoff_cap``;
a longer one ends the read at once), then the read fails as transient; 401/403 fail it as
permanent; 404 on the first page means the person has no account (no rows); any other 4xx
is permanent. An attachment that cannot be fetched (4xx) turns its item into an error row.

This API has no "every customer" endpoint: ``supports_full_scan`` is False.

What this module must never do:

* send anything but GET requests;
* send the token to another host than the base URL's (attachment links to another origin are
  refused, and httpx drops the header on cross-origin redirects);
* log or put in an error message the token, the base URL's credentials or query string, the
  customer key, a response body or any item value. Errors name the API by its sanitised base
  URL, the dataset, the page and item numbers only.
"""

from __future__ import annotations

import email.utils
import json
import math
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from ..legacy_values import Attachment, lookup
from .base import (
    RateLimiter,
    RawRow,
    SourceAdapter,
    SourceError,
    backoff_delays,
    connection_from_env,
    content_hash,
    sleep,
)

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_BACKOFF_BASE = 0.2
DEFAULT_BACKOFF_CAP = 5.0
DEFAULT_MAX_PAGES = 10_000
DEFAULT_MAX_PAGE_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_ATTACHMENT_BYTES = 50 * 1024 * 1024
CUSTOMER_PLACEHOLDER = "{customer}"


def safe_url(url: str) -> str:
    """A URL fit for a message: scheme, host, port and path; no credentials, query, fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class _TooLarge(Exception):
    """A response body longer than allowed."""


@dataclass
class _Reply:
    status: int
    content: bytes
    content_type: str | None
    data: Any = None


class HTTPJSONAdapter(SourceAdapter):
    """Reads per-customer JSON endpoints page by page, fetching attached files."""

    supports_full_scan = False
    supports_customer_shards = True  # customer by customer anyway

    def __init__(self, *, options: dict[str, Any], connection: str,
                 limiter: RateLimiter | None = None) -> None:
        super().__init__(options=options, connection=connection, limiter=limiter)
        self._client: httpx.Client | None = None

    # -- settings -------------------------------------------------------------------------

    def _number(self, name: str, default: float, *, minimum: float) -> float:
        value = self.options.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise SourceError(f"option {name!r} must be a number ≥ {minimum}", permanent=True)
        return float(value)

    def _integer(self, name: str, default: int, *, minimum: int = 1) -> int:
        value = self.options.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SourceError(f"option {name!r} must be an integer ≥ {minimum}", permanent=True)
        return value

    def describe(self) -> str:
        return safe_url(self.connection)

    # -- connection -----------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        """The adapter's client (base URL, token, timeout), created on first use."""
        if self._client is None:
            parts = urlsplit(self.connection)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                raise SourceError("the HTTP connection must be an http(s) base URL",
                                  permanent=True)
            headers = {"Accept": "application/json"}
            token_env = self.options.get("token_env")
            if token_env:
                if not isinstance(token_env, str):
                    raise SourceError("option 'token_env' must name an environment variable",
                                      permanent=True)
                headers["Authorization"] = f"Bearer {connection_from_env(token_env)}"
            timeout = self._number("timeout", DEFAULT_TIMEOUT, minimum=0.001)
            try:
                self._client = httpx.Client(base_url=self.connection, headers=headers,
                                            timeout=timeout, follow_redirects=True)
            except (httpx.InvalidURL, ValueError, TypeError):
                raise SourceError("the HTTP connection is not a valid base URL",
                                  permanent=True) from None
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- one request, with retries ----------------------------------------------------------

    def _request(self, url: str, params: dict[str, Any], what: str, *, parse_json: bool,
                 max_bytes: int) -> _Reply:
        client = self.client
        attempts = self._integer("max_attempts", DEFAULT_MAX_ATTEMPTS)
        cap = self._number("backoff_cap", DEFAULT_BACKOFF_CAP, minimum=0)
        delays = backoff_delays(attempts=attempts,
                                base=self._number("backoff_base", DEFAULT_BACKOFF_BASE,
                                                  minimum=0),
                                cap=cap)
        failure = "no attempt made"
        timeout = self._number("timeout", DEFAULT_TIMEOUT, minimum=0.001)
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            timed_out = False
            self.limiter.wait()
            try:
                with client.stream("GET", url, params=params) as response:
                    status = response.status_code
                    if status in (401, 403):
                        raise SourceError(f"{what}: credentials refused (HTTP {status})",
                                          permanent=True)
                    if status == 429 or status >= 500:
                        failure = f"HTTP {status}"
                        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                    else:
                        content = _read_body(response, max_bytes)
                        reply = _Reply(status, content, response.headers.get("Content-Type"))
                        if not (parse_json and 200 <= status < 300):
                            return reply
                        try:
                            reply.data = json.loads(content)
                            return reply
                        except ValueError:
                            failure = "invalid JSON in the response"
            except (httpx.UnsupportedProtocol, httpx.TooManyRedirects, httpx.InvalidURL) as exc:
                raise SourceError(f"{what}: {type(exc).__name__}", permanent=True) from None
            except httpx.TimeoutException:
                failure = "timed out"
                timed_out = True
            except (httpx.TransportError, httpx.DecodingError) as exc:
                failure = f"connection failed ({type(exc).__name__})"
            if attempt == attempts:
                break
            delay = next(delays)
            if timed_out:
                # The source is most likely still working on the request we gave up on: asking
                # again sooner would make this run hold two of the source's concurrency slots.
                delay = max(delay, timeout)
            if retry_after is not None:
                if retry_after > cap:
                    raise SourceError(f"{what}: {failure}, the server asks to retry after "
                                      f"{retry_after:.0f} s", permanent=False)
                delay = retry_after
            sleep(delay)
        raise SourceError(f"{what}: {failure} after {attempts} attempts", permanent=False)

    # -- reading --------------------------------------------------------------------------

    def read(self, dataset: str, *, customer_key: str | None,
             customer_field: str) -> Iterator[RawRow]:
        if customer_key is None:
            raise SourceError(f"{self.describe()}: the API can only be read customer by "
                              "customer", permanent=True)
        opts = self.dataset_options(dataset)
        url, params = self._endpoint(dataset, opts, customer_key)
        page_param = opts.get("page_param")
        page_size = opts.get("page_size")
        if page_param and opts.get("page_size_param") and page_size:
            params[opts["page_size_param"]] = page_size
        max_pages = self._integer("max_pages", DEFAULT_MAX_PAGES)
        max_bytes = self._integer("max_page_bytes", DEFAULT_MAX_PAGE_BYTES)
        page = 1
        pages_read = 0
        while True:
            if page_param:
                params[page_param] = page
            what = f"{self.describe()} dataset {dataset!r} page {page}"
            try:
                reply = self._request(url, params, what, parse_json=True, max_bytes=max_bytes)
            except _TooLarge:
                raise SourceError(f"{what}: response larger than {max_bytes} bytes",
                                  permanent=True) from None
            if reply.status == 404:
                if page == 1:
                    return  # no account for this person: nothing to restitute
                raise SourceError(f"{what}: the page disappeared (HTTP 404)", permanent=False)
            if not 200 <= reply.status < 300:
                raise SourceError(f"{what}: HTTP {reply.status}", permanent=True)
            items = self._items(what, opts, reply.data)
            id_field = opts.get("id_field")
            for item in items:
                item_id = item.get(id_field) if id_field and isinstance(item, dict) else None
                where = f"{id_field}={item_id}" if item_id is not None else content_hash(item)
                yield self._row(dataset, opts, item, f"{url} {where}", customer_key, customer_field)
            pages_read += 1
            if not page_param:
                return
            next_page = self._next_page(what, opts, reply.data, page, len(items))
            if next_page is None:
                return
            if pages_read >= max_pages:
                raise SourceError(f"{what}: more than {max_pages} pages", permanent=True)
            page = next_page

    def _endpoint(self, dataset: str, opts: dict[str, Any],
                  customer_key: str) -> tuple[str, dict[str, Any]]:
        path = opts.get("path")
        if not isinstance(path, str) or not path:
            raise SourceError(f"dataset {dataset!r}: 'path' is required", permanent=True)
        params: dict[str, Any] = {}
        customer_param = opts.get("customer_param")
        if customer_param:
            params[customer_param] = customer_key
        elif CUSTOMER_PLACEHOLDER not in path:
            # Without it every customer would be sent the same (someone else's) rows.
            raise SourceError(f"dataset {dataset!r}: 'path' must contain {CUSTOMER_PLACEHOLDER}"
                              " (or set 'customer_param')", permanent=True)
        url = path.replace(CUSTOMER_PLACEHOLDER, quote(customer_key, safe=""))
        if urlsplit(url).scheme or url.startswith("//"):
            raise SourceError(f"dataset {dataset!r}: 'path' must be relative to the base URL",
                              permanent=True)
        return url, params

    @staticmethod
    def _items(what: str, opts: dict[str, Any], data: Any) -> list[Any]:
        field = opts.get("items_field", "items")
        items = data.get(field) if field and isinstance(data, dict) else (None if field else data)
        if not isinstance(items, list):
            where = f"field {field!r}" if field else "the response"
            raise SourceError(f"{what}: unexpected response, {where} is not a list",
                              permanent=True)
        return items

    @staticmethod
    def _next_page(what: str, opts: dict[str, Any], data: Any, page: int,
                   count: int) -> int | None:
        next_field = opts.get("next_field")
        if not next_field:
            page_size = opts.get("page_size")
            # Without a "next" marker, a full page suggests there may be another one.
            return page + 1 if page_size and count >= page_size else None
        raw = data.get(next_field) if isinstance(data, dict) else None
        if raw is None:
            return None
        if isinstance(raw, str) and raw.strip().isdigit():
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise SourceError(f"{what}: {next_field!r} is not a page number", permanent=True)
        if raw <= page:
            raise SourceError(f"{what}: {next_field!r} does not move forward", permanent=True)
        return raw

    def _row(self, dataset: str, opts: dict[str, Any], item: Any, locator: str,
             customer_key: str, customer_field: str) -> RawRow:
        if not isinstance(item, dict):
            return RawRow({"item": item}, locator, error="item is not a JSON object")
        values = dict(item)
        extra: dict[str, Any] = {}
        owner = lookup(values, customer_field)
        if owner is None:
            # The endpoint is the customer's own: the items need not repeat who they belong to.
            values[customer_field] = customer_key
            extra["customer_from_request"] = True
        elif str(owner).strip() != customer_key:
            # Keep no values: they are someone else's.
            return RawRow({}, locator, error="item belongs to another customer")
        attachments = opts.get("attachments") or {}
        if not isinstance(attachments, dict):
            raise SourceError(f"dataset {dataset!r}: 'attachments' must be an object",
                              permanent=True)
        for field, spec in attachments.items():
            link = values.get(field)
            if link is None:
                continue
            fetched = self._attachment(field, spec if isinstance(spec, dict) else {}, link,
                                       item, f"{self.describe()} {locator} attachment {field!r}")
            if isinstance(fetched, str):
                return RawRow(values, locator, error=f"attachment {field}: {fetched}", extra=extra)
            values[field] = fetched
        return RawRow(values, locator, extra=extra)

    def _attachment(self, field: str, spec: dict[str, Any], link: Any, item: dict[str, Any],
                    what: str) -> Attachment | str:
        """The fetched file, or the reason it could not be fetched (the row's error)."""
        if not isinstance(link, str) or not link.strip():
            return "not a URL"
        link = link.strip()
        parts = urlsplit(link)
        if parts.scheme or parts.netloc:
            base = urlsplit(self.connection)
            same_origin = (
                (parts.scheme or base.scheme) == base.scheme
                and parts.hostname == base.hostname
                and _port(parts, base.scheme) == _port(base, base.scheme)
            )
            if not same_origin:
                return "link to another host than the source's, not fetched"
        filename = self._filename(spec, link, item, field)
        if filename is None:
            return "the filename template names a field the item does not have"
        max_bytes = self._integer("max_attachment_bytes", DEFAULT_MAX_ATTACHMENT_BYTES)
        try:
            reply = self._request(link, {}, what, parse_json=False, max_bytes=max_bytes)
        except _TooLarge:
            return f"larger than {max_bytes} bytes"
        if not 200 <= reply.status < 300:
            return f"HTTP {reply.status}"
        header_type = (reply.content_type or "").split(";", 1)[0].strip()
        content_type = header_type or spec.get("content_type") or "application/octet-stream"
        return Attachment(filename=filename, content_type=content_type, content=reply.content)

    @staticmethod
    def _filename(spec: dict[str, Any], link: str, item: dict[str, Any],
                  field: str) -> str | None:
        template = spec.get("filename")
        if not isinstance(template, str) or not template:
            name = unquote(urlsplit(link).path.rsplit("/", 1)[-1])
        else:
            pieces: list[str] = []
            try:
                for literal, name_, format_spec, _ in string.Formatter().parse(template):
                    pieces.append(literal)
                    if name_ is None:
                        continue
                    value = lookup(item, name_)  # plain (dotted) names only, no attributes
                    if value is None:
                        return None
                    pieces.append(format(value, format_spec or ""))
            except (ValueError, TypeError):
                return None
            name = "".join(pieces)
        cleaned = "".join("_" if ch in '/\\:' or ord(ch) < 32 or ch == "\x7f" else ch
                          for ch in name).strip().lstrip(".")
        return cleaned or field


def _port(parts: Any, default_scheme: str) -> int | None:
    try:
        port = parts.port
    except ValueError:
        return -1
    if port is not None:
        return int(port)
    return {"http": 80, "https": 443}.get(parts.scheme or default_scheme)


def _read_body(response: httpx.Response, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
