"""Retention: records of customers with nothing shared for the period go (files too), old access
events go except the consent of grants in force, operator rows go; each purge is logged."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from restitution import audit, retention
from restitution.metrics import record_api_call
from restitution.models import AccessEvent, ApiCall, Customer, Dataset, Document, Grant, Record
from tests.personas import CURVE

_seq = iter(range(1, 10_000))


def _records(customer: Customer, *, days_ago: int, count: int = 2) -> None:
    dataset = Dataset.objects.get(slug=CURVE)
    at = timezone.now() - timedelta(days=days_ago)
    for n in range(count):
        Record.objects.create(customer=customer, dataset=dataset, key=f"{customer.reference}-{n}", data={"n": n},
                              content_hash="h", extracted_at=at, seq=next(_seq))


def _grant(customer, client, *, created_days_ago: int, days: int, revoked_days_ago: int | None = None) -> Grant:
    created = timezone.now() - timedelta(days=created_days_ago)
    return Grant.objects.create(
        receipt_id=uuid.uuid4(), customer=customer, client=client, duration="12m", created_at=created,
        expires_at=created + timedelta(days=days), receipt={},
        revoked_at=timezone.now() - timedelta(days=revoked_days_ago) if revoked_days_ago is not None else None)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_records_of_customers_with_nothing_shared_for_the_period_are_purged(personas, media, settings, caplog):
    settings.GATEWAY_RECORD_RETENTION_DAYS = 90
    carol = Customer.objects.create(reference="C-CAROL")
    dave = Customer.objects.create(reference="C-DAVE")
    _grant(personas.alice, personas.trusted, created_days_ago=200, days=365, revoked_days_ago=100)
    _records(personas.alice, days_ago=120)
    _grant(personas.bob, personas.trusted, created_days_ago=200, days=365)  # still in force
    _records(personas.bob, days_ago=150)
    _records(carol, days_ago=10)  # never shared, but read recently
    _records(dave, days_ago=100)  # never shared, read long ago
    document = Document(customer=personas.alice, dataset=Dataset.objects.get(slug=CURVE), record_key="k",
                        filename="invoice.pdf", content_type="application/pdf", size=3, sha256="0" * 64)
    document.file.save("invoice.pdf", ContentFile(b"pdf"), save=True)
    path = document.file.path

    with caplog.at_level(logging.INFO, logger="restitution.retention"):
        report = retention.apply_retention()

    assert (report.customers_purged, report.records_deleted, report.documents_deleted) == (2, 4, 1)
    left = set(Record.objects.values_list("customer__reference", flat=True))
    assert left == {"C-BOB", "C-CAROL"}
    assert not Document.objects.exists()
    assert not os.path.exists(path)
    line = next(r for r in caplog.records if r.name == "restitution.retention")
    assert "records_deleted=4" in line.getMessage() and "C-ALICE" not in line.getMessage()


def test_a_grant_revoked_recently_keeps_the_records(personas, settings):
    settings.GATEWAY_RECORD_RETENTION_DAYS = 90
    _grant(personas.alice, personas.trusted, created_days_ago=300, days=365, revoked_days_ago=5)
    _records(personas.alice, days_ago=250)
    assert retention.purge_unshared_records() == (0, 0, 0)
    assert Record.objects.filter(customer=personas.alice).count() == 2


def test_old_access_events_go_but_the_consent_of_a_grant_in_force_stays(personas, settings):
    settings.GATEWAY_ACCESS_EVENT_RETENTION_DAYS = 365
    live = _grant(personas.bob, personas.trusted, created_days_ago=400, days=500)
    gone = _grant(personas.alice, personas.trusted, created_days_ago=400, days=30)
    old = timezone.now() - timedelta(days=400)
    keep_consent = AccessEvent.objects.create(kind=AccessEvent.Kind.GRANT_CREATED, customer=personas.bob,
                                              grant=live, created_at=old)
    AccessEvent.objects.create(kind=AccessEvent.Kind.GRANT_CREATED, customer=personas.alice, grant=gone,
                               created_at=old)
    AccessEvent.objects.create(kind=AccessEvent.Kind.DATA_READ, customer=personas.bob, grant=live, created_at=old)
    recent = AccessEvent.objects.create(kind=AccessEvent.Kind.DATA_READ, customer=personas.bob, grant=live)
    assert retention.purge_access_events() == 2
    purges = AccessEvent.objects.filter(kind=AccessEvent.Kind.HISTORY_PURGED)
    assert set(AccessEvent.objects.exclude(pk__in=purges).values_list("pk", flat=True)) == {keep_consent.pk,
                                                                                          recent.pk}
    # Each customer's chain says what was removed, so it still verifies over the gap…
    assert {p.customer_id: p.record_count for p in purges} == {personas.alice.pk: 1, personas.bob.pk: 1}
    assert audit.verify_chains() == []
    first_purges = set(purges.values_list("pk", flat=True))
    # A gap that no purge event names is still a break.
    with transaction.atomic():
        AccessEvent.objects.filter(pk=keep_consent.pk).delete()
        assert audit.verify_chains() != []
        transaction.set_rollback(True)
    # Years later everything else goes, never the purge events, and the chains still verify.
    assert retention.purge_access_events(now=timezone.now() + timedelta(days=2000)) >= 1
    remaining = set(AccessEvent.objects.values_list("pk", flat=True))
    assert recent.pk not in remaining and first_purges <= remaining
    assert audit.verify_chains() == []


def test_operator_rows_are_purged_and_zero_days_keeps_everything(personas, settings):
    old = timezone.now() - timedelta(days=500)
    record_api_call(tier="high-priority", endpoint="api-me", status=200, duration_ms=5, at=old)
    record_api_call(tier="high-priority", endpoint="api-me", status=200, duration_ms=5)
    settings.GATEWAY_API_CALL_RETENTION_DAYS = 0
    settings.GATEWAY_RECORD_RETENTION_DAYS = 0
    settings.GATEWAY_ACCESS_EVENT_RETENTION_DAYS = 0
    assert retention.apply_retention().api_calls_deleted == 0
    settings.GATEWAY_API_CALL_RETENTION_DAYS = 400
    assert retention.purge_operations_rows() == (1, 0)
    assert ApiCall.objects.count() == 1


def test_spent_codes_are_forgotten_once_no_token_they_gave_can_live(flow):
    from restitution.models import ExchangedCode

    assert flow.exchange(flow.code()).status_code == 200
    ExchangedCode.objects.create(code_checksum="0" * 64, client=flow_client(),
                                 exchanged_at=timezone.now() - timedelta(days=367))
    assert retention.apply_retention().exchanged_codes_deleted == 1
    assert ExchangedCode.objects.count() == 1  # the recent one stays: its replay must still revoke


def flow_client():
    from restitution.models import PimsClient

    return PimsClient.objects.get(client_id="trusted-cloud")


def test_retention_is_scheduled_nightly(db):
    call_command("setup_schedules")
    task = PeriodicTask.objects.get(name="apply retention")
    assert task.task == "restitution.tasks.apply_retention" and task.crontab is not None
