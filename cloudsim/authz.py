"""Call-time authorisation: may this identity do this action on this resource right now?

- An account's root may do anything inside its own account.
- A RAM user may do what the default versions of its attached policies allow.
- A role session may do what the role's attached policies allow **and** its session policy (if
  any) allows. Both are read at the moment of the call, so detaching a policy from a role cuts
  off credentials that were already issued.
Explicit Deny wins everywhere (``cloudsim.policy.evaluate``).
"""

from __future__ import annotations

import base64
import functools
import json
import time
from datetime import UTC, datetime

from cloudsim import policy
from cloudsim.errors import ApiError
from cloudsim.identity import ACCOUNT, ASSUMED_ROLE, RAM_USER, Identity
from cloudsim.store import Store

# Stored documents were validated when written; this bound only protects the parser.
_STORED_DOCUMENT_LIMIT = 1 << 20


@functools.lru_cache(maxsize=4096)
def parsed_document(text: str) -> dict:
    """Parse a stored policy document once; the result is shared and must not be mutated."""
    return policy.parse_policy_document(text, max_length=_STORED_DOCUMENT_LIMIT)


def condition_context(
    *,
    identity: Identity,
    source_ip: str,
    secure_transport: bool,
    now: float | None = None,
    extra: dict | None = None,
) -> dict:
    """The request context conditions are evaluated against (``acs:SourceIp`` etc.)."""
    moment = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return policy.request_context(
        source_ip=source_ip,
        now=moment,
        secure_transport=secure_transport,
        mfa_present=identity.mfa_present,
        extra=extra,
    )


def resource_account(resource: str) -> str | None:
    """The account field of ``acs:<service>:<region>:<account>:<path>``, or None for ``*``."""
    parts = resource.split(":", 4)
    if len(parts) < 5 or parts[0] != "acs":
        return None
    return parts[3]


def _identity_documents(store: Store, identity: Identity) -> tuple[str, ...]:
    """The default-version documents that apply to a RAM user or role session now."""
    with store.read() as tx:
        if identity.kind == RAM_USER:
            return tuple(
                tx.attached_documents(identity.account_uid, "User", identity.user_name or "")
            )
        if identity.kind == ASSUMED_ROLE:
            # A session belongs to one RoleId: a role deleted and re-created under the same
            # name is another role and lends the old session nothing ([UNVERIFIED] choice).
            role = tx.role_get(identity.account_uid, identity.role_name or "")
            if role is None or role.role_id != identity.role_id:
                return ()
            return tuple(tx.attached_documents(identity.account_uid, "Role", role.name))
    return ()


def is_allowed(
    *,
    store: Store,
    identity: Identity,
    action: str,
    resource: str,
    source_ip: str,
    secure_transport: bool = False,
    now: float | None = None,
) -> bool:
    if identity.is_root:
        owner = resource_account(resource)
        return owner in (None, "*", identity.account_uid)
    documents_key = (
        "documents",
        identity.kind,
        identity.account_uid,
        identity.user_name,
        identity.role_name,
        identity.role_id,
    )
    documents = store.cached("policy", documents_key, lambda: _identity_documents(store, identity))
    if not documents:
        return False
    session_policy = identity.session_policy if identity.kind == ASSUMED_ROLE else None
    layers = [[parsed_document(text) for text in documents]]
    if session_policy:
        layers.append([parsed_document(session_policy)])

    def decide() -> policy.Decision:
        context = condition_context(
            identity=identity, source_ip=source_ip, secure_transport=secure_transport, now=now
        )
        return policy.evaluate_layers(layers, action=action, resource=resource, context=context)

    if now is None and not any(_has_conditions(text) for text in (*documents, session_policy)):
        # Without conditions the answer depends on the documents, action and resource only.
        decision = store.cached(
            "policy", ("decision", documents_key, session_policy, action, resource), decide
        )
    else:
        decision = decide()
    return decision is policy.Decision.ALLOW


@functools.lru_cache(maxsize=4096)
def _has_conditions(text: str | None) -> bool:
    if not text:
        return False
    return any("Condition" in statement for statement in parsed_document(text)["Statement"])


