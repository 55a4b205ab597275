"""STS credentials for one person on one delegation, and the forms they are shown in.

`credentials_issue` is the only way credentials leave the portal (the "Get credentials" page
and the credentials URI both call it):

1. checks made without a lock (cheap refusals: wrong person, no usable partner key, a
   duration out of range) — nothing is written for bad input, a refusal is audited;
2. an intent event (`credentials.issue_started`) committed *before* the cloud call, so an
   audit log that cannot be written means no AssumeRole at all;
3. one transaction that locks the delegation row (the row `delegation_revoke` locks), the
   person's membership and the assignment, checks all three again, calls AssumeRole with the
   partner's connected key and `RoleSessionName` derived from the person, and records the
   issuance (AccessKey id, expiry; never the secret or token) and `credentials.issued`.
   A revocation committed before this transaction took the lock is seen and refused; one
   that comes later waits for the commit, so no credentials are issued after a revoke.

The secret and the security token exist only in the returned `IssuedForPerson`, for the one
response that shows them. They are never logged, stored, cached, put in a URL, a cookie, a
task or an audit event.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Membership, Organisation, User
from audit.actions import AuditAction
from audit.models import AuditEvent
from cloud import policies
from cloud.client import CloudClient, IssuedCredentials
from cloud.errors import CloudError
from delegations.connection.services import cloud_account_credentials, cloud_error_reference
from delegations.delegation_audit import delegation_audit_record
from delegations.models import (
    CredentialIssuance,
    CredentialsUriToken,
    Delegation,
    StaffAssignment,
)
from delegations.notices import credentials_issued_notify
from delegations.partner.issuing_lock import issuing_rows_apply, issuing_rows_lock
from delegations.partner.services import broker_is_root, delegation_is_usable
from delegations.partner_access import partner_cloud_account
from delegations.role_state import delegation_external_id
from delegations.trust.selectors import no_broker_reason, not_named_reason

MIN_CREDENTIAL_SECONDS = 900
DEFAULT_MAX_CREDENTIAL_SECONDS = 3600
EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DIGITS = re.compile(r"\A[0-9]{1,6}\Z")


def portal_max_credential_seconds() -> int:
    return int(getattr(settings, "PORTAL_MAX_CREDENTIAL_SECONDS", DEFAULT_MAX_CREDENTIAL_SECONDS))


class CredentialRefused(Exception):
    """Credentials were not issued. `code` is stable (the credentials URI answers with it),
    `message` says why in words a person can act on, `status` is the HTTP status to use."""

    def __init__(self, code: str, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


# --- durations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DurationBounds:
    minimum: int
    maximum: int
    # What sets the maximum, for the page: "the portal's cap", "the role's maximum session",
    # "the time left on the delegation".
    limited_by: str

    @property
    def possible(self) -> bool:
        return self.maximum >= self.minimum


def credential_duration_bounds(
    *, delegation: Delegation, now: dt.datetime | None = None
) -> DurationBounds:
    """At least 900 s; at most the smallest of the role's maximum session, the time left on the
    delegation and the portal's cap (PORTAL_MAX_CREDENTIAL_SECONDS, default 3600)."""
    now = now or timezone.now()
    limits = [
        (portal_max_credential_seconds(), gettext("the portal's cap")),
        (delegation.catalog_role.max_session_duration, gettext("the role's maximum session")),
    ]
    if delegation.ends_at is not None:
        limits.append((int((delegation.ends_at - now).total_seconds()), gettext("the time left")))
    maximum, limited_by = min(limits, key=lambda item: item[0])
    return DurationBounds(minimum=MIN_CREDENTIAL_SECONDS, maximum=maximum, limited_by=limited_by)


def _no_time_left() -> ValidationError:
    return ValidationError(
        {
            "duration_seconds": gettext(
                "Less than 15 minutes are left on this delegation; credentials cannot be "
                "issued any more."
            )
        }
    )


def longest_duration(*, bounds: DurationBounds, uri_key: CredentialsUriToken | None) -> int:
    """The longest credentials `bounds` allow (a credentials-URI key's own duration caps it,
    though never below the minimum), or ValidationError when not even the minimum fits."""
    if not bounds.possible:
        raise _no_time_left()
    if uri_key is None:
        return bounds.maximum
    return min(bounds.maximum, max(uri_key.duration_seconds, bounds.minimum))


