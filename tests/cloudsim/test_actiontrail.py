"""ActionTrail 2020-07-06 LookupEvents through the official SDK: shapes, filters, paging, delay.

Every test works in fresh accounts (``partner_pair``), so the events it reads are its own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from alibabacloud_actiontrail20200706 import models as trail_models
from alibabacloud_actiontrail20200706.client import Client as TrailClient
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_ram20150501 import models as ram_models

from tests.cloudsim.conftest import Keys, error_of, trust_policy, unique


def lookup(sdk, who, *, attributes=(), **fields):
    request = trail_models.LookupEventsRequest(
        lookup_attribute=[
            trail_models.LookupEventsRequestLookupAttribute(key=key, value=value)
            for key, value in attributes
        ],
        **fields,
    )
    return TrailClient(sdk.config(who)).lookup_events(request).body


@pytest.fixture
def partner_session(sdk, partner_pair):
    """Alice (partner B) assumed a read-only ECS role in owner A, listed instances, and was
    refused a RAM call; the owner then reads its trail."""
    pair = partner_pair
    role = unique("ops")
    created = sdk.create_role(pair.owner, role, trust_policy(pair.partner.root_arn)).body.role
    sdk.attach_to_role(pair.owner, role, "AliyunECSReadOnlyAccess")
    sdk.attach_to_user(pair.partner, "Alice", "AliyunSTSAssumeRoleAccess")
    session = sdk.assume(pair.alice, created.arn, session="alice-portal")
    EcsClient(sdk.config(session)).describe_instances(
        ecs_models.DescribeInstancesRequest(region_id="cn-hangzhou")
    )
    error_of(sdk.ram(session).list_roles, ram_models.ListRolesRequest())
    return pair, role, created, session


def test_partner_session_calls_are_events_in_the_owner_account(sdk, partner_session):
    pair, role, created, session = partner_session
    events = lookup(sdk, pair.owner, attributes=[("EventAccessKeyId", session.access_key_id)])
    names = [event["eventName"] for event in events.events]
    assert names == ["ListRoles", "DescribeInstances"]  # newest first
    denied, listed = events.events
    identity = listed["userIdentity"]
    assert identity["type"] == "assumed-role"
    assert identity["accountId"] == pair.owner.uid
    assert identity["principalId"] == f"{created.role_id}:alice-portal"
    assert identity["userName"] == f"{role}:alice-portal"
    assert identity["accessKeyId"].startswith("STS.")
    assert listed["requestParameters"]["stsTokenPlayerUid"] == pair.partner.uid
    assert listed["requestParameters"]["stsTokenPrincipalName"] == f"{role}/alice-portal"
    assert listed["eventRW"] == "Read"
    assert listed["serviceName"] == "Ecs"
    assert listed["acsRegion"] == "cn-hangzhou"
    assert "errorCode" not in listed
    assert denied["errorCode"] == "NoPermission"
    for field in ("eventId", "eventTime", "sourceIpAddress", "requestId", "resourceName"):
        assert listed[field]
    # The AssumeRole call itself is in the partner's account, not the owner's.
    partner_events = lookup(sdk, pair.partner, attributes=[("EventName", "AssumeRole")])
    assert [e["userIdentity"]["userName"] for e in partner_events.events] == ["Alice"]


def test_filters_are_exact_and_anded(sdk, partner_session):
    pair, role, _created, _session = partner_session
    user = f"{role}:alice-portal"
    assert len(lookup(sdk, pair.owner, attributes=[("User", user)]).events) == 2
    reads = lookup(sdk, pair.owner, attributes=[("User", user), ("EventRW", "Read")]).events
    assert [e["eventName"] for e in reads] == ["ListRoles", "DescribeInstances"]
    writes = lookup(sdk, pair.owner, attributes=[("User", user), ("EventRW", "Write")]).events
    assert writes == []
    by_role = lookup(sdk, pair.owner, attributes=[("RoleName", role)]).events
    assert len(by_role) == 2
    # The owner's own calls (CreateRole, AttachPolicyToRole) are writes by root.
    owner_writes = lookup(sdk, pair.owner, attributes=[("EventRW", "Write")]).events
    assert {e["eventName"] for e in owner_writes} == {"CreateRole", "AttachPolicyToRole"}
    assert {e["userIdentity"]["type"] for e in owner_writes} == {"root-account"}


def test_paging_with_next_token_returns_each_event_once(sdk, partner_pair):
    owner = partner_pair.owner
    for _ in range(7):
        sdk.ram(owner).list_roles(ram_models.ListRolesRequest())
    seen = []
    token = None
    pages = 0
    while True:
        body = lookup(
            sdk, owner, attributes=[("EventName", "ListRoles")], max_results="3", next_token=token
        )
        pages += 1
        seen += [event["eventId"] for event in body.events]
        token = body.next_token
        if not token:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    forward = lookup(
        sdk, owner, attributes=[("EventName", "ListRoles")], direction="FORWARD", max_results="50"
    )
    assert [e["eventId"] for e in forward.events] == list(reversed(seen))


def test_time_window_and_bad_input(sdk, partner_pair):
    owner = partner_pair.owner
    sdk.ram(owner).list_roles(ram_models.ListRolesRequest())
    past = datetime.now(UTC) - timedelta(days=3)
    old = lookup(
        sdk,
        owner,
        start_time=(past - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        end_time=past.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    assert old.events == []
    client = TrailClient(sdk.config(owner))
    for request, code in (
        (trail_models.LookupEventsRequest(max_results="51"), "InvalidParameter"),
        (trail_models.LookupEventsRequest(next_token="not-a-token"), "InvalidNextToken"),
        (trail_models.LookupEventsRequest(start_time="2026-01-01T00:00:00Z"), "InvalidParameter"),
        (
            trail_models.LookupEventsRequest(
                lookup_attribute=[
                    trail_models.LookupEventsRequestLookupAttribute(key="Nope", value="x")
                ]
            ),
            "InvalidParameter",
        ),
    ):
        assert error_of(client.lookup_events, request).code == code


def test_a_key_without_permission_is_refused(sdk, new_account, new_user):
    account = new_account()
    keys: Keys = new_user(account, "reader")
    error = error_of(
        TrailClient(sdk.config(keys)).lookup_events, trail_models.LookupEventsRequest()
    )
    assert error.code == "NoPermission"
    assert error.statusCode == 403


def test_delivery_delay_hides_recent_events_until_it_passes(sdk, cloudsim, partner_pair):
    owner = partner_pair.owner
    sdk.ram(owner).list_roles(ram_models.ListRolesRequest())
    try:
        cloudsim.request("PUT", "/_sim/actiontrail", {"delay_seconds": 600})
        assert lookup(sdk, owner, attributes=[("EventName", "ListRoles")]).events == []
    finally:
        cloudsim.request("PUT", "/_sim/actiontrail", {"delay_seconds": 0})
    assert len(lookup(sdk, owner, attributes=[("EventName", "ListRoles")]).events) == 1
    settings = json.loads(json.dumps(cloudsim.request("GET", "/_sim/actiontrail")))
    assert settings == {"delay_seconds": 0.0}


def _seeded_identity(session: str) -> dict:
    return {
        "kind": "AssumedRoleUser",
        "role_name": "ops-seeded",
        "role_id": "300000000000000077",
        "session_name": session,
        "access_key_id": f"STS.seeded-{session}",
        "caller_arn": f"acs:ram::12345678:user/{session}",
    }


def test_seeded_calls_are_served_in_time_order_among_live_ones(sdk, cloudsim, partner_pair):
    owner = partner_pair.owner
    sdk.ram(owner).list_roles(ram_models.ListRolesRequest())  # a live call, made now
    now = datetime.now(UTC).replace(microsecond=0)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    answer = cloudsim.request(
        "POST",
        "/_sim/actiontrail/events",
        {
            "account": owner.uid,
            "calls": [
                {
                    "time": (now - timedelta(hours=2)).strftime(iso),
                    "product": "ecs",
                    "action": "StopInstance",
                    "mutating": True,
                    "parameters": {"InstanceId": "i-seeded"},
                    "error_code": "Forbidden.RAM",
                    "identity": _seeded_identity("carol"),
                }
            ],
            "generate": {
                "count": 120,
                "start": (now - timedelta(days=3)).strftime(iso),
                "end": (now - timedelta(days=1)).strftime(iso),
                "identities": [_seeded_identity("alice"), _seeded_identity("bob")],
                "calls": [
                    {"product": "ecs", "action": "DescribeInstances"},
                    {"product": "ecs", "action": "StartInstance", "mutating": True},
                ],
                "error_every": 50,
            },
        },
    )
    assert answer["seeded"] == 121
    window = {"start_time": (now - timedelta(days=4)).strftime(iso), "end_time": now.strftime(iso)}
    seen, token = [], None
    while True:
        body = lookup(sdk, owner, max_results="50", next_token=token, **window)
        seen += body.events
        token = body.next_token
        if not token:
            break
    # Newest first: the live call, the back-dated single call, then the generated ones.
    assert [e["eventName"] for e in seen[:2]] == ["ListRoles", "StopInstance"]
    assert len(seen) == 122 == len({e["eventId"] for e in seen})
    times = [e["eventTime"] for e in seen]
    assert times == sorted(times, reverse=True)
    stop = seen[1]
    assert stop["errorCode"] == "Forbidden.RAM"
    assert stop["userIdentity"]["userName"] == "ops-seeded:carol"
    assert stop["userIdentity"]["accessKeyId"] == "STS.seeded-carol"
    assert stop["requestParameters"]["stsTokenPlayerUid"] == "12345678"
    assert stop["resourceName"] == "i-seeded"
    generated = seen[2:]
    assert {e["userIdentity"]["userName"] for e in generated} == {
        "ops-seeded:alice",
        "ops-seeded:bob",
    }
    assert sum(1 for e in generated if e.get("errorCode")) == 3  # calls 0, 50 and 100
    assert {e["eventRW"] for e in generated if e["eventName"] == "StartInstance"} == {"Write"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"account": "not-a-uid"}, 400),
        ({"account": "99999999999"}, 404),
        ({"calls": [{"product": "ecs", "action": "StopInstance"}]}, 400),  # no time, identity
        ({"generate": {"count": 0}}, 400),
        (
            {
                "generate": {
                    "count": 10,
                    "start": "2026-01-02T00:00:00Z",
                    "end": "2026-01-01T00:00:00Z",
                }
            },
            400,
        ),
    ],
)
def test_seeding_refuses_bad_input(cloudsim, partner_pair, body, status):
    body = {"account": partner_pair.owner.uid, **body}
    with pytest.raises(Exception, match=f": {status} "):
        cloudsim.request("POST", "/_sim/actiontrail/events", body)


def test_seeding_needs_the_operator_token(cloudsim, partner_pair):
    with pytest.raises(Exception, match=": 403 "):
        cloudsim.request(
            "POST",
            "/_sim/actiontrail/events",
            {"account": partner_pair.owner.uid},
            operator=False,
        )
