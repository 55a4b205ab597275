"""`flush` that can empty the audit log too.

Django's flush (also what test cases run between transactional tests) truncates every table;
the audit tables' append-only triggers would refuse. Flushing is the deliberate "wipe this
development or test database" command, so it lifts the triggers for its own transaction.
"""

from typing import Any

from django.core.management.commands.flush import Command as DjangoFlushCommand
from django.db import DEFAULT_DB_ALIAS, connections

from audit.models import AuditChainHead
from audit.triggers import append_only_suspended


class Command(DjangoFlushCommand):
    def handle(self, **options: Any) -> None:
        connection = connections[options.get("database") or DEFAULT_DB_ALIAS]
        with append_only_suspended(connection):
            super().handle(**options)
        # An empty log still has its head row, so concurrent first writers never race to
        # create it.
        AuditChainHead.objects.using(connection.alias).get_or_create(pk=AuditChainHead.SINGLETON_ID)
