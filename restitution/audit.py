"""The access log: one append-only AccessEvent per access or consent event.

Every way data leaves the gateway, and every change to a consent, writes here; the customer
sees their own events on the dashboard. Events never hold tokens or record contents.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .models import AccessEvent, Customer, Dataset, Grant, PimsClient


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record_event(*, kind: str, customer: Customer, grant: Grant | None = None,
                 client: PimsClient | None = None, dataset: Dataset | None = None,
                 record_count: int | None = None, request: HttpRequest | None = None,
                 request_id: str = "", staff=None, detail: dict[str, Any] | None = None) -> AccessEvent:
    return AccessEvent.objects.create(
        kind=kind, customer=customer, grant=grant, client=client or (grant.client if grant else None),
        dataset=dataset, record_count=record_count, request_id=request_id or _request_id(request),
        ip_address=client_ip(request), staff=staff, detail=detail or {},
    )


def _request_id(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return str(getattr(request, "request_id", "") or request.META.get("HTTP_X_REQUEST_ID", ""))[:64]
