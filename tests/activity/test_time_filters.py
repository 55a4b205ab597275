"""The Activity page's dates and the access report's window are half-open, like the History
page's: "until 2026-03-01" is parsed as the 2nd at midnight, exclusive, so it holds the whole of
the 1st and nothing of the 2nd, in the call list, the chart and the report's "used"."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from activity.models import ActivityDaily
from activity.selectors import ActivityFilters, activity_chart, activity_events, activity_usage
from auditor.forms import parse_utc
from tests.activity.conftest import FakeTrail, event
from tests.activity.test_ingestion import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_days_ago() -> dt.date:
    return timezone.now().date() - dt.timedelta(days=3)


def midnight_after(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def test_a_chart_until_a_date_does_not_count_the_next_day(grant, three_days_ago):
    """Review finding: the chart counted the whole day after "until"."""
    ActivityDaily.objects.all().delete()
    next_day = three_days_ago + dt.timedelta(days=1)
    for day, calls in ((three_days_ago, 1), (next_day, 7)):
        ActivityDaily.objects.create(
            delegation=grant.delegation,
            day=day,
            person_label=grant.staff.email,
            service_name="Ecs",
            event_name="DescribeInstances",
            event_rw="Read",
            outcome="allowed",
            calls=calls,
        )
    until = parse_utc(three_days_ago.isoformat(), end_of_day=True)  # as the Activity form does
    chart = activity_chart(delegation=grant.delegation, filters=ActivityFilters(until=until))
    assert [row["day"] for row in chart.rows()] == [three_days_ago]
    # A time within the next day still shows that (partly chosen) day.
    later = activity_chart(
        delegation=grant.delegation,
        filters=ActivityFilters(until=until + dt.timedelta(hours=1)),
    )
    assert [row["day"] for row in later.rows()] == [next_day, three_days_ago]


def test_the_call_list_until_a_date_leaves_out_a_call_at_the_next_midnight(grant, three_days_ago):
    """Review finding: a call at exactly the next midnight was listed."""
    midnight = midnight_after(three_days_ago)
    ingest(
        grant,
        FakeTrail(pages=[[event(1, at=midnight), event(2, at=midnight - dt.timedelta(seconds=1))]]),
    )
    until = parse_utc(three_days_ago.isoformat(), end_of_day=True)
    assert until == midnight
    listed = activity_events(delegation=grant.delegation, filters=ActivityFilters(until=until))
    assert [row.event_id for row in listed] == ["evt-2"]


def test_the_reports_usage_leaves_out_a_call_at_the_end_of_its_window(grant, three_days_ago):
    midnight = midnight_after(three_days_ago)
    ingest(grant, FakeTrail(pages=[[event(1, at=midnight), event(2, at=midnight)]]))
    used = activity_usage(
        delegation_ids=[grant.delegation.pk],
        start=midnight - dt.timedelta(days=1),
        end=midnight,
    )
    assert used == {}
    used = activity_usage(
        delegation_ids=[grant.delegation.pk],
        start=midnight,
        end=midnight + dt.timedelta(days=1),
    )
    assert used[(str(grant.delegation.pk), f"id:{grant.staff.pk}")].calls == 2