def parse_duration(value: object, *, bounds: DurationBounds) -> int:
    """An integer number of seconds within `bounds`, else ValidationError (BI-05: `3600.5`,
    `1e30`, `-5`, `abc` and out-of-range values are refused here, never sent to STS)."""
    if isinstance(value, bool):
        value = ""
    if isinstance(value, int):
        seconds = value
    else:
        text = str(value if value is not None else "").strip()
        if not _DIGITS.match(text):
            raise ValidationError(
                {"duration_seconds": gettext("Enter a whole number of seconds, like 3600.")}
            )
        seconds = int(text)
    if not bounds.possible:
        raise _no_time_left()
    if not bounds.minimum <= seconds <= bounds.maximum:
        raise ValidationError(
            {
                "duration_seconds": gettext(
                    "Choose %(minimum)s to %(maximum)s seconds (the maximum is set by "
                    "%(limited_by)s)."
                )
                % {
                    "minimum": bounds.minimum,
                    "maximum": bounds.maximum,
                    "limited_by": bounds.limited_by,
                }
            }
        )
    return seconds


# --- who the session names -------------------------------------------------------------------


def session_name_for(*, user: User, partner: Organisation) -> str:
    """The RoleSessionName the owner's cloud log shows: `<mailbox>@<partner>` (for example
    `alice@company-b`), or the full address when two members share a mailbox name; sanitised
    to `[A-Za-z0-9.@_-]`, at most 32 characters. Never taken from the request (BI-04)."""
    clash = (
        Membership.objects.filter(organisation=partner, user__email__istartswith=_mailbox(user))
        .exclude(user=user)
        .exists()
    )
    return _session_name(user=user, partner=partner, clash=clash)


def _mailbox(user: User) -> str:
    """`alice@`: the start every address with the same mailbox name shares."""
    return user.email.split("@", 1)[0] + "@"


def _session_name(*, user: User, partner: Organisation, clash: bool) -> str:
    local = user.email.split("@", 1)[0]
    basis = user.email if clash else f"{local}@{partner.slug}"
    return policies.role_session_name_for(basis)


# --- issuing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedForPerson:
    """What the one page (or URI answer) that reveals the credentials needs."""

    issuance: CredentialIssuance
    credentials: IssuedCredentials = field(repr=False)
    delegation: Delegation
    region_id: str

    @property
    def expiration_text(self) -> str:
        return self.credentials.expiration.astimezone(dt.UTC).strftime(EXPIRATION_FORMAT)


def _audit_credentials(
    *,
    action: AuditAction,
    delegation: Delegation,
    user: User,
    metadata: dict[str, Any],
    outcome: str = AuditEvent.Outcome.SUCCESS,
) -> None:
    delegation_audit_record(
        delegation,
        action,
        actor=user,
        actor_organisation=delegation.partner,
        metadata={"role_arn": delegation.managed_role.role_arn, **metadata},
        outcome=outcome,
    )


def _refuse(
    *,
    delegation: Delegation,
    user: User,
    refusal: CredentialRefused,
    base: dict[str, Any],
    own_transaction: bool = True,
) -> CredentialRefused:
    metadata = {**base, "refused_code": refusal.code, "refused_because": refusal.message}
    # Inside the caller's transaction when it has one, else in one of its own.
    with transaction.atomic() if own_transaction else contextlib.nullcontext():
        _audit_credentials(
            action=AuditAction.CREDENTIALS_REFUSED,
            delegation=delegation,
            user=user,
            metadata=metadata,
            outcome=AuditEvent.Outcome.DENIED,
        )
    return refusal


def not_named_refusal(*, delegation: Delegation, user_id: int) -> CredentialRefused | None:
    """A named-people trust scope that does not name this person: refused before any cloud
    call (the cloud would answer NoPermission), saying whom to ask."""
    reason = not_named_reason(delegation=delegation, user_id=user_id) or no_broker_reason(
        delegation=delegation, user_id=user_id
    )
    return None if reason is None else CredentialRefused("NotNamed", reason)


