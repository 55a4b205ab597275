"""The plain values the cloud door takes and returns: never an SDK model.

Also the limits RAM and STS put on them, so the client refuses a value the cloud would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

OUTCOME_SUCCEEDED = "succeeded"
OUTCOME_FAILED = "failed"
# RAM's limits (alibaba-api.md §11): the client refuses values the cloud would refuse.
MIN_ROLE_SESSION_SECONDS = 3600
MAX_ROLE_SESSION_SECONDS = 43200
MIN_STS_DURATION_SECONDS = 900


@dataclass(frozen=True)
class CloudCredentials:
    """An AccessKey (optionally with an STS token). The secret and token never show in a repr."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.access_key_id or not self.access_key_secret:
            raise ValueError("An AccessKey needs both its id and its secret.")

    def __reduce__(self) -> Any:
        # Fail closed: secrets never travel in a pickled task payload or cache entry.
        raise TypeError("CloudCredentials must not be serialised; pass ids and load in the worker.")


@dataclass(frozen=True)
class CallerIdentity:
    account_id: str
    arn: str
    identity_type: str | None
    principal_id: str | None
    user_id: str | None
    role_id: str | None
    request_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Role:
    name: str
    arn: str
    role_id: str | None
    description: str | None
    trust_document: str
    max_session_duration: int
    create_date: str | None = None
    update_date: str | None = None
    request_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class _PolicyIdentity:
    """What RAM says of a policy wherever it lists one: an attachment or the policy itself."""

    policy_type: str
    policy_name: str
    description: str | None = None
    default_version: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(policy_type, policy_name): how the reconciler names a policy."""
        return (self.policy_type, self.policy_name)


@dataclass(frozen=True)
class AttachedPolicy(_PolicyIdentity):
    attach_date: str | None = None


@dataclass(frozen=True)
class Policy(_PolicyIdentity):
    attachment_count: int | None = None
    create_date: str | None = None
    update_date: str | None = None
    # The default version's document; only `get_policy` returns it.
    document: str | None = None
    request_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PolicyVersion:
    version_id: str
    is_default: bool
    document: str | None = None
    create_date: str | None = None
    request_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RamUser:
    user_name: str
    user_id: str | None = None
    display_name: str | None = None
    comments: str | None = None
    create_date: str | None = None


@dataclass(frozen=True)
class IssuedCredentials:
    """STS credentials. Shown once to a person, never stored; the repr hides the secrets."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: datetime = field()
    assumed_role_arn: str | None = None
    assumed_role_id: str | None = None
    request_id: str | None = None

    def __reduce__(self) -> Any:
        raise TypeError("IssuedCredentials are shown once and never serialised or stored.")


class CallRecorder(Protocol):
    def __call__(
        self,
        *,
        action: str,
        target: str,
        request_id: str | None,
        outcome: str,
        error_code: str | None,
    ) -> None: ...


class IntentRecorder(Protocol):
    def __call__(self, *, action: str, target: str) -> None: ...
