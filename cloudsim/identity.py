"""Who is calling: an AccessKeyId resolved to an account root, a RAM user or a role session."""

from __future__ import annotations

from dataclasses import dataclass

from cloudsim.store import Store, Tx, role_arn

ACCOUNT = "Account"
RAM_USER = "RAMUser"
ASSUMED_ROLE = "AssumedRoleUser"


@dataclass(frozen=True)
class Identity:
    """A verified caller. ``arn`` is what GetCallerIdentity and the call log show;
    ``principal_arn`` is what trust policies name (a role session acts as its role)."""

    kind: str  # ACCOUNT | RAM_USER | ASSUMED_ROLE
    account_uid: str
    access_key_id: str
    user_name: str | None = None
    user_id: str | None = None
    role_name: str | None = None
    role_id: str | None = None
    session_name: str | None = None
    session_policy: str | None = None
    source_identity: str | None = None
    expires_at: float | None = None
    # The identity that called AssumeRole to obtain this session (for chains and the call log).
    caller_arn: str | None = None
    # None for AccessKey calls (they carry no MFA claim); set by console sign-ins.
    mfa_present: bool | None = None

    @property
    def arn(self) -> str:
        if self.kind == ACCOUNT:
            return f"acs:ram::{self.account_uid}:root"
        if self.kind == RAM_USER:
            return f"acs:ram::{self.account_uid}:user/{self.user_name}"
        return f"acs:ram::{self.account_uid}:assumed-role/{self.role_name}/{self.session_name}"

    @property
    def principal_arn(self) -> str:
        if self.kind == ASSUMED_ROLE:
            return role_arn(self.account_uid, self.role_name or "")
        return self.arn

    @property
    def is_root(self) -> bool:
        return self.kind == ACCOUNT

    def log_fields(self) -> dict[str, str | None]:
        """Who called, for the call log (ActionTrail's userIdentity is built from it)."""
        return {
            "kind": self.kind,
            "access_key_id": self.access_key_id or None,
            "user_name": self.user_name,
            "user_id": self.user_id,
            "role_name": self.role_name,
            "role_id": self.role_id,
            "session_name": self.session_name,
            "source_identity": self.source_identity,
            "caller_arn": self.caller_arn,
        }


@dataclass(frozen=True)
class ResolvedKey:
    identity: Identity
    secret: str
    status: str  # "Active" | "Inactive"
    security_token: str | None = None  # only for STS credentials
    expires_at: float | None = None  # only for STS credentials


def resolve_in(tx: Tx, access_key_id: str) -> ResolvedKey | None:
    if access_key_id.startswith("STS."):
        session = tx.sts_session_get(access_key_id)
        if session is None:
            return None
        identity = Identity(
            kind=ASSUMED_ROLE,
            account_uid=session.account_uid,
            access_key_id=access_key_id,
            role_name=session.role_name,
            role_id=session.role_id,
            session_name=session.session_name,
            session_policy=session.session_policy,
            source_identity=session.source_identity,
            expires_at=session.expires_at,
            caller_arn=session.caller_arn,
        )
        return ResolvedKey(
            identity, session.secret, "Active", session.security_token, session.expires_at
        )
    key = tx.access_key_get(access_key_id)
    if key is None:
        return None
    if key.user_name is None:
        identity = Identity(kind=ACCOUNT, account_uid=key.account_uid, access_key_id=access_key_id)
    else:
        user = tx.user_get(key.account_uid, key.user_name)
        if user is None:
            return None
        identity = Identity(
            kind=RAM_USER,
            account_uid=key.account_uid,
            access_key_id=access_key_id,
            user_name=user.name,
            user_id=user.user_id,
        )
    return ResolvedKey(identity, key.secret, key.status)


def resolve_access_key(store: Store, access_key_id: str) -> ResolvedKey | None:
    def lookup() -> ResolvedKey | None:
        with store.read() as tx:
            return resolve_in(tx, access_key_id)

    return store.cached("auth", ("key", access_key_id), lookup)


def console_identity(
    *,
    account_uid: str,
    user_name: str | None,
    user_id: str | None = None,
    mfa_present: bool | None = None,
) -> Identity:
    """The identity of a console sign-in (root when ``user_name`` is None); no AccessKey."""
    if user_name is None:
        return Identity(
            kind=ACCOUNT, account_uid=account_uid, access_key_id="", mfa_present=mfa_present
        )
    return Identity(
        kind=RAM_USER,
        account_uid=account_uid,
        access_key_id="",
        user_name=user_name,
        user_id=user_id,
        mfa_present=mfa_present,
    )
