"""The bulk writer on its own (run with DATABASE_URL pointing at PostgreSQL too, where rows go
by COPY, through a staging table when one is stored already): an event stored twice, even past
the service's known-id check, is one row; what it stores reads back as the ORM would write it;
and ingestion leaves the process's GIL switch interval as it found it."""

from __future__ import annotations

import datetime as dt
import sys

import pytest
from django.db import connection

from activity.attribution import Attributor
from activity.models import ActivityEvent
from activity.services import _attributed, _role_sessions
from activity.storage import insert_events
from tests.activity.conftest import FakeTrail, event
from tests.activity.test_ingestion import ingest

pytestmark = pytest.mark.django_db


def rows_for(grant, events):
    return _attributed(_role_sessions(events), Attributor(grant.cloud_account))


def test_an_event_inserted_twice_is_one_row(grant):
    account = grant.cloud_account
    insert_events(cloud_account=account, rows=rows_for(grant, [event(1), event(2)]))
    # The same ids again (a second writer that passed the known-id check at the same time),
    # with a new one: the conflict clause keeps the first rows and adds only the new one.
    again = rows_for(grant, [event(2, name="StopInstance"), event(1), event(3)])
    calls = []
    stored = insert_events(cloud_account=account, rows=again, meanwhile=lambda: calls.append(1))
    rows = {row.event_id: row for row in ActivityEvent.objects.all()}
    assert sorted(rows) == ["evt-1", "evt-2", "evt-3"]
    assert rows["evt-2"].event_name == "DescribeInstances"
    # What it says it stored is what it stored (the daily counts add only those), and the
    # caller's work in the meantime ran once, although the write was made twice on PostgreSQL.
    if connection.vendor == "postgresql":
        assert [row.event_id for row in stored] == ["evt-3"]
    assert calls == [1]


def test_the_work_in_the_meantime_runs_once_whatever_is_stored(grant):
    calls = []
    account = grant.cloud_account
    assert insert_events(cloud_account=account, rows=[], meanwhile=lambda: calls.append(1)) == []
    fresh = rows_for(grant, [event(1), event(2)])
    stored = insert_events(cloud_account=account, rows=fresh, meanwhile=lambda: calls.append(2))
    assert stored == fresh and calls == [1, 2]
    assert ActivityEvent.objects.count() == 2


def test_stored_values_read_back_as_their_fields(grant):
    denied = event(7, name="ListRoles", error="Forbidden.RAM", resourceName="role/x")
    insert_events(cloud_account=grant.cloud_account, rows=rows_for(grant, [denied]))
    row = ActivityEvent.objects.get()
    assert row.delegation == grant.delegation and row.person == grant.staff
    assert row.event_time.replace(microsecond=0) == row.event_time
    assert row.outcome == ActivityEvent.Outcome.DENIED
    assert row.alerts == ["denied"] and row.problems == []
    assert row.raw_event["eventId"] == "evt-7" and row.raw_event["errorCode"] == "Forbidden.RAM"
    assert "forbidden.ram" in row.search_text and grant.staff.email.lower() in row.search_text


def test_the_raw_event_is_stored_as_the_text_ingestion_made(grant):
    """Text, not jsonb: the database neither parses nor reorders it (jsonb sorts keys by
    length and drops duplicates), so the row holds exactly what ingestion dumped."""
    rows = rows_for(grant, [event(9, zKey=1, aKey={"b": 2, "a": 1})])
    insert_events(cloud_account=grant.cloud_account, rows=rows)
    stored = ActivityEvent.objects.get()
    assert stored.raw == rows[0].raw_json
    assert list(stored.raw_event)[-2:] == ["zKey", "aKey"]
    assert stored.raw_event["aKey"] == {"b": 2, "a": 1}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the jsonb column was PostgreSQL's")
def test_events_stored_as_jsonb_before_read_back_as_text_after_the_migration(grant):
    from django.db.migrations.executor import MigrationExecutor

    def migrate_to(name: str) -> None:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate([("activity", name)])

    # DDL is transactional on PostgreSQL: the test's transaction undoes both migrations.
    migrate_to("0004_event_checks_without_triggers")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO activity_activityevent (cloud_account_id, event_id, event_time, "
            "person_label, via, identity_type, user_name, role_name, session_name, "
            "source_identity, access_key_id, partner_account_uid, service_name, event_name, "
            "event_rw, event_type, resource_name, resource_type, region, source_ip, request_id, "
            "outcome, error_code, alerts, problems, raw, search_text, ingested_at) VALUES "
            "(%s, 'evt-old', now(), '', 'other', '', '', '', '', '', '', '', '', '', '', '', '', "
            "'', '', '', '', 'allowed', '', '[]', '[]', %s::jsonb, '', now())",
            [grant.cloud_account.pk, '{"eventId": "evt-old", "requestParameters": {"n": 1}}'],
        )
    migrate_to("0005_raw_event_as_text")
    stored = ActivityEvent.objects.get(event_id="evt-old")
    assert stored.raw_event == {"eventId": "evt-old", "requestParameters": {"n": 1}}


def test_times_and_keys_read_back_exactly(grant):
    """On PostgreSQL the rows go by COPY as text: a time with a fraction of a second and in
    another offset, and the account, delegation and person keys, read back as they were."""
    moments = ["2026-03-04T05:06:07.123456Z", "2026-03-04T13:06:08+08:00"]
    events = [event(n, eventTime=moment) for n, moment in enumerate(moments, start=1)]
    insert_events(cloud_account=grant.cloud_account, rows=rows_for(grant, events))
    rows = {row.event_id: row for row in ActivityEvent.objects.all()}
    assert rows["evt-1"].event_time == dt.datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=dt.UTC)
    assert rows["evt-2"].event_time == dt.datetime(2026, 3, 4, 5, 6, 8, tzinfo=dt.UTC)
    for row in rows.values():
        assert row.cloud_account_id == grant.cloud_account.pk
        assert row.delegation_id == grant.delegation.pk and row.person_id == grant.staff.pk


def test_ingestion_restores_the_switch_interval(grant):
    before = sys.getswitchinterval()
    assert ingest(grant, FakeTrail(pages=[[event(1)], [event(2)]])).stored == 2
    assert sys.getswitchinterval() == before


def test_the_event_table_has_no_per_row_trigger_nor_an_unread_index():
    """Ingestion's cost per row on PostgreSQL: a foreign key constraint is a trigger per
    inserted row (the account's locked the account's row once per event) and an index is
    one more write per row, so the table keeps neither where nothing needs them."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, ActivityEvent._meta.db_table)
    assert [name for name, c in constraints.items() if c["foreign_key"]] == []
    assert [name for name, c in constraints.items() if c["columns"] == ["person_id"]] == []
