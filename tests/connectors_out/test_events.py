"""Domain events: connectors_out subscribes in its app config; an event is an outbox message per
subscriber, written in the transaction of what it is about (rolled back with it); a deprovisioned
client is told nothing; the domain refuses names it does not know."""

from __future__ import annotations

import pytest
from django.db import transaction

from connectors_out import webhooks
from connectors_out.models import WebhookDelivery
from restitution import clients, consent, events
from restitution.models import Grant, OutboxMessage
from tests.conftest import deliver_events

pytestmark = pytest.mark.django_db


def _grant(personas) -> Grant:
    return consent.create_grant(customer=personas.alice, client=personas.trusted, duration="3m",
                                datasets=list(personas.trusted.allowed_datasets.all()))


def test_connectors_out_subscribes_to_changed_data_and_revocations_only():
    assert events.subscribers(events.RUN_CHANGED_DATA) == ("connectors_out.tasks.on_run_changed_data",
                                                           "connectors_out.tasks.announce_new_data")
    assert events.subscribers(events.GRANT_REVOKED) == ("connectors_out.tasks.on_grant_revoked",)
    for event in (events.GRANT_ENDED, events.GRANT_EXPIRED, events.ARCHIVE_READY):
        assert events.subscribers(event) == ()


def test_a_revocation_writes_its_event_with_it_and_a_rolled_back_one_writes_nothing(personas):
    grant = _grant(personas)
    waiting = OutboxMessage.objects.filter(task="connectors_out.tasks.on_grant_revoked")
    with pytest.raises(RuntimeError), transaction.atomic():
        consent.revoke_grant(grant=grant)
        assert list(waiting.values_list("args", flat=True)) == [[grant.pk]]
        raise RuntimeError("the caller's transaction fails after the revocation")
    assert not waiting.exists()
    assert Grant.objects.get(pk=grant.pk).revoked_at is None

    consent.revoke_grant(grant=Grant.objects.get(pk=grant.pk))
    assert list(waiting.values_list("args", flat=True)) == [[grant.pk]]


def test_an_event_reaches_each_subscriber_once_and_an_unsubscribed_one_writes_nothing(personas, monkeypatch):
    monkeypatch.setitem(events._subscribers, events.GRANT_EXPIRED, ["connectors_out.tasks.on_grant_revoked"])
    grant = _grant(personas)
    Grant.objects.filter(pk=grant.pk).update(expires_at=grant.created_at)
    before = OutboxMessage.objects.count()
    assert consent.expire_due_grants() == 1
    assert list(OutboxMessage.objects.filter(task="connectors_out.tasks.on_grant_revoked")
                .values_list("args", flat=True)) == [[grant.pk]]
    assert OutboxMessage.objects.count() == before + 1
    assert events.publish(events.ARCHIVE_READY, subject_id=1) == 0  # nobody listens: nothing written
    assert OutboxMessage.objects.count() == before + 1


def test_a_deprovisioned_client_is_told_nothing_a_customer_revocation_is_announced(personas, receiver_url):
    webhooks.register_endpoint(client=personas.trusted, url=receiver_url)
    consent.revoke_grant(grant=_grant(personas))
    assert deliver_events() == 1
    assert WebhookDelivery.objects.filter(event="grant-revoked").count() == 1

    _grant(personas)
    assert clients.deprovision_client(client=personas.trusted)
    assert deliver_events() == 1  # the event is published; its subscriber finds no one to tell
    assert WebhookDelivery.objects.filter(event="grant-revoked").count() == 1


def test_unknown_event_names_are_refused():
    with pytest.raises(events.UnknownEvent):
        events.publish("grant-deleted", subject_id=1)
    with pytest.raises(events.UnknownEvent):
        events.subscribe("grant-deleted", "connectors_out.tasks.on_grant_revoked")


@pytest.fixture
def receiver_url() -> str:
    return "https://client.example/hooks/gateway"  # never contacted: the events only queue rows
