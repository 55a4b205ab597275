"""Whom the demo seeds act as."""

from accounts.models import Membership, Organisation, User


def first_admin(organisation: Organisation) -> User | None:
    """The organisation's longest-standing admin, or None when it has none."""
    membership = (
        Membership.objects.filter(organisation=organisation, role=Membership.Role.ADMIN)
        .select_related("user")
        .order_by("created_at")
        .first()
    )
    return membership.user if membership else None
