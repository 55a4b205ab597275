"""AU-01 in PostgreSQL's privileges: `manage.py audit_db_grants --role ROLE --apply` leaves the
portal's role able to SELECT and INSERT audit events and nothing else on them, so even a
compromised application cannot rewrite, delete or truncate the log (nor drop its triggers)."""

import uuid
from collections.abc import Iterator
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from audit.grants import quote_identifier
from audit.models import AuditEvent, AuditEventScope
from audit.services import audit_record
from tests.audit.conftest import ANY_ACTION, make_organisation, requires_postgresql


@pytest.fixture
def app_role() -> Iterator[str]:
    """A throwaway login role, as an operator would create for the web processes."""
    role = f"portal_test_app_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {quote_identifier(role)} LOGIN")
    try:
        yield role
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP OWNED BY {quote_identifier(role)}")
            cursor.execute(f"DROP ROLE {quote_identifier(role)}")


def connect_as(role: str) -> psycopg.Connection:
    # The machine's PostgreSQL trusts local TCP connections, so the role needs no password.
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        dbname=settings["NAME"],
        user=role,
        autocommit=True,
    )


def _copy_event_sql() -> str:
    """INSERT one new event copied from an existing one under a new sequence number."""
    columns = [field.column for field in AuditEvent._meta.local_concrete_fields]
    selected = ["%s" if column == "sequence" else column for column in columns]
    return (
        f"INSERT INTO audit_auditevent ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(selected)} FROM audit_auditevent WHERE sequence = %s"
    )


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_app_role_may_only_select_and_insert_audit_events(app_role: str) -> None:
    organisation = make_organisation()
    with transaction.atomic():
        first = audit_record(action=ANY_ACTION, organisation=organisation)
    role = quote_identifier(app_role)
    with connection.cursor() as cursor:
        # Whatever was granted before (here: everything) does not survive the command.
        cursor.execute(f"GRANT ALL ON audit_auditevent, audit_auditeventscope TO {role}")

    out = StringIO()
    call_command("audit_db_grants", "--role", app_role, "--apply", stdout=out)
    assert f'GRANT SELECT, INSERT ON TABLE "audit_auditevent" TO {role};' in out.getvalue()

    with connect_as(app_role) as conn:
        # What audit_record does: lock the head, append the event and its scope, move the head.
        with conn.transaction():
            (sequence,) = conn.execute(
                "SELECT sequence FROM audit_auditchainhead WHERE id = 1 FOR UPDATE"
            ).fetchone()
            new = sequence + 1
            conn.execute(_copy_event_sql(), [new, first.sequence])
            conn.execute(
                "INSERT INTO audit_auditeventscope "
                "(event_id, organisation_id, org_prev_hash, org_hash) VALUES (%s, %s, %s, %s)",
                [new, organisation.pk, "0" * 64, "0" * 64],
            )
            conn.execute("UPDATE audit_auditchainhead SET sequence = %s WHERE id = 1", [new])
        assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone() == (2,)
        # The rest of the portal stays writable.
        conn.execute(
            "UPDATE accounts_organisation SET name = name WHERE id = %s", [organisation.pk]
        )

        refused = [
            "UPDATE audit_auditevent SET action = 'rewritten'",
            "DELETE FROM audit_auditevent",
            "TRUNCATE audit_auditevent",
            "UPDATE audit_auditeventscope SET organisation_id = organisation_id",
            "DELETE FROM audit_auditeventscope",
            "TRUNCATE audit_auditeventscope CASCADE",
            "DELETE FROM audit_auditchainhead",
            "TRUNCATE audit_auditchainhead",
            # Not the owner: the triggers cannot be lifted either.
            "DROP TRIGGER audit_auditevent_no_update_delete ON audit_auditevent",
            "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
        ]
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # Nor can it grant itself more (PostgreSQL only warns that nothing was granted).
        conn.execute(f"GRANT UPDATE, DELETE, TRUNCATE ON audit_auditevent TO {role}")
        for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
            assert conn.execute(
                "SELECT has_table_privilege(current_user, 'audit_auditevent', %s)", [privilege]
            ).fetchone() == (False,)

    assert AuditEvent.objects.count() == 2
    assert AuditEventScope.objects.filter(event_id=first.sequence + 1).exists()
    assert AuditEvent.objects.get(sequence=first.sequence).action == ANY_ACTION


@requires_postgresql
@pytest.mark.django_db
def test_apply_refuses_a_role_grants_cannot_bind() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (owner,) = cursor.fetchone()
    with pytest.raises(CommandError, match=r"superuser|owns"):
        call_command("audit_db_grants", "--role", owner, "--apply", stdout=StringIO())
    with pytest.raises(CommandError, match="does not exist"):
        call_command("audit_db_grants", "--role", "no_such_role_x", "--apply", stdout=StringIO())


@requires_postgresql
@pytest.mark.django_db
def test_printing_warns_about_a_role_grants_cannot_bind() -> None:
    out, err = StringIO(), StringIO()
    call_command("audit_db_grants", "--role", 'odd"name', stdout=out, stderr=err)
    assert 'GRANT SELECT, INSERT ON TABLE "audit_auditevent" TO "odd""name";' in out.getvalue()
    assert "TRUNCATE" not in out.getvalue()
    assert "does not exist" in err.getvalue()


@pytest.mark.django_db
def test_sqlite_has_no_roles() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("audit_db_grants", "--role", "portal", stdout=StringIO())
