"""Changes to API tokens, service accounts, the device flow and an organisation's API policy.

Keyword-only, one transaction each, audited in it. Raw tokens and codes are returned to the
caller once and never stored: only their SHA-256 (`hash_token`, as invitations do).
"""

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Membership, Organisation, User, hash_token
from accounts.permissions import require_admin_member
from api.models import (
    DEVICE_FLOW_SCOPES,
    SERVICE_ACCOUNT_SCOPES,
    ApiToken,
    DeviceAuthorization,
    OrganisationApiPolicy,
    Scope,
    ServiceAccount,
)
from audit.actions import AuditAction
from audit.services import audit_record

TOKEN_PREFIX = "pap_"  # noqa: S105 - the visible marker of a token, not a secret
MAX_TOKEN_DAYS = 90
DEVICE_FLOW_TOKEN_DAYS = 30
DEVICE_CODE_TTL = dt.timedelta(minutes=10)
DEVICE_POLL_INTERVAL_SECONDS = 2
# No 0/O, 1/I/L: the person reads the code off a terminal and types it.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
NAME_MAX_LENGTH = 100


@dataclass(frozen=True)
class CreatedToken:
    """A new token and the one copy of its raw value."""

    token: ApiToken
    raw: str


def _new_raw_token() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return prefix, f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


def _token_issue(*, actor: User, days: int, **fields: object) -> CreatedToken:
    """A new token row (`fields` name its owner, scopes…) and its audit event, inside the
    caller's transaction; the raw token is returned once and only its hash is stored."""
    prefix, raw = _new_raw_token()
    token = ApiToken.objects.create(
        prefix=prefix,
        secret_hash=hash_token(raw),
        expires_at=timezone.now() + dt.timedelta(days=days),
        **fields,
    )
    _audit_token(action=AuditAction.API_TOKEN_CREATED, token=token, actor=actor)
    return CreatedToken(token=token, raw=raw)


