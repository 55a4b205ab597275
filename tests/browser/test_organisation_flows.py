"""The foundation's people flows, in a real browser: sign up an organisation, confirm the
email, enrol TOTP, invite and accept (new and existing person), switch organisation, remove a
member and see their session die."""

import re
from collections.abc import Callable

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from accounts.models import Membership, Organisation, User
from tests.browser.conftest import totp_code
from tests.factories import DEFAULT_PASSWORD
from tests.personas import enable_totp, make_member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "Copper-meadow-violin-77"


def last_link(to: str, contains: str) -> str:
    for message in reversed(mail.outbox):
        if to in message.to:
            for link in re.findall(r"https?://[^\s\"'<>]+", message.body):
                if contains in link:
                    return link
    raise AssertionError(f"no email to {to} with a link containing {contains!r}")


def sign_in(page: Page, email: str, password: str, totp_secret: str | None = None) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if totp_secret:
        expect(page.get_by_role("heading", name="Two-Factor Authentication")).to_be_visible()
        page.get_by_label("Code").fill(totp_code(totp_secret))
        page.get_by_role("button", name="Sign In").click()
    expect(page.locator(".brand")).to_be_visible()


def test_sign_up_an_organisation_confirm_and_enrol_mfa(
    new_page: Callable[[], Page], shot: Callable
) -> None:
    page = new_page()
    page.goto("/")
    shot(page, "landing")
    page.get_by_role("link", name="Register your organisation").first.click()
    expect(page.get_by_role("heading", name="Register your organisation")).to_be_visible()

    page.get_by_label(re.compile("A partner")).check()
    page.get_by_label("Organisation name").fill("Bramble Operations")
    page.get_by_label("Alibaba Cloud account UID").fill("1234 5678")
    page.get_by_label("Enterprise alias (optional)").fill("bramble-ops")
    page.get_by_label("Your first name").fill("Bea")
    page.get_by_label("Your last name").fill("Bramble")
    page.get_by_label("Your work email").fill("bea@bramble.example")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Password (again)").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Register organisation").click()
    expect(page.get_by_text("digits 0-9 only")).to_be_visible()
    shot(page, "sign-up refuses a UID with a space")
    assert not Organisation.objects.exists()

    page.get_by_label("Alibaba Cloud account UID").fill("1234567890123456")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Password (again)").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Register organisation").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    shot(page, "check your inbox")

    page.goto(last_link("bea@bramble.example", "/confirm-email/"))
    shot(page, "confirm email")
    page.get_by_role("button", name="Confirm").click()

    # An admin without MFA is sent to enrol first; allauth asks for the password again before
    # it changes the account's MFA.
    expect(page.get_by_text("requires two-factor authentication for admins")).to_be_visible()
    expect(page.get_by_role("heading", name="Confirm Access")).to_be_visible()
    shot(page, "mfa enrolment required, password first")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    shot(page, "mfa enrolment")
    secret = page.locator("#authenticator_secret").input_value()
    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.get_by_role("heading", name="Recovery Codes")).to_be_visible()
    shot(page, "recovery codes")

    page.goto("/")
    expect(page.get_by_role("heading", name="Bramble Operations")).to_be_visible()
    expect(page.get_by_text("1234567890123456", exact=True)).to_be_visible()
    # What comes first for a new organisation: connecting its cloud account.
    expect(page.get_by_test_id("inbox")).to_contain_text("Connect your Alibaba Cloud account")
    shot(page, "partner admin dashboard")

    organisation = Organisation.objects.get(account_uid="1234567890123456")
    user = User.objects.get(email="bea@bramble.example")
    assert Membership.objects.get(user=user, organisation=organisation).role == "admin"


