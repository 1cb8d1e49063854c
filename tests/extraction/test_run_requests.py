"""Requesting a run: one queued or running run per source and customer, even for requests at once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from restitution.models import Customer, ExtractionRun, Source
from restitution.runs import request_extraction

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def source():
    return Source.objects.create(slug="requests", name="Requests", kind=Source.Kind.SQL,
                                 connection_env="REQUESTS_DB_URL", identity_system="requests")


@pytest.fixture
def customers():
    return [Customer.objects.create(reference=f"request-{n}") for n in range(2)]


def _in_thread(target) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connection.close()  # the thread's own connection
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_request_made_while_another_is_in_flight_waits_and_reuses_its_run(source, customers):
    customer = customers[0]
    locked, release, answered = threading.Event(), threading.Event(), threading.Event()
    ids: dict[str, int] = {}

    def first() -> None:
        with transaction.atomic():  # the first request's transaction stays open a while
            ids["first"] = request_extraction(source=source, customer=customer).pk
            locked.set()
            release.wait(10)

    def second() -> None:
        ids["second"] = request_extraction(source=source, customer=customer).pk
        answered.set()

    holder = _in_thread(first)
    assert locked.wait(10)
    waiter = _in_thread(second)
    # The source's row is locked until the first request commits: the second one waits…
    assert not answered.wait(0.5)
    release.set()
    holder.join(10)
    waiter.join(10)
    # …then sees the committed run and gives it, rather than queueing a second one.
    assert ids["second"] == ids["first"]
    assert ExtractionRun.objects.filter(source=source, customer=customer).count() == 1


def test_runs_are_reused_per_customer_and_a_batch_run_is_its_own(source, customers):
    alice, bob = customers
    batch = request_extraction(source=source)
    mine = request_extraction(source=source, customer=alice)
    assert mine.pk != batch.pk  # a batch run queued is not a consent's run
    assert request_extraction(source=source, customer=alice).pk == mine.pk
    assert request_extraction(source=source, customer=bob).pk not in (mine.pk, batch.pk)
    assert request_extraction(source=source).pk == batch.pk
    ExtractionRun.objects.filter(pk=mine.pk).update(status=ExtractionRun.Status.RUNNING)
    assert request_extraction(source=source, customer=alice).pk == mine.pk
    ExtractionRun.objects.filter(pk=mine.pk).update(status=ExtractionRun.Status.SUCCEEDED)
    again = request_extraction(source=source, customer=alice)
    assert again.pk != mine.pk and again.status == ExtractionRun.Status.QUEUED
