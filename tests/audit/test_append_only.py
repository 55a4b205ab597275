import pytest
from django.contrib import admin
from django.contrib.admin.sites import AdminSite
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.urls import reverse

from audit.admin import AuditEventAdmin
from audit.models import AuditChainHead, AuditEvent, AuditEventScope, AuditImmutableError
from audit.services import AuditChainError
from audit.verify import verify_chain
from tests.audit.conftest import ANY_ACTION, make_user, write_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(owner_org):
    return write_events(3, organisation=owner_org)


def raw(sql: str, params: list | None = None) -> None:
    # Each attempt in its own savepoint: on PostgreSQL a failed statement spoils the
    # surrounding transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def test_the_orm_refuses_to_change_or_delete_events(events):
    event = AuditEvent.objects.get(pk=events[0].pk)
    event.action = "forged.action"
    with pytest.raises(AuditImmutableError):
        event.save()
    with pytest.raises(AuditImmutableError):
        event.delete()
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(action="forged.action")
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.bulk_update([event], ["action"])
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.bulk_create([AuditEvent(sequence=99)])
    scope = AuditEventScope.objects.first()
    with pytest.raises(AuditImmutableError):
        scope.delete()
    with pytest.raises(AuditImmutableError):
        AuditEventScope.objects.all().delete()
    assert verify_chain().ok


def test_the_database_refuses_even_when_the_orm_guard_is_bypassed(events):
    # The base QuerySet methods go straight to SQL, as a bug or a careless script would.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        super(type(AuditEvent.objects.all()), AuditEvent.objects.all()).update(action="x.y")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=events[0].pk)._raw_delete(connection.alias)
    assert AuditEvent.objects.count() == 3


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET target_label = 'forged' WHERE sequence = 2",
        "UPDATE audit_auditevent SET hash = prev_hash",
        "DELETE FROM audit_auditevent WHERE sequence = 3",
        "DELETE FROM audit_auditevent",
        "UPDATE audit_auditeventscope SET organisation_id = organisation_id",
        "DELETE FROM audit_auditeventscope",
    ],
)
def test_raw_sql_updates_and_deletes_are_rejected_by_triggers(events, sql):
    with pytest.raises(DatabaseError, match="append-only"):
        raw(sql)
    assert AuditEvent.objects.count() == 3
    assert AuditEventScope.objects.count() == 3
    assert verify_chain().ok


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE is PostgreSQL only")
@pytest.mark.parametrize("table", ["audit_auditevent", "audit_auditeventscope"])
def test_truncate_is_rejected_on_postgresql(events, table):
    # Fire the deferred foreign-key checks first: PostgreSQL refuses to truncate a table with
    # pending trigger events before our trigger even runs.
    raw("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(DatabaseError, match="append-only"):
        raw(f"TRUNCATE {table} CASCADE")
    assert AuditEvent.objects.count() == 3


def test_the_chain_head_stays_updatable(events):
    raw("UPDATE audit_auditchainhead SET sequence = sequence WHERE id = 1")
    assert AuditChainHead.objects.get().sequence == 3


def test_inserts_are_still_allowed(events):
    # Append-only, not read-only: the next event goes in as usual.
    write_events(1)
    assert verify_chain().count == 4


def test_the_admin_lists_events_read_only(events, client):
    superuser = make_user("root@example.com", is_staff=True, is_superuser=True)
    model_admin = AuditEventAdmin(AuditEvent, AdminSite())
    request = RequestFactory().get("/")
    request.user = superuser
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, events[0])
    assert not model_admin.has_delete_permission(request, events[0])
    assert "delete_selected" not in model_admin.get_actions(request)
    assert admin.site.is_registered(AuditEvent)

    client.force_login(superuser)
    listing = client.get(
        reverse("admin:audit_auditevent_changelist"), {"outcome__exact": "success"}
    )
    assert listing.status_code == 200
    assert ANY_ACTION.value.encode() in listing.content
    detail = client.get(reverse("admin:audit_auditevent_change", args=[events[0].pk]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert str(events[0].organisation_id).encode() in detail.content
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    delete_url = reverse("admin:audit_auditevent_delete", args=[events[0].pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_log_and_leaves_it_protected(owner_org):
    write_events(2, organisation=owner_org)
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEvent.objects.exists()
    # The head row is put back at once, at the genesis, so first writers never race for it.
    head = AuditChainHead.objects.get()
    assert head.sequence == 0
    # A fresh chain starts again at 1 and the triggers are back in place.
    first = write_events(1)[0]
    assert first.sequence == 1
    with pytest.raises(DatabaseError, match="append-only"):
        raw("DELETE FROM audit_auditevent")
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_a_missing_head_is_recreated_only_for_an_empty_log(owner_org):
    write_events(1, organisation=owner_org)
    AuditChainHead.objects.all().delete()
    with pytest.raises(AuditChainError, match="head is missing while events exist"):
        write_events(1, organisation=owner_org)
