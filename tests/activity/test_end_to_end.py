"""End to end through cloudsim and the official SDKs: Alice switches role in the console and
stops an instance; Bob gets STS credentials from the portal and lists instances; ingestion
names both correctly, the access report shows "used", and right-sizing lists exactly what they
used.

It runs its own emulator (instant power transitions): it stops a demo instance, and no other
test may see that.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from alibabacloud_ecs20140526 import models as ecs_models
from django.utils import timezone

from activity.models import ActivityEvent
from activity.selectors import activity_right_sizing
from activity.services import activity_ingest_account
from audit.models import AuditEvent
from auditor.reports import access_report
from delegations.models import CatalogRole
from delegations.partner.credentials import credentials_issue
from tests.cloudsim.test_console import Browser, csrf_of
from tests.fixtures.cloudsim import CloudSim
from tests.fixtures.partner import BROKER, OWNER_UID, build_partner_world, ecs_client


@pytest.fixture(scope="module")
def own_sim(tmp_path_factory) -> Iterator[CloudSim]:
    sim = CloudSim(
        data_dir=Path(tmp_path_factory.mktemp("cloudsim-activity")),
        env={"CLOUDSIM_ECS_TRANSITION_SECONDS": "0"},
    ).start()
    sim.broker_key = sim.user_key("company-b", BROKER)  # type: ignore[attr-defined]
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def world(own_sim, db, settings, monkeypatch):
    world = build_partner_world(own_sim, settings, monkeypatch)
    settings.ALIBABA_ACTIONTRAIL_ENDPOINT = own_sim.endpoint
    settings.ALIBABA_ACTIONTRAIL_QPS = 0  # pacing is tested on its own
    return world


def console_switch_and_stop(sim: CloudSim, *, role_name: str, instance_id: str) -> None:
    http = requests.Session()
    http.trust_env = False
    browser = Browser(sim.url, http)
    password = next(
        u["password"] for u in sim.account("company-b")["users"] if u["name"] == "Alice"
    )
    assert browser.sign_in("Alice@company-b.onaliyun.com", password).status_code == 303
    token = browser.csrf("/switchRole.htm")
    switched = browser.post(
        "/switchRole.htm", {"csrf": token, "parentAlias": "company-a", "roleName": role_name}
    )
    assert switched.status_code == 303, switched.text
    token = csrf_of(browser.get("/console").text)
    stopped = browser.post(
        "/console/ecs/power",
        {"csrf": token, "operation": "StopInstance", "instance_id": instance_id},
    )
    assert stopped.status_code == 303


def test_activity_names_the_right_people_and_feeds_the_report_and_right_sizing(world):
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    world.link(world.bob, "Bob")
    world.assign(delegation, world.alice)
    bob_assignment = world.assign(delegation, world.bob)
    world.drain()

    owner_ecs = ecs_client(world.sim, *world.sim.root_key("company-a"))
    instances = owner_ecs.describe_instances(
        ecs_models.DescribeInstancesRequest(region_id="cn-hangzhou")
    ).body.instances.instance
    web1 = next(i.instance_id for i in instances if i.instance_name == "web-1")

    console_switch_and_stop(world.sim, role_name=world.role_name, instance_id=web1)
    issued = credentials_issue(assignment=bob_assignment, user=world.bob, duration_seconds=900)
    bob_ecs = ecs_client(
        world.sim,
        issued.credentials.access_key_id,
        issued.credentials.access_key_secret,
        issued.credentials.security_token,
    )
    bob_ecs.describe_instances(ecs_models.DescribeInstancesRequest(region_id="cn-hangzhou"))
    owner_ecs.start_instance(
        ecs_models.StartInstanceRequest(instance_id=web1)
    )  # owner: not activity

    report = activity_ingest_account(cloud_account=world.owner_account)
    assert report.status == "done", report.message

    # Both calls may fall in the same second: read them in a fixed order.
    rows = list(ActivityEvent.objects.filter(delegation=delegation).order_by("-event_name"))
    seen = [(r.person, r.via, r.action, r.event_rw, r.outcome) for r in rows]
    assert seen == [
        (world.alice, "console", "ecs:StopInstance", "Write", "allowed"),
        (world.bob, "issued", "ecs:DescribeInstances", "Read", "allowed"),
    ]
    alice_row, bob_row = rows
    assert alice_row.session_name == "Alice"
    assert alice_row.event_type == "ConsoleOperation"
    assert alice_row.resource_name.endswith(f"instance/{web1}")
    assert bob_row.access_key_id == issued.credentials.access_key_id
    assert bob_row.partner_account_uid == "12345678"
    assert all(r.alerts == [] for r in rows)
    # Only partner sessions are activity: the owner's own calls (the worker's RAM calls, the
    # StartInstance above) are not.
    assert ActivityEvent.objects.count() == 2

    # Ingesting again adds nothing.
    assert activity_ingest_account(cloud_account=world.owner_account).stored == 0

    sizing = activity_right_sizing(delegation=delegation)
    assert sizing.used_actions == ["ecs:DescribeInstances", "ecs:StopInstance"]
    assert "AliyunECSFullAccess (System)" in sizing.granted_policies
    assert re.search(r'"ecs:DescribeInstances",\s*"ecs:StopInstance"', sizing.draft_policy)

    now = timezone.now()
    access = access_report(
        organisation=world.owner,
        account_uid=OWNER_UID,
        catalog_role=None,
        since=now - dt.timedelta(days=1),
        until=now + dt.timedelta(minutes=1),
        now=now,
    )
    used = {row.who: row.used_calls for row in access.rows if row.kind == "person"}
    assert used == {world.alice.email: 1, world.bob.email: 1}
    account_rows = [row for row in access.rows if row.kind == "account"]
    assert [row.used_calls for row in account_rows] == [2]


def bob_lists_instances_with_portal_credentials(world):
    """An active delegation; Bob, assigned, lists instances with credentials from the portal;
    the owner's account is ingested."""
    delegation = world.active_delegation()
    world.assign(delegation, world.bob)
    world.drain()
    assignment = delegation.staff_assignments.get(user=world.bob)
    issued = credentials_issue(assignment=assignment, user=world.bob, duration_seconds=900)
    ecs_client(
        world.sim,
        issued.credentials.access_key_id,
        issued.credentials.access_key_secret,
        issued.credentials.security_token,
    ).describe_instances(ecs_models.DescribeInstancesRequest(region_id="cn-hangzhou"))
    activity_ingest_account(cloud_account=world.owner_account)
    return delegation


