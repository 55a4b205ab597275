"""The Activity page's text filter gives the same rows on SQLite and on PostgreSQL (run this
module with DATABASE_URL pointing at PostgreSQL too): a case-insensitive "contains" over the
action, resource, person, source IP, request id and error code, over a bounded number of the
newest calls the other filters leave (no index serves it, on either database)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.utils import timezone

from activity import selectors
from activity.selectors import ActivityFilters, activity_events, activity_text_search_bound
from tests.activity.conftest import FakeTrail, event
from tests.activity.test_ingestion import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(grant):
    events = [
        event(1, name="StopInstance", rw="Write", resourceName="i-web1"),
        event(2, name="DescribeInstances", resourceName="i-db2", sourceIpAddress="198.51.100.9"),
        event(3, name="ListRoles", error="Forbidden.RAM", resourceName=""),
        event(4, name="StartInstance", rw="Write", resourceName="i-Web3"),
        event(
            5,
            session="mallory",
            key="STS.never-issued",
            name="RebootInstance",
            resourceName="i-cache5",
        ),
    ]
    ingest(grant, FakeTrail(pages=[events]))
    return grant


def found(grant, text: str) -> list[str]:
    rows = activity_events(delegation=grant.delegation, filters=ActivityFilters(text=text))
    return list(rows.values_list("event_id", flat=True))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stopinstance", ["evt-1"]),
        ("INSTANCE", ["evt-1", "evt-2", "evt-4", "evt-5"]),
        ("i-web", ["evt-1", "evt-4"]),  # resource names, either case
        ("198.51.100", ["evt-2"]),  # source IP
        ("req-3", ["evt-3"]),  # request id
        ("forbidden.ram", ["evt-3"]),  # error code
        ("mallory", ["evt-5"]),  # an unknown session's label
        ("%", []),  # LIKE's wildcards are searched for, not obeyed
        ("_", []),
        ("no such text", []),
    ],
)
def test_the_text_filter_finds_the_same_rows_on_every_database(stored, text, expected):
    assert found(stored, text) == expected


def test_the_person_is_searched_by_email(stored):
    assert found(stored, stored.staff.email.upper()) == ["evt-1", "evt-2", "evt-3", "evt-4"]


def test_the_text_filter_reads_the_newest_calls_the_other_filters_leave(stored, monkeypatch):
    """No index serves the text filter: it reads a bounded number of the newest calls, after the
    other filters, so narrowing the time range (or the person, action...) searches further
    back."""
    monkeypatch.setattr(selectors, "TEXT_SEARCH_ROWS", 2)
    assert activity_text_search_bound() == 2
    # evt-1 and evt-2 are the newest two: older "instance" calls are not read...
    assert found(stored, "instance") == ["evt-1", "evt-2"]
    # ...until the range leaves out the newest ones, or another filter narrows the calls.
    older = ActivityFilters(
        text="instance", until=timezone.now() - dt.timedelta(minutes=3, seconds=30)
    )
    rows = activity_events(delegation=stored.delegation, filters=older)
    assert list(rows.values_list("event_id", flat=True)) == ["evt-4", "evt-5"]
    writes = ActivityFilters(text="instance", rw="Write")
    rows = activity_events(delegation=stored.delegation, filters=writes)
    assert list(rows.values_list("event_id", flat=True)) == ["evt-1", "evt-4"]


def test_no_trigram_index_is_kept_on_postgresql():
    """Migration 0003 dropped it: ingestion paid more for it than for every other index."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'activity_activityevent'"
        )
        names = {name for (name,) in cursor.fetchall()}
    assert "activity_search_trgm" not in names
    assert "activity_delegation_time" in names


def test_the_text_filter_walks_the_newest_calls_whatever_the_statistics_say(grant):
    """The searched text is almost unique per row, so ANALYZE's sample says next to nothing
    about how many rows hold a word: with a LIKE, a sample in which no row held it made the
    planner expect a handful of matches and read the whole table to sort them (one second at a
    million rows, in one benchmark run in three) instead of walking the newest calls until a
    page is found. Here one row in 4,000 holds the word and the statistics cover every row."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO activity_activityevent (cloud_account_id, event_id, event_time, "
            "delegation_id, person_label, via, identity_type, user_name, role_name, "
            "session_name, source_identity, access_key_id, partner_account_uid, service_name, "
            "event_name, event_rw, event_type, resource_name, resource_type, region, source_ip, "
            "request_id, outcome, error_code, alerts, problems, raw, search_text, ingested_at) "
            "SELECT %s, 'evt-' || n, now() - n * interval '1 second', %s, '', 'issued', '', '', "
            "'', '', '', '', '', 'Ecs', 'DescribeInstances', 'Read', '', '', '', '', '', '', "
            "'allowed', '', '[]', '[]', '{}', 'describeinstances ' || md5(n::text) || "
            "CASE WHEN n %% 4000 = 0 THEN ' forbidden.ram' ELSE '' END, now() "
            "FROM generate_series(1, 20000) AS n",
            [grant.cloud_account.pk, grant.delegation.pk],
        )
        cursor.execute("ANALYZE activity_activityevent")
    events = activity_events(
        delegation=grant.delegation, filters=ActivityFilters(text="Forbidden.RAM")
    )
    plan = events[:101].explain()
    # Walked in time order through the index, not every call of the range fetched and sorted.
    # (The bound's subquery, "u0", may read a table this small either way.)
    assert not re.search(r"(Seq Scan|Bitmap Heap Scan) on activity_activityevent(?! u0)", plan)
    assert "Index Scan using activity_delegation_time on activity_activityevent " in plan
    assert list(events.values_list("event_id", flat=True)) == [
        f"evt-{n}" for n in range(4000, 20001, 4000)
    ]
