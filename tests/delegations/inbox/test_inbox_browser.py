"""In Chromium: company B's admin requests ecs-admin; company A's admin sees it at the top of
the Overview with a count in the navigation; the email (in the embedded mailbox) and the
local webhook inbox both show it; the owner opens the email's deep link and decides there.
Also the notification settings page. Desktop and 390 px screenshots land in
`test-artifacts/notifications/`."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core import mail

from accounts.models import Organisation, User
from delegations.models import Delegation, PartnerLink
from notifications import devhooks, outbox, services, tasks
from notifications.models import Channel
from tests.fixtures.browser import save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "notifications"
PHONE = {"width": 390, "height": 844}


def shot(page: Any, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


@pytest.fixture
def delivered_at_once(
    settings: Any, live_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The worker, in place: each published delivery runs through the real task at once."""
    settings.PORTAL_EMBEDDED = True
    settings.PORTAL_BASE_URL = live_server.url
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")

    def send(delivery_ids: list[int]) -> None:
        for delivery_id in delivery_ids:
            tasks.deliver.apply(args=[delivery_id])

    monkeypatch.setattr(outbox, "_send", send)


def test_request_reaches_the_owner_s_inbox_email_and_webhook_inbox(
    delivered_at_once: None,
    live_server: Any,
    signed_in_page: Callable[[User], Any],
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_admin: User,
    ecs_admin: Any,
    allow_b: None,
    link_a: tuple[PartnerLink, str],
) -> None:
    from playwright.sync_api import expect

    services.channel_create(
        organisation=company_a,
        created_by=owner_admin,
        kind=Channel.Kind.WEBHOOK,
        name="Local webhook inbox",
        url=devhooks.receive_url(),
        secret="demo-webhook-signing-secret",
        events=["delegation.requested"],
    )
    _link, code = link_a

    # --- the partner asks ------------------------------------------------------------------
    partner_page = signed_in_page(partner_admin)
    partner_page.goto(f"{live_server.url}/delegations/request/")
    partner_page.get_by_label("Partner link code").fill(code)
    partner_page.get_by_role("button", name="Continue").click()
    partner_page.get_by_label(re.compile("^ecs-admin")).check()
    partner_page.get_by_label("Why do you need it?").fill("Patch the web fleet tonight.")
    partner_page.get_by_test_id("send-request").click()
    expect(partner_page.locator("body")).to_contain_text("Request sent")
    delegation = Delegation.objects.get(partner=company_b)

    # --- the owner's Overview starts with it, counted in the navigation --------------------
    owner_page = signed_in_page(owner_admin)
    owner_page.goto(f"{live_server.url}/")
    expect(owner_page.get_by_test_id("inbox-count")).to_have_text("1")
    inbox = owner_page.get_by_test_id("inbox")
    uid = ecs_admin.cloud_account.account_uid
    expect(inbox).to_contain_text(f"Decide: ecs-admin ({uid}) · Company B")
    shot(owner_page, "01-owner-overview-inbox-desktop")
    owner_page.set_viewport_size(PHONE)
    owner_page.reload()
    expect(owner_page.get_by_test_id("inbox")).to_be_visible()
    assert owner_page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    shot(owner_page, "02-owner-overview-inbox-390px")
    owner_page.set_viewport_size({"width": 1280, "height": 860})

    # --- the email, in the embedded mailbox, and the local webhook inbox --------------------
    owner_page.goto(f"{live_server.url}/dev/mail/")
    expect(owner_page.locator("body")).to_contain_text("Company B requests ecs-admin")
    shot(owner_page, "03-email-in-the-demo-mailbox")
    owner_page.goto(f"{live_server.url}/dev/webhooks/")
    expect(owner_page.get_by_test_id("webhook-entry")).to_contain_text(
        "Company B requests ecs-admin"
    )
    owner_page.get_by_test_id("webhook-entry").first.locator("summary").click()
    shot(owner_page, "04-local-webhook-inbox")

    # --- the owner follows the email's deep link and decides there --------------------------
    mail_files = list(Path(mail.get_connection().file_path).glob("*.log"))  # type: ignore[attr-defined]
    text = "\n".join(path.read_text() for path in mail_files)
    link = f"{live_server.url}/delegations/{delegation.pk}/"
    assert link in text
    owner_page.goto(link)
    owner_page.get_by_label("Reason for rejecting").fill("Not under the current contract.")
    owner_page.get_by_test_id("reject").click()
    expect(owner_page.locator("body")).to_contain_text("Rejected.")
    owner_page.goto(f"{live_server.url}/")
    expect(owner_page.get_by_test_id("inbox")).to_contain_text("Nothing waits for you")
    expect(owner_page.get_by_test_id("inbox-count")).to_have_count(0)
    shot(owner_page, "05-owner-overview-empty")


def test_notification_settings_page_at_desktop_and_390_px(
    settings: Any,
    live_server: Any,
    signed_in_page: Callable[[User], Any],
    company_a: Organisation,
    owner_admin: User,
) -> None:
    from playwright.sync_api import expect

    settings.PORTAL_EMBEDDED = True
    channel = services.channel_create(
        organisation=company_a,
        created_by=owner_admin,
        kind=Channel.Kind.DINGTALK,
        name="DingTalk approvals",
        url="http://127.0.0.1:9/robot/send?access_token=abc",
        secret="SECdingtalk-secret-01",
        events=["delegation.requested", "delegation.failed"],
    )
    page = signed_in_page(owner_admin)
    page.goto(f"{live_server.url}/notifications/")
    expect(page.locator("body")).to_contain_text("DingTalk approvals")
    expect(page.locator("body")).to_contain_text("Escalation")
    shot(page, "06-notification-settings-desktop")
    page.set_viewport_size(PHONE)
    page.reload()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "07-notification-settings-390px")
    page.goto(f"{live_server.url}/notifications/channels/{channel.pk}/")
    page.get_by_test_id("send-test").click()
    expect(page.locator("body")).to_contain_text("Test message queued")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert "access_token" not in page.content()  # the URL's key is never shown again
    shot(page, "08-channel-page-390px")
