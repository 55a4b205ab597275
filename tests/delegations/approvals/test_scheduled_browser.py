"""A scheduled grant in Chromium: company B's admin asks for a role starting 15 minutes ahead;
the owner's admin approves it (confirming with the authenticator app) and the page shows it
scheduled, "starts in ...", with nothing in the cloud. Then the start arrives: the service the
beat task `start-scheduled-delegations` runs is called with a clock just past the start (the
portal's lead time is 5 minutes, so a start the form accepts is too far off to wait for in
real time); the real worker path applies it through the SDK and the page, left open, shows it
active, with the partner in the role's trust policy in cloudsim.

Screenshots land in `test-artifacts/approvals/`, beside the quorum test's.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from delegations.catalog.partner_links import partner_link_create
from delegations.lifecycle.automatic import delegations_start_due
from delegations.lifecycle.transitions import START_LEAD
from delegations.models import Delegation
from tests.delegations.lifecycle.test_lifecycle_browser import (  # noqa: F401 - a fixture
    InProcessWorker,
    worker,
)
from tests.fixtures.browser import save_screenshot, totp_now
from tests.fixtures.worker import OwnerWorld
from tests.personas import enable_totp, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "approvals"
WAIT_MS = 40_000
# Well beyond START_LEAD: approval must leave it scheduled, not start it at once.
START_AHEAD = dt.timedelta(minutes=15)


def shot(page: Any, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


def status_of(page: Any) -> str:
    return page.locator("#delegation-live").get_attribute("data-status") or ""


def test_a_scheduled_grant_turns_active_at_its_start(
    owner_world_tx: OwnerWorld,
    worker: InProcessWorker,  # noqa: F811 - the imported fixture
    signed_in_page: Callable[[User], Any],
    live_server: Any,
) -> None:
    from playwright.sync_api import expect

    assert START_LEAD + dt.timedelta(minutes=5) < START_AHEAD
    world = owner_world_tx
    owner: Organisation = world.organisation
    owner_admin = make_member(
        owner, Membership.Role.ADMIN, email="approver@owner.example", mfa=False
    )
    owner_secret = enable_totp(owner_admin)
    partner = world.partner(name="Company B")
    partner_admin = make_member(partner, Membership.Role.ADMIN, email="admin@partner.example")
    _link, code = partner_link_create(owner=owner, created_by=owner_admin, label="For Company B")
    principal = f"acs:ram::{partner.account_uid}:root"
    start = (timezone.now() + START_AHEAD).replace(second=0, microsecond=0)

    # --- the partner admin asks for the role from a start 15 minutes ahead ----------------
    partner_page = signed_in_page(partner_admin)
    partner_page.goto(f"{live_server.url}/")
    partner_page.get_by_role("link", name="Request access from an owner").click()
    partner_page.get_by_label("Partner link code").fill(code)
    partner_page.get_by_role("button", name="Continue").click()
    expect(partner_page.get_by_role("heading", level=1)).to_contain_text(owner.name)
    partner_page.get_by_label(re.compile("^ecs-admin")).check()
    partner_page.get_by_label("Why do you need it?").fill(
        "Maintenance window tonight under the support contract."
    )
    partner_page.get_by_label("Starts at (UTC, optional)").fill(start.strftime("%Y-%m-%dT%H:%M"))
    shot(partner_page, "10-scheduled-request-form")
    partner_page.get_by_role("button", name="Send request").click()
    expect(partner_page.locator("body")).to_contain_text("Request sent")
    assert status_of(partner_page) == "requested"
    delegation = Delegation.objects.get(partner=partner)
    assert delegation.starts_at == start

    # --- the owner admin approves, confirming with the authenticator app ------------------
    owner_page = signed_in_page(owner_admin)
    owner_page.goto(f"{live_server.url}/delegations/{delegation.pk}/")
    owner_page.get_by_role("button", name="Approve").click()
    expect(owner_page).to_have_url(re.compile("/accounts/2fa/reauthenticate/"))
    owner_page.locator("input[name=code]").fill(totp_now(owner_secret))
    owner_page.get_by_role("button", name="Confirm").click()
    expect(owner_page).to_have_url(re.compile(f"/delegations/{delegation.pk}/"))
    expect(owner_page.locator("body")).to_contain_text(
        f"Approved. The access starts {start.day} {start:%b %Y, %H:%M};"
    )
    assert status_of(owner_page) == "scheduled"
    starts = owner_page.get_by_test_id("starts-at")
    # The start in the reader's zone (UTC for this owner), the UTC instant on the <time>.
    expect(starts).to_contain_text(f"{start:%H:%M}")
    expect(starts.locator("time")).to_have_attribute("datetime", f"{start:%Y-%m-%dT%H:%M:%S}Z")
    expect(starts).to_contain_text(re.compile(r"starts in 1[0-5]\xa0minutes"))
    shot(owner_page, "11-owner-scheduled-starts-in")
    partner_page.reload()
    assert status_of(partner_page) == "scheduled"
    expect(partner_page.get_by_test_id("starts-at")).to_contain_text("starts in")
    shot(partner_page, "12-partner-sees-scheduled")
    # Nothing reaches the cloud before the start; the beat task, run now, leaves it waiting.
    assert principal not in world.trusted()
    assert delegations_start_due() == 0
    assert not worker.done

    # --- the start arrives: the beat task's service, at a clock just past the start -------
    assert delegations_start_due(now=start + dt.timedelta(seconds=30)) == 1
    deadline = time.monotonic() + WAIT_MS / 1000
    seen: set[str] = set()
    while time.monotonic() < deadline:
        status = status_of(owner_page)
        seen.add(status)
        if status in ("active", "failed"):
            break
        owner_page.wait_for_timeout(200)
    assert status_of(owner_page) == "active", (seen, worker.errors)
    assert not worker.errors, worker.errors
    shot(owner_page, "13-owner-scheduled-now-active")
    expect(owner_page.get_by_test_id("revoke-form")).to_be_visible()
    assert Delegation.objects.get(pk=delegation.pk).status == Delegation.Status.ACTIVE
    # The cloud, read through the official SDK: the partner is in the role's trust policy.
    assert principal in world.trusted()
    assert ("System", "AliyunECSFullAccess") in world.attached()
    expect(partner_page.locator("#delegation-live")).to_have_attribute(
        "data-status", "active", timeout=WAIT_MS
    )
    shot(partner_page, "14-partner-sees-active")
    # The beat task run again changes nothing.
    assert delegations_start_due(now=start + dt.timedelta(minutes=1)) == 0
