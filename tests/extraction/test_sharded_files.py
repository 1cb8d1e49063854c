"""Sharded batch runs of file sources: shards by identity hash. Every shard reads every file and
keeps its own customers' rows, so a run gives the same records, quarantine and counters as one
unsharded run, tombstones only what is gone from every file, and each row is read for exactly one
shard."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from restitution import extraction
from restitution.models import ExtractionRun, LegacyIdentity, Record, RejectedRow, RunShard, Source
from tests.conftest import load_ground_truth, stored_records

pytestmark = pytest.mark.django_db(transaction=True)

COUNTERS = ("read", "created", "updated", "unchanged", "deleted", "rejected", "skipped")


def _file_sources() -> list[Source]:
    return list(Source.objects.filter(kind__in=("csv", "fixed-width")).order_by("slug"))


def _run_all() -> dict[str, ExtractionRun]:
    runs = {}
    for source in _file_sources():
        run = extraction.run_synchronously(run=extraction.request_extraction(source=source), max_wait=300)
        assert run.status == "succeeded", (source.slug, run.error)
        runs[source.slug] = run
    return runs


def _outcome() -> tuple[dict, Counter]:
    """Every record (live or not) with its content, and the quarantine as a multiset."""
    records = {(c, d, k): (data, deleted) for c, d, k, data, deleted in Record.objects.values_list(
        "customer_id", "dataset__slug", "key", "data", "deleted")}
    rejects = Counter(RejectedRow.objects.values_list("source__slug", "dataset__slug", "customer_id",
                                                      "locator", "reason"))
    return records, rejects


def _empty_store() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE restitution_record, restitution_rejectedrow CASCADE")


def test_file_runs_sharded_by_hash_equal_one_unsharded_run(sharded_demo, settings):
    settings.GATEWAY_RUN_SHARD_CUSTOMERS = 0
    whole = _run_all()
    assert not any(run.sharded for run in whole.values())
    expected_records, expected_rejects = _outcome()
    assert expected_rejects, "the demo's files carry malformed rows"
    _empty_store()

    settings.GATEWAY_RUN_SHARD_CUSTOMERS = 1  # the demo's four customers: four shards by hash
    runs = _run_all()
    records, rejects = _outcome()
    assert records == expected_records
    assert rejects == expected_rejects  # each bad row quarantined once, by one shard
    truth = {k: v for k, v in load_ground_truth(sharded_demo).items() if k[1].startswith("energy-")}
    assert stored_records() == truth
    for slug, run in runs.items():
        shards = list(run.shards.all())
        identities = LegacyIdentity.objects.filter(system=run.source.identity_system).count()
        assert run.sharded and len(shards) == identities
        assert {s.hash_of for s in shards} == {identities}
        assert {s.key_after for s in shards} == {s.key_upto for s in shards} == {None}
        assert sum(s.customers for s in shards) == identities
        assert {s.status for s in shards} == {"succeeded"}
        for counter in COUNTERS:
            assert getattr(run, counter) == sum(getattr(s, counter) for s in shards), (slug, counter)
            assert getattr(run, counter) == getattr(whole[slug], counter), (slug, counter)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_a_row_moved_to_another_file_stays_and_a_row_gone_from_every_file_is_tombstoned(sharded_demo):
    source = Source.objects.get(kind="csv")
    first = _run_all()[source.slug]
    assert first.sharded
    daily = sorted((sharded_demo / "metering").glob("consommation_quotidienne/*/CONSO_JOUR_*.csv"))
    keys = dict(LegacyIdentity.objects.filter(system="energy").values_list("value", "customer_id"))
    live = set(Record.objects.filter(dataset__slug="energy-daily-consumption", deleted=False)
               .values_list("customer_id", "key"))
    # A row that the first run stored, of a customer, for each change: one moved, one removed.
    origin, target = daily[0], daily[-1]
    rows = [line for line in _lines(origin)[1:] if line.split(b";")[0].decode() in keys]
    owners = {line.split(b";")[0].decode() for line in rows}
    moved_owner, removed_owner = sorted(owners)[:2]
    moved = next(line for line in rows if line.startswith(moved_owner.encode()))
    removed = next(line for line in rows if line.startswith(removed_owner.encode()))
    origin.write_bytes(b"".join(line for line in _lines(origin) if line not in (moved, removed)))
    with target.open("ab") as handle:
        handle.write(moved)

    run = _run_all()[source.slug]
    assert run.sharded and run.deleted == 1 and run.created == run.updated == 0
    now_live = set(Record.objects.filter(dataset__slug="energy-daily-consumption", deleted=False)
                   .values_list("customer_id", "key"))
    gone = live - now_live
    assert len(gone) == 1 and next(iter(gone))[0] == keys[removed_owner]
    assert not now_live - live
    shards = RunShard.objects.filter(run=run)
    owner_shard = next(s for s in shards if extraction._hash_part(s)(moved_owner))
    assert owner_shard.read > 0  # the moved row was read for its customer's shard, wherever it is


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_hash_shards_partition_identities_and_rows(sharded_demo, count):
    source = Source.objects.get(kind="csv")
    run = ExtractionRun.objects.create(source=source, status="running", sharded=True)
    sizes = extraction._hash_shard_sizes(source.identity_system, count)
    values = set(LegacyIdentity.objects.filter(system="energy").values_list("value", flat=True))
    seen: list[str] = []
    for number in range(1, count + 1):
        shard = RunShard.objects.create(run=run, number=number, hash_of=count, customers=sizes[number - 1])
        mine = set(extraction._identities(extraction._Unit(run, shard)))
        assert len(mine) == sizes[number - 1]
        part = extraction._hash_part(shard)
        assert {v for v in values if part(v)} == mine  # Python's part is the database's
        assert part(None) is (number == 1)  # a row naming nobody: the first shard's
        assert part("not-a-customer") is (extraction.identity_hash("not-a-customer") % count == number - 1)
        seen += mine
    assert sorted(seen) == sorted(values)  # disjoint, and every identity in one shard


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                        max_size=40), min_size=1, max_size=20))
def test_the_identity_hash_is_the_same_in_python_and_in_the_database(values):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {extraction.IDENTITY_HASH_SQL.format(column='v')} "
                       "FROM unnest(%s::text[]) AS v", [values])
        assert [row[0] for row in cursor.fetchall()] == [extraction.identity_hash(v) for v in values]


def _file_adapters(demo_dir: Path):
    """(adapter, dataset, compiled mapping) for every dataset of the demo's file sources."""
    from demo.sources import DEMO_SOURCES
    from restitution.mapping import compile_mapping
    from restitution.models import Dataset
    from restitution.sources import adapter_class

    for definition in DEMO_SOURCES:
        if definition["kind"] not in ("csv", "fixed-width"):
            continue
        adapter = adapter_class(definition["kind"])(options=definition["options"],
                                                    connection=str(demo_dir / "metering"))
        for slug in definition["datasets"]:
            schema = Dataset.objects.get(slug=slug).schema
            yield adapter, slug, compile_mapping(definition["mappings"][slug], schema)


