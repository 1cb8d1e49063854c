"""Parallel writers and the change feed's promise, with real processes.

Three writer processes, each with its own database session, write a customer's contracts
through the store: a slow one holds its transactions open (its sequence values are taken early
and committed late), a fast one commits at once, a third one also rolls chunks back. Meanwhile
a client syncs through the API (`/api/v1/changes?since=…`, small pages, following `next`) again
and again. In the end the client has every change exactly once and its mirror is the store.
The control: the same run with the safe point taken away loses the slow writer's late commits.
"""

from __future__ import annotations

import multiprocessing
import time

import pytest
from django.db import connection

from restitution import portability
from restitution.models import Dataset, Record
from tests.api import feed_writers
from tests.personas import CONTRACTS

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="parallel writers are PostgreSQL's")]

PLANS = {  # name → (start after, [(what, seconds the transaction stays open after writing)])
    "slow": (0.0, [("new", 1.5), ("new", 0.0), ("new", 1.0)]),
    "fast": (0.1, [("new", 0.0), ("abort", 0.0), ("new", 0.2), ("change", 0.0), ("new", 0.3), ("new", 0.0)]),
    "mixed": (0.0, [("new", 0.4), ("abort", 0.5), ("change", 0.3), ("new", 0.2)]),
}


def _database_url() -> str:
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _sync(flow, token: str, since: int) -> tuple[list[dict], int]:
    """One complete incremental sync: every page from `since`, following `next` (and, as a
    client should, waiting when the API's rate limit says so)."""
    items, url, last = [], f"/api/v1/changes?since={since}&page_size=5", since
    while url:
        response = flow.api.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
        if response.status_code == 429:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        assert response.status_code == 200, response.content
        body = response.json()
        items += body["items"]
        last, url = body["last_seq"], body["next"]
    return items, last


def _run(flow, personas) -> tuple[list[dict], int]:
    token = flow.tokens(datasets=[CONTRACTS])["access_token"]
    dataset = Dataset.objects.get(slug=CONTRACTS)
    received, since = _sync(flow, token, 0)
    context = multiprocessing.get_context("spawn")
    ready, first_flushed = context.Barrier(len(PLANS)), context.Event()
    writers = [context.Process(target=feed_writers.write,
                               args=(_database_url(), personas.alice.pk, dataset.pk, name, plan, start, ready,
                                     first_flushed))
               for name, (start, plan) in PLANS.items()]
    for process in writers:
        process.start()
    polls = 0
    deadline = time.monotonic() + 60
    while any(p.is_alive() for p in writers) and time.monotonic() < deadline:
        items, since = _sync(flow, token, since)
        received += items
        polls += 1
        time.sleep(0.05)
    for process in writers:
        process.join(10)
        assert process.exitcode == 0
    items, since = _sync(flow, token, since)
    return received + items, polls


def _mirror(items: list[dict]) -> dict[str, dict]:
    mirror: dict[str, dict] = {}
    for item in items:
        if item.get("deleted"):
            mirror.pop(item["key"], None)
        else:
            mirror[item["key"]] = item["data"]
    return mirror


def _stored(customer) -> dict[str, dict]:
    return dict(Record.objects.filter(customer=customer, dataset__slug=CONTRACTS, deleted=False)
                .values_list("key", "data"))


def test_a_client_syncing_during_parallel_writes_gets_every_change_exactly_once(flow, personas):
    received, polls = _run(flow, personas)
    assert polls >= 10  # the client synced many times while the writers were at work
    pairs = [(item["key"], item["seq"]) for item in received]
    assert len(pairs) == len(set(pairs)), "a change was served twice"
    assert not any(key.split("-")[1] == "1" and key.startswith("fast") for key, _ in pairs)  # rolled back
    stored = _stored(personas.alice)
    assert len(stored) == 3 * (3 + 4 + 2)  # every committed new chunk
    assert _mirror(received) == stored
    # Every version the store holds now was served, with its sequence.
    assert set(Record.objects.filter(customer=personas.alice, dataset__slug=CONTRACTS)
               .values_list("key", "seq")) <= set(pairs)
    # The slow writer's first chunk took its sequence values before the fast writer's chunks
    # (the fast one waited for that) and committed after them (it stayed open 1.5 s): the late
    # commit this is all about happened, and was served.
    seqs = dict(Record.objects.filter(customer=personas.alice).values_list("key", "seq"))
    assert max(s for k, s in seqs.items() if k.startswith("slow-0-")) < min(
        s for k, s in seqs.items() if k.startswith("fast-2-"))


def test_without_the_safe_point_the_same_run_loses_late_commits(flow, personas, monkeypatch):
    """The control: pages that go up to the last value handed out skip what commits late."""
    monkeypatch.setattr(portability, "safe_seq", lambda: 2**62)
    received, _ = _run(flow, personas)
    assert _mirror(received) != _stored(personas.alice)
