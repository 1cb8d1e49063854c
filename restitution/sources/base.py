"""The one interface every legacy-system adapter implements, and the error type they raise.

An adapter only *reads*: it never writes to a legacy system and never touches the gateway's
database. Mapping, validation and storing are the pipeline's job (extraction.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


class SourceError(Exception):
    """A legacy system could not be read.

    permanent=False (network error, timeout, 5xx, 429, lock wait): a later retry may succeed.
    permanent=True (bad configuration, 4xx, missing table): retrying cannot help.
    """

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class RawRow:
    """One legacy row as read: its values by legacy field name, and where it came from.

    `error` is set when the adapter could not even decode the row (bad encoding, wrong number
    of columns); the pipeline quarantines such rows with `values` as the raw evidence.
    """

    values: dict[str, Any]
    #: Stable across runs and across changes to other rows: table and primary key, file, line
    #: and content hash, or URL and id (a content hash when the row has no id).
    locator: str
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def content_hash(value: Any) -> str:
    """A short, stable hash of a row's content, for a locator that does not move when other
    rows do (the quarantine keys rejected rows by their locator)."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    else:
        data = json.dumps(value, sort_keys=True, default=str, ensure_ascii=True).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


class RateLimiter(Protocol):
    def wait(self) -> None:
        """Block until one more request to the legacy system is allowed."""


class NoRateLimit:
    def wait(self) -> None:
        return None


class SourceAdapter:
    """Base class of the adapters. One subclass per kind, registered in sources/__init__.py.

    `options` is Source.options; `connection` is the value of the environment variable the
    Source names (a URL, DSN or directory: a secret, so never logged); `limiter.wait()` must be
    called before each request that reaches the legacy system (query, page, file).
    """

    #: True when `read(dataset, None)` can return every customer's rows in one pass; otherwise
    #: the pipeline reads customer by customer.
    supports_full_scan: bool = True
    #: True when the adapter can read a set of customers (`read_customers`) at a fair cost, so
    #: a big batch run may be split into shards of customer ranges.
    supports_customer_shards: bool = False
    #: True when a big batch run may instead be split into shards by identity hash: each shard
    #: reads everything (`read(dataset, None)`) and keeps its own customers' rows. For file
    #: sources, where a customer's rows may be in any file: reading a line costs little next to
    #: mapping, validating and storing it, which only its own shard does.
    supports_hash_shards: bool = False

    def __init__(self, *, options: dict[str, Any], connection: str,
                 limiter: RateLimiter | None = None) -> None:
        self.options = options
        self.connection = connection
        self.limiter = limiter or NoRateLimit()

    def dataset_options(self, dataset: str) -> dict[str, Any]:
        try:
            return self.options["datasets"][dataset]
        except KeyError:
            raise SourceError(f"no read options for dataset {dataset!r}", permanent=True) from None

    def read(self, dataset: str, *, customer_key: str | None,
             customer_field: str) -> Iterator[RawRow]:
        """Yield the rows of `dataset`, only those of `customer_key` when it is given.

        `customer_field` names the legacy field carrying the customer identity (from the
        mapping). Raise SourceError for a failure of the whole read.
        """
        raise NotImplementedError

    def read_part(self, dataset: str, *, customer_field: str,
                  keep: Callable[[str | None], bool]) -> Iterator[RawRow]:
        """The rows of a shard by hash: every row of `dataset` whose customer key (or, for an
        unreadable row, the key it could still name: `extra["customer"]`, None for no one)
        `keep` accepts. A pre-filter: the pipeline applies `keep` again. By default the whole
        read; file adapters drop other shards' lines before making rows of them."""
        return self.read(dataset, customer_key=None, customer_field=customer_field)

    def read_customers(self, dataset: str, *, customer_keys: list[str],
                       customer_field: str) -> Iterator[tuple[str | None, RawRow]]:
        """Yield (the customer key the read was for, or None when unknown, row) for the rows of
        several customers (a shard of a batch run). By default one read per customer; adapters
        that can filter on many customers at once (SQL) do fewer, bigger reads."""
        for key in customer_keys:
            for row in self.read(dataset, customer_key=key, customer_field=customer_field):
                yield key, row

    def close(self) -> None:
        """Release connections; called once the run is over."""


def connection_from_env(env_name: str) -> str:
    """The connection string of a source, from the environment only (never stored in clear)."""
    value = os.environ.get(env_name)
    if value is None:
        path = os.environ.get(f"{env_name}_FILE")
        if path:
            try:
                with open(path, encoding="utf-8") as handle:
                    value = handle.read().strip()
            except OSError as exc:
                raise SourceError(f"{env_name}_FILE cannot be read: {exc.strerror}",
                                  permanent=True) from None
    if not value:
        raise SourceError(f"environment variable {env_name} is not set", permanent=True)
    return value


def backoff_delays(*, attempts: int, base: float, cap: float,
                   jitter: float = 0.5) -> Iterator[float]:
    """Exponential backoff with jitter: base, 2·base, 4·base … capped, each ±jitter·delay
    (`restitution.backoff`, the one rule of the gateway)."""
    from restitution.backoff import backoff

    for attempt in range(1, attempts + 1):
        yield backoff(attempt, base=base, cap=cap, jitter=jitter)


def sleep(seconds: float) -> None:
    time.sleep(seconds)
