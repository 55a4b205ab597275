"""Reads of ingested activity, always for one delegation the reader's organisation owns.

Pages read one delegation's rows newest first through the (delegation, time) index with a
keyset cursor, so a page costs the same at 1k and 1M events; the chart and the right-sizing
aggregate over a bounded time window.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import (
    Count,
    DateTimeField,
    Max,
    Min,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, StrIndex
from django.http import Http404
from django.utils import timezone

from accounts.models import Organisation
from activity.models import ActivityCursor, ActivityDaily, ActivityEvent
from core.web import whole_number
from delegations.lifecycle.selectors import delegation_get_for_organisation
from delegations.models import Delegation

CHART_DAYS = 30
# The text filter reads at most this many of the newest calls the other filters leave.
TEXT_SEARCH_ROWS = 50_000
RIGHT_SIZING_DAYS = 30
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ActivityFilters:
    """What the Activity page filters on. `since` is inclusive and `until` exclusive, as on the
    History page: "until 2026-03-01" arrives as the 2nd at midnight (`auditor.forms.parse_utc`)."""

    person: str = ""
    action: str = ""
    rw: str = ""
    outcome: str = ""
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""
    alerts_only: bool = False


def activity_delegation_get(*, organisation: Organisation, delegation_id: Any) -> Delegation:
    """The delegation, when `organisation` owns it: activity happens in the owner's account,
    and the partner sees its own people's work elsewhere. Anything else is a 404."""
    delegation = delegation_get_for_organisation(
        organisation=organisation, delegation_id=delegation_id
    )
    if delegation.owner_id != organisation.pk:
        raise Http404("No such delegation.")
    return delegation


def _exact_filters(filters: ActivityFilters) -> Q:
    """The filters events and daily counts share (the same column names in both)."""
    wanted = {
        "person_label": filters.person,
        "event_name": filters.action,
        "event_rw": filters.rw,
        "outcome": filters.outcome,
    }
    return Q(**{column: value for column, value in wanted.items() if value})


def activity_events(*, delegation: Delegation, filters: ActivityFilters) -> QuerySet[ActivityEvent]:
    events = ActivityEvent.objects.filter(_exact_filters(filters), delegation=delegation)
    if filters.since is not None:
        events = events.filter(event_time__gte=filters.since)
    if filters.until is not None:
        events = events.filter(event_time__lt=filters.until)
    if filters.alerts_only:
        events = events.exclude(alerts=[])
    if filters.text:
        # `search_text` holds the searched columns lower-cased. It has no index (see the
        # model): the filter reads the newest calls the other filters leave, back to the
        # TEXT_SEARCH_ROWS-th of them, walking the same index as the unfiltered page and
        # stopping once a page is found, so its cost is bounded at any size. A narrower time
        # range searches further back.
        boundary = events.order_by("-event_time").values("event_time")[
            TEXT_SEARCH_ROWS - 1 : TEXT_SEARCH_ROWS
        ]
        # strpos, not LIKE: the column is nearly unique per row, so the planner's estimate of
        # a LIKE came from ANALYZE's sample, and a sample holding no match made it expect a
        # handful of rows and fetch and sort every call of the range (a second at a million)
        # instead of walking the index until a page is found. strpos has no statistics: the
        # planner assumes a third of the rows match and always walks.
        events = events.alias(_text_at=StrIndex("search_text", Value(filters.text.lower()))).filter(
            _text_at__gt=0,
            event_time__gte=Coalesce(
                Subquery(boundary, output_field=DateTimeField()), Value(_EARLIEST)
            ),
        )
    return events.order_by("-event_time", "-id")


def activity_text_search_bound() -> int:
    """How many of the newest calls (matching the other filters) the text filter reads."""
    return TEXT_SEARCH_ROWS


@dataclass(frozen=True)
class ActivityPage:
    rows: list[ActivityEvent]
    next_cursor: str | None


def parse_cursor(text: str) -> tuple[datetime, int] | None:
    """`<iso time>|<id>` from a "older" link, or None when it is not one."""
    moment_text, _, id_text = text.partition("|")
    event_id = whole_number(id_text)
    if event_id is None:
        return None
    try:
        moment = datetime.fromisoformat(moment_text)
    except ValueError:
        return None
    return (moment, event_id) if moment.tzinfo is not None else None


