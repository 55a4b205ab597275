"""`audit_append()` on PostgreSQL: one round trip per audit event (see audit/append_function.py).
Nothing on SQLite, whose writes take the portable path."""

from django.db import migrations

from audit.append_function import CREATE, DROP


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_organisation_chain")]

    operations = [migrations.RunPython(install, remove, elidable=False)]
