"""State changes for organisations, memberships and people's accounts (invitations are in
`accounts.invitations`).

Every function is keyword-only, runs in one transaction and writes its audit event inside that
transaction, so a failed audit write rolls the change back. None of them looks at an HTTP
request: views pass in what they know (the acting user, the site's base URL).
"""

import logging
import uuid
from datetime import datetime, timedelta

from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.db.models.deletion import Collector, ProtectedError, RestrictedError
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from accounts import hooks, selectors
from accounts.models import (
    Invitation,
    Membership,
    Organisation,
    User,
    validate_account_uid,
    validate_enterprise_alias,
    validate_time_zone,
)
from audit.actions import AuditAction
from audit.services import audit_record, audit_refusal
from core.db import conflict_as_validation_error

logger = logging.getLogger(__name__)

_SLUG_MAX_LENGTH = 60


def _organisation_slug(name: str) -> str:
    base = slugify(name)[:_SLUG_MAX_LENGTH].strip("-") or "organisation"
    slug = base
    suffix = 2
    while Organisation.objects.filter(slug=slug).exists():
        slug = f"{base}-{suffix}"
        suffix += 1
    return slug


def _organisation_snapshot(organisation: Organisation) -> dict:
    return {
        "name": organisation.name,
        "slug": organisation.slug,
        "kind": organisation.kind,
        "account_uid": organisation.account_uid,
        "enterprise_alias": organisation.enterprise_alias,
    }


def organisation_account_uid_taken(*, kind: str, account_uid: str) -> bool:
    return Organisation.objects.filter(kind=kind, account_uid=account_uid).exists()


_ACCOUNT_UID_TAKEN = {
    "account_uid": _("An organisation of this kind is already registered for this account.")
}


@transaction.atomic
def organisation_register(
    *,
    founder: User,
    name: str,
    kind: str,
    account_uid: str,
    enterprise_alias: str = "",
    slug: str | None = None,
) -> Organisation:
    """Create an organisation with `founder` as its first admin."""
    name = name.strip()
    if not name:
        raise ValidationError({"organisation_name": _("Enter the organisation's name.")})
    if kind not in Organisation.Kind.values:
        raise ValidationError({"kind": _("Choose resource owner or partner.")})
    validate_account_uid(account_uid)
    if enterprise_alias:
        validate_enterprise_alias(enterprise_alias)
    if organisation_account_uid_taken(kind=kind, account_uid=account_uid):
        raise ValidationError(_ACCOUNT_UID_TAKEN)
    organisation = Organisation(
        name=name,
        slug=slug or _organisation_slug(name),
        kind=kind,
        account_uid=account_uid,
        enterprise_alias=enterprise_alias,
    )
    organisation.full_clean()
    with conflict_as_validation_error(_ACCOUNT_UID_TAKEN):
        organisation.save(force_insert=True)
    # Nothing to record when refused: the organisation goes with the rollback.
    hooks.member_joining_announce(organisation=organisation, user=founder, added_by=founder)
    membership = Membership.objects.create(
        user=founder, organisation=organisation, role=Membership.Role.ADMIN
    )
    audit_record(
        action=AuditAction.ORGANISATION_REGISTERED,
        actor=founder,
        organisation=organisation,
        target=organisation,
        after={**_organisation_snapshot(organisation), "first_admin": founder.email},
    )
    _audit_member_added(membership=membership, added_by=founder)
    return organisation


# What a sign-up nobody confirmed consists of. Anything else that deleting it would take along
# (another organisation's break-glass role naming it, made before such a partner was refused)
# keeps it, for an operator to look at.
_SIGNUP_ROWS = frozenset(
    model._meta.label for model in (Organisation, Membership, Invitation, User, EmailAddress)
)


class _Inventory(Collector):
    """Everything a delete would take along, row by row: no model escapes the check as a
    bulk "fast" delete."""

    def can_fast_delete(self, *args: object, **kwargs: object) -> bool:
        return False


