"""`python manage.py audit_db_grants --role ROLE [--apply]`: the PostgreSQL privileges that let
the portal run as ROLE while the audit log stays append-only for it (INSERT and SELECT on the
audit events, no UPDATE, DELETE or TRUNCATE). Prints the SQL; `--apply` executes it as the
connecting (owning) role. Run it again after every `migrate` that adds tables."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from audit.grants import GrantsError, apply_grants, grant_statements, role_facts, role_problems


class Command(BaseCommand):
    help = (
        "Print (or with --apply execute) the GRANT/REVOKE statements for the role the portal "
        "runs as: append-only on the audit tables, ordinary access to the rest."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", required=True, help="the PostgreSQL role the portal uses")
        parser.add_argument(
            "--apply", action="store_true", help="execute the statements (as the owning role)"
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        role = options["role"]
        try:
            if options["apply"]:
                statements = apply_grants(connection, role)
            else:
                statements = grant_statements(connection, role)
                for problem in role_problems(role_facts(connection, role), role):
                    self.stderr.write(f"Warning: {problem}")
        except GrantsError as error:
            raise CommandError(str(error)) from None
        self.stdout.write("\n".join(statements))
        if options["apply"]:
            self.stdout.write(
                f"Applied {len(statements)} statements: {role!r} may only SELECT and INSERT "
                "audit events."
            )
