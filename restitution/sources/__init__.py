"""Registry of source adapters: Source.kind → adapter class (dotted path, imported lazily).

Adding a kind of legacy system = one module here plus one line in ADAPTERS.
"""

from __future__ import annotations

from importlib import import_module

from .base import RawRow, SourceAdapter, SourceError

ADAPTERS: dict[str, str] = {
    "sql": "restitution.sources.sql.SQLAdapter",
    "csv": "restitution.sources.files.CSVAdapter",
    "fixed-width": "restitution.sources.files.FixedWidthAdapter",
    "http-json": "restitution.sources.http.HTTPJSONAdapter",
}


def adapter_class(kind: str) -> type[SourceAdapter]:
    try:
        dotted = ADAPTERS[kind]
    except KeyError:
        raise SourceError(f"unknown source kind {kind!r}", permanent=True) from None
    module_name, _, class_name = dotted.rpartition(".")
    return getattr(import_module(module_name), class_name)


__all__ = ["ADAPTERS", "RawRow", "SourceAdapter", "SourceError", "adapter_class"]