def organisation_signups_expire() -> int:
    """Celery beat: remove the sign-ups nobody confirmed within PORTAL_UNCONFIRMED_SIGNUP_DAYS,
    with their never-confirmed founders, so an account UID (unique per kind) and an email
    address are not held for good by a typo or a squatter. Each in its own transaction, audited.
    Returns how many were removed."""
    signed_up_before = timezone.now() - timedelta(days=settings.PORTAL_UNCONFIRMED_SIGNUP_DAYS)
    lapsed = selectors.organisation_signups_unconfirmed(signed_up_before=signed_up_before)
    return sum(
        _organisation_signup_expire(organisation_id=pk, signed_up_before=signed_up_before)
        for pk in list(lapsed.values_list("pk", flat=True))
    )


@transaction.atomic
def _organisation_signup_expire(*, organisation_id: uuid.UUID, signed_up_before: datetime) -> bool:
    organisation = Organisation.objects.select_for_update().filter(pk=organisation_id).first()
    if organisation is None or organisation.created_at >= signed_up_before:
        return False
    # The people and their addresses are locked as well: a founder confirming at this moment
    # either commits first (and is seen below) or waits until the organisation is gone.
    people = list(
        User.objects.select_for_update()
        .filter(memberships__organisation=organisation)
        .order_by("pk")
    )
    addresses = list(EmailAddress.objects.select_for_update().filter(user__in=people))
    if not people or any(p.last_login for p in people) or any(a.verified for a in addresses):
        return False
    # Their accounts go too (they can never have signed in), unless they belong elsewhere.
    leaving = [
        person
        for person in people
        if not Membership.objects.filter(user=person).exclude(organisation=organisation).exists()
    ]
    inventory = _Inventory(using=router.db_for_write(Organisation))
    try:
        for rows in ([organisation], leaving):
            inventory.collect(rows)
    except ProtectedError as error:
        found = {obj._meta.label for obj in error.protected_objects}
    except RestrictedError as error:
        found = {obj._meta.label for obj in error.restricted_objects}
    else:
        found = {model._meta.label for model, rows in inventory.data.items() if rows}
    if found - _SIGNUP_ROWS:
        logger.warning(
            "The sign-up %s (%s, account %s) was never confirmed but is kept: %s refer to it.",
            organisation.pk,
            organisation.kind,
            organisation.account_uid,
            ", ".join(sorted(found - _SIGNUP_ROWS)),
        )
        return False
    audit_record(
        action=AuditAction.ORGANISATION_SIGNUP_EXPIRED,
        actor=None,
        organisation=organisation,
        target=organisation,
        before={
            **_organisation_snapshot(organisation),
            "first_admin": ", ".join(person.email for person in people),
        },
        metadata={"unconfirmed_days": settings.PORTAL_UNCONFIRMED_SIGNUP_DAYS},
    )
    inventory.delete()
    return True


def membership_create(
    *, organisation: Organisation, user: User, role: str, added_by: User | None = None
) -> Membership:
    """Add an existing person directly (operators and the demo seed; people use invitations)."""
    try:
        return _create(organisation=organisation, user=user, role=role, added_by=added_by)
    except hooks.JoinRefused as refusal:
        audit_join_refused(refusal, organisation=organisation, user=user, role=role, by=added_by)
        raise


@transaction.atomic
def _create(
    *, organisation: Organisation, user: User, role: str, added_by: User | None
) -> Membership:
    organisation = lock_organisation(organisation)
    validate_role(organisation=organisation, role=role)
    if Membership.objects.filter(user=user, organisation=organisation).exists():
        raise ValidationError(
            _("%(email)s is already a member of %(organisation)s.")
            % {"email": user.email, "organisation": organisation.name}
        )
    hooks.member_joining_announce(organisation=organisation, user=user, added_by=added_by)
    membership = Membership.objects.create(user=user, organisation=organisation, role=role)
    _audit_member_added(membership=membership, added_by=added_by)
    return membership


def audit_join_refused(
    refusal: hooks.JoinRefused,
    *,
    organisation: Organisation,
    user: User,
    role: str,
    by: User | None,
    metadata: dict[str, str] | None = None,
) -> None:
    """Record a refused join once the change is rolled back, so that the event survives it."""
    audit_refusal(
        because=" ".join(refusal.messages),
        metadata=metadata,
        action=AuditAction.MEMBER_JOIN_DENIED,
        actor=by,
        organisation=organisation,
        target=user,
        target_label=user.email,
        after={"email": user.email, "role": role},
    )


