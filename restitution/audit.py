"""The access log: one append-only AccessEvent per access or consent event.

Every way data leaves the gateway, and every change to a consent, writes here; the customer
sees their own events on the dashboard. Events never hold tokens or record contents.
"""

from __future__ import annotations

import hashlib
import logging
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import DatabaseError, connection, transaction
from django.db.models import Model, TextField
from django.db.models.functions import Cast
from django.db.models.sql import InsertQuery
from django.http import HttpRequest
from django.utils import timezone

from . import crypto
from .client_address import client_ip
from .models import AccessEvent, Customer, Dataset, Grant, PimsClient

logger = logging.getLogger(__name__)


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


class PendingAccess:
    """The access events a request's views recorded, to be written before its response leaves
    (by access_log.AccessLogMiddleware, which sets one on each request as `request.access_log`).

    Another recorder of the same request — the operator metrics' ApiCall row — may hand over one
    unsaved row to go into the same statement (`write_along`): it observes the access log, it
    never owns it."""

    def __init__(self) -> None:
        self.events: list[AccessEvent] = []
        self.companion: Model | None = None
        self.written = False

    def add(self, event: AccessEvent) -> bool:
        """Keep an event for the write after the view; False once that write is done (then the
        caller saves the event itself)."""
        if self.written:
            return False
        self.events.append(event)
        return True

    def write_along(self, row: Model) -> bool:
        """Write this unsaved row with the events, in their statement. False when there is nothing
        to go with (no event, or they are already written): the caller saves the row itself."""
        if self.written or not self.events or self.companion is not None:
            return False
        self.companion = row
        return True


#: The request attribute holding the request's PendingAccess.
PENDING_ATTRIBUTE = "access_log"


def record_access(request: HttpRequest, *, kind: str, grant: Grant, dataset: Dataset | None,
                  record_count: int | None, detail: dict[str, Any]) -> None:
    """The event of an API data access: kept for the access log middleware, which writes it
    before the response leaves (with the request's other rows, in one round trip); written at once
    when no middleware follows this request."""
    event = new_event(kind=kind, customer=grant.customer, grant=grant, client=grant.client, dataset=dataset,
                      record_count=record_count, request=request, detail=detail)
    pending: PendingAccess | None = getattr(request, PENDING_ATTRIBUTE, None)
    if pending is None or not pending.add(event):
        event.save()


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


def write_pending(pending: PendingAccess) -> None:
    """Write a request's kept events, with the row handed over to go with them (one statement).
    Should that statement fail, the events are written alone and the row is dropped; a
    DatabaseError from that write means the events could not be written."""
    pending.written = True
    events, row = pending.events, pending.companion
    if not events:
        return
    if row is not None:
        try:
            # Inside a transaction a failed statement would spoil it for the write after it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                write_access_events(events, with_row=row)
            return
        except DatabaseError:
            logger.warning("could not write a %s row with the access events; writing the events alone",
                           type(row).__name__)
    write_access_events(events)


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


# --- The hash chain ------------------------------------------------------------------------
# Each customer's events form a chain: on insert, a PostgreSQL trigger (migration
# 0012_access_event_chain) numbers the event after the customer's last one and stores the
# hash of the previous event and its own. The algorithm, repeated here for verification, is
# in docs/history.md.

#: The fields of an event, in the order they are hashed after the previous hash.
CHAIN_FIELDS = ("customer_id", "chain_seq", "id", "created_at", "kind", "client_id", "grant_id", "dataset_id",
                "staff_id", "record_count", "detail_text")


def event_hash(previous: str, event: dict[str, Any]) -> str:
    """SHA-256 (hex) of the previous hash and the event's fields, joined by line feeds; a null
    is an empty string, the time is UTC with microseconds, the detail is PostgreSQL's jsonb text."""
    parts = [previous]
    for name in CHAIN_FIELDS:
        value = event[name]
        if isinstance(value, datetime):
            value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        parts.append("" if value is None else str(value))
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def chain_rows(customer_id: int | None = None):
    """The chained events (one customer's or everyone's), in chain order, with the detail's text."""
    rows = AccessEvent.objects.filter(chain_seq__isnull=False)
    if customer_id is not None:
        rows = rows.filter(customer_id=customer_id)
    return (rows.annotate(detail_text=Cast("detail", output_field=TextField()))
            .order_by("customer_id", "chain_seq")
            .values(*CHAIN_FIELDS, "prev_hash", "hash").iterator(chunk_size=2000))


def record_purges(events) -> None:
    """Before retention deletes these events: one chained "history-purged" event per customer
    naming each removed position and its hash, so the chain still verifies across the gap."""
    removed: dict[int, list[list]] = {}
    for customer_id, seq, digest in (events.filter(chain_seq__isnull=False).order_by("customer_id", "chain_seq")
                                     .values_list("customer_id", "chain_seq", "hash")):
        removed.setdefault(customer_id, []).append([seq, digest])
    for customer_id, positions in removed.items():
        AccessEvent(kind=AccessEvent.Kind.HISTORY_PURGED, customer_id=customer_id,
                    record_count=len(positions), detail={"removed": positions}).save()