def test_a_file_adapter_gives_each_row_of_a_full_read_to_exactly_one_shard(sharded_demo):
    # Lines an export should not have, where they matter to attribution: a control character in
    # the customer field, a line too long to read, a row with a field missing.
    daily = sorted((sharded_demo / "metering").glob("consommation_quotidienne/*/CONSO_JOUR_*.csv"))[0]
    with daily.open("ab") as handle:
        handle.write(b"0000\x01123;01/11/2024;1,0;1,0\n" + b"9" * 2_000_000 + b"\n12345678901234;02/11/2024\n")
    checked = unowned = errors = 0
    for adapter, slug, mapping in _file_adapters(sharded_demo):
        full = list(adapter.read(slug, customer_key=None, customer_field=mapping.customer_field))
        owners = [row.extra.get("customer") if row.error else mapping.customer_key(row.values) for row in full]
        unowned += owners.count(None)
        errors += sum(1 for row in full if row.error)
        for count in (1, 3, 4):
            parts = []
            for number in range(1, count + 1):
                mine = extraction._hash_part(RunShard(number=number, hash_of=count))
                part = list(adapter.read_part(slug, customer_field=mapping.customer_field, keep=mine))
                assert all(mine(owner) for owner in (
                    row.extra.get("customer") if row.error else mapping.customer_key(row.values) for row in part))
                parts += part
            assert sorted((r.locator, r.error or "") for r in parts) == sorted((r.locator, r.error or "") for r in full)
            checked += 1
    assert checked == 9  # three datasets, three shard counts
    assert unowned >= 2 and errors >= 4  # the lines above, and the demo's own malformed rows


def test_a_file_source_has_at_most_the_file_shards_setting(sharded_demo, settings):
    source = Source.objects.get(kind="csv")
    identities = LegacyIdentity.objects.filter(system=source.identity_system).count()
    assert identities >= 3  # one shard per customer would make more than two
    settings.GATEWAY_RUN_FILE_SHARDS = 2
    run = extraction.run_synchronously(run=extraction.request_extraction(source=source), max_wait=300)
    assert run.status == "succeeded" and run.sharded
    assert sorted(run.shards.values_list("number", "hash_of")) == [(1, 2), (2, 2)]
    assert sum(run.shards.values_list("customers", flat=True)) == identities
    settings.GATEWAY_RUN_FILE_SHARDS = 1  # no more than one: the run is not split
    again = extraction.run_synchronously(run=extraction.request_extraction(source=source), max_wait=300)
    assert again.status == "succeeded" and not again.sharded and not again.shards.exists()
    assert again.unchanged == run.created and again.read == run.read
