"""The lifecycle in Chromium, as the two admins: company B's admin requests `ecs-admin`
through company A's partner link; A's admin approves (confirming with the authenticator
app), watches the progress go live from approved to applying to active, then revokes and
watches it reach revoked. Both pages update without a reload.

The cloud side is the real cloudsim process (with some per-call latency so "applying" can be
seen) and the worker path is the real one: outbox row → `run_outbox_message` task →
reconcile through the SDK, run by an in-process worker thread.

Screenshots land in `test-artifacts/delegations/`.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from accounts.models import Membership, Organisation, User
from delegations import outbox
from delegations.catalog.partner_links import partner_link_create
from delegations.models import Delegation
from tests.fixtures.browser import save_screenshot, totp_now
from tests.fixtures.worker import OwnerWorld
from tests.personas import enable_totp, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "delegations"
CLOUD_LATENCY_MS = 250
WAIT_MS = 30_000


class InProcessWorker:
    """Runs published outbox messages through the real Celery task, one at a time, in a
    background thread: the web request that approves returns at once, as with a broker."""

    def __init__(self, *, shared: Any = None) -> None:
        self.messages: queue.Queue[int | None] = queue.Queue()
        self.errors: list[BaseException] = []
        self.done: list[int] = []
        self._shared = shared
        self._thread = threading.Thread(target=self._run, name="outbox-worker", daemon=True)

    def publish(self, *, message_id: int) -> bool:
        self.messages.put(message_id)
        return True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.messages.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        from delegations.worker.tasks import run_outbox_message

        if self._shared is not None:
            connections["default"] = self._shared
        try:
            while (message_id := self.messages.get()) is not None:
                try:
                    run_outbox_message.apply(args=[message_id], throw=True)
                    self.done.append(message_id)
                except BaseException as error:
                    self.errors.append(error)
        finally:
            if self._shared is None:
                connections.close_all()


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch, live_server: Any) -> Iterator[InProcessWorker]:
    # On in-memory SQLite the live server's thread uses one connection made shareable for
    # it (pytest-django); so must the worker's. Taken from the live server: while
    # Playwright's loop runs (the browser is up for the whole run), this thread's
    # `connections` hands out a different one (asgiref keys connections by context).
    running = InProcessWorker(shared=live_server.thread.connections_override.get("default"))
    monkeypatch.setattr(outbox, "outbox_publish", running.publish)
    running.start()
    yield running
    running.stop()


def shot(page: Any, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


def status_of(page: Any) -> str:
    return page.locator("#delegation-live").get_attribute("data-status") or ""


def test_request_approve_apply_revoke_in_the_browser(
    owner_world_tx: OwnerWorld,
    worker: InProcessWorker,
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
    partner = world.partner(name="Company B")
    partner_admin = make_member(partner, Membership.Role.ADMIN, email="admin@partner.example")
    _link, code = partner_link_create(owner=owner, created_by=owner_admin, label="For Company B")
    world.sim.set_faults(latency_ms=CLOUD_LATENCY_MS)

    try:
        # --- the partner admin requests access through the owner's code -------------------
        partner_page = signed_in_page(partner_admin)
        partner_page.goto(f"{live_server.url}/")
        partner_page.get_by_role("link", name="Request access from an owner").click()
        partner_page.get_by_label("Partner link code").fill(code.lower())
        partner_page.get_by_role("button", name="Continue").click()
        expect(partner_page.get_by_role("heading", level=1)).to_contain_text(owner.name)
        partner_page.get_by_label(re.compile("^ecs-admin")).check()
        partner_page.get_by_label("Why do you need it?").fill(
            "Patch and restart the web fleet under the support contract."
        )
        shot(partner_page, "01-partner-request-form")
        partner_page.get_by_role("button", name="Send request").click()
        expect(partner_page.locator("body")).to_contain_text("Request sent")
        assert status_of(partner_page) == "requested"
        shot(partner_page, "02-partner-requested")
        delegation = Delegation.objects.get(partner=partner)

        # --- the owner admin reviews and approves, confirming with the authenticator app ---
        owner_page = signed_in_page(owner_admin)
        owner_page.goto(f"{live_server.url}/delegations/")
        row = owner_page.locator(f'tr[data-delegation="{delegation.pk}"]')
        expect(row).to_contain_text("Requested")
        shot(owner_page, "03-owner-overview-requested")
        row.get_by_role("link", name=re.compile("Review")).click()
        owner_page.get_by_label("Note (optional)").fill("Covered by contract 2024-17")
        owner_page.get_by_role("button", name="Approve").click()
        # Step-up: allauth's MFA re-authentication, then the approval POST is replayed.
        expect(owner_page).to_have_url(re.compile("/accounts/2fa/reauthenticate/"))
        shot(owner_page, "04-owner-confirms-with-mfa")
        owner_page.locator("input[name=code]").fill(totp_now(owner_secret))
        owner_page.get_by_role("button", name="Confirm").click()
        expect(owner_page).to_have_url(re.compile(f"/delegations/{delegation.pk}/"))
        expect(owner_page.locator("body")).to_contain_text("Approved.")

        # --- live progress, no reload: approved/applying → active --------------------------
        marker = owner_page.evaluate("() => (window.__noReload = Math.random())")
        seen: set[str] = set()
        deadline = time.monotonic() + WAIT_MS / 1000
        applying_shot = False
        while time.monotonic() < deadline:
            status = status_of(owner_page)
            seen.add(status)
            if status == "applying" and not applying_shot:
                shot(owner_page, "05-owner-applying-live")
                applying_shot = True
            if status in ("active", "failed"):
                break
            owner_page.wait_for_timeout(100)
        assert status_of(owner_page) == "active", (seen, worker.errors)
        assert "applying" in seen or "approved" in seen
        assert owner_page.evaluate("() => window.__noReload") == marker, "the page reloaded"
        calls = owner_page.get_by_test_id("cloud-calls")
        expect(calls).to_contain_text("CreateRole")
        expect(calls).to_contain_text("AttachPolicyToRole")
        expect(owner_page.get_by_test_id("revoke-form")).to_be_visible()
        shot(owner_page, "06-owner-active-with-cloud-calls")
        assert partner.account_uid in {p.split(":")[3] for p in world.trusted()}
        assert ("System", "AliyunECSFullAccess") in world.attached()

        # The partner's page, left open, followed along by itself.
        expect(partner_page.locator("#delegation-live")).to_have_attribute(
            "data-status", "active", timeout=WAIT_MS
        )
        shot(partner_page, "07-partner-sees-active")

        # The owner's role view: the cloud's trust policy next to the portal's wish.
        roles_page = owner_page.context.new_page()
        roles_page.goto(f"{live_server.url}/delegations/roles/")
        expect(roles_page.get_by_test_id("principals")).to_contain_text(
            f"acs:ram::{partner.account_uid}:root"
        )
        expect(roles_page.locator("body")).to_contain_text("In sync")
        shot(roles_page, "08-owner-roles-in-sync")
        roles_page.close()

        # --- revoke: active → revoking → revoked ------------------------------------------
        owner_page.get_by_label("Reason for revoking").fill("The support contract ended.")
        owner_page.get_by_role("button", name="Revoke access").click()
        expect(owner_page.locator("body")).to_contain_text("Revoking.")
        marker = owner_page.evaluate("() => (window.__noReload = Math.random())")
        expect(owner_page.locator("#delegation-live")).to_have_attribute(
            "data-status", "revoked", timeout=WAIT_MS
        )
        assert owner_page.evaluate("() => window.__noReload") == marker, "the page reloaded"
        expect(owner_page.get_by_test_id("revoke-form")).to_be_hidden()
        expect(owner_page.get_by_test_id("cloud-calls")).to_contain_text("DeleteRole")
        shot(owner_page, "09-owner-revoked")
        expect(partner_page.locator("#delegation-live")).to_have_attribute(
            "data-status", "revoked", timeout=WAIT_MS
        )
        shot(partner_page, "10-partner-sees-revoked")
        assert world.role() is None  # the portal created it, and nobody needs it any more

        # Deleted on purpose: the Roles page shows the role retired, greyed, with when and
        # why, and counts no drift (issue 18 item 2).
        roles_page = owner_page.context.new_page()
        roles_page.goto(f"{live_server.url}/delegations/roles/")
        card = roles_page.locator("section.role-card[data-role='ecs-admin']")
        expect(card).to_have_attribute("data-state", "retired")
        expect(card.locator(".badge")).to_have_text("Retired")
        expect(card.get_by_test_id("retirement")).to_contain_text("Deleted by the portal on")
        expect(card.get_by_test_id("retirement")).to_contain_text("Company B (revoked)")
        expect(card).not_to_contain_text("Drift")
        expect(card).not_to_contain_text("(drift)")
        expect(roles_page.get_by_test_id("role-counts")).to_contain_text("0 with drift")
        expect(roles_page.get_by_test_id("role-counts")).to_contain_text("1 retired")
        greyed = card.evaluate(
            "el => [getComputedStyle(el).borderStyle, getComputedStyle(el).color]"
        )
        assert greyed[0] == "dashed" and greyed[1] == "rgb(82, 96, 109)", greyed
        shot(roles_page, "11-owner-roles-retired")
        roles_page.close()
        assert not worker.errors, worker.errors
        delegation.refresh_from_db()
        assert delegation.status == Delegation.Status.REVOKED
        assert delegation.approved_with_mfa is True
        assert delegation.decided_by == owner_admin
    finally:
        world.sim.clear_faults()
