"""The global change sequence: a PostgreSQL SEQUENCE (other databases use ChangeCounter)."""

from django.db import migrations


def create_sequence(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE SEQUENCE IF NOT EXISTS restitution_change_seq AS bigint")


def drop_sequence(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP SEQUENCE IF EXISTS restitution_change_seq")


class Migration(migrations.Migration):
    dependencies = [("restitution", "0001_initial")]
    operations = [migrations.RunPython(create_sequence, drop_sequence)]
