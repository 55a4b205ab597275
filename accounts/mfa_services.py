"""Operators' work on people's second factors, from the command line: resetting the MFA of
someone who lost every factor (`manage.py mfa_reset`) and re-encrypting the stored secrets
under a new key (`manage.py rotate_secrets`). Audited like `accounts.services`, in the same
transaction as the change."""

import logging
from dataclasses import dataclass

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts import emails, mfa_secrets, services
from accounts.models import User
from audit.actions import AuditAction
from core import crypto

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MfaResetReport:
    # What the person had, by name ("authenticator app", "recovery codes"…), one per
    # authenticator removed.
    removed: list[str]
    sessions_ended: int


def _send_mfa_reset_email_on_commit(*, person: User) -> None:
    sign_in_url = settings.PORTAL_BASE_URL.rstrip("/") + reverse("account_login")

    def send() -> None:
        try:
            emails.send_mfa_reset(person=person, sign_in_url=sign_in_url)
        except Exception:  # SMTP and template errors alike: the reset itself stands
            logger.exception("Could not send the MFA reset email to person %s", person.pk)

    # Only once the reset is committed: a rolled-back reset tells nobody anything.
    transaction.on_commit(send)


@transaction.atomic
def mfa_reset_by_operator(*, user: User, reason: str, operator_label: str) -> MfaResetReport:
    """An operator removes every second factor of a person who lost them all (the phone and
    the recovery codes), signs them out everywhere and tells them by email. At the next
    sign-in they have no second factor: an admin is sent to enrol one again
    (`admin_must_enrol_mfa`). The Django admin shows authenticators read-only, so this is the
    one way round the admins-keep-MFA rule, and it is audited with its reason."""
    reason = reason.strip()
    if not reason:
        raise ValidationError(
            {"reason": _("Give the reason for resetting two-factor authentication.")}
        )
    operator_label = operator_label.strip()
    if not operator_label:
        raise ValidationError({"operator": _("Name the operator who resets it.")})
    person = User.objects.select_for_update().get(pk=user.pk)
    authenticators = list(
        Authenticator.objects.select_for_update().filter(user=person).order_by("type", "pk")
    )
    if not authenticators:
        raise ValidationError(
            _("%(email)s has no second factor to reset.") % {"email": person.email}
        )
    removed = [services.MFA_TYPE_NAMES.get(a.type, a.type) for a in authenticators]
    Authenticator.objects.filter(pk__in=[a.pk for a in authenticators]).delete()
    sessions_ended = services.user_sessions_end(user=person)
    services.audit_person_event(
        person=person,
        action=AuditAction.MFA_RESET_BY_OPERATOR,
        actor=None,
        actor_label=operator_label,
        metadata={
            "reason": reason,
            "removed": ", ".join(removed),
            "sessions_ended": str(sessions_ended),
        },
    )
    _send_mfa_reset_email_on_commit(person=person)
    return MfaResetReport(removed=removed, sessions_ended=sessions_ended)


@dataclass(frozen=True)
class MfaRotationReport:
    resealed: int
    # Authenticators whose secret none of the configured keys opens: left untouched.
    unreadable: list[str]


def mfa_secrets_rotate() -> MfaRotationReport:
    """Re-encrypt every stored TOTP key and recovery-code seed with the first of
    PORTAL_ENCRYPTION_KEYS (sealing any plaintext left from before encryption), one
    authenticator per transaction, so older keys can then be dropped from the list."""
    crypto.encryption()  # fail closed before touching anything
    resealed = 0
    unreadable: list[str] = []
    ids = Authenticator.objects.filter(type__in=list(mfa_secrets.SECRET_FIELDS)).values_list(
        "pk", flat=True
    )
    for authenticator_id in list(ids):
        with transaction.atomic():
            authenticator = (
                Authenticator.objects.select_for_update()
                .select_related("user")
                .filter(pk=authenticator_id)
                .first()
            )
            if authenticator is None:
                continue
            try:
                authenticator.data = mfa_secrets.sealed_data(
                    authenticator.type, authenticator.data, rotate=True
                )
            except crypto.SecretDecryptionError:
                unreadable.append(f"{authenticator.type} of {authenticator.user.email}")
                continue
            authenticator.save(update_fields=["data"])
            services.audit_person_event(
                person=authenticator.user,
                action=AuditAction.MFA_SECRET_REENCRYPTED,
                actor=None,
                metadata={
                    "type": services.MFA_TYPE_NAMES.get(authenticator.type, authenticator.type)
                },
            )
            resealed += 1
    return MfaRotationReport(resealed=resealed, unreadable=unreadable)
