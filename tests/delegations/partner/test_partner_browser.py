"""The partner side in Chromium, end to end with the real worker path and cloudsim's console.

company-b's admin links Alice to her RAM user and assigns her to the `ecs-ops-…` role company-a
granted; the worker gives her RAM user
`sts:AssumeRole` on it. Alice signs in to the portal, opens My access, follows **Switch role**
to cloudsim's console, signs in as her RAM user with her demo password, switches and sees
company-a's instances. The owner revokes (confirming with the authenticator app); once the
worker has removed company-b from the role, switching again fails in the console and My access
says the access is revoked.

The worker's runs go through the real path (outbox row → `run_outbox_message` task → SDK),
drained by the test while the browser is idle: on the in-memory test database a worker thread
would share the live server's one connection.

Screenshots land in `test-artifacts/partner/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accounts.models import Membership, User
from delegations.models import Delegation
from tests.factories import DEFAULT_PASSWORD
from tests.fixtures.browser import save_screenshot, totp_now
from tests.fixtures.partner import PartnerWorld, ecs_client, ecs_instance_names
from tests.personas import enable_totp, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "partner"
WAIT_MS = 30_000


def shot(page: Any, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


def test_partner_assigns_alice_who_switches_role_until_the_owner_revokes(
    partner_world_tx: PartnerWorld,
    signed_in_page: Callable[[User], Any],
    new_browser_context: Callable[..., Any],
    live_server: Any,
) -> None:
    from playwright.sync_api import expect

    world = partner_world_tx
    delegation = world.active_delegation()  # offered and applied before the browser starts
    owner_admin = make_member(
        world.owner, Membership.Role.ADMIN, email="revoker@company-a.example", mfa=False
    )
    owner_secret = enable_totp(owner_admin)
    sim = world.sim
    alice_label = f"{world.alice.get_full_name()} <{world.alice.email}>"
    try:
        # --- company-b's admin links Alice to her RAM user and assigns her ------------------
        admin_page = signed_in_page(world.partner_admin)
        admin_page.goto(f"{live_server.url}/")
        admin_page.get_by_role("link", name=re.compile("Staff, RAM users")).click()
        expect(admin_page.get_by_role("heading", level=1)).to_have_text("Staff and RAM users")
        link_form = admin_page.get_by_test_id("link-form")
        link_form.get_by_label("Staff member").select_option(label=alice_label)
        link_form.get_by_label("RAM user name").fill("Alice")
        shot(admin_page, "01-partner-links-alice")
        link_form.get_by_role("button", name="Link").click()
        expect(admin_page.locator("body")).to_contain_text("as the RAM user Alice")
        expect(admin_page.locator('tr[data-staff="alice@company-b.example"]')).to_contain_text(
            "Alice"
        )
        admin_page.get_by_role("link", name=re.compile(world.role_name)).click()
        expect(admin_page.get_by_role("heading", level=1)).to_contain_text(world.role_name)
        admin_page.get_by_test_id("assign-form").get_by_label("Staff member").select_option(
            label=alice_label
        )
        shot(admin_page, "02-partner-assigns-alice")
        admin_page.get_by_test_id("assign").click()
        expect(admin_page.locator("body")).to_contain_text("can use " + world.role_name)
        expect(admin_page.locator('li[data-assignment="alice@company-b.example"]')).to_be_visible()
        shot(admin_page, "03-partner-alice-assigned")
        # The worker's run (outbox → Celery task → SDK), while the browser is idle: on the
        # in-memory test database the live server and a worker thread would share one
        # connection.
        world.drain()
        assert world.user_may_assume("Alice")
        admin_page.goto(f"{live_server.url}/delegations/staff/")
        expect(admin_page.locator('tr[data-ram-user="Alice"]')).to_contain_text("In place")
        shot(admin_page, "04-partner-policies-in-place")

        # --- Alice signs in to the portal and opens My access -------------------------------
        alice = new_browser_context().new_page()
        alice.goto(f"{live_server.url}/accounts/login/")
        alice.get_by_label("Email").fill(world.alice.email)
        alice.get_by_label("Password").fill(DEFAULT_PASSWORD)
        alice.get_by_role("button", name=re.compile("Sign in", re.I)).click()
        alice.get_by_role("link", name="My access").first.click()
        expect(alice.get_by_role("heading", level=1)).to_have_text("My access")
        card = alice.locator(f'section[data-access="{delegation.pk}"]')
        expect(card).to_contain_text("Company A")
        expect(card).to_contain_text("AliyunECSFullAccess")
        expect(card).to_contain_text("alice@company-b")
        expect(card).to_contain_text("Alice@company-b.onaliyun.com")
        expect(card).not_to_contain_text("still being applied")
        shot(alice, "05-alice-my-access")

        # --- Switch role in cloudsim's console ----------------------------------------------
        card.get_by_test_id("switch-role").click()
        expect(alice).to_have_url(re.compile(re.escape(f"{sim.url}/login.htm")))
        alice.fill("#logon_name", "Alice@company-b.onaliyun.com")
        alice.fill("#password", world.demo_password("Alice"))
        shot(alice, "06-console-sign-in")
        alice.click("#sign-in")
        expect(alice).to_have_url(re.compile(re.escape(f"{sim.url}/switchRole.htm")))
        assert alice.input_value("#parentAlias") == "company-a"
        assert alice.input_value("#roleName") == world.role_name
        shot(alice, "07-console-switch-role-prefilled")
        alice.click("#switch")
        expect(alice).to_have_url(f"{sim.url}/console")
        expect(alice.locator("#identity-summary")).to_contain_text(
            f"as {world.role_name} @ company-a"
        )
        expect(alice.locator("#instances tbody tr")).to_have_count(7)
        for name in ("web-1", "web-2", "batch-1", "db-1", "reporting-1", "api-1", "api-2"):
            expect(alice.locator("#instances")).to_contain_text(name)
        shot(alice, "08-console-company-a-instances")

        # --- the owner revokes, confirming with the authenticator app -----------------------
        owner_page = signed_in_page(owner_admin)
        # No live polling here: on the in-memory test database, concurrent requests to the
        # live server share one connection. The page is reloaded after the worker ran.
        owner_page.route(re.compile(r".*/status/$"), lambda route: route.abort())
        owner_page.goto(f"{live_server.url}/delegations/{delegation.pk}/")
        owner_page.get_by_label("Reason for revoking").fill("The support contract ended.")
        owner_page.get_by_role("button", name="Revoke access").click()
        expect(owner_page).to_have_url(re.compile("/accounts/2fa/reauthenticate/"))
        owner_page.locator("input[name=code]").fill(totp_now(owner_secret))
        owner_page.get_by_role("button", name="Confirm").click()
        expect(owner_page.locator("body")).to_contain_text("Revoking.")
        world.drain()
        owner_page.goto(f"{live_server.url}/delegations/{delegation.pk}/")
        expect(owner_page.locator("#delegation-live")).to_have_attribute("data-status", "revoked")
        shot(owner_page, "09-owner-revoked")
        assert not world.user_may_assume("Alice")

        # --- switching again fails; My access says so ---------------------------------------
        alice.locator("form[action='/console/switchRole/back'] button").click()
        alice.goto(f"{sim.url}/switchRole.htm?parentAlias=company-a&roleName={world.role_name}")
        alice.click("#switch")
        expect(alice.locator("body")).to_contain_text(
            re.compile("cannot switch to this role|does not exist")
        )
        shot(alice, "10-console-switch-refused-after-revoke")
        alice.goto(f"{live_server.url}/delegations/my-access/")
        expect(alice.locator(f'section[data-access="{delegation.pk}"]')).to_contain_text("revoked")
        expect(alice.get_by_test_id("switch-role")).to_have_count(0)
        shot(alice, "11-alice-my-access-revoked")
        assert Delegation.objects.get(pk=delegation.pk).status == Delegation.Status.REVOKED
    finally:
        sim.clear_faults()


def test_credentials_uri_and_the_owners_view_in_the_browser(
    partner_world_tx: PartnerWorld, signed_in_page: Callable[[User], Any], live_server: Any
) -> None:
    """Alice takes credentials (confirming her password first), makes a credentials URI; the
    owner sees the issuances and the residual window, then cuts the role off."""
    from playwright.sync_api import expect

    world = partner_world_tx
    world.catalog_role.keep_role_when_empty = True
    world.catalog_role.save(update_fields=["keep_role_when_empty"])
    delegation = world.active_delegation()
    world.assign(delegation, world.alice, session_policy_kind="read_only")
    world.drain()

    alice = signed_in_page(world.alice)
    alice.goto(f"{live_server.url}/delegations/my-access/")
    alice.get_by_test_id("get-credentials").click()
    expect(alice.get_by_role("heading", level=1)).to_have_text("Get credentials")
    alice.get_by_label("Valid for (seconds)").fill("1800")
    shot(alice, "12-alice-get-credentials")
    alice.get_by_test_id("issue").click()
    # Not signed in recently: allauth asks for the password, then replays the request. The
    # cursor is already in the password field: she just types it and presses Enter.
    expect(alice).to_have_url(re.compile("/accounts/reauthenticate/"))
    expect(alice.get_by_label("Password")).to_be_focused()
    alice.keyboard.type(DEFAULT_PASSWORD)
    alice.keyboard.press("Enter")
    expect(alice.get_by_test_id("shown-once")).to_be_visible()
    expect(alice.locator("pre[data-format=bash]")).to_contain_text(
        "export ALIBABA_CLOUD_SECURITY_TOKEN="
    )
    expect(alice.locator("pre[data-format=config_json]")).to_contain_text('"mode": "StsToken"')
    key_id = alice.get_by_test_id("access-key-id").inner_text()
    secret = alice.get_by_test_id("access-key-secret").inner_text()
    token = alice.get_by_test_id("security-token").inner_text()
    shot(alice, "13-alice-credentials-shown-once")
    # Every snippet and secret has a Copy button; what it copies is exactly what is shown,
    # endpoint included (the portal runs on cloudsim here).
    alice.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    python = alice.locator("pre[data-format=python]")
    expect(python).to_contain_text(f'endpoint="{world.sim.endpoint}"')
    expect(alice.locator(".copy-button")).to_have_count(8)
    copy = alice.get_by_role("button", name="Copy the Python snippet")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert alice.evaluate("navigator.clipboard.readText()") == python.text_content()
    alice.get_by_role("button", name="Copy the AccessKey secret").click()
    assert alice.evaluate("navigator.clipboard.readText()") == secret
    # What was shown works: read-only ECS through the SDK.
    ecs = ecs_client(world.sim, key_id, secret, token)
    assert ecs_instance_names(ecs) == ["batch-1", "web-1", "web-2"]
    # Shown once: going back to the form does not show them again.
    alice.goto(f"{live_server.url}/delegations/my-access/{delegation.pk}/credentials/")
    expect(alice.get_by_test_id("credentials-form")).to_be_visible()
    expect(alice.locator("body")).not_to_contain_text("ALIBABA_CLOUD_SECURITY_TOKEN")

    alice.goto(f"{live_server.url}/delegations/my-access/")
    alice.get_by_test_id("uri-keys").click()
    alice.get_by_label("Label").fill("laptop aliyun CLI")
    alice.get_by_test_id("make-uri").click()
    expect(alice.get_by_test_id("uri-shown-once")).to_be_visible()
    expect(alice.locator("pre[data-format=cli]")).to_contain_text("--mode CredentialsURI")
    shot(alice, "14-alice-credentials-uri-shown-once")
    alice.get_by_role("button", name="Copy the credentials URI").click()
    assert alice.evaluate("navigator.clipboard.readText()") == (
        alice.get_by_test_id("new-uri").text_content()
    )

    owner_admin = make_member(
        world.owner, Membership.Role.ADMIN, email="security@company-a.example", mfa=False
    )
    owner_secret = enable_totp(owner_admin)
    owner = signed_in_page(owner_admin)
    owner.goto(f"{live_server.url}/delegations/{delegation.pk}/")
    owner.get_by_test_id("issuances-link").click()
    expect(owner.locator(f'tr[data-issuance="{key_id}"]')).to_contain_text("alice@company-b")
    expect(owner.get_by_test_id("residual-until")).to_contain_text("still valid until")
    shot(owner, "15-owner-issuances-residual-window")

    # The emergency cut-off, confirmed with the authenticator app.
    owner.get_by_label("Why (recorded in the audit log)").fill("Laptop with credentials lost")
    owner.get_by_label(re.compile("I understand")).check()
    owner.get_by_test_id("cut-off").click()
    expect(owner).to_have_url(re.compile("/accounts/2fa/reauthenticate/"))
    owner.locator("input[name=code]").fill(totp_now(owner_secret))
    owner.get_by_role("button", name="Confirm").click()
    expect(owner.locator("body")).to_contain_text("Credentials already issued stop working")
    world.drain()
    owner.reload()
    expect(owner.get_by_test_id("residual-window")).to_contain_text(
        "The role's permission policies are detached"
    )
    shot(owner, "16-owner-cut-off")
    with pytest.raises(Exception) as stopped:
        ecs_instance_names(ecs)
    assert getattr(stopped.value, "code", "") in ("Forbidden.RAM", "NoPermission")

    # Nobody is left on the role: the page says lifting re-attaches nothing, and it does not.
    expect(owner.get_by_test_id("lift-effect")).to_contain_text(
        "Nothing to re-attach: no partner is on this role now"
    )
    owner.get_by_test_id("lift").click()
    expect(owner.locator("body")).to_contain_text("Nothing to re-attach")
    expect(owner.locator("body")).not_to_contain_text("being attached again")
    shot(owner, "17-owner-lifts-with-nobody-left")
    assert world.drain() == []
    assert world.owner_root().list_policies_for_role(world.role_name) == []
