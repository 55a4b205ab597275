"""The Activity page's text filter gives the same rows on SQLite and on PostgreSQL (run this
module with DATABASE_URL pointing at PostgreSQL too): a case-insensitive "contains" over the
action, resource, person, source IP, request id and error code, over a bounded number of the
newest calls the other filters leave (no index serves it, on either database)."""

from __future__ import annotations

import datetime as dt

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