def _standing_problem(
    *,
    delegation: Delegation,
    assignment: StaffAssignment,
    is_active: bool,
    is_staff: bool,
    uri_key: CredentialsUriToken | None,
    now: dt.datetime,
) -> CredentialRefused | None:
    """Why this person may not have credentials now, or None. Read on locked rows in the
    issuing transaction, and without locks for the cheap early answer."""
    if not is_active:
        # As the API refuses a deactivated person's tokens and sign-in their sessions; a
        # credentials URI has neither, so this is its check.
        return CredentialRefused(
            "UserInactive",
            gettext("Your portal account is deactivated: you can no longer take credentials."),
        )
    if not is_staff:
        return CredentialRefused(
            "NotStaff",
            gettext("You are no longer a staff member of %(partner)s.")
            % {"partner": delegation.partner.name},
        )
    if assignment.ended_at is not None:
        return CredentialRefused(
            "NotAssigned",
            gettext(
                "Your admin has unassigned you from this access; ask them if you still need it."
            ),
        )
    if not delegation_is_usable(delegation, now=now):
        status = delegation.get_status_display().lower()
        if delegation.status == Delegation.Status.ACTIVE:
            status = gettext("past its end date")
        return CredentialRefused(
            "DelegationNotActive",
            gettext(
                "%(owner)s's delegation of %(role)s is %(status)s; no credentials can be "
                "issued for it."
            )
            % {
                "owner": delegation.owner.name,
                # With its account: a fleet's delegations of the role read alike otherwise.
                "role": delegation.role_label,
                "status": status,
            },
        )
    not_named = not_named_refusal(delegation=delegation, user_id=assignment.user_id)
    if not_named is not None:
        return not_named
    if uri_key is not None:
        if uri_key.revoked_at is not None:
            return CredentialRefused(
                "UriRevoked", gettext("This credentials URI has been revoked.")
            )
        if uri_key.expires_at <= now:
            return CredentialRefused(
                "UriExpired",
                gettext("This credentials URI has expired; make a new one in the portal."),
            )
    return None


def _client_for(delegation: Delegation) -> tuple[CloudClient, str]:
    account = partner_cloud_account(organisation=delegation.partner)
    if account is None:
        raise CredentialRefused(
            "PartnerAccountNotConnected",
            gettext(
                "%(partner)s has not connected its Alibaba Cloud account to the portal; "
                "an admin must do that before credentials can be issued."
            )
            % {"partner": delegation.partner.name},
            status=409,
        )
    if broker_is_root(account):
        raise CredentialRefused(
            "PartnerKeyIsRoot",
            gettext(
                "%(partner)s's account is connected with its root AccessKey, and Alibaba "
                "Cloud does not let a root account assume roles. An admin must connect a "
                "RAM user's AccessKey instead (Alibaba Cloud account page)."
            )
            % {"partner": delegation.partner.name},
            status=409,
        )
    client = CloudClient(
        cloud_account_credentials(cloud_account=account),
        region_id=account.region,
        read_timeout_ms=int(getattr(settings, "PORTAL_CREDENTIAL_READ_TIMEOUT_MS", 5000)),
    )
    return client, delegation.managed_role.cloud_account.region


def _cloud_refusal(error: CloudError) -> CredentialRefused:
    reference = cloud_error_reference(error)
    if error.transient:
        return CredentialRefused(
            "CloudUnavailable",
            gettext(
                "Alibaba Cloud did not answer in time (%(message)s); nothing was issued. "
                "Try again in a moment."
            )
            % {"message": error.message},
            status=503,
        )
    code = error.code or error.category.value
    if code.startswith("NoPermission") or code.startswith("EntityNotExist.Role"):
        return CredentialRefused(
            "AssumeRoleDenied",
            gettext(
                "Alibaba Cloud refused AssumeRole: the role may not trust your "
                "organisation's account yet, or the portal's permission to assume it is "
                "still being applied (%(code)s)%(reference)s."
            )
            % {"code": code, "reference": reference},
            status=403,
        )
    return CredentialRefused(
        "AssumeRoleFailed",
        gettext("Alibaba Cloud refused AssumeRole: %(code)s: %(message)s%(reference)s.")
        % {"code": code, "message": error.message, "reference": reference},
        status=502,
    )