def _audit_member_added(*, membership: Membership, added_by: User | None) -> None:
    audit_record(
        action=AuditAction.MEMBER_ADDED,
        actor=added_by,
        organisation=membership.organisation,
        target=membership,
        target_label=membership.user.email,
        after={"email": membership.user.email, "role": membership.role},
    )


def validate_role(*, organisation: Organisation, role: str) -> None:
    if role not in Membership.roles_for_kind(organisation.kind):
        allowed = ", ".join(r.label.lower() for r in Membership.roles_for_kind(organisation.kind))
        raise ValidationError(
            {"role": _("Choose one of this organisation's roles: %(roles)s.") % {"roles": allowed}}
        )


def lock_organisation(organisation: Organisation) -> Organisation:
    # Every change to an organisation's memberships takes this row lock first, so two admins
    # demoting each other at the same moment cannot leave the organisation without an admin.
    return Organisation.objects.select_for_update().get(pk=organisation.pk)


def _other_admins_exist(*, organisation: Organisation, excluding: Membership) -> bool:
    return (
        Membership.objects.filter(organisation=organisation, role=Membership.Role.ADMIN)
        .exclude(pk=excluding.pk)
        .exists()
    )


def membership_change_role(*, membership: Membership, role: str, changed_by: User) -> Membership:
    try:
        return _change_role(membership=membership, role=role, changed_by=changed_by)
    except hooks.AdminStillNeeded as refusal:
        _audit_admin_still_needed(
            refusal,
            action=AuditAction.MEMBER_ROLE_CHANGE_DENIED,
            membership=membership,
            by=changed_by,
            after={"role": role},
        )
        raise


@transaction.atomic
def _change_role(*, membership: Membership, role: str, changed_by: User) -> Membership:
    organisation = lock_organisation(membership.organisation)
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    validate_role(organisation=organisation, role=role)
    if membership.role == role:
        return membership
    if membership.role == Membership.Role.ADMIN and not _other_admins_exist(
        organisation=organisation, excluding=membership
    ):
        raise ValidationError(
            {"role": _("This is the organisation's only admin. Make someone else admin first.")}
        )
    if membership.role == Membership.Role.ADMIN:
        hooks.admin_leaving_announce(membership=membership, changed_by=changed_by)
    before = {"role": membership.role}
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        action=AuditAction.MEMBER_ROLE_CHANGED,
        actor=changed_by,
        organisation=organisation,
        target=membership,
        target_label=membership.user.email,
        before=before,
        after={"role": role},
    )
    return membership


def _audit_admin_still_needed(
    refusal: hooks.AdminStillNeeded,
    *,
    action: AuditAction,
    membership: Membership,
    by: User,
    after: dict | None,
) -> None:
    """Record the refusal once the change is rolled back, so that the event survives it."""
    audit_refusal(
        because=" ".join(refusal.messages),
        action=action,
        actor=by,
        organisation=membership.organisation,
        target=membership,
        target_label=membership.user.email,
        before={"role": Membership.Role.ADMIN},
        after=after,
    )


def user_sessions_end(*, user: User) -> int:
    """End every signed-in session of `user` (allauth tracks each one as a UserSession)."""
    sessions = list(UserSession.objects.filter(user=user))
    for session in sessions:
        session.end()
    return len(sessions)


@transaction.atomic
def user_session_end(*, session: UserSession, ended_by: User) -> bool:
    """An operator signs one browser out at once. Only the session store and its UserSession
    row together: a row deleted alone leaves the browser signed in with a session the portal
    no longer knows of, which a later removal from an organisation would not end.

    Returns False when the session had already ended."""
    locked = (
        UserSession.objects.select_for_update().select_related("user").filter(pk=session.pk)
    ).first()
    if locked is None:
        return False
    before = {"ip": locked.ip, "signed_in_at": locked.created_at.isoformat()}
    locked.end()
    audit_person_event(
        person=locked.user, action=AuditAction.AUTH_SESSION_ENDED, actor=ended_by, before=before
    )
    return True


