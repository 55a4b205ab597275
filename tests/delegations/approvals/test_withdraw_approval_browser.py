"""Withdrawing one's own approval in Chromium: on a request needing two approvals, the admin
who gave the first sees *Withdraw my approval* (and the other admin does not); clicking it
takes the approval back and the request is at 0 of 2 again, with nothing to withdraw. The same
for an extension (in its panel on the delegation page) and a fleet grant (on its page).

Screenshots at desktop width and at 390 px land in `test-artifacts/approvals/`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from delegations.approvals.services import approval_rule_set
from delegations.fleet.services import fleet_approve
from delegations.lifecycle.automatic import delegation_mark_active
from delegations.lifecycle.extensions import extension_approve
from delegations.lifecycle.services import delegation_approve
from delegations.models import (
    CatalogRole,
    Delegation,
    DelegationApproval,
    DelegationExtension,
    FleetGrant,
)
from tests.delegations.approvals.test_extensions import ask
from tests.delegations.approvals.test_quorum_browser import at_phone_width, shot
from tests.delegations.fleet.test_services import (  # noqa: F401 - fixtures
    all_accounts,
    fleet_role,
    make_fleet,
    staging_accounts,
)
from tests.personas import make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_only_the_approver_who_approved_sees_and_uses_withdraw(
    company_a: Organisation,
    requested: Delegation,
    ecs_admin: CatalogRole,
    signed_in_page: Callable[[User], Any],
    live_server: Any,
) -> None:
    from playwright.sync_api import expect

    first = make_member(company_a, Membership.Role.ADMIN, email="first@company-a.example")
    second = make_member(company_a, Membership.Role.ADMIN, email="second@company-a.example")
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=first)
    delegation_approve(delegation=requested, approved_by=first, with_mfa=True)
    url = f"{live_server.url}/delegations/{requested.pk}/"

    # The other admin sees the approval given, and no way to take it back.
    other = signed_in_page(second)
    other.goto(url)
    expect(other.get_by_test_id("approval-progress")).to_contain_text("1 of 2 approvals")
    expect(other.get_by_test_id("withdraw-approval")).to_have_count(0)
    expect(other.get_by_role("button", name="Approve")).to_be_visible()

    # The admin who approved does.
    page = signed_in_page(first)
    page.goto(url)
    expect(page.get_by_test_id("decide-refusal")).to_contain_text("You already approved")
    withdraw = page.get_by_role("button", name="Withdraw my approval")
    expect(withdraw).to_be_visible()
    shot(page, "08-withdraw-my-approval-desktop")
    at_phone_width(page, "09-withdraw-my-approval-390px")
    withdraw.click()
    expect(page.locator("body")).to_contain_text("Your approval is withdrawn")
    expect(page.get_by_test_id("approval-progress")).to_contain_text("0 of 2 approvals")
    expect(page.get_by_test_id("withdraw-approval")).to_have_count(0)
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    shot(page, "10-approval-withdrawn")
    assert not DelegationApproval.objects.filter(delegation=requested).exists()
    assert Delegation.objects.get(pk=requested.pk).status == Delegation.Status.REQUESTED


def test_an_extension_approval_is_withdrawn_in_its_panel(
    company_a: Organisation,
    make_request: Callable[..., Delegation],
    partner_admin: User,
    ecs_admin: CatalogRole,
    signed_in_page: Callable[[User], Any],
    live_server: Any,
) -> None:
    from playwright.sync_api import expect

    first = make_member(company_a, Membership.Role.ADMIN, email="first@company-a.example")
    second = make_member(company_a, Membership.Role.ADMIN, email="second@company-a.example")
    delegation = make_request(ends_at=timezone.now() + dt.timedelta(hours=4))
    delegation_approve(delegation=delegation, approved_by=first, with_mfa=True)
    delegation = delegation_mark_active(delegation=delegation)
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=first)
    extension = ask(delegation, partner_admin)
    extension_approve(extension=extension, approved_by=first, with_mfa=True)
    url = f"{live_server.url}/delegations/{delegation.pk}/"

    other = signed_in_page(second)
    other.goto(url)
    expect(other.get_by_test_id("approve-extension")).to_be_visible()
    expect(other.get_by_test_id("withdraw-extension-approval")).to_have_count(0)

    page = signed_in_page(first)
    page.goto(url)
    expect(page.get_by_test_id("extension-refusal")).to_contain_text("You already approved")
    withdraw = page.get_by_test_id("withdraw-extension-approval")
    expect(withdraw).to_have_text("Withdraw my approval")
    at_phone_width(page, "11-withdraw-extension-approval-390px")
    withdraw.click()
    expect(page.locator("body")).to_contain_text("Your approval of the extension is withdrawn")
    expect(page.get_by_test_id("withdraw-extension-approval")).to_have_count(0)
    expect(page.get_by_test_id("approve-extension")).to_be_visible()
    shot(page, "12-extension-approval-withdrawn")
    assert DelegationExtension.objects.get(pk=extension.pk).approvals == []


def test_a_fleet_approval_is_withdrawn_on_the_fleet_page(
    make_fleet: Callable[..., FleetGrant],  # noqa: F811
    fleet_role: CatalogRole,  # noqa: F811
    owner_admin: User,
    owner_admin_2: User,
    signed_in_page: Callable[[User], Any],
    live_server: Any,
) -> None:
    from playwright.sync_api import expect

    approval_rule_set(catalog_role=fleet_role, approvals_required=2, set_by=owner_admin)
    grant = make_fleet()
    fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    url = f"{live_server.url}/delegations/fleets/{grant.pk}/"

    other = signed_in_page(owner_admin_2)
    other.goto(url)
    expect(other.get_by_test_id("approval-progress")).to_contain_text("1 of 2 approvals")
    expect(other.get_by_test_id("fleet-approve")).to_be_visible()
    expect(other.get_by_test_id("fleet-withdraw-approval")).to_have_count(0)

    page = signed_in_page(owner_admin)
    page.goto(url)
    expect(page.get_by_test_id("fleet-approve")).to_have_count(0)
    withdraw = page.get_by_test_id("fleet-withdraw-approval")
    expect(withdraw).to_have_text("Withdraw my approval")
    at_phone_width(page, "13-withdraw-fleet-approval-390px")
    withdraw.click()
    expect(page.locator("body")).to_contain_text("Your approval of the fleet is withdrawn")
    expect(page.get_by_test_id("approval-progress")).to_contain_text("0 of 2 approvals")
    expect(page.get_by_test_id("fleet-withdraw-approval")).to_have_count(0)
    expect(page.get_by_test_id("fleet-approve")).to_be_visible()
    shot(page, "14-fleet-approval-withdrawn")
    assert not DelegationApproval.objects.filter(delegation__fleet=grant).exists()
