"""Grants: a customer's consent to one client — created from an authorization, expired, revoked.

A grant bounds everything issued under it: its tokens carry only its datasets' scopes, and they
stop working the moment it is revoked, expires or (one-time) is used up. This module never
renders pages and never serves data.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from . import audit, events, processing, store
from .models import AccessEvent, Customer, Dataset, Grant, PimsClient

#: The longest a customer may consent for (12 months, as Australia's CDR and our promise).
DURATIONS: dict[str, timedelta] = {
    Grant.Duration.ONE_TIME: timedelta(days=7),  # outer bound; ends at first complete use
    Grant.Duration.MONTH_1: timedelta(days=30),
    Grant.Duration.MONTHS_3: timedelta(days=91),
    Grant.Duration.MONTHS_6: timedelta(days=182),
    Grant.Duration.MONTHS_12: timedelta(days=365),
}


class ConsentError(ValueError):
    """A consent that cannot be given as asked (nothing chosen, a window upside down…)."""


def active_grant(*, customer: Customer | None, client: PimsClient) -> Grant | None:
    """The grant currently in force between a customer and a client (at most one)."""
    if customer is None:
        return None
    now = timezone.now()
    return (Grant.objects.filter(customer=customer, client=client, revoked_at__isnull=True,
                                 ended_at__isnull=True, expires_at__gt=now)
            .select_related("customer", "client").prefetch_related("datasets").order_by("-created_at").first())


def pairwise_subject(*, customer_reference: str, client_id: str) -> str:
    """A stable identifier of the customer for one client only (never the legacy id).

    Two clients get unrelated values for the same customer, so they cannot join their data.
    """
    message = f"{client_id}\x1f{customer_reference}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def grant_scopes(grant: Grant) -> set[str]:
    return {dataset.scope for dataset in grant.datasets.all()}


def customer_of(user) -> Customer | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return Customer.objects.filter(user=user).first()


def _processing_at_consent(dataset: Dataset) -> dict[str, Any]:
    """The dataset's processing facts (restitution/processing.py) as they stand now, to be kept
    in the receipt: a later edit of the catalogue does not change what the customer was told."""
    facts = processing.facts(dataset)
    last = facts["last_extraction"]
    return {**facts, "last_extraction": last.isoformat() if last else None}


def _receipt(grant: Grant, datasets: list[Dataset], language: str) -> dict[str, Any]:
    """A consent receipt modelled on ISO/IEC TS 27560 and the Kantara consent receipt. Version
    1.1 added each dataset's processing facts (`data_categories[].processing`)."""
    client = grant.client
    return {
        "receipt_version": "1.1",
        "schema": "ISO/IEC TS 27560:2023 consent record (subset); Kantara Consent Receipt v1.1",
        "receipt_id": str(grant.receipt_id),
        "language": language,
        "jurisdiction": "EU — GDPR Art. 6(1)(a) consent, Art. 20 portability",
        "collection_method": "web consent page of the data holder's restitution gateway",
        "consent_timestamp": grant.created_at.isoformat(),
        "controller": {"name": settings.GATEWAY_HOLDER_NAME, "contact": settings.GATEWAY_HOLDER_CONTACT},
        "recipient": {"name": client.name, "client_id": client.client_id,
                      "homepage": client.homepage_url or None,
                      "privacy_policy": client.privacy_policy_url or None},
        "data_subject": {"reference": grant.customer.reference},
        "purposes": [{"purpose": grant.purpose, "category": "data portability to a service of the "
                      "data subject's choice", "legal_basis": "consent", "termination": "revocable at "
                      "any time from the customer dashboard"}],
        "data_categories": [{"dataset": d.slug, "title": d.title_fr if language == "fr" else d.title_en,
                             "scope": d.scope, "schema_version": d.schema_version,
                             "processing": _processing_at_consent(d)} for d in datasets],
        "data_period": {"from": grant.window_start.isoformat() if grant.window_start else None,
                        "to": grant.window_end.isoformat() if grant.window_end else None},
        "duration": {"type": "one-time" if grant.is_one_time else "ongoing", "choice": grant.duration,
                     "expires_at": grant.expires_at.isoformat()},
        "timestamps": {"given_at": grant.created_at.isoformat(),
                       "expires_at": grant.expires_at.isoformat(), "revoked_at": None},
    }


