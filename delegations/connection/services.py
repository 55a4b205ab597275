"""Connecting an organisation's Alibaba Cloud account: the AccessKey the portal acts with.

The secret is write-only. It arrives once (connect or replace), is checked against the cloud
(GetCallerIdentity, then a harmless RAM read), and is stored only as MultiFernet ciphertext
(`core.crypto`). Pages, logs and audit events name the key by its AccessKey id and a
short fingerprint. The plaintext leaves this module in one place only,
`cloud_account_credentials`, which the worker and the listing helpers call to build a client.

Cloud calls happen before the database transaction that stores the result, so no transaction
stays open while the cloud answers; the write re-checks what it relies on under a row lock.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, ngettext
from django.utils.translation import gettext as _

from accounts.models import Organisation, User, validate_enterprise_alias
from audit.actions import AuditAction
from audit.services import audit_record
from cloud import policies
from cloud.client import CloudClient, CloudCredentials, RamUser
from cloud.errors import CloudError
from core import crypto
from core.db import conflict_as_validation_error
from delegations.models import CloudAccount, Delegation, PartnerAllowance, validate_region

logger = logging.getLogger("delegations.cloud_accounts")

# AccessKey ids are ASCII letters and digits (LTAI…); RAM secrets are 30 letters and digits. The
# bounds are generous; the point is refusing spaces, control characters and pasted prose.
_ACCESS_KEY_ID = re.compile(r"\A[A-Za-z0-9.]{8,128}\Z")
_ACCESS_KEY_SECRET = re.compile(r"\A[\x21-\x7e]{8,128}\Z")
_KEY_FORMAT_HELP = gettext_lazy(
    "Paste the AccessKey secret exactly as Alibaba Cloud showed it: 8 to 128 visible ASCII "
    "characters, no spaces."
)

# The delegations that still need the account's key: the worker must be able to take a partner
# out of a trust policy before the portal forgets how to reach the account.
_NEEDS_KEY_STATUSES = (
    Delegation.Status.APPROVED,
    Delegation.Status.APPLYING,
    Delegation.Status.ACTIVE,
    Delegation.Status.REVOKING,
    Delegation.Status.FAILED,
)


@dataclass(frozen=True)
class KeyCheck:
    """What the cloud said about a key that passed the check."""

    caller_arn: str
    identity_type: str | None

    @property
    def is_root(self) -> bool:
        return self.caller_arn.endswith(":root")


# --- the key in use ---------------------------------------------------------------------------


def cloud_account_credentials(*, cloud_account: CloudAccount) -> CloudCredentials:
    """The decrypted AccessKey of a connected account, for one client's lifetime. Never store,
    log or pass it on (tasks take ids and call this again)."""
    if not cloud_account.is_active or not cloud_account.secret_ciphertext:
        raise ValidationError(
            gettext("The cloud account %(account_uid)s is not connected to the portal.")
            % {"account_uid": cloud_account.account_uid}
        )
    return CloudCredentials(
        cloud_account.access_key_id, crypto.decrypt_secret(cloud_account.secret_ciphertext)
    )


def cloud_account_client(*, cloud_account: CloudAccount) -> CloudClient:
    return CloudClient(
        cloud_account_credentials(cloud_account=cloud_account), region_id=cloud_account.region
    )


def cloud_error_reference(error: CloudError) -> str:
    """The request id to quote to Alibaba Cloud's support, as a suffix for a refusal message
    (empty when the cloud gave none)."""
    if not error.request_id:
        return ""
    return gettext(" (request id %(request_id)s)") % {"request_id": error.request_id}


def partner_ram_users(*, cloud_account: CloudAccount) -> list[RamUser]:
    """The RAM users of a connected partner account (ListUsers), sorted by name, so a partner
    admin can link each staff member to their RAM user. Raises CloudError when the cloud fails."""
    if not cloud_account.organisation.is_partner:
        raise ValidationError(gettext("Only a partner's cloud account lists RAM users for staff."))
    users = cloud_account_client(cloud_account=cloud_account).list_users()
    return sorted(users, key=lambda user: user.user_name.lower())


# --- checking a key against the cloud ---------------------------------------------------------


def _validate_key_input(*, access_key_id: object, access_key_secret: object) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not isinstance(access_key_id, str) or not _ACCESS_KEY_ID.match(access_key_id):
        errors["access_key_id"] = gettext(
            "An AccessKey id is 8 to 128 letters and digits, like LTAI5tExampleKeyId."
        )
    if not isinstance(access_key_secret, str) or not _ACCESS_KEY_SECRET.match(access_key_secret):
        errors["access_key_secret"] = str(_KEY_FORMAT_HELP)
    return errors


def _validate_account_input(
    *,
    organisation: Organisation,
    account_uid: object,
    alias: object,
    region: object,
    primary: bool = True,
) -> dict[str, str]:
    """`primary`: the account is the organisation's first (its registered account, which
    the trust policies and every single-account path name); an owner's further accounts
    may be any other account UID."""
    errors: dict[str, str] = {}
    try:
        policies.validate_account_uid(account_uid)
    except policies.PolicyError:
        errors["account_uid"] = _(
            "An Alibaba Cloud account UID is digits 0-9 only, for example 1234567890123456."
        )
    else:
        if primary and account_uid != organisation.account_uid:
            errors["account_uid"] = _(
                "%(organisation)s is registered with the account %(uid)s; connect that "
                "account first (the trust policies name it)."
            ) % {"organisation": organisation.name, "uid": organisation.account_uid}
    if alias:
        try:
            validate_enterprise_alias(alias)  # type: ignore[arg-type]
        except ValidationError as exc:
            errors["alias"] = " ".join(exc.messages)
    try:
        validate_region(region)  # type: ignore[arg-type]
    except ValidationError as exc:
        errors["region"] = " ".join(exc.messages)
    return errors


def _read_check(client: CloudClient, organisation: Organisation) -> None:
    """A harmless RAM read the portal needs the key for: the account's custom policies for an
    owner (the catalogue is built from them), its RAM users for a partner (staff are linked
    to them)."""
    if organisation.is_owner:
        client.list_policies(policy_type="Custom")
    else:
        client.list_users()


def _refusal(error: CloudError, *, organisation: Organisation, step: str) -> ValidationError:
    code = error.code or ""
    reference = cloud_error_reference(error)
    names = {"code": code, "reference": reference}
    if code.startswith("InvalidAccessKeyId.Inactive"):
        return ValidationError(
            {
                "access_key_id": gettext(
                    "This AccessKey is disabled in Alibaba Cloud (%(code)s)%(reference)s."
                )
                % names
            }
        )
    if code.startswith("InvalidAccessKeyId"):
        return ValidationError(
            {
                "access_key_id": gettext(
                    "Alibaba Cloud does not know this AccessKey id (%(code)s)%(reference)s. "
                    "Check for a typo, or create a new AccessKey."
                )
                % names
            }
        )
    if code.startswith("SignatureDoesNotMatch") or code.startswith("IncompleteSignature"):
        return ValidationError(
            {
                "access_key_secret": gettext(
                    "The AccessKey secret does not belong to this AccessKey id "
                    "(%(code)s)%(reference)s. Paste the secret shown when the key was created."
                )
                % names
            }
        )
    if code.startswith("NoPermission") or code.startswith("Forbidden"):
        names["action"] = error.action
        if organisation.is_owner:
            message = gettext(
                "The key is valid, but its RAM user may not read the account's RAM policies. "
                "The portal needs a RAM user that may manage RAM roles and their policies: "
                "attach AliyunRAMFullAccess to it (%(code)s on %(action)s)%(reference)s."
            )
        else:
            message = gettext(
                "The key is valid, but its RAM user may not list the account's RAM users. "
                "The portal needs a RAM user that may list RAM users, manage their policies "
                "and call AssumeRole: attach AliyunRAMFullAccess and AliyunSTSAssumeRoleAccess "
                "to it (%(code)s on %(action)s)%(reference)s."
            )
        return ValidationError(message % names)
    if error.transient:
        return ValidationError(
            gettext(
                "Alibaba Cloud could not be reached to check the key (%(message)s). "
                "Nothing was saved; try again in a moment."
            )
            % {"message": error.message}
        )
    return ValidationError(
        gettext("Alibaba Cloud refused the %(step)s: %(code)s: %(message)s%(reference)s.")
        % {
            "step": step,
            "code": code or error.category.value,
            "message": error.message,
            "reference": reference,
        }
    )


def cloud_account_check_key(
    *,
    organisation: Organisation,
    account_uid: str,
    region: str,
    credentials: CloudCredentials,
) -> KeyCheck:
    """Prove the key works, belongs to `account_uid` and may do the harmless RAM read the
    portal depends on. Raises ValidationError with a message a person can act on."""
    client = CloudClient(credentials, region_id=region)
    try:
        identity = client.get_caller_identity()
    except CloudError as error:
        raise _refusal(error, organisation=organisation, step=gettext("key check")) from None
    if identity.account_id != account_uid:
        raise ValidationError(
            {
                "access_key_id": gettext(
                    "This AccessKey belongs to the account %(account_id)s, not to "
                    "%(account_uid)s. Create the key in %(account_uid)s."
                )
                % {"account_id": identity.account_id, "account_uid": account_uid}
            }
        )
    try:
        _read_check(client, organisation)
    except CloudError as error:
        raise _refusal(error, organisation=organisation, step=gettext("RAM read")) from None
    return KeyCheck(caller_arn=identity.arn, identity_type=identity.identity_type)


def _audit_check_failed(
    *,
    organisation: Organisation,
    actor: User | None,
    action: str,
    error: ValidationError,
    account_uid: str | None = None,
) -> None:
    # Neither the key id nor the secret: a failed form may have had them swapped.
    with transaction.atomic():
        audit_record(
            action=AuditAction.CLOUD_ACCOUNT_CHECK_FAILED,
            actor=actor,
            organisation=organisation,
            target_type="delegations.cloudaccount",
            target_id=account_uid or organisation.account_uid,
            target_label=f"Alibaba Cloud account {account_uid or organisation.account_uid}",
            metadata={"attempt": action, "reason": " ".join(error.messages)[:500]},
            outcome="failure",
        )


def _public(cloud_account: CloudAccount) -> dict[str, object]:
    """What an audit event may say about a connected account: never the secret."""
    return {
        "account_uid": cloud_account.account_uid,
        "alias": cloud_account.alias,
        "name": cloud_account.name,
        "is_primary": cloud_account.is_primary,
        "region": cloud_account.region,
        "access_key_id": cloud_account.access_key_id,
        "key_fingerprint": cloud_account.secret_fingerprint,
        "caller_arn": cloud_account.caller_arn,
    }


def _checked_credentials(
    *,
    organisation: Organisation,
    actor: User | None,
    attempt: str,
    account_uid: str,
    region: str,
    credentials: CloudCredentials,
) -> KeyCheck:
    # Fail closed before any cloud call: without an encryption key the secret could not be
    # stored after a successful check.
    crypto.encryption()
    try:
        check = cloud_account_check_key(
            organisation=organisation,
            account_uid=account_uid,
            region=region,
            credentials=credentials,
        )
    except ValidationError as error:
        _audit_check_failed(
            organisation=organisation,
            actor=actor,
            action=attempt,
            error=error,
            account_uid=account_uid,
        )
        raise
    return check


def _store_key(
    account: CloudAccount,
    *,
    alias: str,
    region: str,
    credentials: CloudCredentials,
    check: KeyCheck,
) -> None:
    """Put a checked key, and the alias and region it was checked with, on the account row
    (the secret encrypted, with its fingerprint)."""
    account.alias = alias
    account.region = region
    account.access_key_id = credentials.access_key_id
    account.secret_ciphertext = crypto.encrypt_secret(credentials.access_key_secret)
    account.secret_fingerprint = crypto.secret_fingerprint(credentials.access_key_secret)
    account.caller_arn = check.caller_arn
    account.verified_at = timezone.now()


# --- connect, replace, check again, disconnect ------------------------------------------------


_CONNECTED_MEANWHILE = gettext_lazy(
    "A cloud account was connected meanwhile. Replace its key instead."
)
ACCOUNT_NAME_MAX_LENGTH = 64


def _clean_name(name: object) -> str:
    text = (name if isinstance(name, str) else "").strip()
    if len(text) > ACCOUNT_NAME_MAX_LENGTH:
        raise ValidationError(
            {"name": _("Keep the name under %(n)d characters.") % {"n": ACCOUNT_NAME_MAX_LENGTH}}
        )
    return text


def _allow_listed_problem(*, organisation: Organisation, account_uid: str) -> dict[str, str]:
    """Why `account_uid` may not be connected as `organisation`'s own: it is on its allow-list
    of partner accounts. Connected as well, the owner would trust its own account as a partner
    (and could grant it what it offers partners); the owner takes it off the list first, as
    the list refuses the owner's own accounts."""
    allowance = PartnerAllowance.objects.filter(
        organisation=organisation, partner_account_uid=account_uid
    ).first()
    if allowance is None:
        return {}
    if allowance.label:
        message = _(
            "The account %(uid)s is on your allow-list as %(partner)s's account; remove it from "
            "the allow-list first (the portal would trust your own account as a partner)."
        )
    else:
        message = _(
            "The account %(uid)s is on your allow-list as a partner's account; remove it from "
            "the allow-list first (the portal would trust your own account as a partner)."
        )
    return {"account_uid": message % {"uid": account_uid, "partner": allowance.label}}


