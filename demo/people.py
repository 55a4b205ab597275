"""Whom the demo seeds act as."""

from django.conf import settings

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


def seed_decides_with_mfa() -> bool:
    """Whether a decision the seed makes on an admin's behalf says it was made with MFA. Only
    where the portal requires MFA, so that the seed's decisions pass as an admin's would; where
    the demo turns the requirement off, no seeded admin has MFA, and the record (the
    delegation page, the audit log) must not say one was used."""
    return bool(settings.PORTAL_REQUIRE_MFA)
