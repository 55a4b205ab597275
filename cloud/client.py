"""The portal's one door to Alibaba Cloud RAM and STS, through the official SDKs.

This is the only module that imports `alibabacloud_*` (and the SDK's `Tea`/`darabonba`
runtime); a test enforces it. Everything it returns is a plain dataclass defined here, never
an SDK model, and everything the SDK raises leaves as a `cloud.errors.CloudError`.

Contract for callers (the delegation services and their Celery tasks):

* One request per call. The SDK's own retry is switched off; the caller retries transient
  errors (`CloudError.permanent is False`) with backoff, waiting at least
  `CloudError.retry_after_ms` when the cloud sent one. The list methods follow RAM's
  `Marker` paging, so they send one request per page.
* Every request is reported to `call_recorder(action=, target=, request_id=, outcome=,
  error_code=)` once it has an answer (`outcome` is `"succeeded"` or `"failed"`), so a
  service can write one `CloudCall` row per request.
* Write-ahead: before every *mutating* request the client calls `intent_recorder(action=,
  target=)`. Write the intent there (in its own committed transaction, since the call that
  follows cannot be rolled back); if it raises, the request is not sent. A service that
  prefers to write the intent itself can do so before calling the method: the client makes
  no request of its own before the one it was asked for.
* Names, durations and documents are validated (`cloud.policies`) before sending, so a bad
  value raises `PolicyError` (a `ValueError`) and never reaches the cloud.
* No secret is logged, recorded, put in an error or shown by a `repr`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

import requests
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as _RamSdkClient
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_sts20150401.client import Client as _StsSdkClient
from alibabacloud_tea_openapi import utils_models as openapi_models
from darabonba.policy.retry import RetryOptions
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from Tea.exceptions import TeaException, UnretryableException

from cloud import policies
from cloud.errors import CloudError, ErrorCategory

__all__ = [
    "OUTCOME_FAILED",
    "OUTCOME_SUCCEEDED",
    "AttachedPolicy",
    "CallRecorder",
    "CallerIdentity",
    "CloudClient",
    "CloudCredentials",
    "IntentRecorder",
    "IssuedCredentials",
    "Policy",
    "PolicyVersion",
    "RamUser",
    "Role",
]

logger = logging.getLogger("cloud.client")

OUTCOME_SUCCEEDED = "succeeded"
OUTCOME_FAILED = "failed"
DEFAULT_REGION = "cn-hangzhou"
USER_AGENT = "PartnerAccessPortal/1"
# RAM's limits (alibaba-api.md §11): the client refuses values the cloud would refuse.
MIN_ROLE_SESSION_SECONDS = 3600
MAX_ROLE_SESSION_SECONDS = 43200
MIN_STS_DURATION_SECONDS = 900
_PAGE_SIZE = 1000
_MAX_PAGES = 100
_MAX_MESSAGE_LENGTH = 500


# --- values in and out ----------------------------------------------------------------------
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
class AttachedPolicy:
    policy_type: str
    policy_name: str
    description: str | None = None
    default_version: str | None = None
    attach_date: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(policy_type, policy_name): how the reconciler names a policy."""
        return (self.policy_type, self.policy_name)


@dataclass(frozen=True)
class Policy:
    policy_type: str
    policy_name: str
    description: str | None = None
    default_version: str | None = None
    attachment_count: int | None = None
    create_date: str | None = None
    update_date: str | None = None
    # The default version's document; only `get_policy` returns it.
    document: str | None = None
    request_id: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.policy_type, self.policy_name)


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


# --- SDK exceptions → CloudError --------------------------------------------------------------
def _clean(value: Any) -> str | None:
    """The SDK formats missing values with f-strings: None arrives as the text 'None'."""
    if value is None:
        return None
    text = str(value)
    return None if text in ("", "None") else text


def _status(exc: Exception) -> int | None:
    for candidate in (
        getattr(exc, "status_code", None),
        getattr(exc, "statusCode", None),
        (getattr(exc, "data", None) or {}).get("statusCode")
        if isinstance(getattr(exc, "data", None), dict)
        else None,
    ):
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            return candidate
        if isinstance(candidate, str) and candidate.isascii() and candidate.isdigit():
            return int(candidate)
    return None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE_LENGTH else text[: _MAX_MESSAGE_LENGTH - 3] + "..."