def credentials_issue(
    *,
    assignment: StaffAssignment,
    user: User,
    duration_seconds: object | None,
    via: str = CredentialIssuance.Via.WEB,
    uri_key: CredentialsUriToken | None = None,
) -> IssuedForPerson:
    """Issue STS credentials for `user` on their assignment (see the module docstring).

    `duration_seconds` None asks for the longest allowed (`longest_duration`), worked out
    under the lock: a maximum computed earlier by the caller could be a second longer than the
    one the lock sees and be refused. Any other value is the person's choice, validated.

    Raises ValidationError for bad input (nothing written, nothing called) and
    CredentialRefused when the person may not have credentials now or the cloud refused
    (audited)."""
    # The early checks use the delegation as the caller loaded it (with its owner, partner,
    # role and account); the issuing transaction reads its state again under the lock.
    delegation = assignment.delegation
    if assignment.user_id != user.pk:
        raise CredentialRefused("NotAssigned", gettext("This access is assigned to someone else."))
    now = timezone.now()
    bounds = credential_duration_bounds(delegation=delegation, now=now)
    longest = duration_seconds is None
    if longest:
        seconds = longest_duration(bounds=bounds, uri_key=uri_key)
    else:
        seconds = parse_duration(duration_seconds, bounds=bounds)
    # One read answers both "is this person staff here" and "does a colleague share their
    # mailbox name" (which decides the session name).
    memberships = list(
        Membership.objects.filter(organisation=delegation.partner)
        .filter(Q(user=user) | Q(user__email__istartswith=_mailbox(user)))
        .order_by()
        .values_list("user_id", "role")
    )
    is_staff = (user.pk, Membership.Role.STAFF) in memberships
    clash = any(member != user.pk for member, _ in memberships)
    session_name = _session_name(user=user, partner=delegation.partner, clash=clash)
    base: dict[str, Any] = {
        "session_name": session_name,
        "duration_seconds": seconds,
        "via": via,
        "assignment": str(assignment.pk),
    }
    if uri_key is not None:
        base["uri_id"] = str(uri_key.pk)
    problem = _standing_problem(
        delegation=delegation,
        assignment=assignment,
        is_active=user.is_active,
        is_staff=is_staff,
        uri_key=uri_key,
        now=now,
    )
    if problem is not None:
        raise _refuse(delegation=delegation, user=user, refusal=problem, base=base)
    try:
        client, region_id = _client_for(delegation)
    except CredentialRefused as refusal:
        raise _refuse(delegation=delegation, user=user, refusal=refusal, base=base) from None

    # The intent, committed before the cloud call: a failing audit log stops everything here.
    with transaction.atomic():
        _audit_credentials(
            action=AuditAction.CREDENTIALS_ISSUE_STARTED,
            delegation=delegation,
            user=user,
            metadata=base,
        )

    outcome: IssuedForPerson | CredentialRefused
    with transaction.atomic():
        # Lock order as everywhere: delegation, membership, assignment (then the audit head),
        # in one statement. Only what can change is read again, onto the objects loaded above.
        rows = issuing_rows_lock(
            delegation=delegation, assignment=assignment, user=user, uri_key=uri_key
        )
        issuing_rows_apply(rows, delegation=delegation, assignment=assignment, uri_key=uri_key)
        locked, locked_assignment, locked_key = delegation, assignment, uri_key
        now = timezone.now()
        problem = _standing_problem(
            delegation=locked,
            assignment=locked_assignment,
            is_active=user.is_active,
            is_staff=rows.member_role == Membership.Role.STAFF,
            uri_key=locked_key,
            now=now,
        )
        bounds = credential_duration_bounds(delegation=locked, now=now)
        if longest and bounds.possible:
            seconds = longest_duration(bounds=bounds, uri_key=locked_key)
            base = {**base, "duration_seconds": seconds}
        if problem is None and not (bounds.possible and seconds <= bounds.maximum):
            problem = CredentialRefused(
                "DurationTooLong",
                gettext("Only %(seconds)s seconds are left; choose a shorter duration.")
                % {"seconds": max(bounds.maximum, 0)},
                status=400,
            )
        if problem is not None:
            outcome = _refuse(
                delegation=locked, user=user, refusal=problem, base=base, own_transaction=False
            )
        else:
            outcome = _assume_and_record(
                client=client,
                delegation=locked,
                assignment=locked_assignment,
                user=user,
                seconds=seconds,
                session_name=session_name,
                via=via,
                uri_key=locked_key,
                base=base,
                region_id=region_id,
            )
    if isinstance(outcome, CredentialRefused):
        raise outcome
    return outcome


