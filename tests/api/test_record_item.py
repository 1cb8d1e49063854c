"""The item each record keeps printed on PostgreSQL (column `item`, migration 0008_record_item):
whatever writes a row — the extraction's upsert, the ORM, a bulk update, raw SQL, a hand-made
stale value — the item is the record_line() of the row's current columns."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest
from django.db import connection

from restitution import portability
from restitution.models import Dataset, Record
from tests.api.test_page_paths_property import changed_data  # noqa: F401 (fixture)
from tests.personas import CONTRACTS, CURVE

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the printed item is PostgreSQL's")

ITEM_SQL = "SELECT id, seq, key, deleted, record_at, extracted_at, data::text, item FROM restitution_record"


def _wrong_items() -> list[tuple[int, str, str]]:
    """(id, expected, stored) of every row whose item is not its columns printed."""
    with connection.cursor() as cursor:
        cursor.execute(ITEM_SQL + " ORDER BY id")
        rows = cursor.fetchall()
    assert rows, "no record to check"
    wrong = []
    for pk, seq, key, deleted, record_at, extracted_at, text, item in rows:
        expected = portability.record_line("", seq, key, deleted, record_at, extracted_at, text)
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
    assert _wrong_items() == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT is_nullable FROM information_schema.columns "
                       "WHERE table_name = 'restitution_record' AND column_name = 'item'")
        assert cursor.fetchone() == ("NO",)
