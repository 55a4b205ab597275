"""A two-approver role in Chromium: an owner admin creates an approver group and sets the
role's quorum to 2 on the approval-rules page; company B's request then needs both admins,
each signed in separately and each confirming with their authenticator app. The first
approval leaves it requested ("1 of 2 approvals"); the second approves it.

Screenshots of the approval-rules and approve pages at desktop width and at 390 px land in
`test-artifacts/approvals/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accounts.models import Membership, Organisation, User
from delegations.models import ApprovalRule, ApproverGroup, CatalogRole, Delegation
from tests.fixtures.browser import save_screenshot, totp_now
from tests.personas import enable_totp, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "approvals"
PHONE = {"width": 390, "height": 844}


def shot(page: Any, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


def at_phone_width(page: Any, name: str) -> None:
    """The same page at 390 px: nothing wider than the screen, then a screenshot."""
    desktop = page.viewport_size
    page.set_viewport_size(PHONE)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: {overflow}px wider than a 390 px screen"
    shot(page, name)
    page.set_viewport_size(desktop)


def confirm_with_mfa(page: Any, secret: str) -> None:
    from playwright.sync_api import expect

    expect(page).to_have_url(re.compile("/accounts/2fa/reauthenticate/"))
    page.locator("input[name=code]").fill(totp_now(secret))
    page.get_by_role("button", name="Confirm").click()


def test_two_approvers_decide_a_quorum_role(
    company_a: Organisation,
    requested: Delegation,
    ecs_admin: CatalogRole,
    signed_in_page: Callable[[User], Any],
    live_server: Any,
) -> None:
    from playwright.sync_api import expect

    first = make_member(
        company_a, Membership.Role.ADMIN, email="first@company-a.example", mfa=False
    )
    first_secret = enable_totp(first)
    second = make_member(
        company_a, Membership.Role.ADMIN, email="second@company-a.example", mfa=False
    )
    second_secret = enable_totp(second)

    # --- the first admin sets the rules: a group for ecs-admin, and 2 approvals ------------
    page = signed_in_page(first)
    page.goto(f"{live_server.url}/delegations/catalogue/")
    page.get_by_test_id("approval-rules-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Approval rules")
    form = page.get_by_test_id("approver-group-form")
    form.get_by_label("Group name").fill("ECS approvers")
    form.get_by_label("first@company-a.example").check()
    form.get_by_label("second@company-a.example").check()
    form.get_by_label("ecs-admin").check()
    form.get_by_role("button", name="Create group").click()
    confirm_with_mfa(page, first_secret)
    expect(page.locator("body")).to_contain_text("ECS approvers now decides")
    quorum = page.locator("tr[data-role='ecs-admin']")
    quorum.get_by_label("Approvals needed").fill("2")
    quorum.get_by_role("button", name=re.compile("Save")).click()
    expect(page.locator("body")).to_contain_text("now need 2 approvals")
    shot(page, "01-approval-rules-desktop")
    at_phone_width(page, "02-approval-rules-390px")
    assert ApproverGroup.objects.get().members.count() == 2
    assert ApprovalRule.objects.get(catalog_role=ecs_admin).approvals_required == 2

    # --- the first approval: recorded, still requested --------------------------------------
    page.goto(f"{live_server.url}/delegations/{requested.pk}/")
    expect(page.get_by_test_id("approval-progress")).to_contain_text("0 of 2 approvals")
    shot(page, "03-approve-page-desktop")
    at_phone_width(page, "04-approve-page-390px")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("body")).to_contain_text("Your approval is recorded")
    expect(page.get_by_test_id("approval-progress")).to_contain_text("1 of 2 approvals")
    expect(page.get_by_test_id("decide-refusal")).to_contain_text("You already approved")
    shot(page, "05-first-approval-recorded")
    assert Delegation.objects.get(pk=requested.pk).status == Delegation.Status.REQUESTED

    # --- the second admin, signed in separately, completes the quorum ----------------------
    other = signed_in_page(second)
    other.goto(f"{live_server.url}/delegations/{requested.pk}/")
    progress = other.get_by_test_id("approval-progress")
    expect(progress).to_contain_text("1 of 2 approvals")
    expect(progress).to_contain_text("first@company-a.example")
    at_phone_width(other, "06-second-approver-390px")
    other.get_by_role("button", name="Approve").click()
    confirm_with_mfa(other, second_secret)
    expect(other.locator("body")).to_contain_text("Approved.")
    shot(other, "07-approved-by-the-second")
    final = Delegation.objects.get(pk=requested.pk)
    assert final.status in (
        Delegation.Status.APPROVED,
        Delegation.Status.APPLYING,
        Delegation.Status.FAILED,
    )
    assert final.decided_by == second
    assert final.approvals.count() == 2
