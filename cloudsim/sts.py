"""STS 2015-04-01: AssumeRole and GetCallerIdentity.

AssumeRole succeeds only when the role's trust policy admits the caller **and** the caller's
own policies allow ``sts:AssumeRole`` on the role's ARN (a role session: its role's policies
intersected with its session policy). Roots cannot assume roles. The issued credentials carry
no copy of the role's permissions: ``cloudsim.authz`` reads the role's attachments at every
call, so detaching a policy cuts off issued credentials, while editing the trust policy only
affects later AssumeRole calls.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cloudsim import authz, policy
from cloudsim.api import ApiContext, api_action
from cloudsim.errors import ApiError
from cloudsim.identity import ACCOUNT, ASSUMED_ROLE, RAM_USER, Identity
from cloudsim.store import Role, Store, StsSession, iso

VERSION = "2015-04-01"

MIN_DURATION = 900
DEFAULT_DURATION = 3600
# [UNVERIFIED] a session obtained with role credentials (role chaining) lasts at most an hour,
# as Alibaba's AssumeRole page says for STS-token callers.
MAX_CHAINED_DURATION = 3600

ROLE_ARN_RE = re.compile(r"^acs:ram::(\d{1,32}):role/([A-Za-z0-9.-]{1,64})$")
SESSION_NAME_RE = re.compile(r"^[A-Za-z0-9.@_-]{2,64}$")
EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")

DENIED_BY_RAM = "You are not authorized to do this action. You should be authorized by RAM."


def _wrongly_formed_arn() -> ApiError:
    return ApiError("InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.", 400)


def _validate_session_name(name: str | None, param: str = "RoleSessionName") -> str:
    if name is None or not SESSION_NAME_RE.match(name):
        raise ApiError(
            f"InvalidParameter.{param}",
            f"The parameter {param} must be 2 to 64 characters of letters, digits and . @ - _.",
            400,
        )
    return name


def _session_policy(ctx: ApiContext) -> str | None:
    text = ctx.params.get("Policy")
    if text is None or text == "":
        return None
    if len(text) > policy.MAX_SESSION_POLICY_LENGTH:
        raise ApiError(
            "InvalidParameter.PolicySize",
            f"The size of policy must be smaller than {policy.MAX_SESSION_POLICY_LENGTH} bytes.",
            400,
        )
    try:
        policy.parse_policy_document(text, max_length=policy.MAX_SESSION_POLICY_LENGTH)
    except policy.PolicyDocumentError as exc:
        raise ApiError(
            "InvalidParameter.PolicyGrammar", f"The policy grammar is wrong: {exc}", 400
        ) from None
    return text


@functools.lru_cache(maxsize=2048)
def _parsed_trust(text: str) -> dict:
    """A stored trust document, parsed once (shared: never mutate the result)."""
    try:
        return policy.parse_trust_policy(text, max_length=1 << 20)
    except policy.PolicyDocumentError:  # stored documents were validated; admit nobody
        return {"Version": "1", "Statement": []}


@functools.lru_cache(maxsize=2048)
def _trust_has_conditions(text: str) -> bool:
    return any("Condition" in statement for statement in _parsed_trust(text)["Statement"])


@functools.lru_cache(maxsize=8192)
def _unconditional_trust(text: str, caller_arn: str, caller_account: str) -> policy.Decision:
    """A condition-free trust document's answer to the caller (the request context cannot
    change it, so it is remembered per document text and caller)."""
    return policy.trust_decision(
        _parsed_trust(text), caller_arn=caller_arn, caller_account=caller_account, context={}
    )


def _credentials_json(session: StsSession, role: Role) -> dict:
    return {
        "Credentials": {
            "AccessKeyId": session.access_key_id,
            "AccessKeySecret": session.secret,
            "SecurityToken": session.security_token,
            "Expiration": iso(session.expires_at),
        },
        "AssumedRoleUser": {
            "Arn": f"{role.arn}/{session.session_name}",
            "AssumedRoleId": f"{role.role_id}:{session.session_name}",
        },
    }


def _issue(
    store: Store,
    *,
    role_account: str,
    role_name: str,
    session_name: str,
    duration: int,
    session_policy: str | None,
    source_identity: str | None,
    caller_arn: str,
    caller_account: str,
    admitted: Callable[[str], policy.Decision],
    max_duration: int | None,
    identity: Identity | None = None,
) -> tuple[StsSession, Role]:
    """Load the role, check trust and duration, and write the session, in one transaction."""
    with store.write() as tx:
        role = tx.role_get(role_account, role_name)
        if role is None:
            raise ApiError("EntityNotExist.Role", "The specified Role not exists.", 404)
        decision = admitted(role.trust_document)
        if not decision.allowed:
            detail = None
            if identity is not None:
                detail = authz.access_denied_detail(
                    identity=identity,
                    action=policy.ASSUME_ROLE_ACTION,
                    resource=role.arn,
                    policy_type=authz.TRUST_POLICY,
                    explicit=decision is policy.Decision.EXPLICIT_DENY,
                )
            raise ApiError("NoPermission", DENIED_BY_RAM, 403, access_denied_detail=detail)
        ceiling = role.max_session_duration
        if max_duration is not None:
            ceiling = min(ceiling, max_duration)
        if duration > ceiling:
            raise ApiError(
                "InvalidParameter.DurationSeconds",
                f"The Min/Max value of DurationSeconds is 15min/{ceiling // 60}min.",
                400,
            )
        session = tx.sts_session_create(
            account_uid=role.account_uid,
            role=role,
            session_name=session_name,
            session_policy=session_policy,
            source_identity=source_identity,
            caller_arn=caller_arn,
            caller_account=caller_account,
            duration_seconds=duration,
        )
    return session, role


@api_action(version=VERSION, name="AssumeRole", mutating=True)
def assume_role(ctx: ApiContext) -> dict:
    identity = ctx.identity
    role_arn = ctx.require("RoleArn")
    match = ROLE_ARN_RE.match(role_arn)
    if match is None:
        raise _wrongly_formed_arn()
    role_account, role_name = match.groups()
    session_name = _validate_session_name(ctx.require("RoleSessionName"))
    duration = ctx.int_param(
        "DurationSeconds",
        DEFAULT_DURATION,
        minimum=MIN_DURATION,
        error=ApiError(
            "InvalidParameter.DurationSeconds",
            "The Min/Max value of DurationSeconds is 15min/1hr.",
            400,
        ),
    )
    session_policy = _session_policy(ctx)
    external_id = ctx.param("ExternalId")
    if external_id is not None and not EXTERNAL_ID_RE.match(external_id):
        raise ApiError(
            "InvalidParameter.ExternalId",
            "The parameter ExternalId must be 2 to 1224 characters of letters, digits and "
            "+=,.@:/-_.",
            400,
        )
    source_identity = ctx.param("SourceIdentity")
    if source_identity is not None:
        _validate_session_name(source_identity, "SourceIdentity")
    if identity.source_identity:
        # [UNVERIFIED] once set, a source identity follows the whole chain unchanged.
        if source_identity not in (None, identity.source_identity):
            raise ApiError(
                "InvalidParameter.SourceIdentity",
                "The SourceIdentity of a chained session must equal the caller's.",
                400,
            )
        source_identity = identity.source_identity

    if identity.kind == ACCOUNT:
        raise ApiError("NoPermission", "Roles may not be assumed by root accounts.", 403)
    if not authz.is_allowed(
        store=ctx.store,
        identity=identity,
        action="sts:AssumeRole",
        resource=role_arn,
        source_ip=ctx.source_ip,
        secure_transport=ctx.secure_transport,
    ):
        detail = authz.denial_detail(
            store=ctx.store,
            identity=identity,
            action=policy.ASSUME_ROLE_ACTION,
            resource=role_arn,
            source_ip=ctx.source_ip,
            secure_transport=ctx.secure_transport,
        )
        raise ApiError("NoPermission", DENIED_BY_RAM, 403, access_denied_detail=detail)

    def admitted(trust_text: str) -> policy.Decision:
        if not _trust_has_conditions(trust_text):
            return _unconditional_trust(trust_text, identity.arn, identity.account_uid)
        extra = {policy.KEY_EXTERNAL_ID: external_id} if external_id is not None else None
        context = authz.condition_context(
            identity=identity,
            source_ip=ctx.source_ip,
            secure_transport=ctx.secure_transport,
            extra=extra,
        )
        return policy.trust_decision(
            _parsed_trust(trust_text),
            caller_arn=identity.arn,
            caller_account=identity.account_uid,
            context=context,
        )

    session, role = _issue(
        ctx.store,
        role_account=role_account,
        role_name=role_name,
        session_name=session_name,
        duration=duration,
        session_policy=session_policy,  # type: ignore[arg-type]
        source_identity=source_identity,
        caller_arn=identity.arn,
        caller_account=identity.account_uid,
        admitted=admitted,
        max_duration=MAX_CHAINED_DURATION if identity.kind == ASSUMED_ROLE else None,
        identity=identity,
    )
    ctx.log_extra["resource"] = role.arn
    ctx.log_extra["target_account"] = role.account_uid
    ctx.log_extra["issued_access_key_id"] = session.access_key_id
    body = _credentials_json(session, role)
    if source_identity:
        body["SourceIdentity"] = source_identity
    return body


def assume_role_as_service(
    store: Store,
    *,
    service: str,
    role_arn: str,
    session_name: str,
    duration: int = DEFAULT_DURATION,
) -> dict:
    """A cloud service (e.g. ``oos.aliyuncs.com``) assumes a role that trusts it.

    Real services do this inside Alibaba Cloud; cloudsim exposes it to the operator
    (``POST /_sim/service-assume-role``) so service-role chains can be exercised.
    """
    match = ROLE_ARN_RE.match(role_arn or "")
    if match is None:
        raise _wrongly_formed_arn()
    _validate_session_name(session_name)
    if duration < MIN_DURATION:
        raise ApiError(
            "InvalidParameter.DurationSeconds",
            "The Min/Max value of DurationSeconds is 15min/1hr.",
            400,
        )
    context = policy.request_context(
        source_ip=None,
        now=datetime.fromtimestamp(time.time(), UTC),
        secure_transport=True,
        mfa_present=None,
    )

    def admitted(trust_text: str) -> policy.Decision:
        return policy.trust_decision(
            _parsed_trust(trust_text),
            caller_arn="",
            caller_account="",
            service=service,
            context=context,
        )

    session, role = _issue(
        store,
        role_account=match.group(1),
        role_name=match.group(2),
        session_name=session_name,
        duration=duration,
        session_policy=None,
        source_identity=None,
        caller_arn=f"service/{service}",
        caller_account="",
        admitted=admitted,
        max_duration=None,
    )
    return _credentials_json(session, role)


@api_action(version=VERSION, name="GetCallerIdentity")
def get_caller_identity(ctx: ApiContext) -> dict:
    """Answers for every identity without a policy check, as STS does."""
    return caller_identity_json(ctx.identity)


def caller_identity_json(identity: Identity) -> dict:
    body = {"AccountId": identity.account_uid, "Arn": identity.arn, "IdentityType": identity.kind}
    if identity.kind == ACCOUNT:
        body["PrincipalId"] = identity.account_uid
    elif identity.kind == RAM_USER:
        body["UserId"] = identity.user_id
        body["PrincipalId"] = identity.user_id
    elif identity.kind == ASSUMED_ROLE:
        body["RoleId"] = identity.role_id
        body["PrincipalId"] = f"{identity.role_id}:{identity.session_name}"
        if identity.source_identity:
            body["SourceIdentity"] = identity.source_identity
    return body