def _transport_message(inner: BaseException | None) -> str:
    # Described by kind, never by quoting str(): requests' messages carry the request URL.
    # darabonba turns every IOError into RetryError(str(error)), so the kind is read from text.
    text = str(getattr(inner, "message", "") or inner or "").lower()
    if isinstance(inner, requests.exceptions.Timeout) or "timed out" in text or "timeout" in text:
        return "The request timed out before the cloud answered."
    if isinstance(inner, (requests.exceptions.ConnectionError, ConnectionError)) or any(
        word in text for word in ("connection", "reset", "refused", "aborted", "broken pipe")
    ):
        return "The connection to the cloud failed or was reset."
    if isinstance(inner, ValueError):  # json.JSONDecodeError and friends
        return "The cloud's answer was not the JSON the API promises (e.g. an HTML error page)."
    name = type(inner).__name__ if inner is not None else "unknown"
    return f"The request did not get a readable answer ({name})."


def cloud_error_from_sdk(exc: BaseException, *, action: str) -> CloudError:
    """Map anything the SDK raises to a CloudError (the classification lives in cloud.errors)."""
    if isinstance(exc, CloudError):
        return exc
    if isinstance(exc, UnretryableException):
        inner = getattr(exc, "inner_exception", None)
        if isinstance(inner, TeaException) and _clean(getattr(inner, "code", None)):
            return cloud_error_from_sdk(inner, action=action)
        return CloudError(
            code=None,
            message=_transport_message(inner),
            action=action,
            category=ErrorCategory.TRANSPORT,
        )
    if isinstance(exc, TeaException):
        data = exc.data if isinstance(exc.data, dict) else {}
        retry_after = getattr(exc, "retry_after", None)
        raw_message = data.get("Message") or data.get("message") or exc.message or ""
        request_id = (
            _clean(getattr(exc, "request_id", None))
            or _clean(data.get("RequestId"))
            or _clean(data.get("requestId"))
        )
        return CloudError(
            code=_clean(exc.code),
            message=_short(str(raw_message)) or "The cloud refused the request.",
            action=action,
            request_id=request_id,
            http_status=_status(exc),
            retry_after_ms=int(retry_after) if isinstance(retry_after, (int, float)) else None,
        )
    if isinstance(exc, (requests.exceptions.RequestException, OSError)):
        return CloudError(
            code=None,
            message=_transport_message(exc),
            action=action,
            category=ErrorCategory.TRANSPORT,
        )
    # The SDK's model parsing swallows most shape errors; whatever still escapes is a
    # response the client could not read.
    return CloudError(
        code="InvalidResponse",
        message=f"The cloud's answer could not be read ({type(exc).__name__}).",
        action=action,
        category=ErrorCategory.INVALID_RESPONSE,
    )


class _InvalidResponse(Exception):
    """Raised inside the client when a 2xx body lacks what the API promises."""

    def __init__(self, what: str, request_id: str | None) -> None:
        super().__init__(what)
        self.what = what
        self.request_id = request_id


def _invalid(action: str, what: str, request_id: str | None) -> CloudError:
    return CloudError(
        code="InvalidResponse",
        message=f"The cloud's answer has no valid {what}.",
        action=action,
        request_id=request_id,
        category=ErrorCategory.INVALID_RESPONSE,
    )


# --- reading SDK models defensively -------------------------------------------------------------
def _request_id(response: Any) -> str | None:
    body = getattr(response, "body", None)
    found = _clean(getattr(body, "request_id", None)) if body is not None else None
    if found:
        return found
    headers = getattr(response, "headers", None)
    if isinstance(headers, dict):
        return _clean(headers.get("x-acs-request-id"))
    return None


def _body(response: Any, request_id: str | None) -> Any:
    body = getattr(response, "body", None)
    if body is None:
        raise _InvalidResponse("body", request_id)
    return body


def _text(value: Any, what: str, request_id: str | None) -> str:
    if not isinstance(value, str) or not value:
        raise _InvalidResponse(what, request_id)
    return value


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _integer(value: Any, what: str, request_id: str | None) -> int:
    if isinstance(value, bool):
        raise _InvalidResponse(what, request_id)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise _InvalidResponse(what, request_id)


def _optional_integer(value: Any) -> int | None:
    try:
        return _integer(value, "", None)
    except _InvalidResponse:
        return None