def membership_remove(*, membership: Membership, removed_by: User) -> None:
    """Remove a person from an organisation and end their sessions at once.

    Their other memberships stay; they sign in again to use those. Access to this organisation
    is gone even for a request already in flight, because every request re-reads membership.
    """
    try:
        _remove(membership=membership, removed_by=removed_by)
    except hooks.AdminStillNeeded as refusal:
        _audit_admin_still_needed(
            refusal,
            action=AuditAction.MEMBER_REMOVE_DENIED,
            membership=membership,
            by=removed_by,
            after=None,
        )
        raise


@transaction.atomic
def _remove(*, membership: Membership, removed_by: User) -> None:
    organisation = lock_organisation(membership.organisation)
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    if membership.role == Membership.Role.ADMIN and not _other_admins_exist(
        organisation=organisation, excluding=membership
    ):
        raise ValidationError(
            _(
                "This is the organisation's only admin. Make someone else admin before removing "
                "them."
            )
        )
    if membership.role == Membership.Role.ADMIN:
        hooks.admin_leaving_announce(membership=membership, changed_by=removed_by)
    user = membership.user
    # A partner's staff member loses their delegations, credentials-URI keys and RAM user link
    # in this transaction (before the audit chain head is taken: see delegations.partner),
    # through the receiver delegations connects to this hook.
    hooks.member_removed.send(sender=Membership, membership=membership, removed_by=removed_by)
    audit_record(
        action=AuditAction.MEMBER_REMOVED,
        actor=removed_by,
        organisation=organisation,
        target=membership,
        target_label=user.email,
        before={"email": user.email, "role": membership.role},
    )
    membership.delete()
    user_sessions_end(user=user)


@transaction.atomic
def email_address_confirmed(*, email_address: EmailAddress) -> int:
    """A person proved `email_address` (allauth's confirmation link, or an invitation's):
    other accounts' unconfirmed extra copies of it are removed. allauth could never confirm
    them now (one account at most holds an address verified), and their pending confirmation
    links stop working. An account's own sign-in address is left alone: an account nobody
    confirmed goes with its sign-up (`organisation_signups_expire`). Returns how many were
    removed."""
    removed, _by_model = (
        EmailAddress.objects.filter(
            email__iexact=email_address.email, verified=False, primary=False
        )
        .exclude(user_id=email_address.user_id)
        .delete()
    )
    return removed


@transaction.atomic
def organisation_switch(*, user: User, from_membership: Membership | None, to: Membership) -> None:
    """Record a switch of the current organisation; the caller stores the choice in the session."""
    if to.user_id != user.pk:
        raise ValidationError(_("You are not a member of that organisation."))
    audit_record(
        action=AuditAction.ORGANISATION_SWITCHED,
        actor=user,
        organisation=to.organisation,
        target=to.organisation,
        before={"organisation": from_membership.organisation.slug} if from_membership else None,
        after={"organisation": to.organisation.slug, "role": to.role},
    )


# --- Sign-in and MFA events (forwarded from allauth and django.contrib.auth signals) ----------


def _organisations_of(user: User | None) -> list[Organisation]:
    if user is None:
        return []
    return list(Organisation.objects.filter(memberships__user=user))


def audit_person_event(
    *,
    person: User,
    action: AuditAction,
    actor: User | None,
    before: dict[str, str] | None = None,
    after: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    actor_label: str | None = None,
) -> None:
    """An event about a person's account rather than one organisation: every organisation
    they belong to sees it."""
    audit_record(
        action=action,
        actor=actor,
        actor_label=actor_label,
        related_organisations=_organisations_of(person),
        target=person,
        target_label=person.email,
        before=before,
        after=after,
        metadata=metadata,
    )


def _audit_own_account(
    *,
    user: User,
    action: AuditAction,
    before: dict[str, str] | None = None,
    after: dict[str, str] | None = None,
) -> None:
    """An event of a person's own account (sign-in, MFA): they are both actor and target."""
    audit_person_event(person=user, action=action, actor=user, before=before, after=after)


