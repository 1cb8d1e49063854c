"""What legacy rows are made of, shared by the source adapters and the mapping: the files fetched
with a row, and reading a value by (dotted) name. A leaf: it imports nothing of the product."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Attachment:
    """A file a source adapter fetched along with a row (an invoice PDF)."""

    filename: str
    content_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def lookup(values: MappingABC[str, Any], path: str) -> Any:
    """A legacy value by name; dotted paths reach into nested JSON (`customer.id`)."""
    if path in values:
        return values[path]
    current: Any = values
    for part in path.split("."):
        if isinstance(current, MappingABC) and part in current:
            current = current[part]
        else:
            return None
    return current
