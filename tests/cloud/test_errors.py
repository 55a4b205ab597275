"""The SDK-exception → CloudError mapping, exercised with the SDK's own exception classes."""

import json
import pickle

import pytest
import requests
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from darabonba.exceptions import UnretryableException
from darabonba.policy.retry import RetryPolicyContext
from Tea.exceptions import TeaException

from cloud.client import cloud_error_from_sdk
from cloud.errors import CloudError, ErrorCategory, classify_error


def _response_exception(cls, status: int, code: str | None, message: str = "msg", **extra):
    """Built exactly the way tea-openapi 0.4.6 builds them from an error response."""
    request_id = "REQ-1"
    data = {"RequestId": request_id, "HostId": "ram.aliyuncs.com", "Code": code, "Message": message}
    return cls(
        status_code=status,
        code=f"{code}",
        message=f"code: {status}, {message} request id: {request_id}",
        detail="None",
        description="None",
        data=data,
        request_id=f"{request_id}",
        **extra,
    )


def _unretryable(inner: Exception) -> UnretryableException:
    return UnretryableException(RetryPolicyContext(retries_attempted=1, exception=inner))


CASES = [
    # (exception, code, status, category, permanent, retry_after_ms)
    (
        _response_exception(ThrottlingException, 429, "Throttling.User", retry_after=150),
        "Throttling.User",
        429,
        ErrorCategory.THROTTLING,
        False,
        150,
    ),
    (
        _response_exception(ThrottlingException, 400, "Throttling", retry_after=2000),
        "Throttling",
        400,
        ErrorCategory.THROTTLING,
        False,
        2000,
    ),
    (
        _response_exception(ClientException, 400, "Throttling.User"),
        "Throttling.User",
        400,
        ErrorCategory.THROTTLING,
        False,
        None,
    ),
    (
        _response_exception(ClientException, 400, "Throttling.Api"),
        "Throttling.Api",
        400,
        ErrorCategory.THROTTLING,
        False,
        None,
    ),
    (
        _response_exception(ClientException, 429, "TooManyRequests"),
        "TooManyRequests",
        429,
        ErrorCategory.THROTTLING,
        False,
        None,
    ),
    (
        _response_exception(ServerException, 500, "InternalError"),
        "InternalError",
        500,
        ErrorCategory.SERVER,
        False,
        None,
    ),
    (
        _response_exception(ServerException, 503, "ServiceUnavailable"),
        "ServiceUnavailable",
        503,
        ErrorCategory.SERVER,
        False,
        None,
    ),
    (_response_exception(ServerException, 502, None), None, 502, ErrorCategory.SERVER, False, None),
    (
        _response_exception(ClientException, 400, "InternalError"),
        "InternalError",
        400,
        ErrorCategory.SERVER,
        False,
        None,
    ),
    (
        _response_exception(ClientException, 404, "InvalidAccessKeyId.NotFound"),
        "InvalidAccessKeyId.NotFound",
        404,
        ErrorCategory.CONFIGURATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 403, "InvalidAccessKeyId.Inactive"),
        "InvalidAccessKeyId.Inactive",
        403,
        ErrorCategory.CONFIGURATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 400, "SignatureDoesNotMatch"),
        "SignatureDoesNotMatch",
        400,
        ErrorCategory.CONFIGURATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 403, "NoPermission"),
        "NoPermission",
        403,
        ErrorCategory.CONFIGURATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 400, "InvalidTimeStamp.Expired"),
        "InvalidTimeStamp.Expired",
        400,
        ErrorCategory.CONFIGURATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 400, "InvalidTimeStampFormat"),
        "InvalidTimeStampFormat",
        400,
        ErrorCategory.CONFIGURATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 400, "InvalidSecurityToken.Expired"),
        "InvalidSecurityToken.Expired",
        400,
        ErrorCategory.CONFIGURATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 403, "Inactive"),
        "Inactive",
        403,
        ErrorCategory.CONFIGURATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 400, "InvalidParameter.RoleName.InvalidChars"),
        "InvalidParameter.RoleName.InvalidChars",
        400,
        ErrorCategory.VALIDATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 400, "InvalidParameter"),
        "InvalidParameter",
        400,
        ErrorCategory.VALIDATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 400, "MalformedPolicyDocument"),
        "MalformedPolicyDocument",
        400,
        ErrorCategory.VALIDATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 409, "LimitExceeded.Role.Policy"),
        "LimitExceeded.Role.Policy",
        409,
        ErrorCategory.VALIDATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 400, "MissingParameter.RoleName"),
        "MissingParameter.RoleName",
        400,
        ErrorCategory.VALIDATION,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 404, "EntityNotExist.Role"),
        "EntityNotExist.Role",
        404,
        ErrorCategory.NOT_FOUND,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 404, "EntityNotExist.Role.Policy"),
        "EntityNotExist.Role.Policy",
        404,
        ErrorCategory.NOT_FOUND,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 409, "EntityAlreadyExists.Role"),
        "EntityAlreadyExists.Role",
        409,
        ErrorCategory.ALREADY_EXISTS,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 409, "EntityAlreadyExists.Role.Policy"),
        "EntityAlreadyExists.Role.Policy",
        409,
        ErrorCategory.ALREADY_EXISTS,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 409, "DeleteConflict.Role.Policy"),
        "DeleteConflict.Role.Policy",
        409,
        ErrorCategory.CONFLICT,
        True,
        None,
    ),
    (
        _response_exception(ClientException, 400, "SomethingNew"),
        "SomethingNew",
        400,
        ErrorCategory.REJECTED,
        True,
        None,
    ),
    # The SDK's own refusal when no credentials are configured: no status at all.
    (
        ClientException(code="InvalidCredentials", message="Please set up the credentials"),
        "InvalidCredentials",
        None,
        ErrorCategory.CONFIGURATION,
        True,
        None,
    ),
    # tea-openapi 0.3.x raised a plain TeaException with the status inside data.
    (
        TeaException(
            {
                "code": "EntityNotExist.Role",
                "message": "gone",
                "data": {"statusCode": 404, "RequestId": "R3"},
            }
        ),
        "EntityNotExist.Role",
        404,
        ErrorCategory.NOT_FOUND,
        True,
        None,
    ),
    (
        TeaException({"code": "Throttling.User", "message": "slow", "data": {"statusCode": 400}}),
        "Throttling.User",
        400,
        ErrorCategory.THROTTLING,
        False,
        None,
    ),
    # Transport: the SDK wraps them in UnretryableException without a code.
    (
        _unretryable(requests.exceptions.ConnectionError("Connection reset by peer")),
        None,
        None,
        ErrorCategory.TRANSPORT,
        False,
        None,
    ),
    (
        _unretryable(requests.exceptions.ReadTimeout("read timed out")),
        None,
        None,
        ErrorCategory.TRANSPORT,
        False,
        None,
    ),
    (
        _unretryable(requests.exceptions.ConnectTimeout("connect timed out")),
        None,
        None,
        ErrorCategory.TRANSPORT,
        False,
        None,
    ),
    (
        _unretryable(json.JSONDecodeError("Expecting value", "<html>502</html>", 0)),
        None,
        None,
        ErrorCategory.TRANSPORT,
        False,
        None,
    ),
    (_unretryable(KeyError("x")), None, None, ErrorCategory.TRANSPORT, False, None),
    (
        requests.exceptions.ConnectionError("refused"),
        None,
        None,
        ErrorCategory.TRANSPORT,
        False,
        None,
    ),
    (
        ConnectionResetError(104, "Connection reset by peer"),
        None,
        None,
        ErrorCategory.TRANSPORT,
        False,
        None,
    ),
    # Anything else that escapes the SDK's parsing: an unreadable answer, worth one more try.
    (
        AttributeError("'str' object has no attribute 'get'"),
        "InvalidResponse",
        None,
        ErrorCategory.INVALID_RESPONSE,
        False,
        None,
    ),
]


