"""The quarantine: legacy rows that could not be restituted, one row per stable locator.

A run that rejects a row writes or refreshes its RejectedRow by fingerprint (source, dataset,
locator), so re-running an extraction never adds the same rejected row twice. The operator
sets a state (open, fixed at source, accepted as not restitutable) and a note in the admin; a
row marked fixed that a later run rejects again is open again. The customer is told how many
of their records are withheld per dataset, never the raw values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.db.models import Count
from django.utils import timezone

from .models import Customer, RejectedRow

#: The states in which a record is still withheld from its customer.
WITHHELD_STATES = (RejectedRow.State.OPEN, RejectedRow.State.ACCEPTED)


def fingerprint(*, source_id: int, dataset_id: int | None, locator: str) -> str:
    return hashlib.sha256(f"{source_id}\x1f{dataset_id or ''}\x1f{locator}".encode()).hexdigest()


def save(rows: Iterable[RejectedRow]) -> None:
    """Insert new rejected rows, refresh the ones already known (same fingerprint)."""
    now = timezone.now()
    unique: dict[str, RejectedRow] = {}
    for row in rows:
        row.fingerprint = fingerprint(source_id=row.source_id, dataset_id=row.dataset_id, locator=row.locator)
        row.created_at = row.last_seen_at = now
        unique[row.fingerprint] = row  # the same locator twice in one batch: the last wins
    if not unique:
        return
    RejectedRow.objects.bulk_create(
        list(unique.values()), update_conflicts=True, unique_fields=["fingerprint"],
        update_fields=["run", "customer", "reason", "raw", "last_seen_at"])
    RejectedRow.objects.filter(fingerprint__in=list(unique), state=RejectedRow.State.FIXED).update(
        state=RejectedRow.State.OPEN)


def withheld(customer: Customer) -> dict[str, int]:
    """Per dataset slug, how many of the customer's records are withheld (open or accepted)."""
    rows = (RejectedRow.objects.filter(customer=customer, state__in=WITHHELD_STATES, dataset__isnull=False)
            .values("dataset__slug").annotate(n=Count("id")))
    return {row["dataset__slug"]: row["n"] for row in rows}
