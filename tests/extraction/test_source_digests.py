"""Source digests: a batch run that reads a legacy row it already stored, under the same mapping,
keeps the record without mapping, validating or writing it again; anything else goes the whole
way (a changed row, a changed mapping, a repeated row, a record from before digests)."""

from __future__ import annotations

import sqlite3

import pytest
from django.db import connection

from demo.install import install_demo
from restitution import extraction
from restitution.mapping import CompiledMapping
from restitution.models import ExtractionRun, Record, RejectedRow, Source
from tests.conftest import demo_env_for, load_ground_truth, stored_records

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(fresh_demo_dir, flush_gate, settings, monkeypatch):
    settings.GATEWAY_RUN_SHARD_CUSTOMERS = 0  # one unit per run; shards: the last test
    for name, value in demo_env_for(fresh_demo_dir, "http://127.0.0.1:9").items():
        monkeypatch.setenv(name, value)
    install_demo(fresh_demo_dir, with_users=False)
    return fresh_demo_dir


@pytest.fixture
def mapped(monkeypatch):
    """How many rows the declarative mappings map into a record (the real method, counted; a
    row the mapping refuses is not counted: a quarantined row is mapped again on every run)."""
    calls = {"n": 0}
    real = CompiledMapping.apply

    def counting(self, values, ctx):
        mapped = real(self, values, ctx)
        calls["n"] += 1
        return mapped

    monkeypatch.setattr(CompiledMapping, "apply", counting)
    return calls


def _run(source: Source) -> ExtractionRun:
    run = extraction.run_synchronously(run=extraction.request_extraction(source=source), max_wait=300)
    assert run.status == "succeeded", run.error
    return run


def _insurer() -> Source:
    return Source.objects.get(kind="sql")


def _state(source: Source) -> dict:
    return {(c, d, k): (h, s, deleted) for c, d, k, h, s, deleted in Record.objects.filter(source=source)
            .values_list("customer_id", "dataset__slug", "key", "content_hash", "seq", "deleted")}


def test_a_batch_run_keeps_rows_it_stored_without_mapping_them_and_maps_a_changed_one(demo, mapped):
    source = _insurer()
    first = _run(source)
    assert mapped["n"] >= first.created > 0
    assert not Record.objects.filter(source=source, source_digest__isnull=True).exists()
    before = _state(source)

    mapped["n"] = 0
    again = _run(source)
    assert mapped["n"] == 0  # every row was known by its digest
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    assert again.unchanged == first.created and again.read == first.read
    assert again.rejected == first.rejected and again.skipped == first.skipped  # those still go the whole way
    assert _state(source) == before

    from demo import insurer

    with sqlite3.connect(demo / insurer.DB_FILENAME) as db:
        (contract,) = db.execute("SELECT NUM_CONTRAT FROM T_CONTRAT ORDER BY NUM_CONTRAT LIMIT 1").fetchone()
        db.execute("UPDATE T_CONTRAT SET MT_PRIME_ANNUELLE = MT_PRIME_ANNUELLE + 1 WHERE NUM_CONTRAT = ?", [contract])
    mapped["n"] = 0
    third = _run(source)
    assert mapped["n"] == 1 and (third.created, third.updated, third.deleted) == (0, 1, 0)
    changed = {k for k, v in _state(source).items() if before[k] != v}
    assert len(changed) == 1 and str(contract) in next(iter(changed))[2]
    truth = {k: v for k, v in load_ground_truth(demo).items() if k[1].startswith("insurance-")}
    stored = stored_records()
    assert set(stored) == set(truth)
    assert sum(1 for k in truth if stored[k] != truth[k]) == 1  # the premium the test raised


def test_a_mapping_change_maps_every_row_again(demo, mapped, monkeypatch):
    source = _insurer()
    first = _run(source)
    monkeypatch.setattr(extraction, "SOURCE_DIGEST_VERSION", "test-next")
    mapped["n"] = 0
    again = _run(source)
    assert mapped["n"] >= first.created  # a new fingerprint: no stored digest matches
    assert (again.created, again.updated, again.unchanged) == (0, 0, first.created)
    mapped["n"] = 0
    _run(source)
    assert mapped["n"] == 0  # the digests were rewritten under the new fingerprint


def test_records_from_before_digests_get_theirs_without_a_change_in_the_feed(demo, mapped):
    source = _insurer()
    first = _run(source)
    Record.objects.filter(source=source).update(source_digest=None)
    before = _state(source)
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM restitution_change_seq")
        (last_seq,) = cursor.fetchone()
    mapped["n"] = 0
    again = _run(source)
    assert mapped["n"] >= first.created and again.unchanged == first.created
    assert _state(source) == before  # same content, same sequence: clients see no change
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM restitution_change_seq")
        assert cursor.fetchone()[0] == last_seq
    assert not Record.objects.filter(source=source, source_digest__isnull=True).exists()
    mapped["n"] = 0
    _run(source)
    assert mapped["n"] == 0


def test_a_repeated_row_is_still_a_duplicate_and_a_vanished_one_a_tombstone(demo, mapped):
    source = Source.objects.get(kind="csv")
    first = _run(source)
    daily = sorted((demo / "metering").glob("consommation_quotidienne/*/CONSO_JOUR_*.csv"))
    lines = daily[0].read_bytes().splitlines(keepends=True)
    repeated, vanished = lines[1], lines[2]
    daily[0].write_bytes(b"".join(line for line in lines if line != vanished))
    with daily[-1].open("ab") as handle:
        handle.write(repeated)
    mapped["n"] = 0
    again = _run(source)
    assert again.deleted == 1 and again.updated == again.created == 0
    assert again.rejected == first.rejected + 1
    duplicate = RejectedRow.objects.order_by("-id").filter(reason__startswith="duplicate natural key").first()
    assert duplicate is not None and duplicate.locator.startswith(daily[-1].relative_to(demo / "metering").as_posix())
    assert RejectedRow.objects.filter(run=again).count() == again.rejected
    # The load curve's day blocks depend on many rows: each reading is mapped and folded again.
    readings = sum(len(data["readings"]) for data in Record.objects.filter(
        dataset__slug="energy-load-curve", deleted=False).values_list("data", flat=True))
    assert readings > 0 and mapped["n"] >= readings


def test_shards_know_their_own_customers_rows(demo, mapped, settings):
    settings.GATEWAY_RUN_SHARD_CUSTOMERS = 1
    source = _insurer()
    first = _run(source)
    assert first.sharded
    mapped["n"] = 0
    again = _run(source)
    assert again.sharded and mapped["n"] == 0 and again.unchanged == first.created


def test_a_legacy_identity_given_to_another_customer_moves_the_records(demo, mapped):
    from restitution.models import Customer, LegacyIdentity

    source = _insurer()
    _run(source)
    identity = LegacyIdentity.objects.filter(system=source.identity_system).order_by("value").first()
    previous = identity.customer_id
    keys = set(Record.objects.filter(source=source, customer_id=previous, deleted=False)
               .values_list("dataset_id", "key"))
    assert keys
    newcomer = Customer.objects.create(reference="newcomer")
    identity.customer = newcomer
    identity.save()
    mapped["n"] = 0
    again = _run(source)
    assert mapped["n"] == len(keys)  # the same rows, someone else's now: mapped for them
    assert again.created == again.deleted == len(keys)
    assert set(Record.objects.filter(customer=newcomer, deleted=False).values_list("dataset_id", "key")) == keys
    assert not Record.objects.filter(customer_id=previous, source=source, deleted=False).exists()
