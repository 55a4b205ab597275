"""Each organisation's own hash chain on its scope rows, backfilled in sequence order.

`org_hash` = SHA-256(org_prev_hash ‖ event hash), `org_prev_hash` the organisation's previous
`org_hash` (zeros for its first event). The backfill walks the scope rows in event order, a
batch at a time, with the append-only triggers lifted for this transaction only (the
migration runs in one transaction, so no other connection ever sees the table unprotected).
"""

from django.db import migrations, models

from audit.triggers import drop_triggers, install_triggers
from audit.verify_export import GENESIS_HASH, org_link_hash

BATCH_SIZE = 2000


def backfill(apps, schema_editor):
    AuditEventScope = apps.get_model("audit", "AuditEventScope")
    connection = schema_editor.connection
    rows = AuditEventScope.objects.using(connection.alias)
    heads: dict[str, str] = {}
    drop_triggers(connection)
    after = (0, 0)
    while True:
        batch = list(
            rows.filter(
                models.Q(event_id__gt=after[0]) | models.Q(event_id=after[0], pk__gt=after[1])
            )
            .select_related("event")
            .order_by("event_id", "pk")[:BATCH_SIZE]
        )
        if not batch:
            break
        for scope in batch:
            key = str(scope.organisation_id)
            scope.org_prev_hash = heads.get(key, GENESIS_HASH)
            scope.org_hash = org_link_hash(scope.org_prev_hash, scope.event.hash)
            heads[key] = scope.org_hash
        rows.bulk_update(batch, ["org_prev_hash", "org_hash"])
        after = (batch[-1].event_id, batch[-1].pk)
    install_triggers(connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_verification")]

    operations = [
        migrations.AddField(
            model_name="auditeventscope",
            name="org_prev_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditeventscope",
            name="org_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
