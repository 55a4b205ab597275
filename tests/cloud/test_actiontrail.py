"""cloud.actiontrail: LookupEvents through the official SDK against cloudsim, paging with
NextToken, pacing to ActionTrail's rate limit, and errors as CloudError.

Each test works in a fresh account (its events are its own); pacing is checked with a fake
clock, never by waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.actiontrail import ActionTrailClient, Pacer
from cloud.client import CloudClient, CloudCredentials
from cloud.errors import CloudError, ErrorCategory


@pytest.fixture
def account(cloudsim, settings):
    settings.ALIBABA_RAM_ENDPOINT = cloudsim.endpoint
    settings.ALIBABA_STS_ENDPOINT = cloudsim.endpoint
    settings.ALIBABA_ACTIONTRAIL_ENDPOINT = cloudsim.endpoint
    settings.ALIBABA_CLOUD_PROTOCOL = "http"
    created = cloudsim.create_account()
    return CloudCredentials(created["root"]["access_key_id"], created["root"]["access_key_secret"])


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


def test_paging_reads_every_event_once(account):
    ram = CloudClient(account)
    for _ in range(5):
        ram.get_role("nobody")
    client = ActionTrailClient(account, pacer=Pacer(per_second=0))
    start, end = window()
    seen, token, pages = [], None, 0
    while True:
        page = client.lookup_events(
            start=start,
            end=end,
            next_token=token,
            page_size=2,
            attributes={"EventName": "GetRole"},
        )
        pages += 1
        seen += [event["eventId"] for event in page.events]
        assert page.request_id
        token = page.next_token
        if token is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5


def test_requests_are_paced_to_the_rate_limit(account):
    clock = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        clock[0] += seconds

    pacer = Pacer(per_second=2, clock=lambda: clock[0], sleep=sleep)
    client = ActionTrailClient(account, pacer=pacer)
    start, end = window()
    for _ in range(3):
        client.lookup_events(start=start, end=end)
    assert waits == [0.5, 0.5]
    clock[0] += 10  # after a pause nobody waits
    client.lookup_events(start=start, end=end)
    assert waits == [0.5, 0.5]


def test_refusals_are_cloud_errors_and_bad_input_never_leaves(cloudsim, account):
    created = cloudsim.create_account()
    user = cloudsim.create_user(created["uid"], "no-trail")
    client = ActionTrailClient(
        CloudCredentials(user["access_key_id"], user["access_key_secret"]),
        pacer=Pacer(per_second=0),
    )
    start, end = window()
    with pytest.raises(CloudError) as refused:
        client.lookup_events(start=start, end=end)
    assert refused.value.code == "NoPermission"
    assert refused.value.category is ErrorCategory.CONFIGURATION
    ok = ActionTrailClient(account, pacer=Pacer(per_second=0))
    for bad in (
        {"page_size": 51},
        {"page_size": 0},
        {"attributes": {"Nope": "x"}},
        {"attributes": {"EventName": "a", "User": "b", "EventRW": "Read"}},
    ):
        with pytest.raises(ValueError):
            ok.lookup_events(start=start, end=end, **bad)
    with pytest.raises(ValueError):
        ok.lookup_events(start=start.replace(tzinfo=None), end=end)


def test_throttling_is_transient(cloudsim_faults, account):
    cloudsim_faults.set_faults("LookupEvents:throttle:1.0")
    client = ActionTrailClient(account, pacer=Pacer(per_second=0))
    start, end = window()
    with pytest.raises(CloudError) as throttled:
        client.lookup_events(start=start, end=end)
    assert throttled.value.category is ErrorCategory.THROTTLING
    assert throttled.value.permanent is False
