"""The item each record keeps printed on PostgreSQL (column `item`, migration 0008_record_item):
whatever writes a row — the extraction's upsert, the ORM, a bulk update, raw SQL, a hand-made
stale value — the item is the record_line() of the row's current columns."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from restitution import consent, items, portability
from restitution.models import Dataset, Record
from tests.api.test_page_paths_property import changed_data  # noqa: F401 (fixture)
from tests.personas import CONTRACTS, CURVE

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the printed item is PostgreSQL's")

ITEM_SQL = ("SELECT r.id, seq, key, deleted, record_at, extracted_at, data::text, item, d.slug, d.day_zone "
            "FROM restitution_record r JOIN restitution_dataset d ON d.id = r.dataset_id")


def _wrong_items() -> list[tuple[int, str, str]]:
    """(id, expected, stored) of every row whose item is not its columns printed."""
    with connection.cursor() as cursor:
        cursor.execute(ITEM_SQL + " ORDER BY r.id")
        rows = cursor.fetchall()
    assert rows, "no record to check"
    wrong = []
    for pk, seq, key, deleted, record_at, extracted_at, text, item, slug, day_zone in rows:
        document = None if deleted else items.document_url(slug, json.loads(text))
        expected = portability.record_line("", seq, key, deleted, record_at, extracted_at, text, document, day_zone)
        if item != expected:
            wrong.append((pk, expected, item))
    return wrong


def test_every_write_path_leaves_the_item_right(changed_data):  # noqa: F811
    # The extraction's upsert wrote the fixture: creations, updates, tombstones, awkward keys.
    assert _wrong_items() == []
    assert Record.objects.filter(deleted=True).exists()

    record = Record.objects.filter(dataset__slug=CONTRACTS, deleted=False).first()
    record.data = {"premium": 1.5, "note": "l'été \"chaud\" \\ \u0002"}
    record.record_at = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    record.save()
    assert Record.objects.filter(customer=changed_data.bob, deleted=False).update(
        extracted_at=datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC), record_at=None) > 0
    Record.objects.filter(dataset__slug=CURVE, deleted=False).order_by("seq")[:1].get().delete()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE restitution_record SET deleted = true, data = NULL WHERE id = "
                       "(SELECT min(id) FROM restitution_record WHERE NOT deleted)")
        cursor.execute("UPDATE restitution_record SET item = 'stale' WHERE id = "
                       "(SELECT max(id) FROM restitution_record)")
    assert _wrong_items() == []


def test_a_tombstone_carries_the_date_its_record_last_had(changed_data):  # noqa: F811
    """Printed by the trigger and by Python alike: a deletion says which date it belongs to."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT item, record_at, key, seq, d.day_zone FROM restitution_record r "
                       "JOIN restitution_dataset d ON d.id = r.dataset_id WHERE deleted AND record_at IS NOT NULL")
        tombstones = cursor.fetchall()
    assert tombstones
    for item, record_at, key, seq, day_zone in tombstones:
        printed = json.loads('{"key":' + item)  # the stored item starts after its head
        assert printed == {"key": key, "seq": seq, "deleted": True, "date": items.date_text(record_at, day_zone)}
        assert items.record_item("d", key, seq, True, None, record_at, record_at, day_zone) == {
            "dataset": "d", "key": key, "seq": seq, "deleted": True, "date": items.date_text(record_at, day_zone)}
    assert json.loads(items.record_line_deleted('{"dataset":"d","key":', 7, "k"))["date"] is None


def test_a_record_with_a_document_links_it_on_every_write_path(changed_data):  # noqa: F811
    dataset = Dataset.objects.get(slug=CONTRACTS)
    digest = "ab" * 32
    linked = Record.objects.create(customer=changed_data.bob, dataset=dataset, key="with-document",
                                   data={"document": {"sha256": digest, "filename": "a.pdf"}}, content_hash="x",
                                   extracted_at=datetime(2025, 1, 2, tzinfo=UTC), seq=10_000_001)
    # The refused side: no link for a document whose sha256 is not one (nor for none at all).
    for n, document in enumerate([{"sha256": "../../../etc"}, {"sha256": "AB" * 32}, "a.pdf", None]):
        Record.objects.create(customer=changed_data.bob, dataset=dataset, key=f"odd-{n}", data={"document": document},
                              content_hash="x", extracted_at=datetime(2025, 1, 2, tzinfo=UTC), seq=10_000_010 + n)
    assert _wrong_items() == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, item FROM restitution_record WHERE item LIKE '%%document_url%%'")
        printed = dict(cursor.fetchall())
    assert list(printed) == ["with-document"]
    assert json.loads('{"dataset":"x","key":' + printed["with-document"])["document_url"] == (
        f"/api/v1/datasets/{CONTRACTS}/documents/{digest}")
    linked.data = {"document": None}
    linked.save()
    assert _wrong_items() == []