def _assume_and_record(
    *,
    client: CloudClient,
    delegation: Delegation,
    assignment: StaffAssignment,
    user: User,
    seconds: int,
    session_name: str,
    via: str,
    uri_key: CredentialsUriToken | None,
    base: dict[str, Any],
    region_id: str,
) -> IssuedForPerson | CredentialRefused:
    try:
        issued = client.assume_role(
            role_arn=delegation.managed_role.role_arn,
            session_name=session_name,
            duration_seconds=seconds,
            policy=assignment.session_policy or None,
            # The person, in the owner's log and through any role chain that follows.
            source_identity=session_name,
            external_id=delegation_external_id(delegation),
        )
    except CloudError as error:
        refusal = _cloud_refusal(error)
        _audit_credentials(
            action=AuditAction.CREDENTIALS_ISSUE_FAILED,
            delegation=delegation,
            user=user,
            metadata={
                **base,
                "error_code": error.code or error.category.value,
                "sts_request_id": error.request_id or "",
                "refused_code": refusal.code,
            },
            outcome=AuditEvent.Outcome.FAILURE,
        )
        return refusal
    issuance = CredentialIssuance.objects.create(
        delegation=delegation,
        assignment=assignment,
        user=user,
        partner=delegation.partner,
        session_name=session_name,
        access_key_id=issued.access_key_id,
        expiration=issued.expiration,
        duration_seconds=seconds,
        via=via,
        uri_token=uri_key,
        session_policy_kind=assignment.session_policy_kind,
        sts_request_id=(issued.request_id or "")[:64],
    )
    if uri_key is not None:
        CredentialsUriToken.objects.filter(pk=uri_key.pk).update(
            last_used_at=issuance.issued_at, use_count=uri_key.use_count + 1
        )
    _audit_credentials(
        action=AuditAction.CREDENTIALS_ISSUED,
        delegation=delegation,
        user=user,
        metadata={
            **base,
            "issuance": str(issuance.pk),
            "access_key_id": issued.access_key_id,
            "expiration": issued.expiration,
            "sts_request_id": issued.request_id or "",
            "assumed_role_arn": issued.assumed_role_arn or "",
            "session_policy_kind": assignment.session_policy_kind,
        },
    )
    credentials_issued_notify(
        issuance=issuance, first_use_of_key=uri_key is None or uri_key.use_count == 0
    )
    return IssuedForPerson(
        issuance=issuance, credentials=issued, delegation=delegation, region_id=region_id
    )


# --- the forms people paste ------------------------------------------------------------------


@dataclass(frozen=True)
class SnippetEndpoint:
    """Where the pasted snippets must send their calls: `host` as `host[:port]`, `protocol`
    http or https."""

    host: str
    protocol: str


def snippet_endpoint() -> SnippetEndpoint | None:
    """The endpoint every snippet names, or None when the portal uses Alibaba Cloud's own
    endpoints: the SDKs and the aliyun CLI then find each product's regional endpoint from the
    region alone, and the snippets stay as short as Alibaba's documentation shows them.

    The portal has no ECS endpoint of its own; a non-Alibaba STS endpoint means an emulator or
    a gateway, which serves every product at that one address (cloudsim does), so the ECS
    calls in the snippets go there too."""
    configured = str(getattr(settings, "ALIBABA_STS_ENDPOINT", "") or "").strip()
    scheme, _, rest = configured.rpartition("://")
    host = rest.strip("/")
    hostname = host.rsplit(":", 1)[0].lower() if host else ""
    if not hostname or hostname == "aliyuncs.com" or hostname.endswith(".aliyuncs.com"):
        return None
    protocol = scheme or str(getattr(settings, "ALIBABA_CLOUD_PROTOCOL", "https") or "https")
    return SnippetEndpoint(host=host, protocol=protocol.lower())


