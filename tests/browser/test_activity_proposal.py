"""Chromium, end to end through cloudsim: Bob works with portal credentials (one call denied),
ingestion reads it, the owner admin sees the call and its alert on the Activity page and
proposes a narrower role, which lands in the catalogue. Screenshots in
test-artifacts/browser/<test>/.
"""

from __future__ import annotations

import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient

from activity.services import activity_ingest_account
from delegations.partner.credentials import credentials_issue
from tests.activity.test_end_to_end import own_sim  # noqa: F401
from tests.fixtures.partner import build_partner_world, ecs_client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(own_sim, settings, monkeypatch):  # noqa: F811
    world = build_partner_world(own_sim, settings, monkeypatch)
    settings.ALIBABA_ACTIONTRAIL_ENDPOINT = own_sim.endpoint
    settings.ALIBABA_ACTIONTRAIL_QPS = 0
    return world


def test_activity_alert_and_proposal_in_chromium(world, signed_in_page, live_server, shot):
    delegation = world.active_delegation()
    world.assign(delegation, world.bob)
    world.drain()
    assignment = delegation.staff_assignments.get(user=world.bob)
    issued = credentials_issue(assignment=assignment, user=world.bob, duration_seconds=900)
    credentials = issued.credentials
    ecs_client(
        world.sim,
        credentials.access_key_id,
        credentials.access_key_secret,
        credentials.security_token,
    ).describe_instances(ecs_models.DescribeInstancesRequest(region_id="cn-hangzhou"))
    ram = RamClient(
        world.sim.sdk_config(
            credentials.access_key_id, credentials.access_key_secret, credentials.security_token
        )
    )
    with pytest.raises(Exception, match="NoPermission"):
        ram.list_roles(ram_models.ListRolesRequest())
    assert activity_ingest_account(cloud_account=world.owner_account).stored == 2

    page = signed_in_page(world.owner_admin)
    page.set_viewport_size({"width": 1280, "height": 860})
    page.goto(f"{live_server.url}/delegations/{delegation.pk}/")
    page.click("[data-testid=activity-link]")
    page.wait_for_url(f"**/audit/delegations/{delegation.pk}/activity/")
    actions = [a.inner_text() for a in page.locator("[data-testid=action]").all()]
    assert sorted(actions) == ["ecs:DescribeInstances", "ram:ListRoles"]
    assert page.locator("[data-testid=alert]").count() == 1
    assert page.locator("[data-testid=person]").first.inner_text() == world.bob.email
    shot(page, "activity with a denied call")

    page.focus("[data-testid=propose]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/delegations/catalogue/")
    body = page.inner_text("body")
    assert f"{world.role_name}-used" in body
    shot(page, "narrower role in the catalogue")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/audit/delegations/{delegation.pk}/activity/?alerts=1")
    assert page.locator("[data-testid=activity] tbody tr").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "alerts only at 390 px")