def _items(container: Any, attribute: str, what: str, request_id: str | None) -> list[Any]:
    """The list inside RAM's `{"Policies": {"Policy": [...]}}` wrappers, which must be present."""
    if container is None:
        raise _InvalidResponse(what, request_id)
    items = getattr(container, attribute, None)
    if not isinstance(items, list):
        raise _InvalidResponse(what, request_id)
    return items


def _parse_expiration(value: Any, request_id: str | None) -> datetime:
    text = _text(value, "Credentials.Expiration", request_id)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _InvalidResponse("Credentials.Expiration", request_id) from None
    if parsed.tzinfo is None:
        raise _InvalidResponse("Credentials.Expiration", request_id)
    return parsed.astimezone(UTC)


def _role_from(model: Any, request_id: str | None) -> Role:
    if model is None:
        raise _InvalidResponse("Role", request_id)
    return Role(
        name=_text(model.role_name, "Role.RoleName", request_id),
        arn=_text(model.arn, "Role.Arn", request_id),
        role_id=_optional_text(model.role_id),
        description=_optional_text(model.description),
        trust_document=_text(
            model.assume_role_policy_document, "Role.AssumeRolePolicyDocument", request_id
        ),
        max_session_duration=_integer(
            model.max_session_duration, "Role.MaxSessionDuration", request_id
        ),
        create_date=_optional_text(model.create_date),
        update_date=_optional_text(getattr(model, "update_date", None)),
        request_id=request_id,
    )


def _read_attached_policies(response: Any, request_id: str | None) -> list[AttachedPolicy]:
    """ListPoliciesForRole and ListPoliciesForUser answer in the same shape."""
    body = _body(response, request_id)
    items = _items(body.policies, "policy", "Policies.Policy", request_id)
    return [_attached_from(item, request_id) for item in items]


def _attached_from(model: Any, request_id: str | None) -> AttachedPolicy:
    return AttachedPolicy(
        policy_type=_text(model.policy_type, "Policy.PolicyType", request_id),
        policy_name=_text(model.policy_name, "Policy.PolicyName", request_id),
        description=_optional_text(model.description),
        default_version=_optional_text(model.default_version),
        attach_date=_optional_text(model.attach_date),
    )


def _policy_from(model: Any, request_id: str | None, document: str | None = None) -> Policy:
    if model is None:
        raise _InvalidResponse("Policy", request_id)
    return Policy(
        policy_type=_text(model.policy_type, "Policy.PolicyType", request_id),
        policy_name=_text(model.policy_name, "Policy.PolicyName", request_id),
        description=_optional_text(model.description),
        default_version=_optional_text(model.default_version),
        attachment_count=_optional_integer(getattr(model, "attachment_count", None)),
        create_date=_optional_text(model.create_date),
        update_date=_optional_text(getattr(model, "update_date", None)),
        document=document,
        request_id=request_id,
    )


def _version_from(model: Any, request_id: str | None) -> PolicyVersion:
    if model is None:
        raise _InvalidResponse("PolicyVersion", request_id)
    is_default = model.is_default_version
    if isinstance(is_default, str):
        is_default = is_default.lower() == "true"
    return PolicyVersion(
        version_id=_text(model.version_id, "PolicyVersion.VersionId", request_id),
        is_default=bool(is_default),
        document=_optional_text(model.policy_document),
        create_date=_optional_text(model.create_date),
        request_id=request_id,
    )


def _document_text(document: str | dict[str, Any], *, trust: bool) -> str:
    """Send documents in canonical form; a malformed one raises PolicyError before sending."""
    return policies.policy_to_text(policies.canonical_policy(document, trust=trust))


def _check_role_session_seconds(value: int) -> int:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not MIN_ROLE_SESSION_SECONDS <= value <= MAX_ROLE_SESSION_SECONDS
    ):
        raise policies.PolicyError(
            f"A role's maximum session is {MIN_ROLE_SESSION_SECONDS} to "
            f"{MAX_ROLE_SESSION_SECONDS} seconds; got {value!r}."
        )
    return value


def _check_description(text: str | None) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str) or not 1 <= len(text) <= policies.MAX_ROLE_DESCRIPTION_LENGTH:
        raise policies.PolicyError(
            f"A description is 1 to {policies.MAX_ROLE_DESCRIPTION_LENGTH} characters."
        )
    return text


