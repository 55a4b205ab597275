"""Emails and chat messages in each recipient's language and time zone, never the sender's
(issue 17); exports stay UTC ISO 8601 whatever the reader's zone."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.utils import translation

from accounts.invitations import invitation_create
from accounts.models import Membership, Organisation, User
from accounts.services import membership_remove
from audit.models import AuditEvent
from core.i18n import Text, recipient_locale
from notifications import sending, services
from notifications.models import Delivery
from tests.audit.history import History, history_fixture  # noqa: F401
from tests.personas import make_member

pytestmark = pytest.mark.django_db


def _speaks(user: User, language: str, time_zone: str = "") -> User:
    User.objects.filter(pk=user.pk).update(language=language, time_zone=time_zone)
    user.refresh_from_db()
    return user


def _send_all() -> None:
    for delivery in Delivery.objects.filter(status=Delivery.Status.PENDING):
        sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None)


def test_two_recipients_read_one_notice_each_in_their_own_language(
    company_b: Organisation, partner_admin: User, partner_staff: User
) -> None:
    _speaks(partner_admin, "zh-hans", "Asia/Shanghai")
    _speaks(partner_staff, "en")
    # The sender works in Chinese: what they read must not decide what others read.
    with translation.override("zh-hans"):
        membership = Membership.objects.get(user=partner_staff, organisation=company_b)
        membership_remove(membership=membership, removed_by=partner_admin)
    titles = {
        d.recipient_email: d.content["title"]
        for d in Delivery.objects.filter(event="member.removed")
    }
    assert titles[partner_staff.email] == f"{partner_staff.email} left Company B"
    assert titles[partner_admin.email] == f"{partner_staff.email} 已离开 Company B"

    mail.outbox.clear()
    with translation.override("en"):  # the worker's own language is not the recipients' either
        _send_all()
    by_recipient = {message.to[0]: message for message in mail.outbox}
    chinese, english = by_recipient[partner_admin.email], by_recipient[partner_staff.email]
    assert chinese.subject.startswith("[合作伙伴访问门户] ")
    assert "已离开 Company B" in chinese.subject
    assert "是因为您是 Company B 的成员" in chinese.body
    assert "You receive this because" not in chinese.body
    assert english.subject == (
        f"[Partner Access Portal] {partner_staff.email} left Company B · Company B"
    )
    assert "You receive this because you are a member of Company B." in english.body
    html = dict(chinese.alternatives)[0] if isinstance(chinese.alternatives, dict) else None
    assert html is None or 'lang="zh-hans"' in html


def test_an_invitation_email_is_in_the_invited_persons_language_and_zone(
    company_a: Organisation,
    owner_admin: User,
    partner_staff: User,
    django_capture_on_commit_callbacks: object,
) -> None:
    # The invitee already has an account (in another organisation), in Chinese and Shanghai.
    _speaks(partner_staff, "zh-hans", "Asia/Shanghai")
    mail.outbox.clear()
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        invitation = invitation_create(
            organisation=company_a,
            email=partner_staff.email,
            role="auditor",
            invited_by=owner_admin,
            base_url="http://testserver/",
        )
    (message,) = mail.outbox
    assert message.subject == "[合作伙伴访问门户] 您受邀加入 Company A"
    assert "以审计员身份加入合作伙伴访问门户上的 Company A" in message.body
    assert "(Asia/Shanghai)" in message.body
    expires = invitation.expires_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert f"{expires.year}年{expires.month}月{expires.day}日" in message.body


def test_an_invitation_to_an_unknown_address_is_in_english_and_utc(
    company_a: Organisation, owner_admin: User, django_capture_on_commit_callbacks: object
) -> None:
    mail.outbox.clear()
    with translation.override("zh-hans"), django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        invitation_create(
            organisation=company_a,
            email="someone-new@example.com",
            role="auditor",
            invited_by=owner_admin,
            base_url="http://testserver/",
        )
    (message,) = mail.outbox
    assert message.subject == "[Partner Access Portal] You are invited to join Company A"
    assert "as auditor" in message.body and "(UTC)" in message.body


def test_a_chat_channel_reads_its_own_language(
    company_a: Organisation, owner_admin: User, settings: object
) -> None:
    # A loopback webhook is allowed where the portal runs embedded; nothing is sent here.
    settings.PORTAL_EMBEDDED = True  # type: ignore[attr-defined]
    hook = "http://127.0.0.1:9/hook"
    chinese = services.channel_create(
        organisation=company_a,
        created_by=owner_admin,
        kind="webhook",
        name="值班群",
        url=hook,
        events=["member.invited"],
        language="zh-hans",
    )
    english = services.channel_create(
        organisation=company_a,
        created_by=owner_admin,
        kind="webhook",
        name="ops",
        url=hook,
        events=["member.invited"],
    )
    make_member(company_a, Membership.Role.ADMIN, email="other@company-a.example")
    with translation.override("en"):
        invitation_create(
            organisation=company_a,
            email="new@company-a.example",
            role="auditor",
            invited_by=owner_admin,
            base_url="http://testserver/",
        )
    summaries = {
        d.channel_id: d.content["summary"]
        for d in Delivery.objects.filter(event="member.invited", channel__isnull=False)
    }
    assert summaries[chinese.pk] == (f"{owner_admin.email} 邀请 new@company-a.example 担任审计员。")
    assert summaries[english.pk] == f"{owner_admin.email} invited new@company-a.example as auditor."


def test_text_renders_when_read_with_times_in_the_readers_zone() -> None:
    message = Text(
        translation.gettext_lazy("The link works until %(until)s."),
        until=datetime(2026, 12, 6, 1, 38, tzinfo=UTC),
    )
    with recipient_locale(language="en", time_zone="America/New_York"):
        english = str(message)
    with recipient_locale(language="zh-hans", time_zone="Asia/Shanghai"):
        chinese = str(message)
    assert english == "The link works until 5 Dec 2026, 20:38 (America/New_York)."
    assert "2026年12月6日 09:38 (Asia/Shanghai)" in chinese


def test_exports_stay_utc_iso_8601_whatever_the_readers_zone_and_language(
    history: History,
) -> None:
    _speaks(history.auditor, "zh-hans", "Asia/Shanghai")
    client = history.client(history.auditor)
    csv_text = b"".join(client.get("/audit/events/export.csv").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(csv_text.removeprefix("\ufeff"))))
    document = json.loads(
        b"".join(client.get("/audit/events/export.json").streaming_content).decode()
    )
    events = document["events"]
    stored = {
        event.sequence: event.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for event in AuditEvent.objects.all()
    }
    assert rows and all(row["occurred_at"] == stored[int(row["sequence"])] for row in rows)
    assert events and all(e["occurred_at"] == stored[int(e["sequence"])] for e in events)
    assert document["export"]["generated_at"].endswith(("Z", "+00:00"))
    # The column keys stay English too: tools parse them.
    assert "occurred_at" in rows[0] and "action" in rows[0]


def test_a_notice_fact_that_is_a_time_is_read_in_each_recipients_zone(
    company_a: Organisation, owner_admin: User, auditor: User
) -> None:
    from django.db import transaction

    from notifications.events import NotificationEvent
    from notifications.services import Notice, notify

    _speaks(owner_admin, "zh-hans", "Asia/Shanghai")
    _speaks(auditor, "en", "Europe/London")
    ends = datetime(2026, 12, 6, 1, 38, tzinfo=UTC)
    with transaction.atomic():
        notify(
            key="i18n:fact-time",
            notice=Notice(
                event=NotificationEvent.MEMBER_INVITED,
                title=translation.gettext_lazy("Access ends soon"),
                summary=Text(translation.gettext_lazy("Ends %(when)s"), when=ends),
                link_path="/",
                facts=((translation.gettext_lazy("Expired"), ends),),
            ),
            organisation=company_a,
            people=[owner_admin, auditor],
            to_channels=False,
        )
    content = {d.recipient_id: d.content for d in Delivery.objects.filter(event="member.invited")}
    assert content[owner_admin.pk]["title"] == "访问即将结束"
    assert content[owner_admin.pk]["facts"] == [["已过期", "2026年12月6日 09:38 (Asia/Shanghai)"]]
    assert content[auditor.pk]["facts"] == [["Expired", "6 Dec 2026, 01:38 (Europe/London)"]]
