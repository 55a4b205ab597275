"""The cloud account and the catalogue in Chromium, against the real cloudsim: company A's admin
confirms with the authenticator app, connects the account (a wrong secret first), builds the
catalogue (one role needing the high-privilege opt-in) and the allow-list; company B's admin
connects and sees the account's RAM users.

Screenshots land in `test-artifacts/delegations/connect-*.png`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import Membership, Organisation
from delegations.models import CatalogRole, CloudAccount, PartnerAllowance
from tests.delegations.cloud_fixtures import make_sim_account
from tests.delegations.lifecycle.test_lifecycle_browser import shot
from tests.fixtures.browser import totp_now
from tests.personas import enable_totp, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def confirm_with_app(page: Any, secret: str) -> None:
    from playwright.sync_api import expect

    expect(page).to_have_url(re.compile("/accounts/2fa/reauthenticate/"))
    page.locator("input[name=code]").fill(totp_now(secret))
    page.get_by_role("button", name="Confirm").click()


def test_owner_connects_and_builds_the_catalogue_partner_sees_ram_users(
    sim,
    encryption_key: str,
    transactional_db: None,
    signed_in_page: Callable[[Any], Any],
    live_server: Any,
    settings,
) -> None:
    from playwright.sync_api import expect

    settings.PORTAL_REQUIRE_MFA = True
    owner = make_sim_account(sim, Organisation.Kind.OWNER)
    admin = make_member(owner.organisation, Membership.Role.ADMIN, mfa=False)
    app_secret = enable_totp(admin)

    page = signed_in_page(admin)
    page.goto(f"{live_server.url}/")
    # Not connected yet: the Overview says that comes first, and leads there.
    inbox = page.get_by_test_id("inbox")
    expect(inbox).to_contain_text("Connect your Alibaba Cloud account")
    inbox.get_by_role("link", name="Connect", exact=True).click()
    expect(page.get_by_test_id("connection-state")).to_have_text("Not connected")
    shot(page, "connect-01-not-connected")
    page.get_by_test_id("connect").click()
    confirm_with_app(page, app_secret)
    expect(page).to_have_url(re.compile("/delegations/cloud-account/connect/"))
    expect(page.get_by_label("Alibaba Cloud account UID")).to_have_value(owner.uid)

    page.get_by_label("AccessKey id").fill(owner.root_key_id)
    page.get_by_label("AccessKey secret").fill("WrongSecretWrongSecretWrong123")
    page.get_by_test_id("save-key").click()
    expect(page.locator("body")).to_contain_text("SignatureDoesNotMatch")
    expect(page.get_by_label("AccessKey secret")).to_have_value("")
    shot(page, "connect-02-wrong-secret")

    page.get_by_label("AccessKey secret").fill(owner.root_secret)
    page.get_by_test_id("save-key").click()
    expect(page.get_by_test_id("connection-state")).to_have_text("Connected")
    account = CloudAccount.objects.get(organisation=owner.organisation)
    expect(page.get_by_test_id("fingerprint")).to_have_text(account.secret_fingerprint)
    expect(page.get_by_test_id("access-key-id")).to_have_text(owner.root_key_id)
    assert owner.root_secret not in page.content()
    shot(page, "connect-03-connected")

    # --- the catalogue ----------------------------------------------------------------------
    page.goto(f"{live_server.url}/delegations/catalogue/")
    page.get_by_test_id("add-role").click()
    page.get_by_label("Role name").fill("ecs-admin")
    page.get_by_label("Description").fill("Operate the ECS fleet")
    page.locator('input[value="System:AliyunECSFullAccess"]').check()
    shot(page, "connect-04-add-role")
    page.get_by_test_id("save-role").click()
    expect(page.get_by_test_id("catalog-roles")).to_contain_text("ecs-admin")

    page.get_by_test_id("add-role").click()
    page.get_by_label("Role name").fill("break-glass")
    page.locator('input[value="System:AdministratorAccess"]').check()
    page.get_by_test_id("save-role").click()
    expect(page.locator("body")).to_contain_text("Tick the box to confirm")
    shot(page, "connect-05-high-privilege-needs-opt-in")
    page.locator("input[name=high_privilege_confirmed]").check()
    page.get_by_test_id("save-role").click()
    expect(page.get_by_test_id("catalog-roles")).to_contain_text("break-glass")
    assert CatalogRole.objects.get(role_name="break-glass").allows_high_privilege

    page.get_by_label("Partner account UID").fill("12345678")
    page.get_by_label("Label").fill("Company B")
    page.get_by_test_id("add-allowance").click()
    expect(page.get_by_test_id("allow-list")).to_contain_text("12345678")
    page.get_by_label("Partner account UID").fill(owner.uid)
    page.get_by_test_id("add-allowance").click()
    expect(page.locator("body")).to_contain_text("your own account")
    shot(page, "connect-06-catalogue-and-allow-list")
    assert list(PartnerAllowance.objects.values_list("partner_account_uid", flat=True)) == [
        "12345678"
    ]

    # --- the partner side -------------------------------------------------------------------
    partner = make_sim_account(sim, Organisation.Kind.PARTNER)
    for name in ("Alice", "Bob", "AAA"):
        sim.create_user(partner.uid, name, with_access_key=False)
    partner_admin = make_member(partner.organisation, Membership.Role.ADMIN, mfa=False)
    partner_secret = enable_totp(partner_admin)
    partner_page = signed_in_page(partner_admin)
    partner_page.goto(f"{live_server.url}/")
    partner_page.get_by_role("link", name="Alibaba Cloud account and RAM users").click()
    partner_page.get_by_test_id("connect").click()
    confirm_with_app(partner_page, partner_secret)
    partner_page.get_by_label("AccessKey id").fill(partner.root_key_id)
    partner_page.get_by_label("AccessKey secret").fill(partner.root_secret)
    partner_page.get_by_test_id("save-key").click()
    users = partner_page.get_by_test_id("ram-users")
    for name in ("Alice", "Bob", "AAA"):
        expect(users).to_contain_text(name)
    shot(partner_page, "connect-07-partner-ram-users")
