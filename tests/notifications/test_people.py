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