def cloud_account_connect(
    *,
    organisation: Organisation,
    connected_by: User | None,
    account_uid: str,
    alias: str,
    region: str,
    access_key_id: str,
    access_key_secret: str,
    name: str = "",
) -> CloudAccount:
    """Connect one of the organisation's accounts with a checked key.

    The first account is the organisation's registered one and becomes its primary; an owner
    may then connect further accounts (each its own key and `name`, e.g. "staging"). A
    partner keeps one account, its broker key."""
    alias = (alias or "").strip()
    name = _clean_name(name)
    connected = CloudAccount.objects.filter(organisation=organisation, is_active=True)
    first = not connected.exists()
    if not first and not organisation.is_owner:
        raise ValidationError(
            _("A cloud account is already connected. Replace its key, or disconnect it first.")
        )
    errors = _validate_account_input(
        organisation=organisation,
        account_uid=account_uid,
        alias=alias,
        region=region,
        primary=first,
    )
    errors.update(
        _validate_key_input(access_key_id=access_key_id, access_key_secret=access_key_secret)
    )
    if errors:
        raise ValidationError(errors)
    if connected.filter(account_uid=account_uid).exists():
        raise ValidationError(
            {
                "account_uid": _(
                    "The account %(uid)s is already connected. Replace its key instead."
                )
                % {"uid": account_uid}
            }
        )
    allow_listed = _allow_listed_problem(organisation=organisation, account_uid=account_uid)
    if allow_listed:
        raise ValidationError(allow_listed)
    credentials = CloudCredentials(access_key_id, access_key_secret)
    check = _checked_credentials(
        organisation=organisation,
        actor=connected_by,
        attempt="connect",
        account_uid=account_uid,
        region=region,
        credentials=credentials,
    )
    with conflict_as_validation_error(str(_CONNECTED_MEANWHILE)):
        # Serialise connects of one organisation; the partial unique constraints (one active
        # row per account UID, one primary) are the backstop.
        Organisation.objects.select_for_update().get(pk=organisation.pk)
        still_first = not connected.exists()
        if still_first != first or connected.filter(account_uid=account_uid).exists():
            raise ValidationError(_CONNECTED_MEANWHILE)
        # Again: the account may have joined the allow-list while the cloud checked the key.
        allow_listed = _allow_listed_problem(organisation=organisation, account_uid=account_uid)
        if allow_listed:
            raise ValidationError(allow_listed)
        # Reconnecting the same account brings its catalogue back with it.
        account = (
            CloudAccount.objects.filter(organisation=organisation, account_uid=account_uid)
            .order_by("-created_at")
            .first()
        ) or CloudAccount(organisation=organisation, account_uid=account_uid)
        reconnected = not account._state.adding
        _store_key(account, alias=alias, region=region, credentials=credentials, check=check)
        account.is_active = True
        account.is_primary = first
        account.name = name
        if not reconnected:
            account.created_by = connected_by
        account.save()
        audit_record(
            action=AuditAction.CLOUD_ACCOUNT_CONNECTED,
            actor=connected_by,
            organisation=organisation,
            target=account,
            after=_public(account),
            metadata={"reconnected": reconnected, "root_key": check.is_root},
        )
    logger.info(
        "cloud account %s connected for %s with AccessKey %s (%s)",
        account.account_uid,
        organisation.slug,
        account.access_key_id,
        account.secret_fingerprint,
    )
    return account