@pytest.mark.parametrize(("exc", "code", "status", "category", "permanent", "retry_after"), CASES)
def test_sdk_exception_maps_to_cloud_error(
    exc, code, status, category, permanent, retry_after
) -> None:
    error = cloud_error_from_sdk(exc, action="GetRole")
    assert isinstance(error, CloudError)
    assert error.code == code
    assert error.http_status == status
    assert error.category is category
    assert error.permanent is permanent
    assert error.transient is (not permanent)
    assert error.retry_after_ms == retry_after
    assert error.action == "GetRole"
    assert error.message


def test_the_raw_cloud_message_and_request_id_are_kept() -> None:
    exc = _response_exception(
        ClientException, 404, "EntityNotExist.Role", "The role does not exist."
    )
    error = cloud_error_from_sdk(exc, action="GetRole")
    assert error.message == "The role does not exist."  # not the SDK's "code: 404, ..." text
    assert error.request_id == "REQ-1"
    assert error.is_not_found and not error.is_already_exists
    assert "EntityNotExist.Role" in str(error) and "REQ-1" in str(error)


def test_missing_code_and_request_id_do_not_become_the_text_none() -> None:
    exc = ServerException(
        status_code=502,
        code="None",
        message="code: 502, None request id: None",
        data={},
        request_id="None",
    )
    error = cloud_error_from_sdk(exc, action="UpdateRole")
    assert error.code is None and error.request_id is None
    assert error.category is ErrorCategory.SERVER