def token_prefix_of(raw: str) -> str | None:
    """The prefix of a raw `pap_<prefix>_<secret>` token, or None when it is not one."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    prefix, sep, secret = raw[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not secret or len(prefix) != 8:
        return None
    return prefix


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the token a name you will recognise.")})
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(
            {"name": _("Keep the name under %(count)d characters.") % {"count": NAME_MAX_LENGTH}}
        )
    return name


def _clean_scopes(scopes: Iterable[str], *, allowed: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(scopes))
    allowed_set = set(allowed)
    unknown = [scope for scope in chosen if scope not in allowed_set]
    if unknown:
        raise ValidationError(
            {
                "scopes": _("These scopes are not available: %(scopes)s.")
                % {"scopes": ", ".join(unknown)}
            }
        )
    if not chosen:
        raise ValidationError({"scopes": _("Choose at least one scope.")})
    return chosen


def _clean_days(days: int) -> int:
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_TOKEN_DAYS:
        raise ValidationError(
            {"expires_in_days": _("Choose 1 to %(count)d days.") % {"count": MAX_TOKEN_DAYS}}
        )
    return days


def _audit_token(*, action: AuditAction, token: ApiToken, actor: User | None) -> None:
    organisations = (
        [token.organisation]
        if token.organisation is not None
        else list(Organisation.objects.filter(memberships__user=token.user))
    )
    audit_record(
        action=action,
        actor=actor,
        organisation=token.organisation,
        related_organisations=[] if token.organisation is not None else organisations,
        target=token,
        target_label=f"pap_{token.prefix}_… ({token.name})",
        after={
            "name": token.name,
            "scopes": token.scopes,
            "expires_at": token.expires_at,
            "prefix": token.prefix,
            "owner": str(token.service_account or token.user),
        },
    )


def api_token_create(
    *,
    user: User,
    name: str,
    scopes: Iterable[str],
    expires_in_days: int,
    organisation: Organisation | None = None,
    with_mfa: bool = False,
    via: str = "web",
) -> CreatedToken:
    """A personal access token for `user`, optionally limited to one of their organisations.
    `with_mfa` says whether the person confirmed with MFA just before (decisions need it)."""
    name = _clean_name(name)
    chosen = _clean_scopes(scopes, allowed=Scope.values)
    days = _clean_days(expires_in_days)
    if (
        organisation is not None
        and not Membership.objects.filter(user=user, organisation=organisation).exists()
    ):
        raise ValidationError({"organisation": "You are not a member of this organisation."})
    with transaction.atomic():
        return _token_issue(
            actor=user,
            days=days,
            name=name,
            user=user,
            organisation=organisation,
            scopes=chosen,
            created_with_mfa=with_mfa,
            created_via=via,
        )


def api_token_revoke(*, token: ApiToken, revoked_by: User) -> ApiToken:
    with transaction.atomic():
        locked = ApiToken.objects.select_for_update().get(pk=token.pk)
        if locked.revoked_at is not None:
            return locked
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        _audit_token(action=AuditAction.API_TOKEN_REVOKED, token=locked, actor=revoked_by)
    return locked


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    """The usable token `raw` names, or None (unknown, wrong secret, expired or revoked)."""
    prefix = token_prefix_of(raw)
    if prefix is None:
        return None
    token = (
        ApiToken.objects.select_related("user", "organisation", "service_account__organisation")
        .filter(prefix=prefix)
        .first()
    )
    if token is None or not secrets.compare_digest(token.secret_hash, hash_token(raw)):
        return None
    if not token.is_usable:
        return None
    if token.service_account is not None and token.service_account.disabled_at is not None:
        return None
    return token


def api_token_mark_used(*, token: ApiToken, ip: str) -> None:
    """Last use and source IP, shown on the token list. A plain update: no audit event (each
    call the token makes is audited when it changes something)."""
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now(), last_used_ip=ip[:45])


# --- service accounts ------------------------------------------------------------------------


def _require_admin(*, user: User, organisation: Organisation) -> None:
    require_admin_member(
        user,
        organisation,
        refusal=_("Only an admin of this organisation manages service accounts."),
    )


def service_account_create(
    *,
    organisation: Organisation,
    created_by: User,
    name: str,
    scopes: Iterable[str],
    expires_in_days: int,
) -> CreatedToken:
    """A service account of `organisation` with its first token (returned once)."""
    _require_admin(user=created_by, organisation=organisation)
    name = _clean_name(name)
    chosen = _clean_scopes(scopes, allowed=SERVICE_ACCOUNT_SCOPES)
    days = _clean_days(expires_in_days)
    if ServiceAccount.objects.filter(organisation=organisation, name=name).exists():
        raise ValidationError({"name": _("A service account of this name already exists.")})
    with transaction.atomic():
        account = ServiceAccount.objects.create(
            organisation=organisation, name=name, created_by=created_by
        )
        audit_record(
            action=AuditAction.API_SERVICE_ACCOUNT_CREATED,
            actor=created_by,
            organisation=organisation,
            target=account,
            target_label=str(account),
            after={"name": name, "scopes": chosen},
        )
        return _token_issue(
            actor=created_by,
            days=days,
            name=name,
            service_account=account,
            organisation=organisation,
            scopes=chosen,
            created_via="service-account",
        )


def service_account_disable(*, account: ServiceAccount, disabled_by: User) -> ServiceAccount:
    _require_admin(user=disabled_by, organisation=account.organisation)
    with transaction.atomic():
        locked = ServiceAccount.objects.select_for_update().get(pk=account.pk)
        if locked.disabled_at is not None:
            return locked
        now = timezone.now()
        locked.disabled_at = now
        locked.save(update_fields=["disabled_at"])
        ApiToken.objects.filter(service_account=locked, revoked_at__isnull=True).update(
            revoked_at=now
        )
        audit_record(
            action=AuditAction.API_SERVICE_ACCOUNT_DISABLED,
            actor=disabled_by,
            organisation=locked.organisation,
            target=locked,
            target_label=str(locked),
        )
    return locked


# --- the organisation's API policy -----------------------------------------------------------


def api_decisions_allowed(*, organisation: Organisation) -> bool:
    return OrganisationApiPolicy.objects.filter(
        organisation=organisation, allow_decisions=True
    ).exists()


def api_decisions_set(*, organisation: Organisation, changed_by: User, allow: bool) -> None:
    _require_admin(user=changed_by, organisation=organisation)
    with transaction.atomic():
        policy, _created = OrganisationApiPolicy.objects.select_for_update().get_or_create(
            organisation=organisation
        )
        if policy.allow_decisions == allow:
            return
        before = policy.allow_decisions
        policy.allow_decisions = allow
        policy.changed_by = changed_by
        policy.changed_at = timezone.now()
        policy.save()
        audit_record(
            action=AuditAction.API_DECISIONS_CHANGED,
            actor=changed_by,
            organisation=organisation,
            target=organisation,
            before={"allow_decisions": before},
            after={"allow_decisions": allow},
        )


# --- the device flow (RFC 8628) --------------------------------------------------------------


@dataclass(frozen=True)
class DeviceCodes:
    authorization: DeviceAuthorization
    device_code: str
    user_code: str


def normalise_user_code(raw: str) -> str:
    return "".join(ch for ch in (raw or "")[:32].upper() if ch.isalnum())


def format_user_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def device_authorization_start(*, client_name: str = "") -> DeviceCodes:
    device_code = secrets.token_urlsafe(32)
    user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    authorization = DeviceAuthorization.objects.create(
        device_code_hash=hash_token(device_code),
        user_code_hash=hash_token(user_code),
        client_name=(client_name or "pap")[:100],
        expires_at=timezone.now() + DEVICE_CODE_TTL,
    )
    return DeviceCodes(authorization=authorization, device_code=device_code, user_code=user_code)


def device_authorization_pending(*, user_code: str) -> DeviceAuthorization | None:
    """The open authorization a typed user code names, or None."""
    code = normalise_user_code(user_code)
    if len(code) != USER_CODE_LENGTH:
        return None
    return DeviceAuthorization.objects.filter(
        user_code_hash=hash_token(code),
        expires_at__gt=timezone.now(),
        approved_at__isnull=True,
        denied_at__isnull=True,
    ).first()


def device_authorization_decide(
    *,
    authorization: DeviceAuthorization,
    user: User,
    organisation: Organisation,
    approve: bool,
    with_mfa: bool,
) -> DeviceAuthorization:
    if not Membership.objects.filter(user=user, organisation=organisation).exists():
        raise PermissionDenied(_("You are not a member of this organisation."))
    with transaction.atomic():
        locked = DeviceAuthorization.objects.select_for_update().get(pk=authorization.pk)
        now = timezone.now()
        if locked.approved_at or locked.denied_at or locked.expires_at <= now:
            raise ValidationError(
                _("This code was already used or has expired; run pap login again.")
            )
        locked.approved_by = user
        locked.organisation = organisation
        if approve:
            locked.approved_at = now
            locked.approved_with_mfa = with_mfa
        else:
            locked.denied_at = now
        locked.save()
        audit_record(
            action=AuditAction.API_DEVICE_APPROVED if approve else AuditAction.API_DEVICE_DENIED,
            actor=user,
            organisation=organisation,
            target=locked,
            target_label=f"Command-line sign-in ({locked.client_name})",
            after={"scopes": list(DEVICE_FLOW_SCOPES) if approve else []},
        )
    return locked


class DeviceFlowError(Exception):
    """An RFC 8628 §3.5 error: `code` is the `error` member of the answer."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def device_token_exchange(*, device_code: str) -> CreatedToken:
    """The CLI's poll: the token once the person approved, else a DeviceFlowError (raised
    after the commit, so the poll's own time is kept for the next `slow_down` check)."""
    with transaction.atomic():
        outcome = _device_poll(device_code=device_code)
    if isinstance(outcome, DeviceFlowError):
        raise outcome
    return outcome