def profile_name_for(delegation: Delegation) -> str:
    """An aliyun CLI profile name in letters, digits and '-': `<owner>-<role>` in the owner's
    own account, `<owner>-<account alias or UID>-<role>` in another (a fleet's): profiles
    named alike would overwrite each other, and the CLI act in the account configured last."""
    owner, account = delegation.owner, delegation.managed_role.cloud_account
    parts = [owner.slug, delegation.catalog_role.role_name]
    if account.account_uid != owner.account_uid:
        parts.insert(1, account.alias or account.account_uid)
    raw = "-".join(parts)
    return re.sub(r"[^A-Za-z0-9-]+", "-", raw).strip("-")[:64] or "partner-access"


def _ps(value: str) -> str:
    """A PowerShell single-quoted string."""
    return "'" + value.replace("'", "''") + "'"


def _endpoint_parts(endpoint: SnippetEndpoint | None) -> dict[str, str]:
    """The endpoint as each snippet says it, or empty strings with Alibaba's own endpoints.

    Recent aliyun CLIs read ALIBABA_CLOUD_ENDPOINT and a profile's `endpoint`; every 3.x takes
    `--endpoint` on a command (not on `configure set`), so the example command carries it,
    with `--insecure` over plain http (the CLI defaults to https). The Python SDK reads no
    variable: its Config takes `endpoint` and `protocol`."""
    if endpoint is None:
        return {"bash": "", "powershell": "", "command_flags": "", "python": ""}
    host = endpoint.host
    insecure = " --insecure" if endpoint.protocol == "http" else ""
    note = (
        "# The aliyun CLI reads ALIBABA_CLOUD_ENDPOINT; add --insecure to its commands (plain "
        "http).\n"
        if insecure
        else ""
    )
    return {
        "bash": f"{note}export ALIBABA_CLOUD_ENDPOINT={shlex.quote(host)}\n",
        "powershell": f"{note}$Env:ALIBABA_CLOUD_ENDPOINT = {_ps(host)}\n",
        "command_flags": f" --endpoint {shlex.quote(host)}{insecure}",
        "python": f", endpoint={json.dumps(host)}, protocol={json.dumps(endpoint.protocol)}",
    }


def _config_entry(fields: dict[str, str], endpoint: SnippetEndpoint | None) -> str:
    entry = {**fields, "output_format": "json", "language": "en"}
    if endpoint is not None:
        entry["endpoint"] = endpoint.host
    return json.dumps(entry, indent=2) + "\n"


_PYTHON_CREDENTIAL_IMPORTS = (
    "from alibabacloud_credentials.client import Client as CredentialClient\n"
    "from alibabacloud_credentials.models import Config as CredentialConfig\n"
)
_PYTHON_ECS_IMPORTS = (
    "from alibabacloud_ecs20140526.client import Client as EcsClient\n"
    "from alibabacloud_tea_openapi.models import Config\n"
)


def _python_ecs_client(region: str, parts: dict[str, str]) -> str:
    return (
        f"ecs = EcsClient(Config(credential=credential, region_id={json.dumps(region)}"
        f"{parts['python']}))\n"
    )


