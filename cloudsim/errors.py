"""Alibaba Cloud's error shape, and the one exception every cloudsim failure travels as.

Every failure a client can observe, including malformed HTTP, leaves cloudsim as
``{"RequestId", "HostId", "Code", "Message", "Recommend"}`` with the status Alibaba uses
(``alibaba-api.md`` §8, §9). Codes Alibaba does not document for a case are chosen here, in
one place, and listed as [UNVERIFIED] in ``cloudsim/README.md``.
"""

from __future__ import annotations

import json
import uuid

RECOMMEND_BASE = "https://api.aliyun.com/troubleshoot"


class ApiError(Exception):
    """A failure reported to the client in Alibaba's error shape. A permission refusal may
    carry ``access_denied_detail``, answered as ``AccessDeniedDetail`` (``cloudsim.authz``)."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        *,
        access_denied_detail: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.access_denied_detail = access_denied_detail


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


def error_body(error: ApiError, *, request_id: str, host_id: str) -> dict:
    body = {
        "RequestId": request_id,
        "HostId": host_id,
        "Code": error.code,
        "Message": error.message,
        "Recommend": f"{RECOMMEND_BASE}?q={error.code}&product=cloudsim&requestId={request_id}",
    }
    if error.access_denied_detail is not None:
        body["AccessDeniedDetail"] = error.access_denied_detail
    return body


def error_json(error: ApiError, *, request_id: str, host_id: str) -> bytes:
    return json.dumps(error_body(error, request_id=request_id, host_id=host_id)).encode()


# Constructors for the errors raised in many places, so code and message stay identical.


def missing_parameter(name: str) -> ApiError:
    # [UNVERIFIED] the generic OpenAPI gateway wording for an absent mandatory parameter.
    return ApiError(
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request '
        "is not supplied.",
        400,
    )


def invalid_parameter(name: str, detail: str = "") -> ApiError:
    message = f'The specified parameter "{name}" is not valid.'
    if detail:
        message = f"{message} {detail}"
    return ApiError("InvalidParameter", message, 400)


def no_permission(message: str = "You are not authorized to do this action.") -> ApiError:
    return ApiError("NoPermission", message, 403)


def internal_error() -> ApiError:
    return ApiError(
        "InternalError",
        "The request processing has failed due to some unknown error, exception or failure.",
        500,
    )


# Transport-level failures ([UNVERIFIED] codes: Alibaba's gateway answers these before any
# product sees the request, and its exact codes are not documented).
def body_too_large(limit: int) -> ApiError:
    return ApiError(
        "RequestEntityTooLarge", f"The request body must not exceed {limit} bytes.", 413
    )


def query_too_large(limit: int) -> ApiError:
    return ApiError("RequestURITooLong", f"The request URI must not exceed {limit} bytes.", 414)


def bad_encoding(what: str) -> ApiError:
    return ApiError("InvalidParameter.Encoding", f"The {what} is not valid UTF-8 text.", 400)


def malformed_request(detail: str) -> ApiError:
    return ApiError("BadRequest", f"The request is malformed: {detail}", 400)


def unknown_action(action: str) -> ApiError:
    return ApiError(
        "InvalidAction.NotFound",
        f"Specified api is not found, please check your url and method. ({action})",
        404,
    )


def unknown_version(version: str) -> ApiError:
    return ApiError("InvalidVersion", f"Specified parameter Version is not valid. ({version})", 400)


def method_not_allowed(method: str) -> ApiError:
    return ApiError("UnsupportedHTTPMethod", f"The HTTP method {method} is not supported.", 405)


def not_found(path: str) -> ApiError:
    return ApiError("InvalidPath.NotFound", f"No resource at {path}.", 404)