def test_transport_messages_do_not_quote_the_request_url() -> None:
    inner = requests.exceptions.ConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=9): "
        "Max retries exceeded with url: /?RoleSessionName=alice"
    )
    error = cloud_error_from_sdk(_unretryable(inner), action="AssumeRole")
    assert "RoleSessionName" not in error.message and "alice" not in str(error)


def test_entity_answers_expose_their_meaning() -> None:
    exists = cloud_error_from_sdk(
        _response_exception(ClientException, 409, "EntityAlreadyExists.Role"), action="CreateRole"
    )
    conflict = cloud_error_from_sdk(
        _response_exception(ClientException, 409, "DeleteConflict.Role.Policy"), action="DeleteRole"
    )
    config = cloud_error_from_sdk(
        _response_exception(ClientException, 400, "SignatureDoesNotMatch"), action="GetRole"
    )
    assert exists.is_already_exists and exists.permanent
    assert conflict.is_delete_conflict and conflict.permanent
    assert config.is_configuration and config.permanent


def test_cloud_error_survives_pickling_for_celery() -> None:
    error = cloud_error_from_sdk(
        _response_exception(ThrottlingException, 429, "Throttling.User", retry_after=300),
        action="UpdateRole",
    )
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (copy.code, copy.retry_after_ms, copy.category, copy.permanent, copy.request_id) == (
        "Throttling.User",
        300,
        ErrorCategory.THROTTLING,
        False,
        "REQ-1",
    )
    assert repr(copy) == repr(error)


@pytest.mark.parametrize(
    ("code", "status", "retry_after", "transport", "expected"),
    [
        (None, None, None, True, ErrorCategory.TRANSPORT),
        (None, None, None, False, ErrorCategory.TRANSPORT),
        (None, 429, None, False, ErrorCategory.THROTTLING),
        (None, 500, 100, False, ErrorCategory.THROTTLING),  # retry-after wins over 5xx
        ("EntityNotExist.Role", 500, None, False, ErrorCategory.NOT_FOUND),
        (None, 418, None, False, ErrorCategory.REJECTED),
        ("Whatever", 504, None, False, ErrorCategory.SERVER),
    ],
)
def test_classification_order(code, status, retry_after, transport, expected) -> None:
    assert (
        classify_error(
            code=code, http_status=status, retry_after_ms=retry_after, transport=transport
        )
        is expected
    )
