"""Sharded batch runs: one run split into customer-range shards that workers take independently,
to the same records as an unsharded run, with one summary, shard-scoped tombstones, a whole-run
step for customers who vanished, failures and recovery."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from django.utils import timezone

from restitution import extraction
from restitution.gate import get_gate
from restitution.models import (
    Customer,
    ExtractionRun,
    LegacyIdentity,
    Record,
    RunShard,
    Source,
)
from restitution.sources import SourceError
from restitution.sources.sql import SQLAdapter
from tests.conftest import load_ground_truth, stored_records

pytestmark = pytest.mark.django_db(transaction=True)


def _run(source: Source) -> ExtractionRun:
    run = extraction.request_extraction(source=source)
    return extraction.run_synchronously(run=run, max_wait=300)


def _insurer() -> Source:
    return Source.objects.get(kind="sql")


def _live(source: Source) -> set[tuple[int, str]]:
    return set(Record.objects.filter(source=source, deleted=False).values_list("customer_id", "key"))


def assert_matches_ground_truth_of(demo_dir, *, datasets_not_starting: str) -> None:
    """The ground truth's comparison, for the sources this test extracted."""
    expected = {k: v for k, v in load_ground_truth(demo_dir).items()
                if not k[1].startswith(datasets_not_starting)}
    actual = stored_records()
    assert set(actual) == set(expected)
    assert all(actual[k] == expected[k] for k in expected)


def test_sharded_runs_of_the_sql_and_http_sources_equal_the_ground_truth(sharded_demo):
    runs = {s.kind: _run(s) for s in Source.objects.filter(kind__in=("sql", "http-json")).order_by("slug")}
    assert {k: r.status for k, r in runs.items()} == dict.fromkeys(runs, "succeeded")
    assert_matches_ground_truth_of(sharded_demo, datasets_not_starting="energy-")
    for kind in ("sql", "http-json"):  # customer ranges; the file source stays one unit
        run = runs[kind]
        shards = list(run.shards.all())
        identities = LegacyIdentity.objects.filter(system=run.source.identity_system).count()
        assert run.sharded and len(shards) == identities > 1
        assert {s.status for s in shards} == {"succeeded"}
        for counter in ("read", "created", "updated", "unchanged", "deleted", "rejected", "skipped"):
            assert getattr(run, counter) == sum(getattr(s, counter) for s in shards), counter
        assert run.created == Record.objects.filter(source=run.source).count()
        assert run.progress == 1.0 and run.finished_at is not None

    again = _run(_insurer())  # idempotent: nothing changes the second time
    assert again.status == "succeeded" and again.sharded
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    assert again.unchanged == runs["sql"].created


def test_a_small_source_stays_one_run(sharded_demo, settings):
    settings.GATEWAY_RUN_SHARD_CUSTOMERS = 1000
    for source in (_insurer(), Source.objects.get(kind="csv")):
        queued = extraction.request_extraction(source=source)
        assert extraction._plan_shards(queued) is None
        queued.refresh_from_db()
        assert queued.status == "queued" and not queued.sharded and not queued.shards.exists()
        run = extraction.run_synchronously(run=queued, max_wait=300)
        assert run.status == "succeeded" and not run.sharded and not run.shards.exists()


def _insurer_db(demo_dir) -> sqlite3.Connection:
    from demo import insurer

    return sqlite3.connect(demo_dir / insurer.DB_FILENAME)


