"""Invitations: an admin invites someone by email, and they accept (signed in, or as a new
account). Like `accounts.services`, every state change is keyword-only, runs in one transaction
and writes its audit event inside it; the memberships they make take the organisation's row
lock that `accounts.services` takes for every membership change.
"""

import logging
import secrets
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import emails, hooks, selectors, services
from accounts.models import Invitation, Membership, Organisation, User, hash_token
from audit.actions import AuditAction
from audit.services import audit_record

logger = logging.getLogger(__name__)

INVITATION_LIFETIME = timedelta(days=7)


def _new_token() -> tuple[str, str]:
    raw = secrets.token_urlsafe(32)
    return raw, hash_token(raw)


def invitation_accept_url(*, base_url: str, raw_token: str) -> str:
    return base_url.rstrip("/") + reverse("accounts:invitation_accept", args=[raw_token])


def _send_invitation_on_commit(*, invitation: Invitation, raw_token: str, base_url: str) -> None:
    accept_url = invitation_accept_url(base_url=base_url, raw_token=raw_token)

    def send() -> None:
        fresh = Invitation.objects.select_related("organisation", "invited_by").get(
            pk=invitation.pk
        )
        try:
            emails.send_invitation(invitation=fresh, accept_url=accept_url)
        except Exception:  # SMTP and template errors alike: the invitation itself is valid
            # The link (and its token) is deliberately not logged.
            logger.exception("Could not send the email for invitation %s", invitation.pk)
            invitation.email_delivery_failed = True

    # Sent only once the invitation is committed: a rolled-back invitation never emails anyone.
    # The raw token lives only in this closure and the email, never in a task payload or log.
    transaction.on_commit(send)


def _invitation_snapshot(invitation: Invitation) -> dict:
    return {
        "email": invitation.email,
        "role": invitation.role,
        "expires_at": invitation.expires_at.isoformat(),
    }


@transaction.atomic
def invitation_create(
    *, organisation: Organisation, email: str, role: str, invited_by: User, base_url: str
) -> Invitation:
    organisation = services.lock_organisation(organisation)
    email = User.objects.normalize_email(email).strip().lower()
    services.validate_role(organisation=organisation, role=role)
    if Membership.objects.filter(organisation=organisation, user__email__iexact=email).exists():
        raise ValidationError(
            {
                "email": _("%(email)s is already a member of %(organisation)s.")
                % {"email": email, "organisation": organisation.name}
            }
        )
    if Invitation.objects.filter(
        organisation=organisation, email=email, accepted_at=None, cancelled_at=None
    ).exists():
        raise ValidationError(
            {
                "email": _(
                    "%(email)s already has an open invitation. Resend it from the list below."
                )
                % {"email": email}
            }
        )
    raw_token, token_hash = _new_token()
    now = timezone.now()
    invitation = Invitation.objects.create(
        organisation=organisation,
        email=email,
        role=role,
        token_hash=token_hash,
        invited_by=invited_by,
        created_at=now,
        sent_at=now,
        expires_at=now + INVITATION_LIFETIME,
    )
    audit_record(
        action=AuditAction.INVITATION_SENT,
        actor=invited_by,
        organisation=organisation,
        target=invitation,
        target_label=email,
        after=_invitation_snapshot(invitation),
    )
    _send_invitation_on_commit(invitation=invitation, raw_token=raw_token, base_url=base_url)
    hooks.member_invited.send(sender=Invitation, invitation=invitation, invited_by=invited_by)
    return invitation


def _lock_open_invitation(invitation: Invitation) -> Invitation:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at:
        raise ValidationError(_("This invitation has already been accepted."))
    if invitation.cancelled_at:
        raise ValidationError(_("This invitation has been cancelled."))
    return invitation


