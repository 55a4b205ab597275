"""Reads and tenancy checks for organisations, memberships and invitations.

Anything that belongs to another organisation raises Http404 exactly like a missing id, so a
probe cannot tell "exists elsewhere" from "does not exist".
"""

from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest

from accounts.models import Invitation, Membership, Organisation, User, hash_token
from core.web import get_or_404, parse_uuid

# The session key holding the id of the organisation a person is currently acting for. It is a
# preference only: every request re-validates it against the person's memberships.
CURRENT_ORGANISATION_SESSION_KEY = "portal_current_organisation"

_MAX_TOKEN_LENGTH = 128


def memberships_for_user(*, user: User) -> list[Membership]:
    if not user.is_authenticated:
        return []
    return list(
        Membership.objects.filter(user=user)
        .select_related("organisation")
        .order_by("organisation__name", "organisation__slug")
    )


def membership_resolve_current(
    *, memberships: list[Membership], preferred_organisation_id: str | None
) -> Membership | None:
    """The membership the preferred organisation names, else the first one, else None."""
    for membership in memberships:
        if str(membership.organisation_id) == str(preferred_organisation_id):
            return membership
    return memberships[0] if memberships else None


def current_membership(request: HttpRequest) -> Membership | None:
    """The requesting person's membership in the organisation they are acting for.

    Set on every request by `accounts.middleware.CurrentOrganisationMiddleware`.
    """
    return getattr(request, "membership", None)


def current_organisation(request: HttpRequest) -> Organisation | None:
    membership = current_membership(request)
    return membership.organisation if membership else None


def membership_get_for_user(*, user: User, organisation_id: object) -> Membership:
    """The user's own membership in `organisation_id`; 404 when they are not a member."""
    organisation_uuid = parse_uuid(organisation_id)
    return get_or_404(
        Membership.objects.select_related("organisation"),
        user=user,
        organisation_id=organisation_uuid,
    )


def organisation_members(*, organisation: Organisation) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organisation=organisation)
        .select_related("user")
        .order_by("user__email")
    )


def organisation_admin_count(*, organisation: Organisation) -> int:
    return Membership.objects.filter(organisation=organisation, role=Membership.Role.ADMIN).count()


def membership_get_for_organisation(
    *, organisation: Organisation, membership_id: object
) -> Membership:
    membership_uuid = parse_uuid(membership_id)
    return get_or_404(
        Membership.objects.select_related("user", "organisation"),
        pk=membership_uuid,
        organisation=organisation,
    )


def organisation_open_invitations(*, organisation: Organisation) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(organisation=organisation, accepted_at=None, cancelled_at=None)
        .select_related("invited_by")
        .order_by("email")
    )


def invitation_get_for_organisation(
    *, organisation: Organisation, invitation_id: object
) -> Invitation:
    invitation_uuid = parse_uuid(invitation_id)
    return get_or_404(
        Invitation.objects.select_related("organisation"),
        pk=invitation_uuid,
        organisation=organisation,
    )


def invitation_get_by_token(*, raw_token: str) -> Invitation:
    """The invitation an emailed link points at (any state); 404 for an unknown token."""
    if not raw_token or len(raw_token) > _MAX_TOKEN_LENGTH:
        raise Http404
    return get_or_404(
        Invitation.objects.select_related("organisation", "invited_by"),
        token_hash=hash_token(raw_token),
    )


def user_get_by_email(*, email: str) -> User | None:
    """The person whose account's own (sign-in) address is `email`, in any case, or None."""
    return User.objects.filter(email__iexact=email.strip()).first()


def user_exists_with_email(*, email: str) -> bool:
    """Whether a person holds `email`: as their account's own address (unique, confirmed or
    not) or as a confirmed extra one. Someone else's unconfirmed extra address holds nothing:
    anyone can type any address into their account, and allauth keeps only verified addresses
    unique, so it must not stand between the address's owner and an invitation or sign-up."""
    from allauth.account.models import EmailAddress

    return (
        User.objects.filter(email__iexact=email).exists()
        or EmailAddress.objects.filter(email__iexact=email, verified=True).exists()
    )


def _nobody_confirmed() -> Q:
    """An organisation with people, none of whom ever confirmed an email address or signed in:
    a sign-up whose founder never followed the confirmation link (which the founder alone
    can, so it may be anyone's typo or anyone squatting the account UID)."""
    members = Membership.objects.filter(organisation=OuterRef("pk"))
    someone_real = members.filter(
        Q(user__emailaddress__verified=True) | Q(user__last_login__isnull=False)
    )
    return Q(Exists(members)) & ~Q(Exists(someone_real))


def organisations_confirmed(organisations: QuerySet[Organisation]) -> QuerySet[Organisation]:
    """`organisations` without unconfirmed sign-ups: another organisation never names one of
    those (an offer, a break-glass partner), so nothing of theirs hangs off a sign-up that may
    lapse (`accounts.services.organisation_signups_expire`)."""
    return organisations.exclude(_nobody_confirmed())


def organisation_is_confirmed(*, organisation: Organisation) -> bool:
    return organisations_confirmed(Organisation.objects.filter(pk=organisation.pk)).exists()


def organisation_signups_unconfirmed(*, signed_up_before: datetime) -> QuerySet[Organisation]:
    """Sign-ups made before `signed_up_before` that nobody has confirmed."""
    return Organisation.objects.filter(_nobody_confirmed(), created_at__lt=signed_up_before)