# AccessDeniedDetail.PolicyType values (RAM's DecodeDiagnosticMessage lists them).
IDENTITY_POLICY = "AccountLevelIdentityBasedPolicy"
SESSION_POLICY = "SessionPolicy"
TRUST_POLICY = "AssumeRolePolicy"
_PRINCIPAL_TYPES = {RAM_USER: "SubUser", ASSUMED_ROLE: "AssumedRoleUser", ACCOUNT: "Account"}


def access_denied_detail(
    *, identity: Identity, action: str, resource: str, policy_type: str, explicit: bool
) -> dict[str, str]:
    """The ``AccessDeniedDetail`` of a 403, in the shape current RPC APIs answer with.

    [UNVERIFIED] ``AuthPrincipalDisplayName`` (the user name, ``role:session`` for a role
    session, the UID for a root) and ``EncodedDiagnosticMessage``: Alibaba's is an opaque
    encrypted blob decoded by ``ram:DecodeDiagnosticMessage``; cloudsim's is base64 JSON of
    the same decoded fields.
    """
    if identity.kind == RAM_USER:
        display = identity.user_name or ""
    elif identity.kind == ASSUMED_ROLE:
        display = f"{identity.role_name}:{identity.session_name}"
    else:
        display = identity.account_uid
    principal_type = _PRINCIPAL_TYPES.get(identity.kind, identity.kind)
    diagnostic = {
        "AuthAction": action,
        "AuthResource": resource,
        "AuthPrincipal": {
            "AuthPrincipalType": principal_type,
            "AuthPrincipalOwnerId": identity.account_uid,
            "AuthPrincipalDisplayName": display,
        },
        "ExplicitDeny": explicit,
        "NoPermissionPolicyType": policy_type,
    }
    encoded = base64.b64encode(json.dumps(diagnostic, separators=(",", ":")).encode()).decode()
    return {
        "AuthAction": action,
        "AuthPrincipalDisplayName": display,
        "AuthPrincipalOwnerId": identity.account_uid,
        "AuthPrincipalType": principal_type,
        "EncodedDiagnosticMessage": encoded,
        "NoPermissionType": "ExplicitDeny" if explicit else "ImplicitDeny",
        "PolicyType": policy_type,
    }


def denial_detail(
    *,
    store: Store,
    identity: Identity,
    action: str,
    resource: str,
    source_ip: str,
    secure_transport: bool = False,
) -> dict[str, str]:
    """Why ``is_allowed`` said no, as ``AccessDeniedDetail``: which policy layer refused
    (the identity's policies, else the session policy) and whether a Deny did. Refusals are
    rare, so this evaluates again instead of burdening every allowed call."""
    explicit = False
    policy_type = IDENTITY_POLICY
    if not identity.is_root:
        context = condition_context(
            identity=identity, source_ip=source_ip, secure_transport=secure_transport
        )
        documents = [parsed_document(text) for text in _identity_documents(store, identity)]
        own = policy.evaluate(documents, action=action, resource=resource, context=context)
        session = policy.Decision.ALLOW
        if identity.kind == ASSUMED_ROLE and identity.session_policy:
            session = policy.evaluate(
                [parsed_document(identity.session_policy)],
                action=action,
                resource=resource,
                context=context,
            )
        explicit = policy.Decision.EXPLICIT_DENY in (own, session)
        if own is policy.Decision.ALLOW or (
            session is policy.Decision.EXPLICIT_DENY and own is not policy.Decision.EXPLICIT_DENY
        ):
            policy_type = SESSION_POLICY
    return access_denied_detail(
        identity=identity,
        action=action,
        resource=resource,
        policy_type=policy_type,
        explicit=explicit,
    )


def authorize(
    *,
    store: Store,
    identity: Identity,
    action: str,
    resource: str,
    source_ip: str,
    secure_transport: bool = False,
) -> None:
    """Raise ``NoPermission`` (403), with its ``AccessDeniedDetail``, unless ``is_allowed``."""
    request = {
        "store": store,
        "identity": identity,
        "action": action,
        "resource": resource,
        "source_ip": source_ip,
        "secure_transport": secure_transport,
    }
    if not is_allowed(**request):
        raise ApiError(
            "NoPermission",
            f"You are not authorized to do this action. Resource: {resource} Action: {action}",
            403,
            access_denied_detail=denial_detail(**request),
        )
