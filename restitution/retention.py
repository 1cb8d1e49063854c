"""Retention: scheduled purges of what the gateway no longer needs to keep, each one logged.

- the stored records (and document files) of customers with no active grant, once their last
  grant ended (or, with none, their data was last extracted) GATEWAY_RECORD_RETENTION_DAYS ago;
- access events older than GATEWAY_ACCESS_EVENT_RETENTION_DAYS, except the consent events of
  grants still in force (the customer keeps seeing when and to whom they said yes);
- the operator's ApiCall and ConsentFlow rows older than GATEWAY_API_CALL_RETENTION_DAYS;
- spent authorization codes (ExchangedCode) once every refresh token they could revoke is past
  its lifetime.

A period of 0 turns that purge off. Archives are not handled here. Logs carry counts only.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from . import audit
from .models import AccessEvent, ApiCall, ConsentFlow, Customer, Document, ExchangedCode, Grant, Record

log = logging.getLogger(__name__)


@dataclass
class RetentionReport:
    customers_purged: int = 0
    records_deleted: int = 0
    documents_deleted: int = 0
    access_events_deleted: int = 0
    api_calls_deleted: int = 0
    consent_flows_deleted: int = 0
    exchanged_codes_deleted: int = 0


def _active_grants() -> Q:
    now = timezone.now()
    return Q(revoked_at__isnull=True, ended_at__isnull=True, expires_at__gt=now)


def customers_past_record_retention(*, now: datetime, days: int):
    """Customers with stored records, no active grant, and nothing shared for `days` days."""
    cutoff = now - timedelta(days=days)
    active = Grant.objects.filter(_active_grants(), customer_id=OuterRef("pk"))
    epoch = datetime(1970, 1, 1, tzinfo=timezone.get_current_timezone())
    return (Customer.objects.filter(Exists(Record.objects.filter(customer_id=OuterRef("pk"))))
            .exclude(Exists(active))
            .annotate(last_grant_end=Max(Coalesce("grants__revoked_at", "grants__ended_at", "grants__expires_at")),
                      last_extracted=Max("records__extracted_at"))
            .annotate(last_use=Greatest(Coalesce("last_grant_end", epoch), Coalesce("last_extracted", epoch)))
            .filter(last_use__lt=cutoff))


def purge_unshared_records(*, now: datetime | None = None, days: int | None = None) -> tuple[int, int, int]:
    """Delete the records and documents of customers past the record retention period.

    Returns (customers, records, documents). The next extraction for such a customer (a new
    consent, a refresh) reads them again from the legacy systems.
    """
    now = now or timezone.now()
    days = settings.GATEWAY_RECORD_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0, 0, 0
    customers = records = documents = 0
    for customer_id in customers_past_record_retention(now=now, days=days).values_list("pk", flat=True):
        with transaction.atomic():
            files = list(Document.objects.filter(customer_id=customer_id))
            for document in files:
                document.file.delete(save=False)
            documents += Document.objects.filter(customer_id=customer_id).delete()[0]
            records += Record.objects.filter(customer_id=customer_id).delete()[0]
        customers += 1
    return customers, records, documents


def purge_access_events(*, now: datetime | None = None, days: int | None = None) -> int:
    now = now or timezone.now()
    days = settings.GATEWAY_ACCESS_EVENT_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0
    active_grant = Grant.objects.filter(_active_grants(), pk=OuterRef("grant_id"))
    old = (AccessEvent.objects.filter(created_at__lt=now - timedelta(days=days))
           .exclude(Q(kind=AccessEvent.Kind.GRANT_CREATED) & Exists(active_grant))
           .exclude(kind=AccessEvent.Kind.HISTORY_PURGED))
    # Each customer's chain records what is removed, so it still verifies without it.
    with transaction.atomic():
        audit.record_purges(old)
        return old.delete()[0]


def purge_operations_rows(*, now: datetime | None = None, days: int | None = None) -> tuple[int, int]:
    now = now or timezone.now()
    days = settings.GATEWAY_API_CALL_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0, 0
    cutoff = now - timedelta(days=days)
    return (ApiCall.objects.filter(at__lt=cutoff).delete()[0],
            ConsentFlow.objects.filter(started_at__lt=cutoff).delete()[0])


def purge_exchanged_codes(*, now: datetime | None = None) -> int:
    """Spent codes older than a refresh token's lifetime: a replay could revoke nothing any more."""
    from oauth2_provider.settings import oauth2_settings

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=oauth2_settings.REFRESH_TOKEN_EXPIRE_SECONDS)
    return ExchangedCode.objects.filter(exchanged_at__lt=cutoff).delete()[0]


def apply_retention(*, now: datetime | None = None) -> RetentionReport:
    """Every purge, in turn; logs what each removed (counts only, never who)."""
    now = now or timezone.now()
    report = RetentionReport()
    report.customers_purged, report.records_deleted, report.documents_deleted = purge_unshared_records(now=now)
    report.access_events_deleted = purge_access_events(now=now)
    report.api_calls_deleted, report.consent_flows_deleted = purge_operations_rows(now=now)
    report.exchanged_codes_deleted = purge_exchanged_codes(now=now)
    log.info("retention applied: %s", ", ".join(f"{k}={v}" for k, v in asdict(report).items()),
             extra={"retention": asdict(report)})
    return report
