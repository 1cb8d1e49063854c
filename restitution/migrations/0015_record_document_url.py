"""A record's item links its document: `"document_url":"/api/v1/datasets/<slug>/documents/<sha256>"`
after `data`, when `data.document.sha256` is a SHA-256 in hex (restitution/items.py). The
trigger of 0008_record_item prints it; the records already stored that have one are printed again."""

from django.db import migrations

_BODY = r"""
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
_WITH_DOCUMENT = "UPDATE restitution_record SET seq = seq WHERE data -> 'document' ? 'sha256'"


def link_documents(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE OR REPLACE FUNCTION restitution_record_item() RETURNS trigger "
                          f"LANGUAGE plpgsql AS $${_BODY}$$")
    schema_editor.execute(_WITH_DOCUMENT)  # rewriting a column fires the trigger


def unlink_documents(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    previous = __import__("restitution.migrations.0008_record_item", fromlist=["_FUNCTION"])
    schema_editor.execute(previous._FUNCTION)
    schema_editor.execute(_WITH_DOCUMENT)


class Migration(migrations.Migration):
    dependencies = [("restitution", "0014_grant_first_seq")]
    operations = [migrations.RunPython(link_documents, unlink_documents)]