@transaction.atomic
def auth_sign_in_succeeded(*, user: User) -> None:
    _audit_own_account(user=user, action=AuditAction.AUTH_SIGN_IN_SUCCEEDED)


_MAX_ATTEMPTED_LOGIN_LENGTH = 254


@transaction.atomic
def auth_sign_in_failed(*, attempted_email: str) -> None:
    """Record a failed password sign-in. Only the typed address is kept, never the password;
    input that is not an email address (a password typed in the wrong box) is not recorded."""
    attempted = (attempted_email or "").strip()
    user = None
    if "@" in attempted and len(attempted) <= _MAX_ATTEMPTED_LOGIN_LENGTH:
        user = User.objects.filter(email__iexact=attempted).first()
        label = attempted.lower()
    else:
        label = "(not an email address)"
    audit_record(
        action=AuditAction.AUTH_SIGN_IN_FAILED,
        actor=None,
        actor_label=label,
        related_organisations=_organisations_of(user),
        target=user,
        target_label=label,
        outcome="failure",
    )


# Audit events keep these English names; History translates them when it shows them.
MFA_TYPE_NAMES = {
    "totp": gettext_noop("authenticator app"),
    "recovery_codes": gettext_noop("recovery codes"),
    "webauthn": gettext_noop("security key"),
}


def _mfa_type(authenticator_type: str) -> dict[str, str]:
    return {"type": MFA_TYPE_NAMES.get(authenticator_type, authenticator_type)}


@transaction.atomic
def mfa_authenticator_added(*, user: User, authenticator_type: str) -> None:
    totp = authenticator_type == "totp"
    action = AuditAction.MFA_ENABLED if totp else AuditAction.MFA_AUTHENTICATOR_ADDED
    _audit_own_account(user=user, action=action, after=_mfa_type(authenticator_type))


@transaction.atomic
def mfa_authenticator_removed(*, user: User, authenticator_type: str) -> None:
    totp = authenticator_type == "totp"
    action = AuditAction.MFA_DISABLED if totp else AuditAction.MFA_AUTHENTICATOR_REMOVED
    _audit_own_account(user=user, action=action, before=_mfa_type(authenticator_type))


@transaction.atomic
def mfa_recovery_codes_regenerated(*, user: User) -> None:
    _audit_own_account(user=user, action=AuditAction.MFA_RECOVERY_CODES_REGENERATED)


# --- A person's language and time zone ---------------------------------------------------------
# Display preferences of the person's own, like their email preferences: not audited.


def _validate_language(language: str) -> None:
    if language and language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": _("Choose one of the offered languages.")})


@transaction.atomic
def person_preferences_update(*, user: User, language: str, time_zone: str) -> User:
    """Set the person's language ("" lets the browser decide) and time zone."""
    _validate_language(language)
    try:
        validate_time_zone(time_zone)
    except ValidationError as error:
        raise ValidationError({"time_zone": error.messages}) from error
    locked = User.objects.select_for_update().get(pk=user.pk)
    if (locked.language, locked.time_zone) != (language, time_zone):
        locked.language = language
        locked.time_zone = time_zone
        locked.save(update_fields=["language", "time_zone"])
    user.language, user.time_zone = language, time_zone
    return locked


@transaction.atomic
def person_language_set(*, user: User, language: str) -> None:
    """The header's language switcher, used while signed in: the choice follows the person to
    every browser, their emails and chat messages."""
    _validate_language(language)
    User.objects.filter(pk=user.pk).exclude(language=language).update(language=language)
    user.language = language


def person_time_zone_default(*, user: User, browser_time_zone: str) -> bool:
    """At sign-in, a person whose time zone is not known yet takes the browser's. A name the
    tz database does not know is ignored (the field is typed by a script, anyone can post
    anything). Returns whether it was set. One conditional UPDATE: two sign-ins at once
    cannot overwrite a zone the person chose meanwhile."""
    name = (browser_time_zone or "").strip()
    if not name or user.time_zone:
        return False
    try:
        validate_time_zone(name)
    except ValidationError:
        return False
    changed = User.objects.filter(pk=user.pk, time_zone="").update(time_zone=name)
    if changed:
        user.time_zone = name
    return bool(changed)
