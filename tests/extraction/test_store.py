"""The record store: upsert by natural key, unchanged rows untouched, tombstones, sequence."""

from __future__ import annotations

import pytest

from restitution import store
from restitution.catalogue import sync_catalogue
from restitution.models import Customer, Dataset, Record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["arrays", "copy"])
def chunk_path(request, monkeypatch):
    """Every test here once per way a chunk reaches the merge: small chunks as bound arrays,
    big ones COPY'd into the staging table (forced here by a threshold of 0)."""
    if request.param == "copy":
        monkeypatch.setattr(store, "_ARRAY_CHUNK_ROWS", 0)
    return request.param


@pytest.fixture
def contracts() -> Dataset:
    sync_catalogue()
    return Dataset.objects.get(slug="insurance-contracts")


@pytest.fixture
def alice() -> Customer:
    return Customer.objects.create(reference="C-ALICE", display_name="Alice")


def _contract(contract_id: str, premium: float = 100.0) -> dict:
    return {"contract_id": contract_id, "product_code": "HAB", "product": "Home",
            "status": "active", "start_date": "2024-01-01", "end_date": None,
            "annual_premium": premium, "currency": "EUR", "insured_object": None, "deductible": None}


def _write(customer: Customer, dataset: Dataset, records: list[dict], *, finish: bool = True,
           chunk_size: int = 2) -> store.WriteCounts:
    writer = store.SnapshotWriter(dataset_id=dataset.pk, source_id=None, chunk_size=chunk_size)
    writer.include(customer.pk)
    for data in records:
        writer.add(customer_id=customer.pk, key=data["contract_id"], data=data, record_at=None,
                   locator="test")
    if finish:
        return writer.finish()
    writer.flush()
    return writer.counts


def test_it_creates_records_with_increasing_sequence(alice, contracts):
    counts = _write(alice, contracts, [_contract("A"), _contract("B"), _contract("C")])
    assert (counts.created, counts.updated, counts.unchanged, counts.deleted) == (3, 0, 0, 0)
    seqs = list(Record.objects.order_by("key").values_list("seq", flat=True))
    assert len(set(seqs)) == 3 and seqs == sorted(seqs)


def test_it_does_not_rewrite_unchanged_records(alice, contracts):
    _write(alice, contracts, [_contract("A"), _contract("B")])
    before = dict(Record.objects.values_list("key", "seq"))
    counts = _write(alice, contracts, [_contract("A"), _contract("B")])
    assert (counts.created, counts.updated, counts.unchanged) == (0, 0, 2)
    assert dict(Record.objects.values_list("key", "seq")) == before


def test_it_gives_a_changed_record_a_new_sequence(alice, contracts):
    _write(alice, contracts, [_contract("A"), _contract("B")])
    seq_a, seq_b = (Record.objects.get(key=k).seq for k in "AB")
    counts = _write(alice, contracts, [_contract("A", premium=120.5), _contract("B")])
    assert (counts.updated, counts.unchanged) == (1, 1)
    a = Record.objects.get(key="A")
    assert a.data["annual_premium"] == 120.5
    assert a.seq > max(seq_a, seq_b)
    assert Record.objects.get(key="B").seq == seq_b


def test_it_turns_vanished_records_into_tombstones(alice, contracts):
    _write(alice, contracts, [_contract("A"), _contract("B")])
    counts = _write(alice, contracts, [_contract("A")])
    assert counts.deleted == 1
    b = Record.objects.get(key="B")
    assert b.deleted and b.data is None
    assert b.seq > Record.objects.get(key="A").seq


def test_a_partial_read_deletes_nothing(alice, contracts):
    _write(alice, contracts, [_contract("A"), _contract("B")])
    _write(alice, contracts, [_contract("A")], finish=False)
    assert not Record.objects.filter(deleted=True).exists()


def test_a_record_that_comes_back_is_live_again(alice, contracts):
    _write(alice, contracts, [_contract("A"), _contract("B")])
    _write(alice, contracts, [_contract("A")])
    counts = _write(alice, contracts, [_contract("A"), _contract("B")])
    assert counts.updated == 1
    assert Record.objects.get(key="B").deleted is False


def test_it_never_touches_another_customers_records(alice, contracts):
    bob = Customer.objects.create(reference="C-BOB")
    _write(bob, contracts, [_contract("A"), _contract("Z")])
    _write(alice, contracts, [_contract("A")])
    _write(alice, contracts, [])
    assert Record.objects.filter(customer=bob, deleted=False).count() == 2


def test_content_hash_ignores_key_order():
    assert store.content_hash({"a": 1, "b": [1, 2]}) == store.content_hash({"b": [1, 2], "a": 1})
    assert store.content_hash({"a": 1}) != store.content_hash({"a": 1.5})


def test_one_writer_handles_many_customers_and_tombstones_only_those_in_scope(alice, contracts):
    bob = Customer.objects.create(reference="C-BOB")
    carol = Customer.objects.create(reference="C-CAROL")
    _write(carol, contracts, [_contract("K")])
    writer = store.SnapshotWriter(dataset_id=contracts.pk, source_id=None, chunk_size=3)
    for customer, key in [(alice, "A"), (bob, "A"), (alice, "B"), (bob, "C"), (alice, "D")]:
        writer.add(customer_id=customer.pk, key=key, data=_contract(key), record_at=None, locator="x")
    counts = writer.finish()
    assert (counts.created, counts.deleted) == (5, 0)
    assert Record.objects.get(customer=carol, key="K").deleted is False  # not in scope

    writer = store.SnapshotWriter(dataset_id=contracts.pk, source_id=None, chunk_size=3)
    writer.add(customer_id=alice.pk, key="A", data=_contract("A"), record_at=None, locator="x")
    writer.include(bob.pk)
    counts = writer.finish()
    assert (counts.unchanged, counts.deleted) == (1, 4)  # alice's B, D and bob's A, C
    assert Record.objects.get(customer=carol, key="K").deleted is False

    writer = store.SnapshotWriter(dataset_id=contracts.pk, source_id=None)
    counts = writer.finish(all_customers=True)  # a complete read of everyone that found nothing
    assert counts.deleted == 2  # alice's A and carol's K
    assert not Record.objects.filter(deleted=False).exists()


def test_awkward_content_is_stored_as_written_either_way(alice, contracts):
    # Quotes, backslashes, braces and commas (array literal syntax), non-ASCII text, a NULL
    # date next to a real one: what the array path quotes, the COPY path sends as is.
    awkward = [_contract('Q"1'), {**_contract("B\\{x,y}"), "product": "Maison « été » \\ \"quoted\" {a,b}"},
               {**_contract("NULL"), "insured_object": "NULL"}]
    writer = store.SnapshotWriter(dataset_id=contracts.pk, source_id=None)
    writer.include(alice.pk)
    dates = [None, store.parse_record_date("2024-03-01"), None]
    for data, record_at in zip(awkward, dates, strict=True):
        writer.add(customer_id=alice.pk, key=data["contract_id"], data=data, record_at=record_at, locator="t")
    assert writer.finish().created == 3
    stored = {r.key: r for r in Record.objects.all()}
    assert {key: r.data for key, r in stored.items()} == {d["contract_id"]: d for d in awkward}
    assert [stored[d["contract_id"]].record_at for d in awkward] == dates
    assert all(r.content_hash == store.content_hash(r.data) for r in stored.values())