def _purged_positions(customer_id: int | None) -> dict[tuple[int, int], str]:
    """(customer, position) → hash of each event retention removed, from the chained purge events."""
    purges = AccessEvent.objects.filter(kind=AccessEvent.Kind.HISTORY_PURGED)
    if customer_id is not None:
        purges = purges.filter(customer_id=customer_id)
    known = {}
    for owner, detail in purges.values_list("customer_id", "detail"):
        for seq, digest in detail.get("removed", []):
            known[(owner, seq)] = digest
    return known


def verify_chains(customer_id: int | None = None) -> list[str]:
    """Every break in the chains: an edited event (its hash no longer matches), a deleted one
    (a gap, or the next one's previous hash no longer matches), events reordered. Empty if intact.

    A gap left by retention is no break: the purge event, itself in the chain, names the hash of
    each removed event."""
    problems: list[str] = []
    purged = _purged_positions(customer_id)
    current, expected_seq, previous = None, 1, ""
    for row in chain_rows(customer_id):
        if row["customer_id"] != current:
            current, expected_seq, previous = row["customer_id"], 1, ""
        where = f"customer {row['customer_id']} event {row['id']} (position {row['chain_seq']})"
        while expected_seq < row["chain_seq"] and (current, expected_seq) in purged:
            previous = purged[(current, expected_seq)]
            expected_seq += 1
        if row["chain_seq"] != expected_seq:
            problems.append(f"{where}: position {expected_seq} is missing")
        if row["prev_hash"] != previous:
            problems.append(f"{where}: does not follow the event before it")
        if event_hash(row["prev_hash"], row) != row["hash"]:
            problems.append(f"{where}: its content does not match its hash")
        current, expected_seq, previous = row["customer_id"], row["chain_seq"] + 1, row["hash"]
    unchained = AccessEvent.objects.filter(chain_seq__isnull=True)
    if customer_id is not None:
        unchained = unchained.filter(customer_id=customer_id)
    if connection.vendor == "postgresql" and unchained.exists():
        problems.append(f"{unchained.count()} event(s) are outside any chain")
    return problems


HISTORY_SALT = "restitution.history"


def signed_history(customer: Customer) -> dict[str, Any]:
    """The customer's whole chain, as JSON, with the head signed by the gateway (HMAC-SHA256
    with its secret key: the gateway can confirm it issued this head; anyone can check the chain)."""
    events = []
    for row in chain_rows(customer.pk):
        events.append({**{name: row[name] for name in CHAIN_FIELDS},
                       "created_at": row["created_at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                       "prev_hash": row["prev_hash"], "hash": row["hash"]})
    head = events[-1]["hash"] if events else ""
    body = {"customer": customer.reference, "algorithm": "sha256-chain-v1", "fields": list(CHAIN_FIELDS),
            "count": len(events), "head": head, "issued_at": timezone.now().isoformat(), "events": events}
    body["signature"] = signing.Signer(salt=HISTORY_SALT).signature(
        f"{customer.reference}:{len(events)}:{head}")
    # The same head, signed with the gateway's Ed25519 key: anyone verifies it with the keys at
    # /.well-known/restitution-history-keys (docs/history.md).
    body["head_token"] = crypto.sign_history_head({
        "iss": settings.GATEWAY_ISSUER, "sub": customer.reference, "iat": int(time.time()),
        "history_count": len(events), "history_head": head, "history_algorithm": body["algorithm"]})
    return body


# --- Holder staff access -------------------------------------------------------------------

#: What a staff member opened, as the customer's history names it (admin model → words).
STAFF_SUBJECTS = ("records", "documents", "consents", "history", "archives")


def record_staff_access(*, staff, customers: dict[int, set], subject: str, reason: str,
                        request: HttpRequest | None = None, via: str = "admin") -> int:
    """One event per customer whose data a holder staff member opened or exported: what
    (`subject`, and the datasets when known: {customer id: {dataset ids}}), why, and how."""
    assert subject in STAFF_SUBJECTS, subject
    written = 0
    for customer_id, dataset_ids in customers.items():
        dataset_ids = sorted(d for d in dataset_ids if d)
        AccessEvent(
            kind=AccessEvent.Kind.STAFF_ACCESS, customer_id=customer_id, staff=staff,
            dataset_id=dataset_ids[0] if len(dataset_ids) == 1 else None,
            request_id=_request_id(request), ip_address=client_ip(request),
            detail={"subject": subject, "reason": reason[:500], "via": via, "datasets": dataset_ids},
        ).save()
        written += 1
    return written