def credential_formats(*, issued: IssuedForPerson) -> dict[str, str]:
    """The same credentials as bash exports, PowerShell, an aliyun CLI profile command, a Python
    SDK snippet and an `~/.aliyun/config.json` profile entry; each names the portal's endpoint
    when it is not Alibaba Cloud's own (`snippet_endpoint`)."""
    credentials = issued.credentials
    key_id, secret, sts = (
        credentials.access_key_id,
        credentials.access_key_secret,
        credentials.security_token,
    )
    profile = profile_name_for(issued.delegation)
    region = issued.region_id
    endpoint = snippet_endpoint()
    parts = _endpoint_parts(endpoint)
    bash = (
        f"export ALIBABA_CLOUD_ACCESS_KEY_ID={shlex.quote(key_id)}\n"
        f"export ALIBABA_CLOUD_ACCESS_KEY_SECRET={shlex.quote(secret)}\n"
        f"export ALIBABA_CLOUD_SECURITY_TOKEN={shlex.quote(sts)}\n"
        f"export ALIBABA_CLOUD_REGION_ID={shlex.quote(region)}\n"
        f"{parts['bash']}"
    )
    powershell = (
        f"$Env:ALIBABA_CLOUD_ACCESS_KEY_ID = {_ps(key_id)}\n"
        f"$Env:ALIBABA_CLOUD_ACCESS_KEY_SECRET = {_ps(secret)}\n"
        f"$Env:ALIBABA_CLOUD_SECURITY_TOKEN = {_ps(sts)}\n"
        f"$Env:ALIBABA_CLOUD_REGION_ID = {_ps(region)}\n"
        f"{parts['powershell']}"
    )
    cli = (
        f"aliyun configure set --profile {shlex.quote(profile)} --mode StsToken "
        f"--region {shlex.quote(region)} --access-key-id {shlex.quote(key_id)} "
        f"--access-key-secret {shlex.quote(secret)} --sts-token {shlex.quote(sts)}\n"
        f"aliyun ecs DescribeInstances --profile {shlex.quote(profile)}{parts['command_flags']}\n"
    )
    python = (
        f"{_PYTHON_CREDENTIAL_IMPORTS}{_PYTHON_ECS_IMPORTS}\n"
        "credential = CredentialClient(CredentialConfig(\n"
        '    type="sts",\n'
        f"    access_key_id={json.dumps(key_id)},\n"
        f"    access_key_secret={json.dumps(secret)},\n"
        f"    security_token={json.dumps(sts)},\n"
        "))\n"
        f"{_python_ecs_client(region, parts)}"
    )
    config_entry = _config_entry(
        {
            "name": profile,
            "mode": "StsToken",
            "access_key_id": key_id,
            "access_key_secret": secret,
            "sts_token": sts,
            "region_id": region,
        },
        endpoint,
    )
    return {
        "bash": bash,
        "powershell": powershell,
        "cli": cli,
        "python": python,
        "config_json": config_entry,
    }


def credentials_uri_formats(*, url: str, delegation: Delegation) -> dict[str, str]:
    """How to use a credentials URI with the aliyun CLI and the SDKs (naming the portal's
    endpoint when it is not Alibaba Cloud's own, like `credential_formats`)."""
    profile = profile_name_for(delegation)
    region = delegation.managed_role.cloud_account.region
    endpoint = snippet_endpoint()
    parts = _endpoint_parts(endpoint)
    # With Alibaba's endpoints the snippet only builds the credential, as it always has;
    # elsewhere it also shows where the ECS client must point.
    ecs_imports, ecs_client = (
        (_PYTHON_ECS_IMPORTS, _python_ecs_client(region, parts)) if endpoint else ("", "")
    )
    python = (
        f"{_PYTHON_CREDENTIAL_IMPORTS}{ecs_imports}\n"
        "credential = CredentialClient(CredentialConfig(\n"
        '    type="credentials_uri",\n'
        f"    credentials_uri={json.dumps(url)},\n"
        "))\n"
        f"{ecs_client}"
    )
    cli = (
        f"aliyun configure set --profile {shlex.quote(profile)} --mode CredentialsURI "
        f"--region {shlex.quote(region)} --credentials-uri {shlex.quote(url)}\n"
    )
    if endpoint is not None:
        cli += (
            f"aliyun ecs DescribeInstances --profile {shlex.quote(profile)}"
            f"{parts['command_flags']}\n"
        )
    return {
        "cli": cli,
        "bash": f"export ALIBABA_CLOUD_CREDENTIALS_URI={shlex.quote(url)}\n{parts['bash']}",
        "powershell": f"$Env:ALIBABA_CLOUD_CREDENTIALS_URI = {_ps(url)}\n{parts['powershell']}",
        "python": python,
        "config_json": _config_entry(
            {
                "name": profile,
                "mode": "CredentialsURI",
                "credentials_uri": url,
                "region_id": region,
            },
            endpoint,
        ),
    }


def credentials_uri_body(*, issued: IssuedForPerson) -> dict[str, str]:
    """Exactly the JSON the aliyun CLI's CredentialsURI mode and the SDKs' URI provider read."""
    return {
        "Code": "Success",
        "AccessKeyId": issued.credentials.access_key_id,
        "AccessKeySecret": issued.credentials.access_key_secret,
        "SecurityToken": issued.credentials.security_token,
        "Expiration": issued.expiration_text,
    }
