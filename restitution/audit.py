"""The access log: one append-only AccessEvent per access or consent event.

Every way data leaves the gateway, and every change to a consent, writes here; the customer
sees their own events on the dashboard. Events never hold tokens or record contents.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.db.models.sql import InsertQuery
from django.http import HttpRequest

from .client_address import client_ip
from .models import AccessEvent, Customer, Dataset, Grant, PimsClient


def new_event(*, kind: str, customer: Customer, grant: Grant | None = None,
              client: PimsClient | None = None, dataset: Dataset | None = None,
              record_count: int | None = None, request: HttpRequest | None = None,
              request_id: str = "", staff=None, detail: dict[str, Any] | None = None) -> AccessEvent:
    """An event not saved yet (record_event() saves it; record_access() may write it later)."""
    return AccessEvent(
        kind=kind, customer=customer, grant=grant, client=client or (grant.client if grant else None),
        dataset=dataset, record_count=record_count, request_id=request_id or _request_id(request),
        ip_address=client_ip(request), staff=staff, detail=detail or {},
    )


def record_event(*, kind: str, customer: Customer, grant: Grant | None = None,
                 client: PimsClient | None = None, dataset: Dataset | None = None,
                 record_count: int | None = None, request: HttpRequest | None = None,
                 request_id: str = "", staff=None, detail: dict[str, Any] | None = None) -> AccessEvent:
    """Write one event now."""
    event = new_event(kind=kind, customer=customer, grant=grant, client=client, dataset=dataset,
                      record_count=record_count, request=request, request_id=request_id, staff=staff,
                      detail=detail)
    event.save()
    return event


#: Set on a request by the API call recorder (observability.ApiMetricsMiddleware), which then
#: writes the request's access events together with its ApiCall row, before the response leaves.
PENDING_ATTRIBUTE = "gateway_access_events"


def record_access(request: HttpRequest, *, kind: str, grant: Grant, dataset: Dataset | None,
                  record_count: int | None, detail: dict[str, Any]) -> None:
    """The event of an API data access: handed to the API call recorder when it follows this
    request (one database round trip for both rows), written at once otherwise."""
    event = new_event(kind=kind, customer=grant.customer, grant=grant, client=grant.client, dataset=dataset,
                      record_count=record_count, request=request, detail=detail)
    pending = getattr(request, PENDING_ATTRIBUTE, None)
    if pending is None:
        event.save()
    else:
        pending.append(event)


def write_access_events(events: list[AccessEvent], *, with_row: Model | None = None) -> None:
    """Write unsaved events (and one unsaved row of another table with them, e.g. the API call
    they belong to) in one transaction: on PostgreSQL in one statement (`WITH … INSERT`), so in
    one round trip. Every write of the access log goes through this module."""
    if with_row is None:
        AccessEvent.objects.bulk_create(events)
        return
    if connection.vendor != "postgresql":
        with transaction.atomic():
            AccessEvent.objects.bulk_create(events)
            with_row.save()
        return
    events_sql, events_params = _insert_sql(AccessEvent, events)
    row_sql, row_params = _insert_sql(type(with_row), [with_row])
    with connection.cursor() as cursor:
        cursor.execute(f"WITH events AS ({events_sql}) {row_sql}", [*events_params, *row_params])


def _insert_sql(model: type[Model], objects: list) -> tuple[str, list]:
    """The INSERT Django would run for these unsaved objects (its own value preparation)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    query = InsertQuery(model)
    query.insert_values(fields, objects)
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    return sql, list(params)


def _request_id(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return str(getattr(request, "request_id", "") or request.META.get("HTTP_X_REQUEST_ID", ""))[:64]
