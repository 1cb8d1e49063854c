"""Destination kinds → transport classes, by dotted path (loaded on first use)."""

from __future__ import annotations

from django.utils.module_loading import import_string

from .base import Transport

TRANSPORTS: dict[str, str] = {
    "solid": "connectors_out.solid.SolidTransport",
    "webdav": "connectors_out.webdav.WebDavTransport",
    "remotestorage": "connectors_out.remotestorage.RemoteStorageTransport",
    "cozy": "connectors_out.cozy.CozyTransport",
}


def transport_class(kind: str) -> type[Transport]:
    try:
        return import_string(TRANSPORTS[kind])
    except KeyError:
        raise ValueError(f"unknown destination kind {kind!r}") from None