T = TypeVar("T")


# --- the client ---------------------------------------------------------------------------------
class CloudClient:
    """RAM and STS for one account's credentials. Create one per task; not for sharing."""

    def __init__(
        self,
        credentials: CloudCredentials,
        *,
        region_id: str = DEFAULT_REGION,
        call_recorder: CallRecorder | None = None,
        intent_recorder: IntentRecorder | None = None,
        ram_endpoint: str | None = None,
        sts_endpoint: str | None = None,
        protocol: str | None = None,
        connect_timeout_ms: int | None = None,
        read_timeout_ms: int | None = None,
    ) -> None:
        if not isinstance(credentials, CloudCredentials):
            raise TypeError("CloudClient needs CloudCredentials.")
        if os.environ.get("DEBUG", "").lower() == "sdk":
            # darabonba then prints every signed request and response, STS secrets included.
            raise ImproperlyConfigured("DEBUG=sdk makes the Alibaba SDK print secrets; unset it.")
        self._credentials = credentials
        self._call_recorder = call_recorder
        self._intent_recorder = intent_recorder
        self.last_request_id: str | None = None
        common = {
            "region_id": region_id,
            "protocol": protocol or settings.ALIBABA_CLOUD_PROTOCOL,
            "connect_timeout": connect_timeout_ms or settings.ALIBABA_CLOUD_CONNECT_TIMEOUT_MS,
            "read_timeout": read_timeout_ms or settings.ALIBABA_CLOUD_READ_TIMEOUT_MS,
        }
        self._ram_endpoint = ram_endpoint or settings.ALIBABA_RAM_ENDPOINT
        self._sts_endpoint = sts_endpoint or settings.ALIBABA_STS_ENDPOINT
        self._ram = _RamSdkClient(self._sdk_config(endpoint=self._ram_endpoint, **common))
        self._sts = _StsSdkClient(self._sdk_config(endpoint=self._sts_endpoint, **common))

    def __repr__(self) -> str:
        return (
            f"CloudClient(access_key_id={self._credentials.access_key_id!r}, "
            f"ram={self._ram_endpoint!r}, sts={self._sts_endpoint!r})"
        )

    def _sdk_config(self, *, endpoint: str, **common: Any) -> openapi_models.Config:
        return openapi_models.Config(
            access_key_id=self._credentials.access_key_id,
            access_key_secret=self._credentials.access_key_secret,
            security_token=self._credentials.security_token or None,
            endpoint=endpoint,
            user_agent=USER_AGENT,
            # One request per call: retrying is the caller's job (it knows the budget).
            retry_options=RetryOptions({"retryable": False}),
            **common,
        )

    # -- plumbing --------------------------------------------------------------------------------
    def _call(
        self,
        action: str,
        target: str,
        send: Callable[[], Any],
        read: Callable[[Any, str | None], T],
        *,
        mutating: bool,
    ) -> T:
        if mutating and self._intent_recorder is not None:
            self._intent_recorder(action=action, target=target)
        started = time.monotonic()
        error: CloudError | None = None
        request_id: str | None = None
        result: Any = None
        try:
            response = send()
        except Exception as exc:  # every SDK failure becomes a CloudError below
            error = cloud_error_from_sdk(exc, action=action)
        else:
            request_id = _request_id(response)
            try:
                result = read(response, request_id)
            except _InvalidResponse as invalid:
                error = _invalid(action, invalid.what, invalid.request_id)
        if error is not None:
            request_id = error.request_id
        self.last_request_id = request_id
        outcome = OUTCOME_FAILED if error is not None else OUTCOME_SUCCEEDED
        logger.info(
            "cloud call %s %s: %s request_id=%s code=%s in %.0f ms",
            action,
            target,
            outcome,
            request_id,
            error.code if error is not None else None,
            (time.monotonic() - started) * 1000,
        )
        if self._call_recorder is not None:
            self._call_recorder(
                action=action,
                target=target,
                request_id=request_id,
                outcome=outcome,
                error_code=(error.code or error.category.value) if error is not None else None,
            )
        if error is not None:
            # `from None`: the SDK exception holds the signed request; it must not travel on.
            raise error from None
        return result

    @staticmethod
    def _request_id_only(response: Any, request_id: str | None) -> str | None:
        _body(response, request_id)
        return request_id

    # -- STS -------------------------------------------------------------------------------------
    def get_caller_identity(self) -> CallerIdentity:
        def read(response: Any, request_id: str | None) -> CallerIdentity:
            body = _body(response, request_id)
            return CallerIdentity(
                account_id=_text(body.account_id, "AccountId", request_id),
                arn=_text(body.arn, "Arn", request_id),
                identity_type=_optional_text(body.identity_type),
                principal_id=_optional_text(body.principal_id),
                user_id=_optional_text(body.user_id),
                role_id=_optional_text(body.role_id),
                request_id=request_id,
            )

        return self._call(
            "GetCallerIdentity", "caller", self._sts.get_caller_identity, read, mutating=False
        )

    def assume_role(
        self,
        *,
        role_arn: str,
        session_name: str,
        duration_seconds: int,
        policy: str | None = None,
    ) -> IssuedCredentials:
        """STS AssumeRole. `policy` is a session policy (validated by parse_session_policy)."""
        policies.parse_role_arn(role_arn)
        policies.validate_role_session_name(session_name)
        if (
            not isinstance(duration_seconds, int)
            or isinstance(duration_seconds, bool)
            or not MIN_STS_DURATION_SECONDS <= duration_seconds <= MAX_ROLE_SESSION_SECONDS
        ):
            raise policies.PolicyError(
                f"Credentials last {MIN_STS_DURATION_SECONDS} to {MAX_ROLE_SESSION_SECONDS} "
                f"seconds; got {duration_seconds!r}."
            )
        session_policy = policies.parse_session_policy(policy) if policy is not None else None
        request = sts_models.AssumeRoleRequest(
            role_arn=role_arn,
            role_session_name=session_name,
            duration_seconds=duration_seconds,
            policy=session_policy,
        )

        def read(response: Any, request_id: str | None) -> IssuedCredentials:
            body = _body(response, request_id)
            credentials = body.credentials
            if credentials is None:
                raise _InvalidResponse("Credentials", request_id)
            user = body.assumed_role_user
            return IssuedCredentials(
                access_key_id=_text(credentials.access_key_id, "AccessKeyId", request_id),
                access_key_secret=_text(
                    credentials.access_key_secret, "AccessKeySecret", request_id
                ),
                security_token=_text(credentials.security_token, "SecurityToken", request_id),
                expiration=_parse_expiration(credentials.expiration, request_id),
                assumed_role_arn=_optional_text(getattr(user, "arn", None)),
                assumed_role_id=_optional_text(getattr(user, "assumed_role_id", None)),
                request_id=request_id,
            )

        return self._call(
            "AssumeRole",
            f"{role_arn} session {session_name}",
            lambda: self._sts.assume_role(request),
            read,
            mutating=False,
        )

    # -- roles -----------------------------------------------------------------------------------
    def get_role(self, name: str) -> Role | None:
        """The role, or None when RAM says EntityNotExist.Role."""
        policies.validate_role_name(name)
        try:
            return self._call(
                "GetRole",
                f"role/{name}",
                lambda: self._ram.get_role(ram_models.GetRoleRequest(role_name=name)),
                lambda response, rid: _role_from(_body(response, rid).role, rid),
                mutating=False,
            )
        except CloudError as error:
            if error.code == "EntityNotExist.Role":
                return None
            raise

    def create_role(
        self,
        name: str,
        *,
        trust_document: str | dict[str, Any],
        description: str,
        max_session_duration: int,
    ) -> Role:
        policies.validate_role_name(name)
        request = ram_models.CreateRoleRequest(
            role_name=name,
            assume_role_policy_document=_document_text(trust_document, trust=True),
            description=_check_description(description),
            max_session_duration=_check_role_session_seconds(max_session_duration),
        )
        return self._call(
            "CreateRole",
            f"role/{name}",
            lambda: self._ram.create_role(request),
            lambda response, rid: _role_from(_body(response, rid).role, rid),
            mutating=True,
        )

    def update_role(
        self,
        name: str,
        *,
        trust_document: str | dict[str, Any] | None = None,
        description: str | None = None,
        max_session_duration: int | None = None,
    ) -> Role:
        """UpdateRole: only the given fields change."""
        policies.validate_role_name(name)
        if trust_document is None and description is None and max_session_duration is None:
            raise ValueError("update_role needs at least one field to change.")
        request = ram_models.UpdateRoleRequest(
            role_name=name,
            new_assume_role_policy_document=(
                _document_text(trust_document, trust=True) if trust_document is not None else None
            ),
            new_description=_check_description(description),
            new_max_session_duration=(
                _check_role_session_seconds(max_session_duration)
                if max_session_duration is not None
                else None
            ),
        )
        return self._call(
            "UpdateRole",
            f"role/{name}",
            lambda: self._ram.update_role(request),
            lambda response, rid: _role_from(_body(response, rid).role, rid),
            mutating=True,
        )

    def update_role_trust(self, name: str, document: str | dict[str, Any]) -> Role:
        return self.update_role(name, trust_document=document)

    def delete_role(self, name: str) -> str | None:
        """DeleteRole; returns the request id. RAM refuses while policies are attached."""
        policies.validate_role_name(name)
        return self._call(
            "DeleteRole",
            f"role/{name}",
            lambda: self._ram.delete_role(ram_models.DeleteRoleRequest(role_name=name)),
            self._request_id_only,
            mutating=True,
        )

    def list_policies_for_role(self, name: str) -> list[AttachedPolicy]:
        policies.validate_role_name(name)
        return self._list_attached_policies(
            "ListPoliciesForRole",
            f"role/{name}",
            lambda: self._ram.list_policies_for_role(
                ram_models.ListPoliciesForRoleRequest(role_name=name)
            ),
        )

    def attach_policy_to_role(
        self, *, role_name: str, policy_type: str, policy_name: str
    ) -> str | None:
        policies.validate_role_name(role_name)
        return self._change_policy_attachment(
            "AttachPolicyToRole",
            f"role/{role_name}",
            policy_type,
            policy_name,
            lambda: self._ram.attach_policy_to_role(
                ram_models.AttachPolicyToRoleRequest(
                    role_name=role_name, policy_type=policy_type, policy_name=policy_name
                )
            ),
        )

    def detach_policy_from_role(
        self, *, role_name: str, policy_type: str, policy_name: str
    ) -> str | None:
        policies.validate_role_name(role_name)
        return self._change_policy_attachment(
            "DetachPolicyFromRole",
            f"role/{role_name}",
            policy_type,
            policy_name,
            lambda: self._ram.detach_policy_from_role(
                ram_models.DetachPolicyFromRoleRequest(
                    role_name=role_name, policy_type=policy_type, policy_name=policy_name
                )
            ),
        )

    # -- policies --------------------------------------------------------------------------------
    def list_policies(self, policy_type: str | None = None) -> list[Policy]:
        """Every policy of the account (both types, or only `policy_type`), across all pages."""
        if policy_type is not None:
            policies.validate_policy_type(policy_type)
        found: list[Policy] = []
        marker: str | None = None
        for _ in range(_MAX_PAGES):
            request = ram_models.ListPoliciesRequest(
                policy_type=policy_type, marker=marker, max_items=_PAGE_SIZE
            )

            def read(response: Any, request_id: str | None) -> tuple[list[Policy], str | None]:
                body = _body(response, request_id)
                items = _items(body.policies, "policy", "Policies.Policy", request_id)
                page = [_policy_from(item, request_id) for item in items]
                return page, _next_marker(body, request_id)

            page, next_marker = self._call(
                "ListPolicies",
                f"policies/{policy_type or 'all'}",
                partial(self._ram.list_policies, request),
                read,
                mutating=False,
            )
            found.extend(page)
            if next_marker is None:
                return found
            if next_marker == marker:
                raise _invalid("ListPolicies", "Marker (it did not advance)", self.last_request_id)
            marker = next_marker
        raise _invalid("ListPolicies", f"end of paging after {_MAX_PAGES} pages", None)

    def get_policy(self, *, policy_type: str, policy_name: str) -> Policy | None:
        """The policy with its default version's document, or None when it does not exist."""
        policies.validate_policy_type(policy_type)
        policies.validate_policy_name(policy_name)

        def read(response: Any, request_id: str | None) -> Policy:
            body = _body(response, request_id)
            version = body.default_policy_version
            document = _optional_text(getattr(version, "policy_document", None))
            if document is None and body.policy is not None:
                document = _optional_text(getattr(body.policy, "policy_document", None))
            return _policy_from(body.policy, request_id, document)

        try:
            return self._call(
                "GetPolicy",
                f"policy/{policy_type}/{policy_name}",
                lambda: self._ram.get_policy(
                    ram_models.GetPolicyRequest(policy_type=policy_type, policy_name=policy_name)
                ),
                read,
                mutating=False,
            )
        except CloudError as error:
            if error.code == "EntityNotExist.Policy":
                return None
            raise

    def create_policy(
        self, *, policy_name: str, document: str | dict[str, Any], description: str | None = None
    ) -> Policy:
        """CreatePolicy (a Custom policy)."""
        policies.validate_policy_name(policy_name)
        request = ram_models.CreatePolicyRequest(
            policy_name=policy_name,
            policy_document=_document_text(document, trust=False),
            description=_check_description(description),
        )
        return self._call(
            "CreatePolicy",
            f"policy/Custom/{policy_name}",
            lambda: self._ram.create_policy(request),
            lambda response, rid: _policy_from(_body(response, rid).policy, rid),
            mutating=True,
        )

    def create_policy_version(
        self,
        *,
        policy_name: str,
        document: str | dict[str, Any],
        set_as_default: bool = True,
        rotate: bool = False,
    ) -> PolicyVersion:
        """CreatePolicyVersion. `rotate` asks RAM to drop the oldest non-default version when
        the 5-version limit is reached (RotateStrategy)."""
        policies.validate_policy_name(policy_name)
        request = ram_models.CreatePolicyVersionRequest(
            policy_name=policy_name,
            policy_document=_document_text(document, trust=False),
            set_as_default=bool(set_as_default),
            rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded" if rotate else None,
        )
        return self._call(
            "CreatePolicyVersion",
            f"policy/Custom/{policy_name}",
            lambda: self._ram.create_policy_version(request),
            lambda response, rid: _version_from(_body(response, rid).policy_version, rid),
            mutating=True,
        )

    def list_policy_versions(self, *, policy_type: str, policy_name: str) -> list[PolicyVersion]:
        policies.validate_policy_type(policy_type)
        policies.validate_policy_name(policy_name)

        def read(response: Any, request_id: str | None) -> list[PolicyVersion]:
            body = _body(response, request_id)
            items = _items(
                body.policy_versions, "policy_version", "PolicyVersions.PolicyVersion", request_id
            )
            return [_version_from(item, request_id) for item in items]

        return self._call(
            "ListPolicyVersions",
            f"policy/{policy_type}/{policy_name}",
            lambda: self._ram.list_policy_versions(
                ram_models.ListPolicyVersionsRequest(
                    policy_type=policy_type, policy_name=policy_name
                )
            ),
            read,
            mutating=False,
        )

    def delete_policy_version(self, *, policy_name: str, version_id: str) -> str | None:
        policies.validate_policy_name(policy_name)
        if not isinstance(version_id, str) or not version_id.isascii() or not version_id:
            raise policies.PolicyError(f"A policy version id looks like v3; got {version_id!r}.")
        return self._call(
            "DeletePolicyVersion",
            f"policy/Custom/{policy_name} version/{version_id}",
            lambda: self._ram.delete_policy_version(
                ram_models.DeletePolicyVersionRequest(
                    policy_name=policy_name, version_id=version_id
                )
            ),
            self._request_id_only,
            mutating=True,
        )

    def delete_policy(self, policy_name: str, *, cascade: bool = False) -> str | None:
        """DeletePolicy (Custom). Without `cascade`, RAM refuses while the policy is attached
        or has non-default versions; with it, RAM detaches it everywhere first."""
        policies.validate_policy_name(policy_name)
        request = ram_models.DeletePolicyRequest(
            policy_name=policy_name, cascading_delete=True if cascade else None
        )
        return self._call(
            "DeletePolicy",
            f"policy/Custom/{policy_name}",
            lambda: self._ram.delete_policy(request),
            self._request_id_only,
            mutating=True,
        )

    # -- users -----------------------------------------------------------------------------------
    def list_users(self) -> list[RamUser]:
        """Every RAM user of the account, across all pages."""
        found: list[RamUser] = []
        marker: str | None = None
        for _ in range(_MAX_PAGES):
            request = ram_models.ListUsersRequest(marker=marker, max_items=_PAGE_SIZE)

            def read(response: Any, request_id: str | None) -> tuple[list[RamUser], str | None]:
                body = _body(response, request_id)
                items = _items(body.users, "user", "Users.User", request_id)
                page = [_user_from(item, request_id) for item in items]
                return page, _next_marker(body, request_id)

            page, next_marker = self._call(
                "ListUsers",
                "users",
                partial(self._ram.list_users, request),
                read,
                mutating=False,
            )
            found.extend(page)
            if next_marker is None:
                return found
            if next_marker == marker:
                raise _invalid("ListUsers", "Marker (it did not advance)", self.last_request_id)
            marker = next_marker
        raise _invalid("ListUsers", f"end of paging after {_MAX_PAGES} pages", None)

    def get_user(self, name: str) -> RamUser | None:
        """The RAM user, or None when RAM says EntityNotExist.User."""
        policies.validate_ram_user_name(name)
        try:
            return self._call(
                "GetUser",
                f"user/{name}",
                lambda: self._ram.get_user(ram_models.GetUserRequest(user_name=name)),
                lambda response, rid: _user_from(_body(response, rid).user, rid),
                mutating=False,
            )
        except CloudError as error:
            if error.code == "EntityNotExist.User":
                return None
            raise

    def list_policies_for_user(self, user_name: str) -> list[AttachedPolicy]:
        policies.validate_ram_user_name(user_name)
        return self._list_attached_policies(
            "ListPoliciesForUser",
            f"user/{user_name}",
            lambda: self._ram.list_policies_for_user(
                ram_models.ListPoliciesForUserRequest(user_name=user_name)
            ),
        )

    def attach_policy_to_user(
        self, *, user_name: str, policy_type: str, policy_name: str
    ) -> str | None:
        policies.validate_ram_user_name(user_name)
        return self._change_policy_attachment(
            "AttachPolicyToUser",
            f"user/{user_name}",
            policy_type,
            policy_name,
            lambda: self._ram.attach_policy_to_user(
                ram_models.AttachPolicyToUserRequest(
                    user_name=user_name, policy_type=policy_type, policy_name=policy_name
                )
            ),
        )

    def detach_policy_from_user(
        self, *, user_name: str, policy_type: str, policy_name: str
    ) -> str | None:
        policies.validate_ram_user_name(user_name)
        return self._change_policy_attachment(
            "DetachPolicyFromUser",
            f"user/{user_name}",
            policy_type,
            policy_name,
            lambda: self._ram.detach_policy_from_user(
                ram_models.DetachPolicyFromUserRequest(
                    user_name=user_name, policy_type=policy_type, policy_name=policy_name
                )
            ),
        )

    # -- attachments, shared by roles and users --------------------------------------------------
    # The caller validates its principal's name (roles and users follow different rules) and
    # builds the SDK request; these helpers hold what the two kinds of principal have in common.
    def _list_attached_policies(
        self, action: str, principal: str, send: Callable[[], Any]
    ) -> list[AttachedPolicy]:
        return self._call(action, principal, send, _read_attached_policies, mutating=False)

    def _change_policy_attachment(
        self,
        action: str,
        principal: str,
        policy_type: str,
        policy_name: str,
        send: Callable[[], Any],
    ) -> str | None:
        policies.validate_policy_type(policy_type)
        policies.validate_policy_name(policy_name)
        return self._call(
            action,
            f"{principal} policy/{policy_type}/{policy_name}",
            send,
            self._request_id_only,
            mutating=True,
        )


def _next_marker(body: Any, request_id: str | None) -> str | None:
    truncated = body.is_truncated
    if isinstance(truncated, str):
        truncated = truncated.lower() == "true"
    if not truncated:
        return None
    marker = _optional_text(body.marker)
    if marker is None:
        raise _InvalidResponse("Marker", request_id)
    return marker


def _user_from(model: Any, request_id: str | None) -> RamUser:
    if model is None:
        raise _InvalidResponse("User", request_id)
    return RamUser(
        user_name=_text(model.user_name, "User.UserName", request_id),
        user_id=_optional_text(model.user_id),
        display_name=_optional_text(model.display_name),
        comments=_optional_text(model.comments),
        create_date=_optional_text(model.create_date),
    )
