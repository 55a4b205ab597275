"""Removing a member tells the person and the organisation's admins, in the removal's own
transaction (through the accounts hook the delegations app forwards)."""

import pytest

from accounts.models import Membership, Organisation, User
from accounts.services import membership_remove
from notifications.models import Delivery

pytestmark = pytest.mark.django_db


def test_a_removed_member_and_the_admins_hear_of_it(
    company_b: Organisation, partner_admin: User, partner_staff: User
) -> None:
    membership = Membership.objects.get(user=partner_staff, organisation=company_b)
    membership_remove(membership=membership, removed_by=partner_admin)
    emails = set(
        Delivery.objects.filter(event="member.removed").values_list("recipient_email", flat=True)
    )
    assert emails == {partner_staff.email, partner_admin.email}
    (content,) = {str(d.content["title"]) for d in Delivery.objects.filter(event="member.removed")}
    assert partner_staff.email in content and "Company B" in content


def test_an_invitation_tells_the_other_admins_never_the_invitation_link(
    company_a: Organisation, owner_admin: User
) -> None:
    from accounts.invitations import invitation_create
    from tests.personas import make_member

    other_admin = make_member(company_a, Membership.Role.ADMIN, email="other@company-a.example")
    invitation_create(
        organisation=company_a,
        email="new@company-a.example",
        role="auditor",
        invited_by=owner_admin,
        base_url="http://testserver/",
    )
    (delivery,) = Delivery.objects.filter(event="member.invited")
    assert delivery.recipient == other_admin
    assert "new@company-a.example" in delivery.content["title"]
    assert "/invitations/" not in str(delivery.content)


def test_the_demo_seed_adds_one_local_webhook_channel_per_organisation_once(
    settings: object, company_a: Organisation, owner_admin: User
) -> None:
    from demo.notification_seed import demo_webhook_channels_seed
    from notifications.models import Channel

    settings.PORTAL_EMBEDDED = True  # type: ignore[attr-defined]
    lines = demo_webhook_channels_seed(organisations=[company_a])
    demo_webhook_channels_seed(organisations=[company_a])
    (channel,) = Channel.objects.filter(organisation=company_a)
    assert channel.kind == "webhook" and channel.has_secret
    assert "delegation.requested" in channel.events
    assert lines and lines[0].endswith("/dev/webhooks/")