def test_the_tombstone_date_migration_prints_the_deletions_already_stored(changed_data):  # noqa: F811
    migration = importlib.import_module("restitution.migrations.0018_tombstone_date")
    with connection.schema_editor() as editor:
        migration.undate_tombstones(None, editor)
    deleted = set(Record.objects.filter(deleted=True).values_list("pk", flat=True))
    assert deleted and {pk for pk, _, _ in _wrong_items()} == deleted
    with connection.schema_editor() as editor:
        migration.date_tombstones(None, editor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT item FROM restitution_record WHERE deleted AND record_at IS NOT NULL")
        assert all('"deleted":true,"date":"' in item for (item,) in cursor.fetchall())
    with connection.schema_editor() as editor:  # and 0019 prints days as local days
        importlib.import_module("restitution.migrations.0019_day_dates").install_function(editor, reprint=True)
    assert _wrong_items() == []


def test_the_document_link_migration_prints_the_records_already_stored(changed_data):  # noqa: F811
    migration = importlib.import_module("restitution.migrations.0015_record_document_url")
    Record.objects.create(customer=changed_data.bob, dataset=Dataset.objects.get(slug=CONTRACTS), key="doc",
                          data={"document": {"sha256": "cd" * 32}}, content_hash="x",
                          extracted_at=datetime(2025, 1, 2, tzinfo=UTC), seq=10_000_002)
    with connection.schema_editor() as editor:
        migration.unlink_documents(None, editor)
    assert [pk for pk, _, _ in _wrong_items()] == list(Record.objects.filter(key="doc").values_list("pk", flat=True))
    with connection.schema_editor() as editor:
        migration.link_documents(None, editor)
    assert _wrong_items() == []


def test_the_migration_prints_the_records_already_stored(changed_data):  # noqa: F811
    """Rows written before the column existed get their items when it is added."""
    migration = importlib.import_module("restitution.migrations.0008_record_item")
    with connection.cursor() as cursor:  # the test's writes are one transaction: check them now, as a commit would
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with connection.schema_editor() as editor:
        migration.drop_item(None, editor)
    dataset = Dataset.objects.get(slug=CURVE)
    Record.objects.create(customer=changed_data.bob, dataset=dataset, key="written-before", data={"kw": 3},
                          content_hash="x", record_at=datetime(2025, 1, 1, tzinfo=UTC),
                          extracted_at=datetime(2025, 1, 2, tzinfo=UTC), seq=10_000_000)
    with connection.schema_editor() as editor:
        migration.create_item(None, editor)
        # The later migrations that reprint items, in order, as a fresh migrate runs them.
        importlib.import_module("restitution.migrations.0015_record_document_url").link_documents(None, editor)
        importlib.import_module("restitution.migrations.0018_tombstone_date").date_tombstones(None, editor)
        importlib.import_module("restitution.migrations.0019_day_dates").install_function(editor, reprint=True)
    assert _wrong_items() == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT is_nullable FROM information_schema.columns "
                       "WHERE table_name = 'restitution_record' AND column_name = 'item'")
        assert cursor.fetchone() == ("NO",)


def test_the_trigger_prints_the_item_of_the_one_definition(db):
    """The trigger function PostgreSQL runs (whatever migrations made it) is restitution.items'."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('restitution_record_item'::regproc)")
        (definition,) = cursor.fetchone()
    body = definition.split("$function$")[1]
    assert body.strip() == items.SQL_ITEM_TRIGGER_BODY.strip()
    assert items.SQL_UTC_FORMAT in body


def test_the_change_feed_page_prints_the_head_of_the_one_definition(changed_data):  # noqa: F811
    grant = consent.create_grant(customer=changed_data.alice, client=changed_data.trusted,
                                 datasets=list(Dataset.objects.filter(slug__in=[CURVE, CONTRACTS])), duration="1m")
    window = portability.request_window(grant, since_date=None, until_date=None)
    with CaptureQueriesContext(connection) as queries:
        page, _ = portability.change_page_text(grant, window, after=0, size=50, separator="\n")
    assert page.count and any(items.SQL_ITEM_HEAD + " || item" in query["sql"] for query in queries)


@pytest.mark.parametrize("slug", ["energy-load-curve", 'quo"te', "back\\slash", "été-€", "tab\tand\u0001"])
def test_the_sql_head_is_the_python_head(db, slug):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {items.SQL_ITEM_HEAD} FROM (SELECT %s AS slug) d", [slug])
        (printed,) = cursor.fetchone()
    assert printed == items.record_line_head(slug)


moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
                       timezones=st.sampled_from([UTC, timezone(timedelta(hours=-9, minutes=-30)),
                                                  timezone(timedelta(hours=14))]))


@given(key=st.text(), seq=st.integers(min_value=1, max_value=2**62), deleted=st.booleans(),
       data=st.dictionaries(st.text(), st.one_of(st.none(), st.integers(), st.text(), st.booleans())),
       record_at=st.one_of(st.none(), moments), extracted_at=moments,
       day_zone=st.sampled_from(["", "Europe/Paris", "America/New_York", "Pacific/Kiritimati"]))
def test_the_item_as_text_is_the_item_as_a_dict(key, seq, deleted, data, record_at, extracted_at, day_zone):
    document = None if deleted else items.document_url("a-dataset", data)
    line = items.record_line(items.record_line_head("a-dataset"), seq, key, deleted, record_at, extracted_at,
                             json.dumps(data), document, day_zone)
    assert json.loads(line) == items.record_item("a-dataset", key, seq, deleted, data, record_at, extracted_at,
                                                 day_zone)


def test_moments_are_printed_as_rfc3339_utc_to_the_second():
    moment = datetime(2025, 3, 30, 3, 4, 5, 999999, tzinfo=timezone(timedelta(hours=2)))
    assert items.utc_text(moment) == "2025-03-30T01:04:05Z"
