"""One error type for everything the cloud answers, saying whether retrying can help.

`cloud/sdk.py` turns every SDK exception into a `CloudError`; this module only classifies
(code, HTTP status, retry-after, transport failure) and imports no SDK. Callers decide:
`permanent is False` → retry later with backoff, at least `retry_after_ms` from now;
`permanent is True` → fail visibly. `EntityNotExist.*`, `EntityAlreadyExists.*` and
`DeleteConflict.*` keep their codes so the reconciler can read them as answers.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CloudError", "ErrorCategory", "classify_error"]


class ErrorCategory(StrEnum):
    THROTTLING = "throttling"  # transient: slow down, honour retry_after_ms
    SERVER = "server"  # transient: 5xx, InternalError, ServiceUnavailable
    TRANSPORT = "transport"  # transient: reset, timeout, unreadable (non-JSON) response
    INVALID_RESPONSE = "invalid_response"  # transient: a 2xx body missing what the API promises
    CONFIGURATION = "configuration"  # permanent: wrong key, signature, clock, missing permission
    VALIDATION = "validation"  # permanent: the request itself is wrong or over a quota
    NOT_FOUND = "not_found"  # permanent answer: EntityNotExist.*
    ALREADY_EXISTS = "already_exists"  # permanent answer: EntityAlreadyExists.*
    CONFLICT = "conflict"  # permanent answer: DeleteConflict.*
    REJECTED = "rejected"  # permanent: any other 4xx answer


TRANSIENT_CATEGORIES = frozenset(
    {
        ErrorCategory.THROTTLING,
        ErrorCategory.SERVER,
        ErrorCategory.TRANSPORT,
        ErrorCategory.INVALID_RESPONSE,
    }
)

_SERVER_CODES = frozenset(
    {"InternalError", "InternalServerError", "ServiceUnavailable", "ServiceUnavailableTemporary"}
)
# Matched as exact codes or as a `<prefix>.` family (InvalidAccessKeyId.NotFound, ...).
_CONFIGURATION_PREFIXES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "SignatureNonceUsed",
    "InvalidTimeStamp",
    "InvalidSecurityToken",
    "MissingSecurityToken",
    "InvalidCredentials",
    "NoPermission",
    "Forbidden",
    "Inactive",
)
_VALIDATION_PREFIXES = (
    "InvalidParameter",
    "MissingParameter",
    "MalformedPolicyDocument",
    "LimitExceeded",
    "InvalidAction",
    "InvalidVersion",
)


def _in_family(code: str, prefixes: tuple[str, ...]) -> bool:
    # A bare prefix match: families go on with a dot (InvalidTimeStamp.Expired) or without.
    return code.startswith(prefixes)


def classify_error(
    *,
    code: str | None,
    http_status: int | None,
    retry_after_ms: int | None = None,
    transport: bool = False,
) -> ErrorCategory:
    """Which kind of failure this is. The order matters: throttling first, entity answers next."""
    if retry_after_ms is not None or http_status == 429:
        return ErrorCategory.THROTTLING
    if code and code.startswith("Throttling"):
        return ErrorCategory.THROTTLING
    if transport:
        return ErrorCategory.TRANSPORT
    if code:
        if code.startswith("EntityNotExist"):
            return ErrorCategory.NOT_FOUND
        if code.startswith("EntityAlreadyExists"):
            return ErrorCategory.ALREADY_EXISTS
        if code.startswith("DeleteConflict"):
            return ErrorCategory.CONFLICT
        if code in _SERVER_CODES:
            return ErrorCategory.SERVER
        if _in_family(code, _CONFIGURATION_PREFIXES):
            return ErrorCategory.CONFIGURATION
        if _in_family(code, _VALIDATION_PREFIXES):
            return ErrorCategory.VALIDATION
    if http_status is not None and http_status >= 500:
        return ErrorCategory.SERVER
    if http_status is None and not code:
        # Neither a status nor a code: the request never got a readable answer.
        return ErrorCategory.TRANSPORT
    return ErrorCategory.REJECTED


class CloudError(Exception):
    """A failed cloud call. Carries no secret: codes, the cloud's message, ids and statuses."""

    def __init__(
        self,
        *,
        code: str | None,
        message: str,
        action: str,
        request_id: str | None = None,
        http_status: int | None = None,
        retry_after_ms: int | None = None,
        category: ErrorCategory | None = None,
        transport: bool = False,
    ) -> None:
        self.code = code
        self.message = message
        self.action = action
        self.request_id = request_id
        self.http_status = http_status
        self.retry_after_ms = retry_after_ms
        self.category = category or classify_error(
            code=code, http_status=http_status, retry_after_ms=retry_after_ms, transport=transport
        )
        self.permanent = self.category not in TRANSIENT_CATEGORIES
        super().__init__(str(self))

    def __str__(self) -> str:
        status = f" HTTP {self.http_status}" if self.http_status is not None else ""
        request = f" (request id {self.request_id})" if self.request_id else ""
        what = self.code or self.category.value
        return f"{self.action} failed: {what}{status}: {self.message}{request}"

    def __repr__(self) -> str:
        return (
            f"CloudError(action={self.action!r}, code={self.code!r}, "
            f"category={self.category.value!r}, http_status={self.http_status!r}, "
            f"request_id={self.request_id!r}, "
            f"permanent={self.permanent!r}, retry_after_ms={self.retry_after_ms!r})"
        )

    def __reduce__(self):  # keyword-only __init__: make pickling (Celery results) round-trip
        return (
            _rebuild_cloud_error,
            (
                self.code,
                self.message,
                self.action,
                self.request_id,
                self.http_status,
                self.retry_after_ms,
                self.category.value,
            ),
        )

    @property
    def transient(self) -> bool:
        return not self.permanent

    @property
    def is_not_found(self) -> bool:
        return self.category is ErrorCategory.NOT_FOUND

    @property
    def is_already_exists(self) -> bool:
        return self.category is ErrorCategory.ALREADY_EXISTS

    @property
    def is_delete_conflict(self) -> bool:
        return self.category is ErrorCategory.CONFLICT

    @property
    def is_configuration(self) -> bool:
        return self.category is ErrorCategory.CONFIGURATION


def _rebuild_cloud_error(
    code: str | None,
    message: str,
    action: str,
    request_id: str | None,
    http_status: int | None,
    retry_after_ms: int | None,
    category: str,
) -> CloudError:
    return CloudError(
        code=code,
        message=message,
        action=action,
        request_id=request_id,
        http_status=http_status,
        retry_after_ms=retry_after_ms,
        category=ErrorCategory(category),
    )
