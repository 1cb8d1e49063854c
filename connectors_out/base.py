"""The interface every destination implements and what it is given: records (`Change`), their
files (`File`) and their stable names.

A transport writes one customer's records and files to one store, under stable names, so a
repeated write replaces instead of duplicating. It never decides *what* to send (delivery.py
does) and never logs credentials, tokens or record contents. Its requests go through the one
HTTP layer (`http.py`: the address guard, the classification of answers).
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from .http import DeliveryError, http_client, send

__all__ = ["Change", "DeliveryError", "File", "Transport", "file_name", "resource_name"]

#: A resource name is the record key when it is made of these; otherwise a readable part plus a hash.
_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")

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
        return send(self.http, method, url, what=what, ok_missing=ok_missing, **kwargs)

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

    @abstractmethod
    def delete_file(self, file: File) -> None:
        """Remove a record's document that its current version no longer names (its `content`
        is empty); already gone is fine."""

    def close(self) -> None:
        self.http.close()