@transaction.atomic
def cloud_account_make_primary(
    *, cloud_account: CloudAccount, made_by: User | None
) -> CloudAccount:
    """Make a connected account the organisation's primary (the default of every path that
    names no account). The previous primary stays connected."""
    account = CloudAccount.objects.select_for_update().get(pk=cloud_account.pk)
    if not account.is_active:
        raise ValidationError(_("This cloud account is disconnected."))
    if account.is_primary:
        return account.unchanged()
    previous = (
        CloudAccount.objects.select_for_update()
        .filter(organisation_id=account.organisation_id, is_active=True, is_primary=True)
        .first()
    )
    if previous is not None:
        previous.is_primary = False
        previous.save(update_fields=["is_primary", "updated_at"])
    account.is_primary = True
    account.save(update_fields=["is_primary", "updated_at"])
    audit_record(
        action=AuditAction.CLOUD_ACCOUNT_MADE_PRIMARY,
        actor=made_by,
        organisation=account.organisation,
        target=account,
        before={"primary": previous.account_uid if previous is not None else None},
        after=_public(account),
    )
    account.changed = True
    return account


def cloud_account_replace_key(
    *,
    cloud_account: CloudAccount,
    replaced_by: User | None,
    access_key_id: str,
    access_key_secret: str,
    alias: str | None = None,
    region: str | None = None,
) -> CloudAccount:
    """Rotate the key (and optionally fix the alias or region) after checking the new key."""
    organisation = cloud_account.organisation
    alias = cloud_account.alias if alias is None else alias.strip()
    region = cloud_account.region if region is None else region
    errors = _validate_account_input(
        organisation=organisation,
        account_uid=cloud_account.account_uid,
        alias=alias,
        region=region,
        primary=False,
    )
    errors.pop("account_uid", None)  # the account itself does not change here
    errors.update(
        _validate_key_input(access_key_id=access_key_id, access_key_secret=access_key_secret)
    )
    if errors:
        raise ValidationError(errors)
    if not cloud_account.is_active:
        raise ValidationError(
            gettext("This cloud account is disconnected; connect it again instead.")
        )
    credentials = CloudCredentials(access_key_id, access_key_secret)
    check = _checked_credentials(
        organisation=organisation,
        actor=replaced_by,
        attempt="replace",
        account_uid=cloud_account.account_uid,
        region=region,
        credentials=credentials,
    )
    with transaction.atomic():
        account = CloudAccount.objects.select_for_update().get(pk=cloud_account.pk)
        if not account.is_active:
            raise ValidationError(gettext("This cloud account was disconnected meanwhile."))
        before = _public(account)
        _store_key(account, alias=alias, region=region, credentials=credentials, check=check)
        account.save()
        audit_record(
            action=AuditAction.CLOUD_ACCOUNT_REPLACED,
            actor=replaced_by,
            organisation=organisation,
            target=account,
            before=before,
            after=_public(account),
            metadata={"root_key": check.is_root},
        )
    logger.info(
        "cloud account %s: AccessKey %s replaced by %s (%s)",
        account.account_uid,
        before["access_key_id"],
        account.access_key_id,
        account.secret_fingerprint,
    )
    return account


