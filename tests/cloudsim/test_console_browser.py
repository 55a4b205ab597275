"""The switch-role story in Chromium: Alice of company-b runs company-a's ECS instances.

Screenshots land in ``test-artifacts/cloudsim-console/`` (gitignored) for a human to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_ram20150501 import models as ram

from tests.cloudsim.conftest import Keys, Sdk, trust_policy
from tests.fixtures.browser import save_screenshot
from tests.fixtures.cloudsim import REPO_ROOT, CloudSim

pytestmark = pytest.mark.browser

ARTIFACTS = REPO_ROOT / "test-artifacts" / "cloudsim-console"
A_UID, B_UID = "11223344", "12345678"


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Iterator[CloudSim]:
    # Its own emulator: the test stops demo instances, which other tests expect running.
    emulator = CloudSim(
        data_dir=tmp_path_factory.mktemp("cloudsim-console"),
        env={"CLOUDSIM_ECS_TRANSITION_SECONDS": "0.5"},
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def browser_context_options() -> dict[str, Any]:
    return {"viewport": {"width": 1280, "height": 800}}


def shot(page, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


def visible_text(page) -> str:
    return re.sub(r"\s+", " ", page.inner_text("body"))


def alice_password(sim: CloudSim) -> str:
    return next(u["password"] for u in sim.account("company-b")["users"] if u["name"] == "Alice")


def test_alice_switches_into_company_a_and_stops_an_instance(sim, page):
    sdk = Sdk(sim)
    a_root, b_root = Keys(*sim.root_key("company-a")), Keys(*sim.root_key("company-b"))
    sdk.create_role(a_root, "ecs-admin", trust_policy(f"acs:ram::{B_UID}:root"))
    sdk.attach_to_role(a_root, "ecs-admin", "AliyunECSFullAccess")
    sdk.attach_to_user(b_root, "Alice", "AliyunSTSAssumeRoleAccess")

    # The link a partner admin would send: sign-in first, then the pre-filled form.
    page.goto(f"{sim.url}/switchRole.htm?parentAlias=company-a&roleName=ecs-admin")
    assert page.url.startswith(f"{sim.url}/login.htm?next=")
    page.fill("#logon_name", "Alice@company-b.onaliyun.com")
    page.fill("#password", alice_password(sim))
    shot(page, "01-sign-in")
    page.click("#sign-in")

    page.wait_for_url(f"{sim.url}/switchRole.htm?parentAlias=company-a&roleName=ecs-admin")
    assert page.input_value("#parentAlias") == "company-a"
    assert page.input_value("#roleName") == "ecs-admin"
    assert "Signed in as Alice @ company-b" in visible_text(page)
    shot(page, "02-switch-role-prefilled")
    page.click("#switch")

    page.wait_for_url(f"{sim.url}/console")
    assert "Alice @ company-b as ecs-admin @ company-a" in page.inner_text("#identity")
    rows = page.locator("#instances tbody tr")
    assert rows.count() == 7
    names = visible_text(page)
    for name in ("web-1", "web-2", "batch-1", "db-1", "reporting-1", "api-1", "api-2"):
        assert name in names
    assert "cn-hangzhou" in names and "cn-shanghai" in names
    shot(page, "03-console-as-ecs-admin")

    web1 = page.locator("#instances tbody tr", has_text="web-1")
    assert web1.locator("[data-status]").get_attribute("data-status") == "Running"
    web1.locator("button[data-action='stop']").click()
    page.wait_for_url(f"{sim.url}/console")
    assert "Stop requested for web-1" in page.inner_text("[role=alert]")
    status = page.locator("#instances tbody tr", has_text="web-1").locator("[data-status]")
    assert status.get_attribute("data-status") in ("Stopping", "Stopped")
    shot(page, "04-web-1-stopping")

    # A narrows the role to read-only: the list stays, the next click is refused at once.
    sdk.ram(a_root).detach_policy_from_role(
        ram.DetachPolicyFromRoleRequest(
            policy_type="System", policy_name="AliyunECSFullAccess", role_name="ecs-admin"
        )
    )
    sdk.attach_to_role(a_root, "ecs-admin", "AliyunECSReadOnlyAccess")
    page.locator("#instances tbody tr", has_text="batch-1").locator(
        "button[data-action='start']"
    ).click()
    page.wait_for_url(f"{sim.url}/console")
    refused_click = visible_text(page)
    assert "You are not authorized to do this action. Action: ecs:StartInstance." in refused_click
    assert page.locator("#instances tbody tr").count() == 7
    batch = page.locator("#instances tbody tr", has_text="batch-1").locator("[data-status]")
    assert batch.get_attribute("data-status") == "Stopped"
    shot(page, "05-start-refused-read-only")

    # ... and with nothing attached, even the list is refused.
    sdk.ram(a_root).detach_policy_from_role(
        ram.DetachPolicyFromRoleRequest(
            policy_type="System", policy_name="AliyunECSReadOnlyAccess", role_name="ecs-admin"
        )
    )
    page.reload()
    denial = visible_text(page)
    assert "You are not authorized to do this action. Action: ecs:DescribeInstances." in denial
    assert "Ask the account's administrator to grant this permission to the role ecs-admin" in (
        denial
    )
    shot(page, "06-permission-detached")

    # A removes company-b from the trust policy: switching in again fails, clearly.
    sdk.ram(a_root).update_role(
        ram.UpdateRoleRequest(
            role_name="ecs-admin",
            new_assume_role_policy_document=trust_policy("acs:ram::99999999:root"),
        )
    )
    page.click("text=Back to my identity")
    page.wait_for_url(f"{sim.url}/console")
    assert page.inner_text("#identity").strip() == "Alice @ company-b"
    page.goto(f"{sim.url}/switchRole.htm?parentAlias={A_UID}.onaliyun.com&roleName=ecs-admin")
    page.click("#switch")
    refusal = page.inner_text("[role=alert]")
    assert "You cannot switch to this role: You are not authorized to do this action." in refusal
    assert f"sts:AssumeRole on acs:ram::{A_UID}:role/ecs-admin" in refusal
    assert page.inner_text("#identity").strip() == "Alice @ company-b"
    shot(page, "07-switch-refused-after-trust-removed")

    page.click("text=Sign out")
    page.wait_for_url(f"{sim.url}/login.htm")
    page.goto(f"{sim.url}/console")
    assert page.url.startswith(f"{sim.url}/login.htm")
