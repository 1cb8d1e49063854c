"""A record of a dataset whose dates are days (format `date`: a daily value, an invoice's issue
day) is dated by its local day, not by an instant at 00:00 UTC: Dataset.day_zone names the zone
(the customers', GATEWAY_CUSTOMER_TIME_ZONE), the stored `record_at` becomes that day's local
midnight (so consent periods and `from`/`to`, which are local days, hold exactly their days), and
items print the day itself, `"date":"2025-01-01"` (restitution/items.py). Each such record is
printed again with a new change sequence: a client syncing with `since` receives it once more."""

from django.conf import settings
from django.db import migrations, models

_BODY = r"""
DECLARE
    dataset_slug text;
    zone text;
    record_date text;
BEGIN
    -- The same text as portability.record_line() after its head: moments to the second in UTC,
    -- the date of a dataset of days as the local day (its day_zone).
    SELECT slug, day_zone INTO dataset_slug, zone FROM restitution_dataset WHERE id = NEW.dataset_id;
    record_date := CASE WHEN zone <> '' THEN to_char(NEW.record_at AT TIME ZONE zone, 'YYYY-MM-DD')
                        ELSE to_char(NEW.record_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END;
    IF NEW.deleted THEN
        NEW.item := concat(to_json(NEW.key), ',"seq":', NEW.seq, ',"deleted":true,"date":',
                           coalesce('"' || record_date || '"', 'null'), '}');
    ELSE
        NEW.item := concat(
            to_json(NEW.key), ',"seq":', NEW.seq,
            ',"date":', coalesce('"' || record_date || '"', 'null'),
            ',"extracted_at":"', to_char(NEW.extracted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            '","data":', NEW.data::text,
            CASE WHEN NEW.data -> 'document' ->> 'sha256' ~ '^[0-9a-f]{64}$' THEN
                ',"document_url":' || to_json(
                    '/api/v1/datasets/' || dataset_slug || '/documents/' || (NEW.data -> 'document' ->> 'sha256'))::text
            ELSE '' END,
            '}');
    END IF;
    RETURN NEW;
END
"""
_REDATE = """
UPDATE restitution_record r
   SET record_at = ((r.record_at AT TIME ZONE 'UTC')::date)::timestamp AT TIME ZONE d.day_zone,
       seq = nextval('restitution_change_seq')
  FROM restitution_dataset d
 WHERE d.id = r.dataset_id AND d.day_zone <> '' AND r.record_at IS NOT NULL
"""
_UNDATE = """
UPDATE restitution_record r
   SET record_at = ((r.record_at AT TIME ZONE d.day_zone)::date)::timestamp AT TIME ZONE 'UTC',
       seq = nextval('restitution_change_seq')
  FROM restitution_dataset d
 WHERE d.id = r.dataset_id AND d.day_zone <> '' AND r.record_at IS NOT NULL
"""


def _is_day(dataset) -> bool:
    spec = (dataset.schema or {}).get("properties", {}).get(dataset.date_field)
    return isinstance(spec, dict) and spec.get("format") == "date"


def date_by_day(apps, schema_editor):
    Dataset = apps.get_model("restitution", "Dataset")
    for dataset in Dataset.objects.all():
        if _is_day(dataset):
            dataset.day_zone = settings.GATEWAY_CUSTOMER_TIME_ZONE
            dataset.save(update_fields=["day_zone"])
    if schema_editor.connection.vendor == "postgresql":
        install_function(schema_editor)
        schema_editor.execute(_REDATE)  # rewriting the columns fires the trigger
        return
    _redate_in_python(apps, to_local=True)


def install_function(schema_editor, *, reprint: bool = False) -> None:
    """This migration's trigger function; `reprint`: every stored item printed again by it."""
    schema_editor.execute("CREATE OR REPLACE FUNCTION restitution_record_item() RETURNS trigger "
                          f"LANGUAGE plpgsql AS $${_BODY}$$")
    if reprint:
        schema_editor.execute("UPDATE restitution_record SET seq = seq")


def undate_by_day(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_UNDATE)
        previous = __import__("restitution.migrations.0018_tombstone_date", fromlist=["_BODY"])
        schema_editor.execute("CREATE OR REPLACE FUNCTION restitution_record_item() RETURNS trigger "
                              f"LANGUAGE plpgsql AS $${previous._BODY}$$")
        schema_editor.execute("UPDATE restitution_record SET seq = seq")
        return
    _redate_in_python(apps, to_local=False)


def _redate_in_python(apps, *, to_local: bool) -> None:
    """The other databases (SQLite, embedded): the same, row by row, sequences from the counter."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    Dataset = apps.get_model("restitution", "Dataset")
    Record = apps.get_model("restitution", "Record")
    Counter = apps.get_model("restitution", "ChangeCounter")
    counter, _ = Counter.objects.get_or_create(pk=1)
    for dataset in Dataset.objects.exclude(day_zone=""):
        zone = ZoneInfo(dataset.day_zone)
        for record in Record.objects.filter(dataset=dataset, record_at__isnull=False).order_by("seq"):
            day = record.record_at.astimezone(UTC if to_local else zone).date()
            record.record_at = datetime(day.year, day.month, day.day, tzinfo=zone if to_local else UTC)
            counter.value += 1
            record.seq = counter.value
            record.save(update_fields=["record_at", "seq"])
    counter.save(update_fields=["value"])


class Migration(migrations.Migration):
    dependencies = [("restitution", "0018_tombstone_date")]
    operations = [
        migrations.AddField(
            model_name="dataset", name="day_zone",
            field=models.CharField(
                blank=True, default="", editable=False, max_length=64,
                help_text="When the date field is a day (format `date`): the time zone whose local days they are "
                          "(a record's date is stored as that day's local midnight, and its items print the day); "
                          "empty when its dates are instants. Set once, by catalogue.day_zone()."),
        ),
        migrations.RunPython(date_by_day, undate_by_day),
    ]
