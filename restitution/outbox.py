"""Transactional outbox: task messages written with the rows they are about, published after commit.

A message is a row written inside the caller's transaction. After commit one attempt is made to
publish it (and the row is deleted once the broker took it); if the broker is down the row stays
and the relay (the `relay_outbox` beat task, every few seconds) publishes it once the broker is
back. Delivery is at least once, so the tasks sent this way must be idempotent (ours
claim their row atomically). This module never runs the tasks it sends.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from .models import OutboxMessage

log = logging.getLogger(__name__)

#: The relay leaves younger messages to their own after-commit attempt (fewer duplicates).
RELAY_MIN_AGE = timedelta(seconds=5)
RELAY_BATCH = 200


class BrokerUnavailable(Exception):
    """The broker refused or could not take a message; it stays in the outbox."""


def enqueue(*, task: str, args: list[Any]) -> OutboxMessage:
    """Store a message for the Celery task at dotted path `task`; publish it after commit."""
    message = OutboxMessage.objects.create(task=task, args=args)
    transaction.on_commit(lambda: _publish_now(message.pk, task, args))
    return message


def _publish(task: str, args: list[Any]) -> None:
    try:
        # apply_async, not send_task: it honours eager mode (embedded) and the task routes.
        import_string(task).apply_async(args=args, retry=False)
    except Exception as exc:  # kombu's OperationalError, redis errors, socket errors alike
        raise BrokerUnavailable(f"{type(exc).__name__}: {exc}"[:500]) from exc


def _publish_now(message_id: int, task: str, args: list[Any]) -> None:
    """The after-commit attempt: on failure the message waits for the relay, the caller goes on."""
    try:
        _publish(task, args)
    except BrokerUnavailable as exc:
        log.warning("broker unavailable, outbox message %s kept for the relay: %s", message_id, exc)
        OutboxMessage.objects.filter(pk=message_id).update(attempts=F("attempts") + 1, last_error=str(exc))
        return
    OutboxMessage.objects.filter(pk=message_id).delete()


def relay(*, min_age: timedelta = RELAY_MIN_AGE, batch: int = RELAY_BATCH) -> int:
    """Publish the messages still waiting (oldest first); stop at the first broker failure.

    Safe to run from several processes at once: each takes rows the others have not locked.
    Returns how many messages were published.
    """
    sent = 0
    while True:
        with transaction.atomic():
            waiting = list(OutboxMessage.objects.select_for_update(skip_locked=True)
                           .filter(created_at__lte=timezone.now() - min_age).order_by("id")[:batch])
            if not waiting:
                break
            for message in waiting:
                try:
                    _publish(message.task, message.args)
                except BrokerUnavailable as exc:
                    OutboxMessage.objects.filter(pk=message.pk).update(attempts=F("attempts") + 1,
                                                                       last_error=str(exc))
                    log.warning("outbox relay: broker unavailable, %s published, the rest waits: %s", sent, exc)
                    return sent
                message.delete()
                sent += 1
    if sent:
        log.info("outbox relay published %s waiting messages", sent)
    return sent


def waiting_count() -> int:
    return OutboxMessage.objects.count()
