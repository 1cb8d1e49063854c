"""Each record keeps its API item printed (PostgreSQL only).

`restitution_record.item` holds the record's JSON item as the API serves it, from the key on —
`"<key>","seq":N,"date":…,"extracted_at":…,"data":{…}}`, or `…,"deleted":true}` for a
tombstone — so that a page is the items joined, not printed again on every read. A trigger
prints it on every INSERT and UPDATE, whatever writes the row (the extraction's upsert, the
ORM, a manual fix), so it cannot fall behind the columns it is made of. The column is not a
model field: the ORM never loads it; only the API's page statements read it
(restitution/portability.py). Other databases (SQLite, the embedded mode) print pages in
Python and have no such column.
"""

from django.db import migrations

_FUNCTION = r"""
CREATE OR REPLACE FUNCTION restitution_record_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The same text as portability.record_line() after its head; moments to the second, UTC.
    IF NEW.deleted THEN
        NEW.item := concat(to_json(NEW.key), ',"seq":', NEW.seq, ',"deleted":true}');
    ELSE
        NEW.item := concat(
            to_json(NEW.key), ',"seq":', NEW.seq,
            ',"date":', coalesce('"' || to_char(NEW.record_at AT TIME ZONE 'UTC',
                                                'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"', 'null'),
            ',"extracted_at":"', to_char(NEW.extracted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            '","data":', NEW.data::text, '}');
    END IF;
    RETURN NEW;
END
$$
"""


def create_item(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE restitution_record ADD COLUMN item text")
    schema_editor.execute(_FUNCTION)
    schema_editor.execute("CREATE TRIGGER restitution_record_item BEFORE INSERT OR UPDATE ON restitution_record "
                          "FOR EACH ROW EXECUTE FUNCTION restitution_record_item()")
    # Records stored before this migration: rewriting a column fires the trigger.
    schema_editor.execute("UPDATE restitution_record SET seq = seq")
    schema_editor.execute("ALTER TABLE restitution_record ALTER COLUMN item SET NOT NULL")


def drop_item(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS restitution_record_item ON restitution_record")
    schema_editor.execute("DROP FUNCTION IF EXISTS restitution_record_item()")
    schema_editor.execute("ALTER TABLE restitution_record DROP COLUMN IF EXISTS item")


class Migration(migrations.Migration):
    dependencies = [("restitution", "0007_outbox")]
    operations = [migrations.RunPython(create_item, drop_item)]
