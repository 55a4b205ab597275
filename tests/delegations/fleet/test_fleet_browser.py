"""A fleet grant in Chromium: company B's admin requests one role in two of the owner's
accounts x two regions through the owner's partner link code; the owner's admin approves it
once (confirming with the authenticator app) and watches each account go to active on the
fleet page, live, without a reload (the same static script as the delegation page: the CSP
forbids inline script).

The cloud is the real cloudsim (with per-call latency so the progress can be seen), the
worker path the real one (outbox row -> `run_outbox_message` -> reconcile through the SDK) in
an in-process worker thread. Screenshots land in `test-artifacts/fleet/`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accounts.models import Membership, Organisation, User
from delegations.catalog.partner_links import partner_link_create
from delegations.connection.services import cloud_account_connect
from delegations.models import Delegation, FleetGrant
from tests.delegations.lifecycle.test_lifecycle_browser import (  # noqa: F401 - a fixture
    InProcessWorker,
    worker,
)
from tests.fixtures.browser import save_screenshot, totp_now
from tests.fixtures.worker import OwnerWorld, random_uid
from tests.personas import enable_totp, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "fleet"
CLOUD_LATENCY_MS = 200
WAIT_MS = 40_000


def shot(page: Any, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


def states(page: Any) -> dict[str, str]:
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('tr[data-account]')]"
        ".map(row => [row.dataset.account, row.dataset.state]))"
    )


def test_request_approve_and_watch_each_account_go_active(
    owner_world_tx: OwnerWorld,
    worker: InProcessWorker,  # noqa: F811 - the imported fixture
    signed_in_page: Callable[[User], Any],
    live_server: Any,
) -> None:
    from playwright.sync_api import expect

    world = owner_world_tx
    owner: Organisation = world.organisation
    owner_admin = make_member(
        owner, Membership.Role.ADMIN, email="approver@owner.example", mfa=False
    )
    owner_secret = enable_totp(owner_admin)
    uid = random_uid()
    created = world.sim.create_account(uid=uid, alias=f"staging-{uid}")
    staging = cloud_account_connect(
        organisation=owner,
        connected_by=world.admin,
        account_uid=uid,
        alias="",
        name="staging",
        region="cn-hangzhou",
        access_key_id=created["root"]["access_key_id"],
        access_key_secret=created["root"]["access_key_secret"],
    )
    world.catalog_role.extra_accounts.add(staging)
    partner = world.partner(name="Company B")
    partner_admin = make_member(partner, Membership.Role.ADMIN, email="admin@partner.example")
    _link, code = partner_link_create(owner=owner, created_by=owner_admin, label="For B")
    world.sim.set_faults(latency_ms=CLOUD_LATENCY_MS)

    try:
        # --- the partner admin asks for the role in both accounts x two regions ----------
        partner_page = signed_in_page(partner_admin)
        partner_page.goto(f"{live_server.url}/delegations/fleets/")
        partner_page.get_by_test_id("fleet-request-link").click()
        partner_page.get_by_label("Partner link code").fill(code)
        partner_page.get_by_role("button", name="Continue").click()
        expect(partner_page.get_by_role("heading", level=1)).to_contain_text(
            "Request a fleet grant"
        )
        partner_page.get_by_label(re.compile("^ecs-admin")).check()
        # Exactly the account's label: the role's ("ecs-admin (<uid>) — …") names it too.
        partner_page.get_by_label(world.cloud_account.label, exact=True).check()
        partner_page.get_by_label(f"staging ({uid})").check()
        partner_page.get_by_label("Regions").fill("cn-shanghai, cn-beijing")
        partner_page.get_by_label("Concurrency").fill("2")
        partner_page.get_by_label("Why?").fill("Weekly patching across production and staging.")
        shot(partner_page, "01-partner-fleet-request")
        partner_page.get_by_test_id("fleet-submit").click()
        expect(partner_page.locator("body")).to_contain_text("Fleet request sent")
        expect(partner_page.get_by_test_id("fleet-regions")).to_have_text("cn-shanghai, cn-beijing")
        assert set(states(partner_page).values()) == {"requested"}
        shot(partner_page, "02-partner-fleet-requested")
        fleet = FleetGrant.objects.get()

        # --- the owner admin approves once, confirming with the authenticator app -------
        owner_page = signed_in_page(owner_admin)
        owner_page.goto(f"{live_server.url}/delegations/fleets/")
        owner_page.locator(f'tr[data-fleet="{fleet.pk}"]').get_by_role("link").click()
        shot(owner_page, "03-owner-fleet-to-decide")
        owner_page.get_by_test_id("fleet-approve").click()
        expect(owner_page).to_have_url(re.compile("/accounts/2fa/reauthenticate/"))
        owner_page.locator("input[name=code]").fill(totp_now(owner_secret))
        owner_page.get_by_role("button", name="Confirm").click()
        expect(owner_page).to_have_url(re.compile(f"/delegations/fleets/{fleet.pk}/"))
        expect(owner_page.locator("body")).to_contain_text("Approved.")

        # --- each account's progress, live, without a reload ----------------------------
        marker = owner_page.evaluate("() => (window.__noReload = Math.random())")
        seen: set[str] = set()
        progress_shot = False
        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            now = states(owner_page)
            seen.update(now.values())
            if not progress_shot and set(now.values()) & {"approved", "applying"}:
                shot(owner_page, "04-owner-accounts-applying-live")
                progress_shot = True
            if set(now.values()) == {"active"}:
                break
            owner_page.wait_for_timeout(100)
        assert states(owner_page) == {world.uid: "active", uid: "active"}, (seen, worker.errors)
        assert seen & {"approved", "applying"}, seen
        assert owner_page.evaluate("() => window.__noReload") == marker, "the page reloaded"
        expect(owner_page.get_by_test_id("fleet-status")).to_have_text("active")
        shot(owner_page, "05-owner-every-account-active")
        # The partner's page, left open, followed along by itself.
        expect(partner_page.get_by_test_id("fleet-status")).to_have_text("active", timeout=WAIT_MS)
        shot(partner_page, "06-partner-sees-active")
        assert {d.status for d in Delegation.objects.filter(fleet=fleet)} == {"active"}
        assert f"acs:ram::{partner.account_uid}:root" in world.trusted()
        assert not worker.errors, worker.errors
    finally:
        world.sim.clear_faults()
