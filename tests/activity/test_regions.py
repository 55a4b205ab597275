"""ActionTrail is regional: ingestion reads every region the owner's account uses (its own and
PORTAL_ACTIVITY_REGIONS), with a cursor per (account, region), against cloudsim's regional
trails (calls seeded through its operator API)."""

from __future__ import annotations

import datetime as dt

import pytest

from activity.models import ActivityCursor, ActivityEvent
from activity.services import activity_ingest_account, activity_regions
from cloud.actiontrail import ActionTrailClient, Pacer
from delegations.connection.services import cloud_account_credentials
from tests.fixtures.partner import OWNER_UID, PARTNER_UID, PartnerWorld

pytestmark = pytest.mark.django_db

ISO = "%Y-%m-%dT%H:%M:%SZ"


@pytest.fixture
def world(partner_world: PartnerWorld, settings) -> PartnerWorld:
    settings.ALIBABA_ACTIONTRAIL_ENDPOINT = partner_world.sim.endpoint
    settings.ALIBABA_ACTIONTRAIL_QPS = 0
    settings.PORTAL_ACTIVITY_REGIONS = ["cn-shanghai"]
    return partner_world


def seed(world: PartnerWorld, *, region: str, action: str, minutes_ago: int) -> None:
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    world.sim.request(
        "POST",
        "/_sim/actiontrail/events",
        {
            "account": OWNER_UID,
            "calls": [
                {
                    "time": moment.strftime(ISO),
                    "product": "ecs",
                    "action": action,
                    "region": region,
                    "mutating": action != "DescribeInstances",
                    "identity": {
                        "kind": "AssumedRoleUser",
                        "role_name": world.role_name,
                        "role_id": "300000000000000042",
                        "session_name": "Alice",
                        "access_key_id": "STS.regional-test",
                        "caller_arn": f"acs:ram::{PARTNER_UID}:user/Alice",
                    },
                }
            ],
        },
    )


def mine(world: PartnerWorld) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for region, name in ActivityEvent.objects.filter(role_name=world.role_name).values_list(
        "region", "event_name"
    ):
        found.setdefault(region, []).append(name)
    return {region: sorted(names) for region, names in found.items()}


def test_every_region_is_read_with_its_own_cursor(world):
    world.active_delegation()
    account = world.owner_account
    assert activity_regions(cloud_account=account) == ["cn-hangzhou", "cn-shanghai"]
    seed(world, region="cn-hangzhou", action="DescribeInstances", minutes_ago=30)
    seed(world, region="cn-shanghai", action="StopInstance", minutes_ago=20)

    report = activity_ingest_account(cloud_account=account)
    assert report.status == "done", report.message
    assert mine(world) == {"cn-hangzhou": ["DescribeInstances"], "cn-shanghai": ["StopInstance"]}
    cursors = ActivityCursor.objects.filter(cloud_account=account)
    assert sorted(cursors.values_list("region", flat=True)) == ["cn-hangzhou", "cn-shanghai"]
    assert all(cursor.ingested_until is not None for cursor in cursors)

    # A later call in one region is read from that region's cursor; nothing is stored twice.
    seed(world, region="cn-shanghai", action="StartInstance", minutes_ago=1)
    assert activity_ingest_account(cloud_account=account).stored == 1
    assert mine(world)["cn-shanghai"] == ["StartInstance", "StopInstance"]


def test_a_region_trail_holds_only_that_regions_calls(world):
    world.active_delegation()
    seed(world, region="cn-shanghai", action="RebootInstance", minutes_ago=5)
    credentials = cloud_account_credentials(cloud_account=world.owner_account)
    end = dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(hours=1)
    names = {}
    for region in ("cn-hangzhou", "cn-shanghai"):
        client = ActionTrailClient(credentials, region_id=region, pacer=Pacer(per_second=0))
        page = client.lookup_events(start=start, end=end, attributes={"RoleName": world.role_name})
        names[region] = [event["eventName"] for event in page.events]
        assert {event["acsRegion"] for event in page.events} <= {region}
    assert "RebootInstance" in names["cn-shanghai"]
    assert "RebootInstance" not in names["cn-hangzhou"]
