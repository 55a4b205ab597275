"""Operators' work on people's second factors, from the command line: re-encrypting the
stored secrets under a new key (`manage.py rotate_secrets`). Audited like
`accounts.services`, in the same transaction as the change."""

from dataclasses import dataclass

from allauth.mfa.models import Authenticator
from django.db import transaction

from accounts import mfa_secrets, services
from audit.actions import AuditAction
from core import crypto


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
