"""Reading one window from both ends at once: every event is stored exactly once wherever the
two readers meet, a one-page window takes one request, a failure in either reader fails the run
(and the next run completes it), and a run that stops at its page limit moves the cursor only
as far as everything before it is in. Against a scripted trail, and against cloudsim through
the official SDK."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest
from django.utils import timezone

from activity import services as activity_services
from activity.models import ActivityCursor, ActivityDaily, ActivityEvent
from activity.services import activity_ingest_account
from cloud.actiontrail import ActionTrailClient, EventPage, Pacer
from cloud.errors import CloudError
from delegations.connection.services import cloud_account_credentials
from tests.activity.conftest import FakeTrail, event
from tests.fixtures.partner import OWNER_UID, PARTNER_UID, PartnerWorld

pytestmark = pytest.mark.django_db


def ingest(cloud_account, trail, **kwargs):
    return activity_ingest_account(
        cloud_account=cloud_account, client=trail, sleep=[].append, **kwargs
    )


def newest_first(rng: random.Random, count: int) -> list[dict]:
    """`count` events, newest first, packed into few seconds so that many share one."""
    now = timezone.now().replace(microsecond=0)
    moments = sorted(
        (now - dt.timedelta(seconds=rng.randrange(count // 3 + 1)) for _ in range(count)),
        reverse=True,
    )
    return [event(n, at=moment) for n, moment in enumerate(moments, 1)]


def paged(rng: random.Random, events: list[dict]) -> list[list[dict]]:
    pages, at = [], 0
    while at < len(events):
        size = rng.randint(1, 7)
        pages.append(events[at : at + size])
        at += size
    return pages


def stored_ids() -> list[str]:
    return sorted(ActivityEvent.objects.values_list("event_id", flat=True))


@pytest.mark.parametrize("store_batch", [1000, 3])
@pytest.mark.parametrize("seed", range(10))
def test_both_ends_store_every_event_once_wherever_they_meet(grant, seed, store_batch, monkeypatch):
    monkeypatch.setattr(activity_services, "STORE_BATCH", store_batch)
    rng = random.Random(seed)
    events = newest_first(rng, rng.randint(2, 150))
    trail = FakeTrail(pages=paged(rng, events))
    report = ingest(grant.cloud_account, trail)
    assert (report.status, report.message) == ("done", "")
    assert stored_ids() == sorted(e["eventId"] for e in events)
    assert report.stored == len(events)
    assert sum(ActivityDaily.objects.values_list("calls", flat=True)) == len(events)
    if len(trail.pages) > 1:
        assert trail.oldest_first_calls >= 1
    # Where they met, only the page each had in flight and the pages holding events of the
    # meeting second were read twice: each reader keeps that second's events (it cannot know
    # which of them the other has), so when the second spans several pages both read them.
    pages_per_second = Counter(
        moment for page in trail.pages for moment in {e["eventTime"] for e in page}
    )
    most_pages_of_one_second = max(pages_per_second.values())
    assert trail.calls + trail.oldest_first_calls <= (
        len(trail.pages) + 2 + most_pages_of_one_second
    )
    cursor = ActivityCursor.objects.get(cloud_account=grant.cloud_account)
    assert cursor.ingested_until is not None and cursor.events_stored == len(events)


def test_a_window_of_one_page_takes_one_request(grant):
    trail = FakeTrail(pages=[[event(1), event(2)]])
    assert ingest(grant.cloud_account, trail).stored == 2
    assert (trail.calls, trail.oldest_first_calls) == (1, 0)


@pytest.mark.parametrize("failing", ["newest first", "oldest first"])
def test_a_failure_in_either_reader_fails_the_run_and_the_next_run_completes_it(
    grant, failing, monkeypatch
):
    monkeypatch.setattr(activity_services, "PAGE_ATTEMPTS", 1)
    boom = CloudError(code="InternalError", message="boom", action="LookupEvents")
    pages = [[event(n)] for n in range(1, 41)]
    broken = FakeTrail(
        pages=pages,
        # The oldest-first reader starts after the first page; it waits for the second call
        # too, so the newest-first reader's failure comes before the other has read it all.
        oldest_first_after=2,
        failures={2: boom} if failing == "newest first" else {},
        oldest_first_failures={1: boom} if failing == "oldest first" else {},
    )
    report = ingest(grant.cloud_account, broken)
    assert (report.status, report.message) == ("failed", "boom")
    cursor = ActivityCursor.objects.get(cloud_account=grant.cloud_account)
    assert cursor.ingested_until is None  # nothing moves past a stretch not read
    assert cursor.last_error_code == "InternalError"
    # What was read before the failure is in; the next run reads the window again.
    assert len(stored_ids()) >= 1
    assert ingest(grant.cloud_account, FakeTrail(pages=pages)).status == "done"
    assert stored_ids() == sorted(f"evt-{n}" for n in range(1, 41))
    assert sum(ActivityDaily.objects.values_list("calls", flat=True)) == 40
    cursor.refresh_from_db()
    assert cursor.ingested_until is not None and cursor.last_error_code == ""


def test_a_run_stopped_by_its_page_limit_moves_the_cursor_only_past_what_is_in(grant, monkeypatch):
    monkeypatch.setattr(activity_services, "MAX_PAGES_PER_RUN", 2)
    events = [event(n) for n in range(1, 11)]  # n minutes ago
    report = ingest(grant.cloud_account, FakeTrail(pages=[[one] for one in events]))
    assert report.status == "done"
    assert "next run reads on from" in report.message
    # Two pages from each end: the newest two and the oldest two.
    assert stored_ids() == ["evt-1", "evt-10", "evt-2", "evt-9"]
    cursor = ActivityCursor.objects.get(cloud_account=grant.cloud_account)
    # Everything up to the oldest-first reader's point is in; the next run reads on from it.
    assert cursor.ingested_until == dt.datetime.fromisoformat(events[8]["eventTime"])


class DirectionLog(ActionTrailClient):
    """The real client, noting which way each request read."""

    directions: list[str]

    def lookup_events(self, **kwargs) -> EventPage:
        self.directions.append("oldest" if kwargs.get("oldest_first") else "newest")
        return super().lookup_events(**kwargs)


def test_cloudsim_read_from_both_ends_through_the_sdk_gives_each_event_once(
    partner_world: PartnerWorld, settings
):
    world = partner_world
    settings.ALIBABA_ACTIONTRAIL_ENDPOINT = world.sim.endpoint
    world.active_delegation()
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    # 437 calls in 100 seconds: four or five in every second, so the readers meet inside one.
    world.sim.request(
        "POST",
        "/_sim/actiontrail/events",
        {
            "account": OWNER_UID,
            "generate": {
                "count": 437,
                "start": (end - dt.timedelta(seconds=100)).strftime(iso),
                "end": end.strftime(iso),
                "region": "cn-hangzhou",
                "identities": [
                    {
                        "kind": "AssumedRoleUser",
                        "access_key_id": "STS.both-ends",
                        "role_name": world.role_name,
                        "role_id": "300000000000000043",
                        "session_name": "Alice",
                        "caller_arn": f"acs:ram::{PARTNER_UID}:user/Alice",
                    }
                ],
                "calls": [{"product": "ecs", "action": "DescribeInstances"}],
            },
        },
    )
    account = world.owner_account
    client = DirectionLog(
        cloud_account_credentials(cloud_account=account), pacer=Pacer(per_second=0)
    )
    client.directions = []
    report = activity_ingest_account(cloud_account=account, client=client)
    assert report.status == "done", report.message
    mine = ActivityEvent.objects.filter(role_name=world.role_name)
    assert mine.count() == 437
    assert mine.values("event_id").distinct().count() == 437
    assert {"newest", "oldest"} <= set(client.directions)