def cloud_account_verify(*, cloud_account: CloudAccount, checked_by: User | None) -> CloudAccount:
    """Check the stored key again (the same calls as on connect) and record the answer."""
    if not cloud_account.is_active:
        raise ValidationError(gettext("This cloud account is disconnected."))
    credentials = cloud_account_credentials(cloud_account=cloud_account)
    try:
        check = cloud_account_check_key(
            organisation=cloud_account.organisation,
            account_uid=cloud_account.account_uid,
            region=cloud_account.region,
            credentials=credentials,
        )
    except ValidationError as error:
        _audit_check_failed(
            organisation=cloud_account.organisation,
            actor=checked_by,
            action="check",
            error=error,
            account_uid=cloud_account.account_uid,
        )
        raise
    with transaction.atomic():
        account = CloudAccount.objects.select_for_update().get(pk=cloud_account.pk)
        account.caller_arn = check.caller_arn
        account.verified_at = timezone.now()
        account.save(update_fields=["caller_arn", "verified_at", "updated_at"])
        audit_record(
            action=AuditAction.CLOUD_ACCOUNT_VERIFIED,
            actor=checked_by,
            organisation=account.organisation,
            target=account,
            after=_public(account),
        )
    return account


def cloud_account_disconnect(
    *, cloud_account: CloudAccount, disconnected_by: User | None
) -> CloudAccount:
    """Forget the key. Refused while delegations on the account still need the worker."""
    with transaction.atomic():
        account = CloudAccount.objects.select_for_update().get(pk=cloud_account.pk)
        if not account.is_active:
            return account.unchanged()
        # A delegation's account is its managed role's (a fleet grant has one per account).
        in_use = Delegation.objects.filter(
            managed_role__cloud_account=account, status__in=_NEEDS_KEY_STATUSES
        ).count()
        if in_use:
            raise ValidationError(
                ngettext(
                    "%(count)d delegation on this account still need the portal's key "
                    "(approved, active, in progress or failed). Revoke them and let the worker "
                    "finish before disconnecting.",
                    "%(count)d delegations on this account still need the portal's key "
                    "(approved, active, in progress or failed). Revoke them and let the worker "
                    "finish before disconnecting.",
                    in_use,
                )
                % {"count": in_use}
            )
        # A partner's account: the AssumeRole policies the portal attached to its RAM users
        # can only be taken away with this key.
        granted = account.partner_user_policies.filter(policy_attached=True).count()
        if granted:
            raise ValidationError(
                ngettext(
                    "The portal still grants %(count)d RAM user in this account sts:AssumeRole "
                    "(portal-assume-* policies). Unassign your staff and let the worker remove "
                    "the grants before disconnecting.",
                    "The portal still grants %(count)d RAM users in this account sts:AssumeRole "
                    "(portal-assume-* policies). Unassign your staff and let the worker remove "
                    "the grants before disconnecting.",
                    granted,
                )
                % {"count": granted}
            )
        before = _public(account)
        was_primary = account.is_primary
        account.is_active = False
        account.is_primary = False
        account.secret_ciphertext = ""
        account.save(update_fields=["is_active", "is_primary", "secret_ciphertext", "updated_at"])
        if was_primary:
            # The oldest other connected account takes over as the default, so the paths that
            # name no account keep working.
            successor = (
                CloudAccount.objects.select_for_update()
                .filter(organisation_id=account.organisation_id, is_active=True)
                .order_by("created_at", "pk")
                .first()
            )
            if successor is not None:
                successor.is_primary = True
                successor.save(update_fields=["is_primary", "updated_at"])
        audit_record(
            action=AuditAction.CLOUD_ACCOUNT_DISCONNECTED,
            actor=disconnected_by,
            organisation=account.organisation,
            target=account,
            before=before,
        )
    account.changed = True
    return account