@transaction.atomic
def invitation_resend(*, invitation: Invitation, resent_by: User, base_url: str) -> Invitation:
    """Send a fresh link. The previous link stops working and the expiry restarts."""
    invitation = _lock_open_invitation(invitation)
    raw_token, token_hash = _new_token()
    now = timezone.now()
    before = {"expires_at": invitation.expires_at.isoformat()}
    invitation.token_hash = token_hash
    invitation.sent_at = now
    invitation.expires_at = now + INVITATION_LIFETIME
    invitation.save(update_fields=["token_hash", "sent_at", "expires_at"])
    audit_record(
        action=AuditAction.INVITATION_RESENT,
        actor=resent_by,
        organisation=invitation.organisation,
        target=invitation,
        target_label=invitation.email,
        before=before,
        after=_invitation_snapshot(invitation),
    )
    _send_invitation_on_commit(invitation=invitation, raw_token=raw_token, base_url=base_url)
    return invitation


@transaction.atomic
def invitation_cancel(*, invitation: Invitation, cancelled_by: User) -> Invitation:
    current = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if current.cancelled_at:
        return current  # a double click changes nothing
    invitation = _lock_open_invitation(current)
    invitation.cancelled_at = timezone.now()
    invitation.save(update_fields=["cancelled_at"])
    audit_record(
        action=AuditAction.INVITATION_CANCELLED,
        actor=cancelled_by,
        organisation=invitation.organisation,
        target=invitation,
        target_label=invitation.email,
        before={"status": "pending"},
        after={"status": "cancelled"},
    )
    return invitation


def _lock_acceptable_invitation(invitation: Invitation) -> Invitation:
    invitation = _lock_open_invitation(invitation)
    if invitation.is_expired:
        raise ValidationError(
            _("This invitation has expired. Ask an admin of the organisation to resend it.")
        )
    return invitation


def user_owns_email(*, user: User, email: str) -> bool:
    if user.email.lower() == email.lower():
        return True
    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


def _accept(*, invitation: Invitation, user: User) -> Membership:
    organisation = services.lock_organisation(invitation.organisation)
    if Membership.objects.filter(organisation=organisation, user=user).exists():
        raise ValidationError(
            _("You are already a member of %(organisation)s.") % {"organisation": organisation.name}
        )
    services.validate_role(organisation=organisation, role=invitation.role)
    hooks.member_joining_announce(organisation=organisation, user=user, added_by=user)
    membership = Membership.objects.create(
        user=user, organisation=organisation, role=invitation.role
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        action=AuditAction.INVITATION_ACCEPTED,
        actor=user,
        organisation=organisation,
        target=membership,
        target_label=user.email,
        after={"email": user.email, "role": membership.role, "invitation": str(invitation.pk)},
    )
    return membership


def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """An existing, signed-in person accepts an invitation addressed to one of their emails."""
    try:
        return _accept_signed_in(invitation=invitation, user=user)
    except hooks.JoinRefused as refusal:
        services.audit_join_refused(
            refusal,
            organisation=invitation.organisation,
            user=user,
            role=invitation.role,
            by=user,
            metadata={"invitation": str(invitation.pk)},
        )
        raise


@transaction.atomic
def _accept_signed_in(*, invitation: Invitation, user: User) -> Membership:
    invitation = _lock_acceptable_invitation(invitation)
    if not user_owns_email(user=user, email=invitation.email):
        raise ValidationError(
            _("This invitation is for %(email)s. Sign in with that address to accept it.")
            % {"email": invitation.email}
        )
    return _accept(invitation=invitation, user=user)


@transaction.atomic
def invitation_accept_as_new_user(
    *, invitation: Invitation, password: str, first_name: str = "", last_name: str = ""
) -> Membership:
    """A person without an account accepts: the account is created with the invited address.

    Following the emailed link proves the address, so it is stored as verified.
    """
    invitation = _lock_acceptable_invitation(invitation)
    email = invitation.email
    if selectors.user_exists_with_email(email=email):
        raise ValidationError(_("An account with this email already exists. Sign in to accept."))
    user = User.objects.create_user(
        email=email, password=password, first_name=first_name.strip(), last_name=last_name.strip()
    )
    address = EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    services.email_address_confirmed(email_address=address)
    return _accept(invitation=invitation, user=user)
