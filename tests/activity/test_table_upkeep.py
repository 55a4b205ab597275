"""After a large ingestion the activity tables are vacuumed and analyzed (PostgreSQL): the new
pages are all-visible, so the text filter's bound is read from the index alone, and autovacuum
has no large insert left to catch up with later, while people read the pages."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from activity import services
from activity.models import ActivityEvent
from activity.storage import vacuum_and_analyze
from tests.activity.conftest import FakeTrail, event
from tests.activity.test_ingestion import ingest

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="VACUUM is PostgreSQL's"),
]


def _pages() -> tuple[int, int]:
    """The event table's (pages, all-visible pages), as its last VACUUM or ANALYZE left them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relpages, relallvisible FROM pg_class WHERE oid = %s::regclass",
            [ActivityEvent._meta.db_table],
        )
        return cursor.fetchone()


def test_a_large_ingestion_leaves_the_event_table_vacuumed(grant, monkeypatch) -> None:
    monkeypatch.setattr(services, "VACUUM_AFTER_ROWS", 50)
    trail = FakeTrail(
        pages=[[event(n) for n in range(page * 50, page * 50 + 50)] for page in range(4)]
    )
    assert ingest(grant, trail).stored == 200
    pages, visible = _pages()
    assert pages > 0 and visible == pages


def test_a_small_ingestion_leaves_the_upkeep_to_autovacuum(grant) -> None:
    with CaptureQueriesContext(connection) as statements:
        assert ingest(grant, FakeTrail(pages=[[event(1), event(2)]])).stored == 2
    assert not [s for s in statements.captured_queries if "VACUUM" in s["sql"].upper()]


def test_inside_a_transaction_only_the_statistics_are_refreshed(grant) -> None:
    with transaction.atomic(), CaptureQueriesContext(connection) as statements:
        vacuum_and_analyze()  # VACUUM cannot run in a transaction: it would raise here
    commands = [s["sql"].split(" ", 1)[0] for s in statements.captured_queries]
    assert commands == ["ANALYZE", "ANALYZE"]
