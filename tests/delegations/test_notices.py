"""The lifecycle tells the people concerned, from its services: who hears about a request, a
decision, a revocation, an expiry; reminders and expiry warnings go once; and no message
ever carries a secret, a credential or a partner-link code."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from delegations.lifecycle.services import delegation_approve, delegation_reject, delegation_revoke
from delegations.models import CredentialIssuance, Delegation, PartnerLink, StaffAssignment
from delegations.notices import credentials_issued_notify, delegations_remind_due
from notifications import channels, sending, services
from notifications.models import Channel, Delivery, NoticeMark
from tests.delegations.factories import CatalogRoleFactory, DelegationFactory
from tests.personas import make_member

pytestmark = pytest.mark.django_db

CHANNEL_SECRET = "SECchannel-signing-secret"
CHANNEL_URL_KEY = "hook-key-0123456789abcdef"


def emailed(event: str) -> set[str]:
    return set(
        Delivery.objects.filter(event=event, recipient__isnull=False).values_list(
            "recipient_email", flat=True
        )
    )


@pytest.fixture
def owner_channel(company_a: Organisation, owner_admin: User, settings: Any) -> Channel:
    settings.PORTAL_EMBEDDED = True
    return services.channel_create(
        organisation=company_a,
        created_by=owner_admin,
        kind="webhook",
        name="Approvals",
        url=f"http://127.0.0.1:9/hook?key={CHANNEL_URL_KEY}",
        secret=CHANNEL_SECRET,
        events=["delegation.requested", "delegation.approved", "delegation.reminder"],
    )


def test_a_request_tells_every_owner_approver_and_the_owner_s_channel(
    owner_admin: User,
    owner_admin_2: User,
    auditor: User,
    partner_admin: User,
    owner_channel: Channel,
    make_request: Callable[..., Delegation],
) -> None:
    second = make_request()
    assert emailed("delegation.requested") == {owner_admin.email, owner_admin_2.email}
    to_channel = Delivery.objects.get(event="delegation.requested", channel=owner_channel)
    assert to_channel.content["link"].endswith(f"/delegations/{second.pk}/")
    assert to_channel.content["organisation"] == "Company A"


def test_a_decision_tells_both_sides_but_never_the_person_who_decided(
    requested: Delegation, owner_admin: User, owner_admin_2: User, partner_admin: User
) -> None:
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    assert emailed("delegation.approved") == {owner_admin_2.email, partner_admin.email}
    # A double click changes nothing and writes nothing more.
    before = Delivery.objects.count()
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    assert Delivery.objects.count() == before


def test_a_rejection_and_a_revocation_are_announced(
    make_request: Callable[..., Delegation],
    owner_admin: User,
    partner_admin: User,
    partner_staff: User,
    ecs_admin: Any,
) -> None:
    rejected = make_request()
    delegation_reject(delegation=rejected, rejected_by=owner_admin, reason="Not this quarter")
    assert partner_admin.email in emailed("delegation.rejected")
    active = make_request()
    delegation_approve(delegation=active, approved_by=owner_admin, with_mfa=True)
    Delegation.objects.filter(pk=active.pk).update(status="active", activated_at=timezone.now())
    StaffAssignment.objects.create(
        delegation=active, partner=active.partner, user=partner_staff, assigned_by=partner_admin
    )
    delegation_revoke(delegation=active, revoked_by=owner_admin, reason="Contract ended")
    assert {partner_admin.email, partner_staff.email} <= emailed("delegation.revoked")
    assert owner_admin.email not in emailed("delegation.revoked")


def test_reminders_go_after_the_wait_once_then_daily_with_the_escalation_contact(
    settings: Any,
    requested: Delegation,
    company_a: Organisation,
    owner_admin: User,
    owner_channel: Channel,
) -> None:
    settings.PORTAL_REMIND_AFTER = 4 * 3600
    escalation = make_member(company_a, Membership.Role.AUDITOR, email="boss@company-a.example")
    services.escalation_set(organisation=company_a, contact=escalation, changed_by=owner_admin)
    created = requested.created_at
    assert delegations_remind_due(now=created + dt.timedelta(hours=3)) == 0
    assert delegations_remind_due(now=created + dt.timedelta(hours=5)) == 1
    assert delegations_remind_due(now=created + dt.timedelta(hours=6)) == 0  # never twice
    assert emailed("delegation.reminder") == {owner_admin.email}
    assert Delivery.objects.filter(event="delegation.reminder", channel=owner_channel).count() == 1
    assert delegations_remind_due(now=created + dt.timedelta(hours=29)) == 1
    assert escalation.email in emailed("delegation.reminder")
    assert delegations_remind_due(now=created + dt.timedelta(hours=30)) == 0


def test_expiry_warnings_go_24_h_and_1_h_before_the_end_each_once(
    ecs_admin: Any, company_b: Organisation, partner_admin: User, owner_admin: User
) -> None:
    now = timezone.now()
    ends = now + dt.timedelta(hours=30)
    delegation = DelegationFactory(
        catalog_role=ecs_admin, partner=company_b, status="active", ends_at=ends
    )
    assert delegations_remind_due(now=now) == 0
    assert delegations_remind_due(now=ends - dt.timedelta(hours=23)) == 1
    assert delegations_remind_due(now=ends - dt.timedelta(hours=22)) == 0
    assert delegations_remind_due(now=ends - dt.timedelta(minutes=50)) == 1
    assert delegations_remind_due(now=ends - dt.timedelta(minutes=40)) == 0
    titles = set(
        Delivery.objects.filter(event="delegation.expiring", recipient=partner_admin).values_list(
            "content__title", flat=True
        )
    )
    assert titles == {
        f"ecs-admin for {company_b.name} ends in 24 hours",
        f"ecs-admin for {company_b.name} ends in 1 hour",
    }
    assert delegation.pk


def test_access_granted_close_to_its_end_gets_only_the_1_h_warning(
    ecs_admin: Any, company_b: Organisation, partner_admin: User
) -> None:
    now = timezone.now()
    DelegationFactory(
        catalog_role=ecs_admin,
        partner=company_b,
        status="active",
        ends_at=now + dt.timedelta(minutes=30),
    )
    assert delegations_remind_due(now=now) == 1
    assert delegations_remind_due(now=now) == 0
    (title,) = Delivery.objects.filter(
        event="delegation.expiring", recipient=partner_admin
    ).values_list("content__title", flat=True)
    assert title.endswith("1 hour")


def test_requests_already_reminded_do_not_hold_up_later_reminders(
    settings: Any, make_request: Callable[..., Delegation], company_b: Organisation
) -> None:
    # Review (head of line): a pass looked at the `limit` oldest waiting requests whether or
    # not they had been reminded today, so once that many were ignored no later request was
    # ever reminded.
    settings.PORTAL_REMIND_AFTER = 3600
    older = make_request()
    newer = DelegationFactory(
        catalog_role=older.catalog_role, partner=company_b, created_at=older.created_at
    )
    Delegation.objects.filter(pk=newer.pk).update(
        created_at=older.created_at + dt.timedelta(minutes=1)
    )
    now = older.created_at + dt.timedelta(hours=2)

    assert delegations_remind_due(now=now, limit=1) == 1
    assert delegations_remind_due(now=now, limit=1) == 1, "the newer request was never looked at"
    assert delegations_remind_due(now=now, limit=1) == 0
    reminded = NoticeMark.objects.filter(key__startswith="delegation.reminder:")
    assert {key.split(":")[1] for key in reminded.values_list("key", flat=True)} == {
        str(older.pk),
        str(newer.pk),
    }


def test_delegations_already_warned_do_not_hold_up_later_expiry_warnings(
    ecs_admin: Any, company_b: Organisation
) -> None:
    # Review (head of line): the `limit` delegations ending first were looked at on every
    # pass, warned or not, so in a bulk grant ending together the rest were never warned.
    now = timezone.now()
    first, second = (
        DelegationFactory(
            catalog_role=ecs_admin,
            partner=company_b,
            status="active",
            ends_at=now + dt.timedelta(hours=20, minutes=minutes),
        )
        for minutes in (0, 1)
    )

    assert delegations_remind_due(now=now, limit=1) == 1
    assert delegations_remind_due(now=now, limit=1) == 1, "the second was never looked at"
    assert delegations_remind_due(now=now, limit=1) == 0
    assert first.pk != second.pk


def _issuance(delegation: Delegation, user: User, admin: User, via: str) -> CredentialIssuance:
    assignment = StaffAssignment.objects.create(
        delegation=delegation, partner=delegation.partner, user=user, assigned_by=admin
    )
    return CredentialIssuance.objects.create(
        delegation=delegation,
        assignment=assignment,
        user=user,
        partner=delegation.partner,
        session_name="alice",
        access_key_id="STS.NSECRETKEYID123",
        expiration=timezone.now() + dt.timedelta(hours=1),
        duration_seconds=3600,
        via=via,
    )


def test_credentials_issued_is_a_security_notice_to_the_person_alone(
    ecs_admin: Any, company_b: Organisation, partner_admin: User, partner_staff: User
) -> None:
    services.preferences_update(user=partner_staff, muted=["delegation.revoked"])
    delegation = DelegationFactory(catalog_role=ecs_admin, partner=company_b, status="active")
    issuance = _issuance(delegation, partner_staff, partner_admin, "web")
    with transaction.atomic():
        credentials_issued_notify(issuance=issuance, first_use_of_key=True)
    (delivery,) = Delivery.objects.filter(event="credentials.issued")
    assert delivery.recipient == partner_staff and delivery.channel is None
    assert "STS.NSECRETKEYID123" not in json.dumps(delivery.content)


def test_no_message_carries_a_secret_a_credential_or_a_partner_link_code(
    settings: Any,
    link_a: tuple[PartnerLink, str],
    make_request: Callable[..., Delegation],
    owner_admin: User,
    partner_admin: User,
    owner_channel: Channel,
    ecs_admin: Any,
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _link, raw_code = link_a
    first = make_request()
    delegation_approve(delegation=first, approved_by=owner_admin, with_mfa=True)
    other_role = CatalogRoleFactory(cloud_account=ecs_admin.cloud_account, role_name="ecs-read")
    second = make_request(catalog_role=other_role)
    delegation_reject(delegation=second, rejected_by=owner_admin, reason="No")
    waiting_role = CatalogRoleFactory(cloud_account=ecs_admin.cloud_account, role_name="oss-ops")
    make_request(catalog_role=waiting_role)
    delegations_remind_due(now=timezone.now() + dt.timedelta(days=3))
    forbidden = [raw_code, CHANNEL_SECRET, CHANNEL_URL_KEY, "not-a-real-ciphertext"]
    deliveries = list(Delivery.objects.all())
    assert {d.event for d in deliveries} >= {
        "delegation.requested",
        "delegation.approved",
        "delegation.rejected",
        "delegation.reminder",
    }
    rendered: list[str] = []
    for delivery in deliveries:
        if delivery.channel_id:
            for kind in Channel.Kind.values:
                request = channels.build_request(
                    kind=kind,
                    url="https://x.example/",
                    secret="",
                    notice=delivery.content,
                    delivery_key="d",
                )
                rendered.append(request.body.decode())
        else:
            sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None)
    for message in mail.outbox:
        rendered += [message.subject, message.body, *(a[0] for a in message.alternatives)]
    assert len(mail.outbox) >= 4
    leaks = [(secret, text[:80]) for text in rendered for secret in forbidden if secret in text]
    assert leaks == []


def test_a_failed_apply_tells_both_sides_with_the_cloud_error_code(
    requested: Delegation, owner_admin: User, owner_admin_2: User, partner_admin: User
) -> None:
    from delegations.lifecycle.automatic import delegation_mark_failed

    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    delegation_mark_failed(
        delegation=requested, error_code="EntityNotExist.Role", error_message="gone"
    )
    assert emailed("delegation.failed") == {
        owner_admin.email,
        owner_admin_2.email,
        partner_admin.email,
    }
    content = Delivery.objects.filter(event="delegation.failed").first().content  # type: ignore[union-attr]
    assert ["Cloud error", "EntityNotExist.Role"] in content["facts"]


def test_a_withdrawn_request_tells_the_owner_s_approvers(
    requested: Delegation, owner_admin: User, partner_admin: User
) -> None:
    from delegations.lifecycle.starting import delegation_withdraw

    delegation_withdraw(delegation=requested, withdrawn_by=partner_admin)
    assert owner_admin.email in emailed("delegation.withdrawn")
    assert partner_admin.email not in emailed("delegation.withdrawn")


def test_a_notice_says_which_of_the_owners_accounts_the_role_is_in(
    make_request: Callable[..., Delegation],
    ecs_admin: Any,
    owner_admin: User,
    partner_admin: User,
    partner_staff: User,
) -> None:
    """One role name can be granted in several of the owner's accounts (a fleet's, or a
    request that chose another account): each message names the account, or two read alike."""
    from tests.delegations.factories import CloudAccountFactory

    staging = CloudAccountFactory(
        organisation=ecs_admin.organisation, account_uid="11223355", alias="", is_primary=False
    )
    ecs_admin.offered_in_all_accounts = True
    ecs_admin.save(update_fields=["offered_in_all_accounts"])
    at_home = make_request()
    elsewhere = make_request(cloud_account=staging)
    home_uid = ecs_admin.cloud_account.account_uid
    for delegation, uid in ((at_home, home_uid), (elsewhere, "11223355")):
        (content,) = {
            json.dumps(d.content["facts"])
            for d in Delivery.objects.filter(event="delegation.requested")
            if d.content["link"].endswith(f"/delegations/{delegation.pk}/")
        }
        assert ["Account", uid] in json.loads(content)
    issuance = _issuance(elsewhere, partner_staff, partner_admin, "web")
    with transaction.atomic():
        credentials_issued_notify(issuance=issuance, first_use_of_key=True)
    (issued,) = Delivery.objects.filter(event="credentials.issued")
    assert ["Account", "11223355"] in issued.content["facts"]
