"""A tombstone's item carries the date its record last had: `…,"deleted":true,"date":"…"}` (null
when the record had none), so a client can tell which period a deletion belongs to
(restitution/items.py). The trigger of 0008_record_item prints it; stored tombstones are printed again."""

from django.db import migrations

_BODY = r"""
BEGIN
    -- The same text as portability.record_line() after its head; moments to the second, UTC.
    IF NEW.deleted THEN
        NEW.item := concat(to_json(NEW.key), ',"seq":', NEW.seq, ',"deleted":true,"date":',
                           coalesce('"' || to_char(NEW.record_at AT TIME ZONE 'UTC',
                                                   'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"', 'null'), '}');
    ELSE
        NEW.item := concat(
            to_json(NEW.key), ',"seq":', NEW.seq,
            ',"date":', coalesce('"' || to_char(NEW.record_at AT TIME ZONE 'UTC',
                                                'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"', 'null'),
            ',"extracted_at":"', to_char(NEW.extracted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            '","data":', NEW.data::text,
            CASE WHEN NEW.data -> 'document' ->> 'sha256' ~ '^[0-9a-f]{64}$' THEN
                ',"document_url":' || to_json(
                    '/api/v1/datasets/' || (SELECT slug FROM restitution_dataset WHERE id = NEW.dataset_id)
                    || '/documents/' || (NEW.data -> 'document' ->> 'sha256'))::text
            ELSE '' END,
            '}');
    END IF;
    RETURN NEW;
END
"""
_TOMBSTONES = "UPDATE restitution_record SET seq = seq WHERE deleted"


def date_tombstones(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE OR REPLACE FUNCTION restitution_record_item() RETURNS trigger "
                          f"LANGUAGE plpgsql AS $${_BODY}$$")
    schema_editor.execute(_TOMBSTONES)  # rewriting a column fires the trigger


def undate_tombstones(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    previous = __import__("restitution.migrations.0015_record_document_url", fromlist=["_BODY"])
    schema_editor.execute("CREATE OR REPLACE FUNCTION restitution_record_item() RETURNS trigger "
                          f"LANGUAGE plpgsql AS $${previous._BODY}$$")
    schema_editor.execute(_TOMBSTONES)


class Migration(migrations.Migration):
    dependencies = [("restitution", "0017_run_shards")]
    operations = [migrations.RunPython(date_tombstones, undate_tombstones)]