@transaction.atomic
def create_grant(*, customer: Customer, client: PimsClient, datasets: list[Dataset], duration: str,
                 window_start: date | None = None, window_end: date | None = None,
                 language: str = "en", request: HttpRequest | None = None) -> Grant:
    """Record the customer's consent; replaces any grant in force with the same client.

    Queues the customer's first extraction, so the client finds data when it comes.
    """
    if not datasets:
        raise ConsentError("choose at least one dataset")
    if duration not in DURATIONS:
        raise ConsentError(f"unknown duration {duration!r}")
    if window_start and window_end and window_start > window_end:
        raise ConsentError("the start of the period is after its end")
    allowed = set(client.allowed_datasets.values_list("pk", flat=True))
    if any(d.pk not in allowed for d in datasets):
        raise ConsentError("this client may not ask for some of these datasets")
    previous = active_grant(customer=customer, client=client)
    if previous is not None:
        revoke_grant(grant=previous, reason="replaced by a new consent", request=request)
    now = timezone.now()
    grant = Grant(receipt_id=uuid.uuid4(), customer=customer, client=client,
                  purpose=client.purpose(language), window_start=window_start, window_end=window_end,
                  duration=duration, created_at=now, expires_at=now + DURATIONS[duration], receipt={})
    grant.receipt = _receipt(grant, datasets, language)
    with transaction.atomic():
        # Above every sequence handed out before this consent, none of which a record holds: the
        # cursors of earlier consents are all below it (the API refuses them: resync).
        grant.first_seq = store.sync_floor()
        grant.save()
    grant.datasets.set(datasets)
    audit.record_event(kind=AccessEvent.Kind.GRANT_CREATED, customer=customer, grant=grant,
                       request=request, detail={"datasets": [d.slug for d in datasets],
                                                "duration": duration})
    from .models import ExtractionRun
    from .runs import request_customer_extraction

    request_customer_extraction(customer=customer, trigger=ExtractionRun.Trigger.CONSENT)
    return grant


def _end_tokens(grant: Grant) -> int:
    """Delete every token and pending code of this customer for this client: they die at once."""
    user = grant.customer.user
    if user is None:
        return 0
    AccessToken = get_access_token_model()
    RefreshToken = get_refresh_token_model()
    now = timezone.now()
    RefreshToken.objects.filter(user=user, application=grant.client, revoked__isnull=True).update(revoked=now)
    deleted, _ = AccessToken.objects.filter(user=user, application=grant.client).delete()
    get_grant_model().objects.filter(user=user, application=grant.client).delete()
    return deleted


@transaction.atomic
def revoke_grant(*, grant: Grant, reason: str = "revoked by the customer",
                 request: HttpRequest | None = None, staff=None) -> None:
    """Revoke now: its tokens stop working immediately; the grant stays visible as history.

    Publishes GRANT_REVOKED with the revocation (subscribers tell the client, unless it was
    deprovisioned: no one is left to tell)."""
    if grant.revoked_at is not None:
        return
    now = timezone.now()
    grant.revoked_at = now
    grant.revoked_reason = reason[:200]
    grant.receipt = {**grant.receipt, "timestamps": {**grant.receipt.get("timestamps", {}),
                                                     "revoked_at": now.isoformat()}}
    grant.save(update_fields=["revoked_at", "revoked_reason", "receipt"])
    _end_tokens(grant)
    audit.record_event(kind=AccessEvent.Kind.GRANT_REVOKED, customer=grant.customer, grant=grant,
                       request=request, staff=staff, detail={"reason": reason})
    events.publish(events.GRANT_REVOKED, subject_id=grant.pk)


@transaction.atomic
def end_one_time_grant(*, grant: Grant) -> None:
    """A one-time grant is used up after its first complete export or sync."""
    if not grant.is_one_time or grant.ended_at is not None:
        return
    grant.ended_at = timezone.now()
    grant.save(update_fields=["ended_at"])
    _end_tokens(grant)
    events.publish(events.GRANT_ENDED, subject_id=grant.pk)


def expire_due_grants(*, now: datetime | None = None) -> int:
    """Scheduled: end the tokens of grants past their expiry and log it, once per grant."""
    now = now or timezone.now()
    due = (Grant.objects.filter(expires_at__lte=now, revoked_at__isnull=True, ended_at__isnull=True)
           .exclude(access_events__kind=AccessEvent.Kind.GRANT_EXPIRED)
           .select_related("customer", "client"))
    count = 0
    for grant in due:
        with transaction.atomic():
            _end_tokens(grant)
            audit.record_event(kind=AccessEvent.Kind.GRANT_EXPIRED, customer=grant.customer, grant=grant)
            events.publish(events.GRANT_EXPIRED, subject_id=grant.pk)
        count += 1
    return count
