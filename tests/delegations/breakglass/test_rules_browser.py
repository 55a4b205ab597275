"""Break-glass and access reviews in Chromium (issue 14): Alice, named for an emergency role,
activates it herself with a reason and her authenticator app; a second owner admin, signed in
separately, reviews it and revokes and flags it. Then an access review is answered by both
sides, each in their own browser: the owner's admin keeps the delegation, the partner's admin
unassigns a person. (The two-approver role is `approvals/test_quorum_browser.py`.)

Screenshots at desktop width and at 390 px land in `test-artifacts/approvals/`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from delegations.breakglass.services import break_glass_role_set
from delegations.lifecycle.automatic import delegation_mark_active
from delegations.lifecycle.services import delegation_approve
from delegations.models import (
    BreakGlassActivation,
    CatalogRole,
    Delegation,
    ReviewItem,
    ReviewOutcome,
    StaffAssignment,
)
from delegations.reviews.services import review_campaign_start, review_schedule_set
from tests.delegations.approvals.test_quorum_browser import at_phone_width, confirm_with_mfa, shot
from tests.personas import enable_totp, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REASON = "Production database is down; the on-call engineer must restart the ECS fleet"


def test_a_break_glass_activation_and_its_review(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    ecs_admin: CatalogRole,
    allow_b: None,
    signed_in_page: Callable[[User], Any],
    live_server: Any,
) -> None:
    from playwright.sync_api import expect

    alice = make_member(
        company_b, Membership.Role.STAFF, email="alice@company-b.example", mfa=False
    )
    alice_secret = enable_totp(alice)
    reviewer = make_member(
        company_a, Membership.Role.ADMIN, email="reviewer@company-a.example", mfa=False
    )
    reviewer_secret = enable_totp(reviewer)
    break_glass_role_set(
        owner=company_a,
        set_by=owner_admin,
        catalog_role=ecs_admin,
        partner=company_b,
        people=[alice],
        max_hours=4,
    )

    # --- Alice activates it herself ----------------------------------------------------------
    page = signed_in_page(alice)
    page.goto(f"{live_server.url}/delegations/my-access/")
    page.get_by_test_id("break-glass-link").click()
    form = page.get_by_test_id("break-glass-activate")
    expect(form).to_contain_text("ecs-admin")
    form.get_by_label("For how many hours").fill("9")  # over the role's 4 h
    form.get_by_label("What is the emergency?").fill(REASON)
    form.get_by_role("button", name="Activate break-glass access").click()
    expect(page.locator("body")).to_contain_text("Choose 1 to 4 hours")
    assert not BreakGlassActivation.objects.exists()
    shot(page, "11-break-glass-form-error")
    form = page.get_by_test_id("break-glass-activate")
    form.get_by_label("For how many hours").fill("2")
    form.get_by_role("button", name="Activate break-glass access").click()
    confirm_with_mfa(page, alice_secret)
    activation = BreakGlassActivation.objects.get()
    mine = page.locator(f"tr[data-activation='{activation.pk}']")
    expect(mine).to_contain_text("Waiting for review")
    expect(mine).to_contain_text(REASON)
    shot(page, "12-break-glass-activated")
    assert activation.delegation.origin == Delegation.Origin.BREAK_GLASS
    assert activation.activated_by == alice and activation.hours == 2

    # --- a second owner admin, signed in separately, reviews it -------------------------------
    other = signed_in_page(reviewer)
    other.goto(f"{live_server.url}/delegations/catalogue/")
    other.get_by_test_id("break-glass-link").click()
    row = other.locator(f"tr[data-activation='{activation.pk}']")
    expect(row).to_contain_text(REASON)
    expect(row).to_contain_text("Waiting for review")
    at_phone_width(other, "13-break-glass-review-390px")
    row.get_by_label("Review note").fill("No outage was reported")
    row.get_by_role("button", name="Revoke and flag").click()
    confirm_with_mfa(other, reviewer_secret)
    expect(other.locator("body")).to_contain_text("Revoked and flagged")
    shot(other, "14-break-glass-revoked-and-flagged")
    activation.refresh_from_db()
    assert activation.review == BreakGlassActivation.Review.REVOKED and activation.flagged
    assert activation.reviewed_by == reviewer
    assert activation.delegation.end_cause == Delegation.EndCause.REVOKED


def test_an_access_review_answered_by_both_sides(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    make_request: Callable[..., Delegation],
    signed_in_page: Callable[[User], Any],
    live_server: Any,
) -> None:
    from playwright.sync_api import expect

    approver = make_member(
        company_a, Membership.Role.ADMIN, email="approver@company-a.example", mfa=False
    )
    approver_secret = enable_totp(approver)
    partner_admin = make_member(
        company_b, Membership.Role.ADMIN, email="boss@company-b.example", mfa=False
    )
    partner_secret = enable_totp(partner_admin)
    bob = make_member(company_b, Membership.Role.STAFF, email="bob@company-b.example")
    delegation = make_request(
        requested_by=partner_admin, ends_at=timezone.now() + dt.timedelta(days=30)
    )
    delegation_approve(delegation=delegation, approved_by=owner_admin, with_mfa=True)
    delegation_mark_active(delegation=delegation)
    assignment = StaffAssignment.objects.create(
        delegation=delegation, partner=company_b, user=bob, assigned_by=partner_admin
    )
    review_schedule_set(
        owner=company_a,
        set_by=owner_admin,
        every_days=90,
        deadline_days=14,
        default_outcome=ReviewOutcome.REVOKE,
    )
    campaign = review_campaign_start(owner=company_a, started_by=owner_admin)

    # --- the owner's approver: still needed? keep ---------------------------------------------
    owner_page = signed_in_page(approver)
    owner_page.goto(f"{live_server.url}/delegations/catalogue/")
    owner_page.get_by_test_id("access-reviews-link").click()
    owner_page.get_by_test_id("open-review").first.click()
    question = owner_page.get_by_test_id("owner-questions")
    expect(question).to_contain_text("ecs-admin")
    shot(owner_page, "21-access-review-owner")
    question.get_by_label("Still needed?").select_option("keep")
    question.get_by_label("Note").fill("Patching continues this quarter")
    question.get_by_role("button", name="Answer").click()
    confirm_with_mfa(owner_page, approver_secret)
    expect(owner_page.locator("body")).to_contain_text("Answer recorded")
    expect(owner_page.get_by_test_id("owner-questions")).to_contain_text("Keep")

    # --- the partner's admin, in their own browser: does Bob still need it? unassign ----------
    partner_page = signed_in_page(partner_admin)
    partner_page.goto(f"{live_server.url}/delegations/")
    partner_page.get_by_test_id("access-reviews-link").click()
    partner_page.get_by_test_id("open-review").first.click()
    staff = partner_page.get_by_test_id("partner-questions")
    expect(staff).to_contain_text("bob@company-b.example")
    at_phone_width(partner_page, "22-access-review-partner-390px")
    staff.get_by_label("Does this person still need it?").select_option("unassign")
    staff.get_by_role("button", name="Answer").click()
    confirm_with_mfa(partner_page, partner_secret)
    expect(partner_page.locator("body")).to_contain_text("Answer recorded")
    shot(partner_page, "23-access-review-partner-answered")

    decisions = dict(ReviewItem.objects.filter(campaign=campaign).values_list("side", "decision"))
    assert decisions == {"owner": "keep", "partner": "unassign"}
    assert StaffAssignment.objects.get(pk=assignment.pk).ended_at is not None
    assert Delegation.objects.get(pk=delegation.pk).status == Delegation.Status.ACTIVE

    # --- the auditor's report of who decided what -------------------------------------------
    owner_page.goto(f"{live_server.url}/audit/reviews/?campaign={campaign.pk}")
    rows = owner_page.get_by_test_id("review-rows")
    expect(rows).to_contain_text("approver@company-a.example")
    expect(rows).to_contain_text("boss@company-b.example")
    shot(owner_page, "24-review-report")
