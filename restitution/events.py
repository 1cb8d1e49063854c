"""Domain events: the domain says what happened; whoever subscribed is told through the outbox.

An event is published inside the transaction that wrote what it is about: one outbox message
per subscriber task (restitution/outbox.py), committed with the rows, sent to the broker after
commit or by the relay when the broker was down. So a subscriber never hears of something that
was rolled back, and never misses something that was committed. Delivery is at least once:
subscriber tasks must be idempotent.

Subscribers register their Celery tasks (dotted paths) in their AppConfig.ready(); each task
takes the one id the event names. The domain never imports its subscribers.
"""

from __future__ import annotations

from django.db import transaction

from . import outbox

#: An extraction run succeeded and changed some customer's records (id of the run).
RUN_CHANGED_DATA = "run-changed-data"
#: A grant was revoked: by the customer, replaced by a new consent, or its client deprovisioned
#: (id of the grant).
GRANT_REVOKED = "grant-revoked"
#: A one-time grant was used up by its first complete transfer (id of the grant).
GRANT_ENDED = "grant-ended"
#: A grant reached its expiry; its tokens were ended (id of the grant).
GRANT_EXPIRED = "grant-expired"
#: An archive was built and can be downloaded (id of the export job).
ARCHIVE_READY = "archive-ready"

EVENTS = (RUN_CHANGED_DATA, GRANT_REVOKED, GRANT_ENDED, GRANT_EXPIRED, ARCHIVE_READY)

_subscribers: dict[str, list[str]] = {event: [] for event in EVENTS}


class UnknownEvent(ValueError):
    """An event name that is not in EVENTS."""


def _known(event: str) -> str:
    if event not in _subscribers:
        raise UnknownEvent(f"unknown domain event {event!r}")
    return event


def subscribe(event: str, task: str) -> None:
    """Have the Celery task at dotted path `task` called with the event's id (once per task)."""
    tasks = _subscribers[_known(event)]
    if task not in tasks:
        tasks.append(task)


def subscribers(event: str) -> tuple[str, ...]:
    return tuple(_subscribers[_known(event)])


def subscriber_tasks() -> set[str]:
    """Every task subscribed to some event."""
    return {task for tasks in _subscribers.values() for task in tasks}


def publish(event: str, *, subject_id: int) -> int:
    """Write one outbox message per subscriber, in the caller's transaction; how many."""
    tasks = subscribers(event)
    with transaction.atomic():
        for task in tasks:
            outbox.enqueue(task=task, args=[subject_id])
    return len(tasks)