def test_the_access_report_page_shows_used(world, login):
    bob_lists_instances_with_portal_credentials(world)
    today = timezone.now().date()
    query = f"account={OWNER_UID}&since={today - dt.timedelta(days=1)}&until={today}"
    body = login(world.owner_admin).get(f"/audit/access/?{query}").content.decode()
    cells = re.findall(r'data-testid="row-used">(.*?)</td>', body, re.S)
    assert len(cells) == 2  # the partner account's row and Bob's
    assert all("1 call" in cell for cell in cells)
    partner_view = login(world.partner_admin).get(f"/audit/access/?{query}").content.decode()
    assert 'data-testid="row-used"' not in partner_view


def test_the_owner_proposes_a_narrower_role_from_what_was_used(world, login):
    delegation = bob_lists_instances_with_portal_credentials(world)

    url = f"/audit/delegations/{delegation.pk}/activity/propose/"
    admin = login(world.owner_admin)
    assert admin.get(url).status_code == 405
    response = admin.post(url)
    assert response.status_code == 302 and response["Location"] == "/delegations/catalogue/"
    narrow = CatalogRole.objects.get(role_name=f"{world.role_name}-used")
    assert narrow.policies == [{"type": "Custom", "name": f"{world.role_name}-used"}]
    policy = world.owner_root().get_policy(
        policy_type="Custom", policy_name=f"{world.role_name}-used"
    )
    document = json.loads(policy.document)
    # RAM's canonical form writes a one-action list as a string.
    assert [s["Action"] for s in document["Statement"]] in (
        ["ecs:DescribeInstances"],
        [["ecs:DescribeInstances"]],
    )
    # The delegation itself is untouched, and the proposal is on the record.
    delegation.refresh_from_db()
    assert delegation.catalog_role == world.catalog_role
    assert AuditEvent.objects.filter(action="activity.narrower_role_proposed").count() == 1
    # Proposing again is refused with a message, not a 500.
    again = admin.post(url, follow=True)
    assert "already has a policy" in again.content.decode()
    assert CatalogRole.objects.filter(role_name__startswith=world.role_name).count() == 2
