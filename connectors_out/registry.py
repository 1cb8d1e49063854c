"""Destination kinds by name: each name → its `Kind` (connectors_out/kinds/<name>/kind.py).

The one list of kinds: the connect pages, the URLs, the deliveries and the check of a
destination's `kind` all read it. `CONNECTORS_EXTRA_KINDS` (a setting, empty in the product)
adds kinds that live elsewhere — the tests' local-folder destination.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

from .base import Transport

if TYPE_CHECKING:
    from .kinds import Kind

KINDS: dict[str, str] = {
    "solid": "connectors_out.kinds.solid.kind.KIND",
    "webdav": "connectors_out.kinds.webdav.kind.KIND",
    "remotestorage": "connectors_out.kinds.remotestorage.kind.KIND",
    "cozy": "connectors_out.kinds.cozy.kind.KIND",
}


def _paths() -> dict[str, str]:
    return {**KINDS, **getattr(settings, "CONNECTORS_EXTRA_KINDS", {})}


def names() -> list[str]:
    return list(_paths())


def kind(name: str) -> Kind:
    """The kind of this name; ValueError for a name the registry does not hold."""
    try:
        path = _paths()[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown destination kind {name!r}") from None
    found = import_string(path)
    if found.name != name:
        raise ValueError(f"the registry names {path} {name!r} but it calls itself {found.name!r}")
    return found


def kinds() -> list[Kind]:
    return [kind(name) for name in _paths()]


def transport_class(name: str) -> type[Transport]:
    return kind(name).transport


def label(name: str) -> str:
    """A kind's name for the customer; the bare name of a kind no longer registered."""
    try:
        return str(kind(name).label)
    except ValueError:
        return name
