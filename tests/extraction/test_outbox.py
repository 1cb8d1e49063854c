"""The transactional outbox: a run requested while the broker is down is committed with its
message, which the relay publishes once the broker is back; a rolled-back request sends nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.conf import settings
from django.db import transaction
from kombu import Connection

from restitution import extraction, outbox
from restitution.models import ExtractionRun, OutboxMessage, Source
from tests.conftest import missing, on_real_services

pytestmark = pytest.mark.django_db(transaction=True)
QUEUE = "extraction"  # CELERY_TASK_ROUTES: run_extraction's queue


@pytest.fixture
def broker():
    if not on_real_services():
        missing("needs PostgreSQL and Redis")
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(QUEUE)
    yield client
    client.delete(QUEUE)


def _unreachable_broker():
    """A real broker connection towards a loopback port where nothing listens."""
    return Connection("redis://127.0.0.1:1/0")


@pytest.fixture
def broker_down(broker, monkeypatch):
    monkeypatch.setattr(current_app, "connection_for_write", _unreachable_broker)


def _source() -> Source:
    return Source.objects.create(slug="insurer", name="Insurer", kind="sql", connection_env="X",
                                 identity_system="insurer")


def _published(broker) -> list[bytes]:
    return broker.lrange(QUEUE, 0, -1)


def test_a_run_is_published_after_commit_and_leaves_no_message_behind(broker):
    run = extraction.request_extraction(source=_source())
    assert OutboxMessage.objects.count() == 0
    [message] = _published(broker)
    assert b"restitution.tasks.run_extraction" in message and f"[{run.pk}]".encode() in message


def test_a_request_made_while_the_broker_is_down_waits_in_the_outbox(broker, broker_down):
    run = extraction.request_extraction(source=_source())
    assert ExtractionRun.objects.get(pk=run.pk).status == ExtractionRun.Status.QUEUED
    waiting = OutboxMessage.objects.get()
    assert waiting.args == [run.pk] and waiting.attempts == 1 and waiting.last_error
    assert outbox.relay(min_age=timedelta(0)) == 0  # still down: nothing lost, nothing sent
    assert OutboxMessage.objects.get().attempts == 2
    assert _published(broker) == []


def test_the_relay_publishes_what_waited_once_the_broker_is_back(broker, monkeypatch):
    source = _source()
    with monkeypatch.context() as down:
        down.setattr(current_app, "connection_for_write", _unreachable_broker)
        run = extraction.request_extraction(source=source)
    assert OutboxMessage.objects.count() == 1
    assert outbox.relay() == 0  # too young: left to its own after-commit attempt
    assert outbox.relay(min_age=timedelta(0)) == 1
    assert OutboxMessage.objects.count() == 0
    [message] = _published(broker)
    assert f"[{run.pk}]".encode() in message


def test_a_rolled_back_request_publishes_nothing(broker):
    source = _source()
    with pytest.raises(RuntimeError), transaction.atomic():
        extraction.request_extraction(source=source)
        raise RuntimeError("the caller's transaction fails")
    assert ExtractionRun.objects.count() == 0 and OutboxMessage.objects.count() == 0
    assert _published(broker) == []