def _device_poll(*, device_code: str) -> "CreatedToken | DeviceFlowError":
    authorization = (
        DeviceAuthorization.objects.select_for_update()
        .filter(device_code_hash=hash_token(device_code or ""))
        .first()
    )
    if authorization is None:
        return DeviceFlowError("invalid_grant", "Unknown device code.")
    now = timezone.now()
    if authorization.consumed_at is not None:
        return DeviceFlowError("invalid_grant", "This device code was already used.")
    if authorization.denied_at is not None:
        return DeviceFlowError("access_denied", "The sign-in was refused in the browser.")
    if authorization.expires_at <= now:
        return DeviceFlowError("expired_token", "The code expired; run pap login again.")
    if authorization.approved_at is None:
        too_fast = authorization.last_polled_at is not None and (
            now - authorization.last_polled_at
        ) < dt.timedelta(seconds=DEVICE_POLL_INTERVAL_SECONDS - 0.5)
        authorization.last_polled_at = now
        authorization.save(update_fields=["last_polled_at"])
        if too_fast:
            return DeviceFlowError("slow_down", "Poll less often.")
        return DeviceFlowError("authorization_pending", "Waiting for the browser.")
    authorization.consumed_at = now
    authorization.save(update_fields=["consumed_at"])
    user = authorization.approved_by
    organisation = authorization.organisation
    assert user is not None and organisation is not None  # set together on approval
    return api_token_create(
        user=user,
        name=f"{authorization.client_name} (signed in {now:%Y-%m-%d %H:%M} UTC)"[:100],
        scopes=DEVICE_FLOW_SCOPES,
        expires_in_days=DEVICE_FLOW_TOKEN_DAYS,
        organisation=organisation,
        with_mfa=authorization.approved_with_mfa,
        via="device",
    )


def token_mfa_fresh(token: ApiToken, *, hours: int = 12) -> bool:
    """Whether the token was created right after an MFA confirmation, within `hours`."""
    return token.created_with_mfa and token.created_at > timezone.now() - dt.timedelta(hours=hours)
