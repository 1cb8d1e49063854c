"""A writer process for tests/api/test_feed_parallel_writers.py: its own interpreter, its own
database session, writing records through the store in transactions that commit slow or fast."""

from __future__ import annotations

import os
import time


def write(database_url: str, customer_id: int, dataset_id: int, name: str, plan: list[tuple[str, float]],
          start_after: float, ready, first_flushed) -> None:
    """For each (what, hold) of the plan: one transaction that writes a chunk ("new": three new
    contracts, "change": the writer's first contracts with a new premium, "abort": a chunk rolled
    back), then holds the transaction open `hold` seconds before its commit. The writers start
    together (`ready`, a barrier), each `start_after` seconds later; the writer named "slow" sets
    `first_flushed` once its first chunk has its sequence values, and the others wait for it: its
    values are below theirs, and it commits after them."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("GATEWAY_MODE", "test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection, transaction

    from restitution import store

    class Abort(Exception):
        pass

    ready.wait(120)
    if name != "slow":
        first_flushed.wait(120)
    time.sleep(start_after)
    for step, (what, hold) in enumerate(plan):
        writer = store.SnapshotWriter(dataset_id=dataset_id, source_id=None, chunk_size=100)
        keys = [f"{name}-{step}-{i}" for i in range(3)] if what != "change" else [f"{name}-0-{i}" for i in range(3)]
        try:
            with transaction.atomic():
                for key in keys:
                    writer.add(customer_id=customer_id, key=key, record_at=None, locator=name,
                               data={"contract_id": key, "product_code": "HAB", "product": "Home",
                                     "status": "active", "start_date": "2024-01-01", "end_date": None,
                                     "annual_premium": 100.0 + step, "currency": "EUR",
                                     "insured_object": None, "deductible": None})
                writer.flush()  # sequence values taken now, visible only at commit
                if name == "slow" and step == 0:
                    first_flushed.set()
                time.sleep(hold)
                if what == "abort":
                    raise Abort
        except Abort:
            pass
    connection.close()
