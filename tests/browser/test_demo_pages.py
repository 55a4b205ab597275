"""The embedded demo as a person sees it: seeded personas, the MFA-off banner, the demo
mailbox and the error pages."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(settings: object, tmp_path: Path) -> dict[str, str]:
    settings.PORTAL_EMBEDDED = True  # type: ignore[attr-defined]
    settings.PORTAL_REQUIRE_MFA = False  # type: ignore[attr-defined]
    settings.DATA_DIR = tmp_path  # type: ignore[attr-defined]
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"  # type: ignore[attr-defined]
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")  # type: ignore[attr-defined]
    call_command("seed_demo", "--quiet")
    users = json.loads((tmp_path / "demo-users.json").read_text())["users"]
    return {user["email"]: user["password"] for user in users}


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("[data-testid=user-menu]")).to_be_visible()


@pytest.mark.parametrize(
    ("email", "heading", "role_line"),
    [
        ("admin@company-a.example", "Company A", "You are admin here"),
        ("auditor@company-a.example", "Company A", "You are auditor here"),
        ("admin@company-b.example", "Company B", "You are admin here"),
        ("alice@company-b.example", "Company B", "You are staff here"),
    ],
)
def test_each_demo_persona_sees_their_dashboard_and_the_banner(
    demo: dict[str, str],
    new_page: Callable[[], Page],
    shot: Callable,
    email: str,
    heading: str,
    role_line: str,
) -> None:
    page = new_page()
    sign_in(page, email, demo[email])
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.get_by_text(role_line)).to_be_visible()
    expect(page.get_by_text("MFA enforcement is off")).to_be_visible()
    shot(page, "dashboard")
    page.get_by_role("link", name="Members").first.click()
    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    shot(page, "members")


def test_demo_mailbox_and_error_pages(
    demo: dict[str, str], new_page: Callable[[], Page], shot: Callable
) -> None:
    page = new_page()
    sign_in(page, "admin@company-b.example", demo["admin@company-b.example"])
    page.goto("/organisation/members/")
    page.get_by_label("Email address").fill("carol@company-b.example")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_label("Password").fill(demo["admin@company-b.example"])
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Invitation sent to carol@company-b.example as Staff")).to_be_visible()

    page.get_by_role("link", name="read them in the demo mailbox").click()
    expect(page.get_by_role("heading", name="Mailbox")).to_be_visible()
    shot(page, "mailbox")
    page.get_by_role("link", name="You are invited to join Company B").click()
    body = page.get_by_test_id("mail-body")
    expect(body).to_contain_text("/invitations/")
    shot(page, "invitation email")
    link = body.get_by_role("link").first
    href = link.get_attribute("href")
    assert href and "/invitations/" in href

    page.goto("/organisation/members/00000000-0000-4000-8000-000000000000/remove/")
    expect(page.get_by_role("heading", name="We could not find that page")).to_be_visible()
    shot(page, "not found")

    staff = new_page()
    sign_in(staff, "alice@company-b.example", demo["alice@company-b.example"])
    staff.goto("/organisation/members/00000000-0000-4000-8000-000000000000/remove/")
    expect(staff.get_by_role("heading", name="You cannot do that here")).to_be_visible()
    shot(staff, "forbidden")


def test_account_pages_render_in_the_portal_layout(
    demo: dict[str, str], new_page: Callable[[], Page], shot: Callable
) -> None:
    page = new_page()
    sign_in(page, "bob@company-b.example", demo["bob@company-b.example"])
    for path, heading in [
        ("/accounts/2fa/", "Two-Factor Authentication"),
        ("/accounts/sessions/", "Sessions"),
        ("/accounts/password/change/", "Change Password"),
        ("/accounts/email/", "Email Addresses"),
    ]:
        page.goto(path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        expect(page.locator("nav.manage-nav")).to_be_visible()
        shot(page, heading)
    page.locator("[data-testid=user-menu] summary").click()
    shot(page, "user menu")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
    page.goto("/accounts/password/reset/")
    shot(page, "password reset")
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill("bob@company-b.example")
    page.get_by_label("Password").fill("not-his-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("The email address or password is not correct.")).to_be_visible()
    shot(page, "sign in refused")