def activity_page(
    *, events: QuerySet[ActivityEvent], after: tuple[datetime, int] | None, limit: int
) -> ActivityPage:
    if after is not None:
        moment, row_id = after
        events = events.filter(Q(event_time__lt=moment) | Q(event_time=moment, id__lt=row_id))
    # The page shows the event's columns, never its whole raw text (a kilobyte a row).
    rows = list(events.select_related("person").defer("raw")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = f"{rows[-1].event_time.isoformat()}|{rows[-1].pk}" if more and rows else None
    return ActivityPage(rows=rows, next_cursor=cursor)


def activity_choices(*, delegation: Delegation) -> dict[str, list[str]]:
    """The people and actions seen under the delegation, for the filter lists."""
    daily = ActivityDaily.objects.filter(delegation=delegation).order_by()
    return {
        "people": sorted(
            set(daily.exclude(person_label="").values_list("person_label", flat=True).distinct())
        ),
        "actions": sorted(set(daily.values_list("event_name", flat=True).distinct())),
    }


@dataclass
class DayChart:
    days: list[date]
    people: list[str]
    counts: dict[str, dict[date, int]]
    peak: int

    def rows(self) -> list[dict[str, Any]]:
        """Per day, each person's count and its bar width in percent of the busiest cell."""
        return [
            {
                "day": day,
                "cells": [
                    {
                        "person": person,
                        "count": self.counts[person].get(day, 0),
                        "width": round(100 * self.counts[person].get(day, 0) / self.peak)
                        if self.peak
                        else 0,
                    }
                    for person in self.people
                ],
            }
            for day in self.days
            if any(self.counts[person].get(day, 0) for person in self.people)
        ]


def activity_chart(
    *, delegation: Delegation, filters: ActivityFilters, days: int = CHART_DAYS
) -> DayChart:
    """Calls per day per person over the last `days` days, from the daily counts. Follows the
    person, action, read/write, outcome and date filters (not the text or alerts filters,
    which need every event)."""
    since = (timezone.now() - timedelta(days=days)).date()
    daily = ActivityDaily.objects.filter(
        _exact_filters(filters), delegation=delegation, day__gte=since
    )
    if filters.since is not None:
        daily = daily.filter(day__gte=filters.since.date())
    if filters.until is not None:
        # The days that start before the (exclusive) end: a midnight end leaves its day out.
        last_day = (filters.until.astimezone(UTC) - timedelta(microseconds=1)).date()
        daily = daily.filter(day__lte=last_day)
    grouped = daily.order_by().values("day", "person_label").annotate(calls=Sum("calls"))
    counts: dict[str, dict[date, int]] = defaultdict(dict)
    for item in grouped:
        counts[item["person_label"] or "?"][item["day"]] = item["calls"]
    all_days = sorted({day for per_day in counts.values() for day in per_day}, reverse=True)
    peak = max((n for per_day in counts.values() for n in per_day.values()), default=0)
    return DayChart(days=all_days, people=sorted(counts), counts=dict(counts), peak=peak)


@dataclass(frozen=True)
class Usage:
    calls: int
    first: datetime | None
    last: datetime | None


def activity_usage(
    *, delegation_ids: list[Any], start: datetime, end: datetime
) -> dict[tuple[str, str], Usage]:
    """Calls in [`start`, `end`) with the first and last call, per delegation id and
    person: the access report's "used" next to "could act". Each person is keyed both as
    "id:<user id>" and "label:<email>" (the report knows people by either); calls nobody
    explains are under "".
    """
    grouped = (
        ActivityEvent.objects.filter(
            delegation_id__in=delegation_ids, event_time__gte=start, event_time__lt=end
        )
        .order_by()
        .values("delegation_id", "person_id", "person__email")
        .annotate(calls=Count("id"), first=Min("event_time"), last=Max("event_time"))
    )
    found: dict[tuple[str, str], Usage] = {}
    for item in grouped:
        used = Usage(item["calls"], item["first"], item["last"])
        delegation_id = str(item["delegation_id"])
        if item["person_id"] is None:
            found[(delegation_id, "")] = used
            continue
        found[(delegation_id, f"id:{item['person_id']}")] = used
        found[(delegation_id, f"label:{item['person__email']}")] = used
    return found


@dataclass
class RightSizing:
    days: int
    used_actions: list[str]
    granted_policies: list[str]
    draft_policy: str
    calls: int = 0
    groups: dict[str, list[str]] = field(default_factory=dict)


def activity_right_sizing(*, delegation: Delegation, days: int = RIGHT_SIZING_DAYS) -> RightSizing:
    """The actions the role's sessions used (allowed calls) in the last `days` days, next to the
    policies the role grants, and a Custom policy allowing exactly those actions.

    The draft is never wider than today's grant: it lists only actions that succeeded, which
    the granted policies therefore allowed.
    """
    since = (timezone.now() - timedelta(days=days)).date()
    used = (
        ActivityDaily.objects.filter(
            delegation=delegation,
            day__gte=since,
            outcome=ActivityEvent.Outcome.ALLOWED,
        )
        .order_by()
        .values("service_name", "event_name")
        .annotate(calls=Sum("calls"))
    )
    groups: dict[str, set[str]] = defaultdict(set)
    calls = 0
    for item in used:
        service = (item["service_name"] or "").lower()
        if service and item["event_name"]:
            groups[service].add(f"{service}:{item['event_name']}")
            calls += item["calls"]
    actions = sorted(action for found in groups.values() for action in found)
    statements = [
        {"Effect": "Allow", "Action": sorted(found), "Resource": "*"}
        for _, found in sorted(groups.items())
    ]
    draft = json.dumps({"Version": "1", "Statement": statements}, indent=2) if statements else ""
    granted = [
        f"{p.get('name')} ({p.get('type')})"
        for p in (delegation.catalog_role.policies or [])
        if isinstance(p, dict)
    ]
    return RightSizing(
        days=days,
        used_actions=actions,
        granted_policies=granted,
        draft_policy=draft,
        calls=calls,
        groups={service: sorted(found) for service, found in sorted(groups.items())},
    )


def activity_cursor_for(*, delegation: Delegation) -> ActivityCursor | None:
    """The ingestion state of the delegation's account (why activity may be missing): of its
    regions' cursors, one with a problem first, else the one read least far."""
    cursors = list(
        ActivityCursor.objects.filter(cloud_account_id=delegation.managed_role.cloud_account_id)
    )
    if not cursors:
        return None
    troubled = [cursor for cursor in cursors if cursor.last_error_message]
    if troubled:
        return troubled[0]
    if any(cursor.last_success_at is None for cursor in cursors):
        return next(cursor for cursor in cursors if cursor.last_success_at is None)
    return min(cursors, key=lambda cursor: cursor.last_success_at or timezone.now())