def test_invite_accept_switch_and_remove(new_page: Callable[[], Page], shot: Callable) -> None:
    company_a = Organisation.objects.create(
        name="Company A",
        slug="company-a",
        kind="owner",
        account_uid="11223344",
        enterprise_alias="company-a",
    )
    company_b = Organisation.objects.create(
        name="Company B",
        slug="company-b",
        kind="partner",
        account_uid="12345678",
        enterprise_alias="company-b",
    )
    owner_admin = make_member(company_a, "admin", email="admin@company-a.example", mfa=False)
    owner_secret = enable_totp(owner_admin)
    partner_admin = make_member(company_b, "admin", email="admin@company-b.example", mfa=False)
    partner_secret = enable_totp(partner_admin)
    make_member(company_b, "staff", email="alice@company-b.example")

    # The owner admin invites a new person and an existing one (company B's admin).
    admin_page = new_page()
    sign_in(admin_page, owner_admin.email, DEFAULT_PASSWORD, owner_secret)
    shot(admin_page, "owner admin dashboard")
    admin_page.get_by_role("link", name="Members").first.click()
    admin_page.get_by_label("Email address").fill("newbie@example.com")
    admin_page.get_by_label("Role", exact=True).select_option("auditor")
    admin_page.get_by_role("button", name="Send invitation").click()
    # An invitation hands out a role: allauth asks for the password, then replays the POST.
    expect(admin_page.get_by_role("heading", name="Confirm Access")).to_be_visible()
    shot(admin_page, "reauthenticate before inviting")
    admin_page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    admin_page.get_by_role("button", name="Confirm").click()
    expect(admin_page.get_by_text("Invitation sent to newbie@example.com")).to_be_visible()
    admin_page.get_by_label("Email address").fill(partner_admin.email)
    admin_page.get_by_label("Role", exact=True).select_option("auditor")
    admin_page.get_by_role("button", name="Send invitation").click()
    expect(admin_page.locator("tr[data-invitation='admin@company-b.example']")).to_be_visible()
    shot(admin_page, "members with open invitations")

    # A new person accepts: chooses a password and lands in company A.
    newbie = new_page()
    newbie.goto(last_link("newbie@example.com", "/invitations/"))
    expect(newbie.get_by_role("heading", name="Join Company A")).to_be_visible()
    shot(newbie, "invitation for a new person")
    newbie.get_by_label("First name").fill("Nia")
    newbie.get_by_label("Last name").fill("Newbie")
    newbie.get_by_label("Choose a password").fill(NEW_PASSWORD)
    newbie.get_by_label("Password (again)").fill(NEW_PASSWORD)
    newbie.get_by_role("button", name="Create account and join").click()
    expect(newbie.get_by_text("Welcome to Company A")).to_be_visible()
    expect(newbie.get_by_text("You are auditor here")).to_be_visible()
    shot(newbie, "new auditor dashboard")

    # An existing person signs in to accept, then switches between organisations.
    partner = new_page()
    partner.goto(last_link(partner_admin.email, "/invitations/"))
    expect(partner.get_by_role("link", name="Sign in to accept")).to_be_visible()
    shot(partner, "invitation for an existing account")
    partner.get_by_role("link", name="Sign in to accept").click()
    partner.get_by_label("Email").fill(partner_admin.email)
    partner.get_by_label("Password").fill(DEFAULT_PASSWORD)
    partner.get_by_role("button", name="Sign in").click()
    partner.get_by_label("Code").fill(totp_code(partner_secret))
    partner.get_by_role("button", name="Sign In").click()
    partner.get_by_role("button", name="Accept and join Company A").click()
    expect(partner.get_by_text("Welcome to Company A")).to_be_visible()
    partner.locator("[data-testid=organisation-switcher] summary").click()
    shot(partner, "organisation switcher open")
    partner.get_by_role("button", name=re.compile("Company B")).click()
    expect(partner.get_by_text("You are now working in Company B as Admin")).to_be_visible()
    expect(partner.get_by_role("heading", name="Company B")).to_be_visible()
    shot(partner, "switched to company b")

    # The owner admin removes the new auditor, whose session dies.
    admin_page.goto("/organisation/members/")
    admin_page.locator("tr[data-member='newbie@example.com']").get_by_role(
        "link", name="Remove"
    ).click()
    expect(admin_page.get_by_role("heading", name="Remove a member")).to_be_visible()
    shot(admin_page, "confirm removal")
    admin_page.get_by_role("button", name="Remove newbie@example.com").click()
    # Removing someone is as sensitive, but the admin confirmed who they are when inviting,
    # minutes ago (ACCOUNT_REAUTHENTICATION_TIMEOUT): it goes straight through.
    expect(admin_page.get_by_text("newbie@example.com was removed from Company A")).to_be_visible()
    shot(admin_page, "member removed")

    newbie.goto("/organisation/members/")
    expect(newbie.get_by_role("heading", name="Sign in")).to_be_visible()
    assert "/accounts/login/" in newbie.url
    shot(newbie, "removed member is signed out")
    assert not Membership.objects.filter(user__email="newbie@example.com").exists()