# --- key rotation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationReport:
    reencrypted: int
    # Accounts whose secret none of the configured keys opens: left untouched.
    unreadable: list[str]


def cloud_account_secrets_rotate() -> RotationReport:
    """Re-encrypt every stored AccessKey secret with the first of PORTAL_ENCRYPTION_KEYS, one
    account per transaction, so older keys can then be dropped from the list."""
    crypto.encryption()  # fail closed before touching anything
    reencrypted = 0
    unreadable: list[str] = []
    ids = CloudAccount.objects.exclude(secret_ciphertext="").values_list("pk", flat=True)
    for account_id in list(ids):
        with transaction.atomic():
            account = CloudAccount.objects.select_for_update().filter(pk=account_id).first()
            if account is None or not account.secret_ciphertext:
                continue
            try:
                account.secret_ciphertext = crypto.rotate_secret(account.secret_ciphertext)
            except crypto.SecretDecryptionError:
                unreadable.append(f"{account.account_uid} ({account.organisation})")
                continue
            account.save(update_fields=["secret_ciphertext", "updated_at"])
            audit_record(
                action=AuditAction.CLOUD_ACCOUNT_SECRET_REENCRYPTED,
                organisation=account.organisation,
                target=account,
                metadata={
                    "access_key_id": account.access_key_id,
                    "key_fingerprint": account.secret_fingerprint,
                },
            )
            reencrypted += 1
    return RotationReport(reencrypted=reencrypted, unreadable=unreadable)
