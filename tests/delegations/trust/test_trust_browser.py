"""Per-person trust in Chromium, end to end with cloudsim (issue 11).

company-a's admin picks "named people, owner-approved" on the trust page (confirming with the
authenticator app); company-b's admin proposes Alice; company-a's admin approves her; the
worker's run names `acs:ram::12345678:user/Alice` in the trust policy. Alice presses **Open
console** and lands in cloudsim's console as `<role>/alice@company-b` in company-a, in one
click; Bob, assigned but not named, is told why and whom to ask, has no button, and is
refused with the same words when he asks for credentials anyway.

The worker's runs go through the real path, drained while the browser is idle (see
`test_partner_browser`). Screenshots, at desktop width and at 390 px, land in
`test-artifacts/trust/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accounts.models import Membership, User
from cloud import policies
from delegations.models import CredentialIssuance, TrustedPerson, TrustScope
from tests.factories import DEFAULT_PASSWORD
from tests.fixtures.browser import save_screenshot, sign_in, totp_now
from tests.fixtures.partner import PartnerWorld
from tests.personas import enable_totp, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "trust"
PHONE = {"width": 390, "height": 844}


def shot(page: Any, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


def _no_sideways_scroll(page: Any) -> int:
    return page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def test_owner_approves_alice_who_opens_the_console_and_bob_is_told_why(
    partner_world_tx: PartnerWorld,
    signed_in_page: Callable[[User], Any],
    new_browser_context: Callable[..., Any],
    live_server: Any,
    settings: Any,
) -> None:
    from playwright.sync_api import expect

    settings.PORTAL_CONSOLE_FEDERATION = True
    world = partner_world_tx
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    world.link(world.bob, "Bob")
    world.assign(delegation, world.alice)
    world.assign(delegation, world.bob)
    world.drain()
    owner_admin = make_member(
        world.owner, Membership.Role.ADMIN, email="trust@company-a.example", mfa=False
    )
    owner_secret = enable_totp(owner_admin)
    trust_url = f"{live_server.url}/delegations/{delegation.pk}/trust/"

    # --- the owner narrows the trust policy to named people it approves -----------------------
    owner = signed_in_page(owner_admin)
    owner.goto(f"{live_server.url}/delegations/{delegation.pk}/")
    owner.route(re.compile(r".*/status/$"), lambda route: route.abort())
    owner.get_by_test_id("trust-link").get_by_role("link").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Who may assume this role")
    expect(owner.get_by_test_id("trust-scope")).to_contain_text("Whole partner account")
    owner.get_by_label("Named people, owner-approved").check()
    # By default the broker is trusted only if the access is used through the portal; Alice
    # will open the console through the portal, so the owner says yes.
    expect(owner.get_by_label("Only if this access is used through the portal")).to_be_checked()
    owner.get_by_label("Yes: the portal issues credentials and console sessions").check()
    shot(owner, "01-owner-chooses-named-people")
    owner.get_by_test_id("save-scope").click()
    expect(owner).to_have_url(re.compile("/accounts/2fa/reauthenticate/"))
    owner.locator("input[name=code]").fill(totp_now(owner_secret))
    owner.get_by_role("button", name="Confirm").click()
    expect(owner.get_by_test_id("trust-scope")).to_contain_text("Named people, owner-approved")
    expect(owner.get_by_test_id("broker-trusted")).to_be_visible()
    expect(owner.get_by_test_id("no-people")).to_be_visible()
    world.drain()
    assert not world.user_may_assume("Alice")  # nobody named yet: nobody gets in

    # --- company-b's admin proposes Alice -----------------------------------------------------
    partner = signed_in_page(world.partner_admin)
    partner.goto(trust_url)
    form = partner.get_by_test_id("propose-form")
    form.get_by_label("RAM user in your account").fill("Mallory")
    form.get_by_test_id("propose").click()
    expect(partner.locator("body")).to_contain_text("no RAM user called Mallory")
    partner.get_by_test_id("propose-form").get_by_label("RAM user in your account").fill("alice")
    partner.get_by_test_id("propose-form").get_by_test_id("propose").click()
    expect(partner.get_by_test_id("person-Alice")).to_have_attribute("data-state", "pending")
    shot(partner, "02-partner-proposed-alice")

    # --- the owner approves her; the worker names her in the trust policy -------------------
    owner.goto(trust_url)
    expect(owner.get_by_test_id("person-Alice")).to_contain_text("Pending")
    owner.get_by_test_id("approve-Alice").click()
    expect(owner.get_by_test_id("person-Alice")).to_have_attribute("data-state", "being_applied")
    world.drain()
    owner.goto(trust_url)
    expect(owner.get_by_test_id("person-Alice")).to_have_attribute("data-state", "in_policy")
    shot(owner, "03-owner-alice-in-the-trust-policy")
    role = world.owner_root().get_role(world.role_name)
    assert role is not None
    assert (
        "acs:ram::12345678:user/Alice" in policies.trust_policy_principals(role.trust_document).ram
    )
    assert TrustedPerson.objects.get().status == TrustedPerson.Status.APPROVED
    delegation.refresh_from_db()
    assert delegation.trust_scope == TrustScope.NAMED_OWNER_APPROVED

    # The same page at a phone's width: nothing scrolls sideways.
    phone = new_browser_context(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(phone, live_server.url, world.partner_admin)
    small = phone.new_page()
    small.goto(trust_url)
    expect(small.get_by_test_id("person-Alice")).to_be_visible()
    assert _no_sideways_scroll(small) == 0
    shot(small, "04-partner-trust-page-390px")

    # --- Alice opens the console in one click -------------------------------------------------
    alice = signed_in_page(world.alice)
    alice.goto(f"{live_server.url}/delegations/my-access/")
    card = alice.locator(f'section[data-access="{delegation.pk}"]')
    expect(card.get_by_test_id("open-console")).to_be_visible()
    shot(alice, "05-alice-my-access")
    card.get_by_test_id("open-console").click()
    # Not signed in recently: the password first, then the request is replayed.
    expect(alice).to_have_url(re.compile("/accounts/reauthenticate/"))
    alice.get_by_label("Password").fill(DEFAULT_PASSWORD)
    alice.get_by_label("Password").press("Enter")
    expect(alice).to_have_url(f"{world.sim.url}/console")
    expect(alice.locator("#identity-summary")).to_contain_text(
        f"{world.role_name}/alice@company-b @ company-a"
    )
    expect(alice.locator("#instances")).to_contain_text("web-1")
    shot(alice, "06-alice-in-the-console-one-click")
    # Confirmed a moment ago: now one click is all it takes, a 303 straight to the sign-in
    # (My access allows exactly the sign-in origin in its form-action, nothing wider).
    landed = alice.goto(f"{live_server.url}/delegations/my-access/")
    form_action = landed.headers["content-security-policy"].split("form-action ")[1].split(";")[0]
    assert form_action.split() == ["'self'", world.sim.url]
    alice.locator(f'section[data-access="{delegation.pk}"]').get_by_test_id("open-console").click()
    expect(alice).to_have_url(f"{world.sim.url}/console")
    expect(alice.locator("#identity-summary")).to_contain_text(
        f"{world.role_name}/alice@company-b @ company-a"
    )

    # --- Bob is not named: the portal says why and whom to ask -------------------------------
    bob = signed_in_page(world.bob)
    bob.goto(f"{live_server.url}/delegations/my-access/")
    card = bob.locator(f'section[data-access="{delegation.pk}"]')
    expect(card.get_by_test_id("not-named")).to_contain_text("Ask your admin at Company B")
    expect(card.get_by_test_id("open-console")).to_have_count(0)
    shot(bob, "07-bob-not-named")
    assert not world.user_may_assume("Bob")
    # Bob tries anyway, straight at the credentials page: refused before any cloud call, with
    # the same words (why, and whom to ask), and nothing issued.
    bob.goto(f"{live_server.url}/delegations/my-access/{delegation.pk}/credentials/")
    bob.get_by_test_id("issue").click()
    expect(bob).to_have_url(re.compile("/accounts/reauthenticate/"))
    bob.get_by_label("Password").fill(DEFAULT_PASSWORD)
    bob.get_by_label("Password").press("Enter")
    refusal = bob.get_by_role("alert")
    expect(refusal).to_contain_text("not one of them yet")
    expect(refusal).to_contain_text("Ask your admin at Company B to propose you")
    shot(bob, "07b-bob-refused-credentials")
    assert not CredentialIssuance.objects.filter(user=world.bob).exists()
    phone_bob = new_browser_context(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(phone_bob, live_server.url, world.bob)
    small_bob = phone_bob.new_page()
    small_bob.goto(f"{live_server.url}/delegations/my-access/")
    assert _no_sideways_scroll(small_bob) == 0
    shot(small_bob, "08-bob-not-named-390px")
