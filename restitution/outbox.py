"""Transactional outbox: task messages written with the rows they are about, published after commit.

A message is a row written inside the caller's transaction. After commit one attempt is made to
publish it (and the row is deleted once the broker took it); if the broker is down the row stays
and the relay (the `relay_outbox` beat task, every few seconds) publishes it once the broker is
back. Delivery is at least once, so the tasks sent this way must be idempotent (ours
claim their row atomically). This module never runs the tasks it sends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import current_app
from django.db import connection, transaction
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


@contextmanager
def _publisher() -> Iterator[Callable[[str, list[Any]], None]]:
    """A function that publishes one message; one broker connection for all of them.

    The connection is tried once, not retried for long: a caller (a web request) must not hang
    while the broker is down, since the message is safe in the outbox anyway."""
    app = current_app
    if app.conf.task_always_eager:  # embedded mode: no broker, the task runs here and now
        yield lambda task, args: import_string(task).apply_async(args=args)
        return
    with app.connection_for_write() as connection:
        try:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, interval_max=0.2,
                                         timeout=2)
        except Exception as exc:  # kombu's OperationalError, socket errors alike
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}"[:500]) from exc

        def publish(task: str, args: list[Any]) -> None:
            try:
                # apply_async, not send_task: the task's own options and routes apply.
                import_string(task).apply_async(args=args, connection=connection, retry=False)
            except Exception as exc:
                raise BrokerUnavailable(f"{type(exc).__name__}: {exc}"[:500]) from exc

        yield publish


def _publish_now(message_id: int, task: str, args: list[Any]) -> None:
    """The after-commit attempt: on failure the message waits for the relay, the caller goes on."""
    try:
        with _publisher() as publish:
            publish(task, args)
    except BrokerUnavailable as exc:
        log.warning("broker unavailable, outbox message %s kept for the relay: %s", message_id, exc)
        OutboxMessage.objects.filter(pk=message_id).update(attempts=F("attempts") + 1, last_error=str(exc))
        return
    _forget(message_id)


def _forget(message_id: int) -> None:
    """Delete a published message in one statement: QuerySet.delete() would wrap it in a
    transaction of its own (BEGIN and COMMIT around it, after every publication), for a row
    that nothing refers to and no signal watches."""
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{OutboxMessage._meta.db_table}" WHERE id = %s', [message_id])  # noqa: S608


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
            current = waiting[0]  # the message that meets the broker first, and its failure
            try:
                with _publisher() as publish:
                    for current in waiting:
                        publish(current.task, current.args)
                        current.delete()
                        sent += 1
            except BrokerUnavailable as exc:
                OutboxMessage.objects.filter(pk=current.pk).update(attempts=F("attempts") + 1, last_error=str(exc))
                log.warning("outbox relay: broker unavailable, %s published, the rest waits: %s", sent, exc)
                return sent
    if sent:
        log.info("outbox relay published %s waiting messages", sent)
    return sent
