"""The Activity page's text filter gives the same rows on SQLite and on PostgreSQL (run this
module with DATABASE_URL pointing at PostgreSQL too): a case-insensitive "contains" over the
action, resource, person, source IP, request id and error code. PostgreSQL answers it from a
trigram index (migration 0002); SQLite reads a bounded number of the newest calls."""

from __future__ import annotations

import pytest
from django.db import connection

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


def test_postgresql_searches_through_a_trigram_index_and_sqlite_is_bounded():
    if connection.vendor == "postgresql":
        assert activity_text_search_bound() is None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'activity_search_trgm'"
            )
            (definition,) = cursor.fetchone()
        assert "gin_trgm_ops" in definition and "search_text" in definition
    else:
        assert activity_text_search_bound() == 50_000