def test_shards_tombstone_their_own_customers_and_the_run_those_who_vanished(sharded_demo):
    source = _insurer()
    _run(source)
    before = _live(source)
    customers = sorted({c for c, _ in before})
    assert len(customers) >= 3
    vanished, shrunk = customers[0], customers[1]
    # One customer leaves the insurer's identity system entirely; another loses a contract.
    LegacyIdentity.objects.filter(system=source.identity_system, customer_id=vanished).delete()
    shrunk_key = LegacyIdentity.objects.get(system=source.identity_system, customer_id=shrunk).value
    with _insurer_db(sharded_demo) as db:
        cursor = db.execute("SELECT NUM_CONTRAT FROM T_CONTRAT WHERE NUM_SOCIETAIRE = ? ORDER BY NUM_CONTRAT",
                            [shrunk_key])
        contract = cursor.fetchone()[0]
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DELETE FROM T_SINISTRE WHERE NUM_CONTRAT = ?", [contract])
        db.execute("DELETE FROM T_CONTRAT WHERE NUM_CONTRAT = ?", [contract])
    run = _run(source)
    assert run.status == "succeeded", run.error
    after = _live(source)
    assert not {k for c, k in after if c == vanished}, "the whole-run step tombstones who vanished"
    lost = before - after
    assert {c for c, _ in lost} == {vanished, shrunk}
    assert any(str(contract) in key for c, key in lost if c == shrunk)
    untouched = [c for c in customers if c not in (vanished, shrunk)]
    assert {x for x in before if x[0] in untouched} <= after
    assert run.deleted == len(lost) == Record.objects.filter(source=source, deleted=True).count()


def test_a_failed_shard_fails_the_run_and_tombstones_nothing(sharded_demo, monkeypatch):
    source = _insurer()
    _run(source)
    before = _live(source)
    keys = sorted(LegacyIdentity.objects.filter(system=source.identity_system).values_list("value", flat=True))
    broken = keys[1]
    real = SQLAdapter.read_customers

    def read_customers(self, dataset, *, customer_keys, customer_field):
        yield from real(self, dataset, customer_keys=customer_keys, customer_field=customer_field)
        if broken in customer_keys:  # the read fails after its rows came: nothing may be deleted
            raise SourceError("table CONTRATS is locked by a batch", permanent=True)

    monkeypatch.setattr(SQLAdapter, "read_customers", read_customers)
    # Every record of the broken shard's customer would be a tombstone if the failed read finished.
    with _insurer_db(sharded_demo) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DELETE FROM T_SINISTRE WHERE NUM_CONTRAT IN (SELECT NUM_CONTRAT FROM T_CONTRAT "
                   "WHERE NUM_SOCIETAIRE = ?)", [broken])
        db.execute("DELETE FROM T_CONTRAT WHERE NUM_SOCIETAIRE = ?", [broken])
    run = _run(source)
    assert run.status == "failed"
    assert run.error == "shard 2: table CONTRATS is locked by a batch"
    shards = {s.number: s for s in run.shards.all()}
    assert shards[2].status == "failed"
    assert all(s.status in {"succeeded", "failed"} for s in shards.values())
    assert _live(source) == before
    assert not Record.objects.filter(source=source, deleted=True).exists()

    # Operators see the run as one thing, with its shards broken down; a customer sees nothing.
    from django.contrib.auth import get_user_model
    from django.test import Client

    browser = Client()
    assert browser.get(f"/admin/restitution/extractionrun/{run.pk}/change/").status_code == 302
    browser.force_login(get_user_model().objects.create_user("someone", password="pass-1234-abcd"))  # noqa: S106
    assert browser.get(f"/admin/restitution/extractionrun/{run.pk}/change/").status_code == 302
    browser.force_login(get_user_model().objects.create_superuser("operator", password="operator-pass-1234"))  # noqa: S106
    listing = browser.get("/admin/restitution/extractionrun/?sharded__exact=1").content.decode()
    done = sum(1 for s in shards.values() if s.status == "succeeded")
    failed = len(shards) - done
    assert f"{done}/{len(shards)} done, {failed} failed" in listing
    page = browser.get(f"/admin/restitution/extractionrun/{run.pk}/change/").content.decode()
    assert "table CONTRATS is locked by a batch" in page
    assert "not performed: shard 2 failed" in page or failed == 1


