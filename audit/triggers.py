"""Append-only below the ORM: database triggers that reject UPDATE, DELETE and TRUNCATE.

Installed by migration 0002 for PostgreSQL and SQLite. `append_only_suspended()` lifts them
for the one legitimate wipe, `manage.py flush` (development and test databases), and for the
tamper tests that play an attacker with full database rights.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

PROTECTED_TABLES = ("audit_auditevent", "audit_auditeventscope")
MESSAGE = "audit log is append-only"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE}: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;
"""


def _postgresql_install(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION audit_reject_change();",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();",
    ]


def _postgresql_drop(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};",
    ]


def _sqlite_install(table: str) -> list[str]:
    # SQLite has no TRUNCATE; `DELETE FROM t` without WHERE still fires the row trigger
    # because a trigger disables the truncate optimisation.
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: UPDATE on {table} is not allowed'); END;",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE on {table} is not allowed'); END;",
    ]


def _sqlite_drop(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_no_update;",
        f"DROP TRIGGER IF EXISTS {table}_no_delete;",
    ]


def install_statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        statements = [_PG_FUNCTION]
        for table in PROTECTED_TABLES:
            statements += _postgresql_drop(table) + _postgresql_install(table)
        return statements
    if vendor == "sqlite":
        statements = []
        for table in PROTECTED_TABLES:
            statements += _sqlite_drop(table) + _sqlite_install(table)
        return statements
    raise NotImplementedError(f"No append-only triggers for the {vendor} database backend.")


def drop_statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [sql for table in PROTECTED_TABLES for sql in _postgresql_drop(table)]
    if vendor == "sqlite":
        return [sql for table in PROTECTED_TABLES for sql in _sqlite_drop(table)]
    raise NotImplementedError(f"No append-only triggers for the {vendor} database backend.")


def install_triggers(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for sql in install_statements(connection.vendor):
            cursor.execute(sql)


def drop_triggers(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for sql in drop_statements(connection.vendor):
            cursor.execute(sql)


@contextmanager
def append_only_suspended(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Drop the triggers for the block and reinstall them, all in one transaction: other
    connections never see the table unprotected, and an error leaves the triggers in place."""
    with transaction.atomic(using=connection.alias):
        drop_triggers(connection)
        yield
        install_triggers(connection)
