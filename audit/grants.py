"""AU-01 below the application: PostgreSQL privileges for the role the portal runs as.

The triggers (`audit.triggers`) refuse UPDATE, DELETE and TRUNCATE on the audit tables, but the
tables' owner can drop a trigger. So in production the web, worker and beat processes connect
as a role that owns nothing and holds only these privileges:

- the audit events and their scopes: SELECT and INSERT, nothing else;
- the chain head (one row every writer locks and moves on): SELECT, INSERT (it is recreated
  if missing) and UPDATE (which `SELECT ... FOR UPDATE` also needs), no DELETE or TRUNCATE;
- every other table of the portal: SELECT, INSERT, UPDATE and DELETE (never TRUNCATE);
- its sequences: USAGE and SELECT (no setval), and USAGE on the schema.

Migrations keep running as the owning role; new tables after a migration need the
statements again (`manage.py audit_db_grants --role ROLE --apply` is idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from audit.models import AuditChainHead, AuditEvent, AuditEventScope

APPEND_ONLY_TABLES = (AuditEvent._meta.db_table, AuditEventScope._meta.db_table)
CHAIN_HEAD_TABLE = AuditChainHead._meta.db_table
APPEND_ONLY_PRIVILEGES = "SELECT, INSERT"
CHAIN_HEAD_PRIVILEGES = "SELECT, INSERT, UPDATE"
ORDINARY_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


class GrantsError(Exception):
    """The role cannot be bound by grants here (wrong database, owner or superuser)."""


def quote_identifier(name: str) -> str:
    """A PostgreSQL identifier in double quotes, embedded quotes doubled."""
    if not name or "\x00" in name:
        raise GrantsError("A role name must be non-empty text.")
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class RoleFacts:
    exists: bool
    superuser: bool
    # Audit tables the role owns: an owner may drop the triggers or re-grant itself anything.
    owns: tuple[str, ...]


def _portal_tables(connection: BaseDatabaseWrapper) -> list[str]:
    introspection = connection.introspection
    with connection.cursor() as cursor:
        existing = set(introspection.table_names(cursor, include_views=False))
    wanted = set(introspection.django_table_names(only_existing=False, include_views=False))
    wanted.add("django_migrations")
    return sorted(wanted & existing)


def grant_statements(connection: BaseDatabaseWrapper, role: str) -> list[str]:
    """The statements, in order, that leave `role` with exactly the privileges above on the
    tables that exist now. PostgreSQL only."""
    if connection.vendor != "postgresql":
        raise GrantsError("Database grants need PostgreSQL; SQLite has no roles.")
    grantee = quote_identifier(role)
    tables = _portal_tables(connection)
    missing = [t for t in (*APPEND_ONLY_TABLES, CHAIN_HEAD_TABLE) if t not in tables]
    if missing:
        raise GrantsError(
            f"The audit tables {', '.join(missing)} do not exist: run `manage.py migrate` first."
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        (schema,) = cursor.fetchone()
        sequences = sorted(
            {
                sequence["name"]
                for table in tables
                for sequence in connection.introspection.get_sequences(cursor, table)
            }
        )
    statements = [f"GRANT USAGE ON SCHEMA {quote_identifier(schema)} TO {grantee};"]
    for table in tables:
        # Start from nothing, so privileges granted earlier (ALL, TRUNCATE) do not survive.
        statements.append(f"REVOKE ALL ON TABLE {quote_identifier(table)} FROM {grantee};")
    for table in tables:
        if table in APPEND_ONLY_TABLES:
            privileges = APPEND_ONLY_PRIVILEGES
        elif table == CHAIN_HEAD_TABLE:
            privileges = CHAIN_HEAD_PRIVILEGES
        else:
            privileges = ORDINARY_PRIVILEGES
        statements.append(f"GRANT {privileges} ON TABLE {quote_identifier(table)} TO {grantee};")
    for sequence in sequences:
        statements.append(
            f"GRANT USAGE, SELECT ON SEQUENCE {quote_identifier(sequence)} TO {grantee};"
        )
    return statements


def role_facts(connection: BaseDatabaseWrapper, role: str) -> RoleFacts:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
        row = cursor.fetchone()
        if row is None:
            return RoleFacts(exists=False, superuser=False, owns=())
        # Membership counts too: a member of the owning role can act as the owner.
        cursor.execute(
            "SELECT c.relname FROM pg_class c "
            "WHERE c.relname = ANY(%s) AND pg_catalog.pg_table_is_visible(c.oid) "
            "AND pg_has_role(%s, c.relowner, 'USAGE') ORDER BY c.relname",
            [[*APPEND_ONLY_TABLES, CHAIN_HEAD_TABLE], role],
        )
        owns = tuple(name for (name,) in cursor.fetchall())
    return RoleFacts(exists=True, superuser=bool(row[0]), owns=owns)


def role_problems(facts: RoleFacts, role: str) -> list[str]:
    """Why grants cannot hold `role` to append-only (empty when they can)."""
    if not facts.exists:
        return [f"Role {role!r} does not exist: CREATE ROLE it (LOGIN) first."]
    problems = []
    if facts.superuser:
        problems.append(f"Role {role!r} is a superuser: privileges do not bind it.")
    if facts.owns:
        problems.append(
            f"Role {role!r} owns (or is a member of the owner of) {', '.join(facts.owns)}: an "
            "owner can drop the triggers and re-grant itself anything. Run migrations as the "
            "owning role and the portal as another one."
        )
    return problems


def apply_grants(connection: BaseDatabaseWrapper, role: str) -> list[str]:
    """Execute `grant_statements` in one transaction; refuse a role they cannot bind."""
    problems = role_problems(role_facts(connection, role), role)
    if problems:
        raise GrantsError(" ".join(problems))
    statements = grant_statements(connection, role)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    return statements