def test_a_stalled_shard_is_recovered_and_the_run_completes(sharded_demo):
    source = _insurer()
    run = extraction.request_extraction(source=source)
    assert extraction.execute_run(run_id=run.pk).status == "sharded"
    shard = RunShard.objects.filter(run=run).order_by("number").first()
    # A worker claimed this shard, took the source's lease, and died (kill -9): no heartbeat.
    long_ago = timezone.now() - timedelta(minutes=5)
    RunShard.objects.filter(pk=shard.pk).update(status="running", heartbeat_at=long_ago, attempts=1)
    assert get_gate().acquire(source.slug, f"shard:{shard.pk}", source.max_concurrent_runs)
    for other in RunShard.objects.filter(run=run).exclude(pk=shard.pk):
        assert extraction.execute_shard(shard_id=other.pk).status == "succeeded"
    run.refresh_from_db()
    assert run.status == "running"  # the run waits for its lost shard
    ExtractionRun.objects.filter(pk=run.pk).update(heartbeat_at=long_ago)
    assert extraction.recover_stalled_runs(stale_after=timedelta(minutes=2)) == [run.pk]
    shard.refresh_from_db()
    assert shard.status == "queued" and shard.error == "worker lost; shard queued again"
    assert get_gate().holders(source.slug) == 0  # the dead worker's lease was given back
    assert extraction.execute_shard(shard_id=shard.pk).status == "succeeded"
    run.refresh_from_db()
    assert run.status == "succeeded" and run.created == Record.objects.filter(source=source).count()
    shard.refresh_from_db()
    assert shard.attempts == 2


def test_a_run_left_unconcluded_by_a_dead_worker_is_concluded_by_recovery(sharded_demo):
    source = _insurer()
    run = extraction.request_extraction(source=source)
    assert extraction.execute_run(run_id=run.pk).status == "sharded"
    for shard in RunShard.objects.filter(run=run):
        assert extraction.execute_shard(shard_id=shard.pk).status == "succeeded"
    # As if the last shard's worker died between its shard's success and the run's conclusion.
    ExtractionRun.objects.filter(pk=run.pk).update(status="running", finished_at=None,
                                                   heartbeat_at=timezone.now() - timedelta(minutes=5))
    extraction.recover_stalled_runs(stale_after=timedelta(minutes=2))
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_a_re_sent_message_of_a_sharded_run_does_nothing(sharded_demo):
    run = extraction.request_extraction(source=_insurer())
    assert extraction.execute_run(run_id=run.pk).status == "sharded"
    count = RunShard.objects.filter(run=run).count()
    assert extraction.execute_run(run_id=run.pk).status == "sharded"
    assert RunShard.objects.filter(run=run).count() == count


def test_customers_only_see_their_own_runs_not_the_shards(sharded_demo):
    customer = Customer.objects.filter(identities__system="insurer").first()
    run = extraction.request_extraction(source=_insurer(), customer=customer)
    run = extraction.run_synchronously(run=run)
    assert run.status == "succeeded" and not run.sharded  # a customer's own run is never split


def test_a_sql_shard_reads_only_its_customers_with_bound_keys_in_batches(tmp_path):
    from restitution.sources import sql

    path = tmp_path / "legacy.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, member TEXT)")
        db.executemany("INSERT INTO t (member) VALUES (?)", [(f"M{n:04d}",) for n in range(1500)])
    options = {"datasets": {"d": {"query": "SELECT id, member FROM t WHERE {customer_filter} ORDER BY id",
                                  "customer_column": "t.member", "row_key": "id"}}}
    adapter = SQLAdapter(options=options, connection=f"sqlite:///{path}")
    hostile = "M0001' OR '1'='1"
    statement, params = adapter.build_statement("d", None, customer_keys=[hostile, "M0002"])
    assert statement.endswith("WHERE t.member IN :customers ORDER BY id")  # keys never in the text
    assert params == {"customers": [hostile, "M0002"]}
    wanted = [f"M{n:04d}" for n in range(0, 1500, 2)] + [hostile]  # 751 keys: two SELECTs
    rows = [row for _, row in adapter.read_customers("d", customer_keys=wanted, customer_field="member")]
    assert sorted(r.values["member"] for r in rows) == sorted(wanted[:-1])
    assert sql.CUSTOMERS_PER_READ < len(wanted)
    adapter.close()
