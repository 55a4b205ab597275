"""In Chromium: an owner creates a partner link code bound to one partner account and good for
one request; a partner off the allow-list gets the refusal a wrong code gets, and nothing of
the owner; the bound partner enters it, sees the catalogue and
sends a request; then the code is used up. No URL any browser loads carries the code (issue
18, item 11)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Organisation, User
from delegations.models import CatalogRole, Delegation, PartnerLink
from tests.fixtures.browser import save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFUSAL = "This partner link code is not valid for your organisation"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "browser" / "link-codes"


def shot(page: Page, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


def enter_code(page: Page, base: str, code: str) -> None:
    page.goto(f"{base}/delegations/request/")
    page.get_by_label("Partner link code").fill(code)
    page.get_by_role("button", name="Continue").click()


def test_owner_creates_a_bound_single_use_code_and_only_its_partner_uses_it(
    signed_in_page: Callable[[User], Page],
    live_server: object,
    company_a: Organisation,
    company_b: Organisation,
    company_d: Organisation,
    owner_admin: User,
    partner_admin: User,
    partner_admin_d: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    base = live_server.url  # type: ignore[attr-defined]
    visited: list[str] = []

    def watch(page: Page) -> Page:
        page.on("request", lambda request: visited.append(request.url))
        return page

    # --- the owner makes a code for Company B only, good for one request ------------------
    owner = watch(signed_in_page(owner_admin))
    owner.goto(f"{base}/delegations/partner-links/")
    expect(owner.get_by_label("Valid for")).to_have_value("14")
    owner.get_by_label("Label").fill("Company B onboarding")
    owner.get_by_label("Valid for").select_option("7")
    owner.get_by_label("Only for partner account (optional)").fill(company_b.account_uid)
    owner.get_by_label("Single use").check()
    owner.get_by_role("button", name="Create").click()
    code = owner.get_by_test_id("code").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-9]{5}(-[A-Z2-9]{5}){3}", code)
    expect(owner.get_by_test_id("new-code")).to_contain_text("for one request")
    expect(owner.get_by_test_id("new-code")).to_contain_text(company_b.account_uid)
    shot(owner, "01-owner-created-a-bound-single-use-code")

    # --- a partner off the allow-list: the code is simply not valid -----------------------
    outsider = watch(signed_in_page(partner_admin_d))
    enter_code(outsider, base, code)
    expect(outsider.locator("body")).to_contain_text(REFUSAL)
    expect(outsider.locator("body")).not_to_contain_text("Company A")
    expect(outsider.locator("body")).not_to_contain_text("ecs-admin")
    expect(outsider.get_by_label("Partner link code")).to_have_value("")
    shot(outsider, "02-foreign-partner-refused")

    # --- the bound partner enters it, sees the catalogue and sends a request --------------
    partner = watch(signed_in_page(partner_admin))
    enter_code(partner, base, code.lower())
    expect(partner.get_by_role("heading", level=1)).to_contain_text("Company A")
    partner.get_by_label(re.compile("^ecs-admin")).check()
    partner.get_by_label("Why do you need it?").fill("Patch the web fleet this week.")
    shot(partner, "03-partner-request-form")
    partner.get_by_role("button", name="Send request").click()
    expect(partner.locator("body")).to_contain_text("Request sent")
    assert Delegation.objects.filter(partner=company_b, catalog_role=ecs_admin).count() == 1

    # --- used up: the same code is now refused, even for Company B ------------------------
    enter_code(partner, base, code)
    expect(partner.locator("body")).to_contain_text(REFUSAL)
    shot(partner, "04-used-code-refused")
    owner.goto(f"{base}/delegations/partner-links/")
    row = owner.locator("tr", has_text="Company B onboarding")
    expect(row).to_contain_text("Used")
    expect(row).to_contain_text("Company B")
    shot(owner, "05-owner-sees-the-code-used")

    link = PartnerLink.objects.get(label="Company B onboarding")
    assert link.single_use and link.partner_account_uid == company_b.account_uid

    compact = code.replace("-", "")
    leaked = [url for url in visited if compact.lower() in url.replace("-", "").lower()]
    assert leaked == []
