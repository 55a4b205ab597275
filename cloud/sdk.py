"""Where the SDK's shapes become the portal's: its exceptions become `CloudError`, its
response models are read defensively, and `SdkTransport` sends one request per call.

The calls themselves live in `cloud.sts`, `cloud.ram_roles`, `cloud.ram_policies` and
`cloud.ram_users`, each a subclass of `SdkTransport`; `cloud.client.CloudClient` combines them.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from alibabacloud_ram20150501.client import Client as _RamSdkClient
from alibabacloud_sts20150401.client import Client as _StsSdkClient
from alibabacloud_tea_openapi import utils_models as openapi_models
from darabonba.policy.retry import RetryOptions
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from Tea.exceptions import TeaException, UnretryableException

from cloud import policies
from cloud.errors import CloudError, ErrorCategory
from cloud.values import (
    OUTCOME_FAILED,
    OUTCOME_SUCCEEDED,
    AttachedPolicy,
    CallRecorder,
    CloudCredentials,
    IntentRecorder,
)

# Log lines keep the name they had before the door was split into modules, so a filter or a
# search written for "cloud.client" still finds every call.
logger = logging.getLogger("cloud.client")

DEFAULT_REGION = "cn-hangzhou"
USER_AGENT = "PartnerAccessPortal/1"
_PAGE_SIZE = 1000
_MAX_PAGES = 100
_MAX_MESSAGE_LENGTH = 500


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


class InvalidResponse(Exception):
    """Raised inside the client when a 2xx body lacks what the API promises."""

    def __init__(self, what: str, request_id: str | None) -> None:
        super().__init__(what)
        self.what = what
        self.request_id = request_id


def invalid_response(action: str, what: str, request_id: str | None) -> CloudError:
    return CloudError(
        code="InvalidResponse",
        message=f"The cloud's answer has no valid {what}.",
        action=action,
        request_id=request_id,
        category=ErrorCategory.INVALID_RESPONSE,
    )


# --- reading SDK models defensively -------------------------------------------------------------
def response_request_id(response: Any) -> str | None:
    body = getattr(response, "body", None)
    found = _clean(getattr(body, "request_id", None)) if body is not None else None
    if found:
        return found
    headers = getattr(response, "headers", None)
    if isinstance(headers, dict):
        return _clean(headers.get("x-acs-request-id"))
    return None


def body_of(response: Any, request_id: str | None) -> Any:
    body = getattr(response, "body", None)
    if body is None:
        raise InvalidResponse("body", request_id)
    return body


def required_text(value: Any, what: str, request_id: str | None) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidResponse(what, request_id)
    return value


def optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def required_integer(value: Any, what: str, request_id: str | None) -> int:
    if isinstance(value, bool):
        raise InvalidResponse(what, request_id)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise InvalidResponse(what, request_id)


def optional_integer(value: Any) -> int | None:
    try:
        return required_integer(value, "", None)
    except InvalidResponse:
        return None


def required_items(container: Any, attribute: str, what: str, request_id: str | None) -> list[Any]:
    """The list inside RAM's `{"Policies": {"Policy": [...]}}` wrappers, which must be present."""
    if container is None:
        raise InvalidResponse(what, request_id)
    items = getattr(container, attribute, None)
    if not isinstance(items, list):
        raise InvalidResponse(what, request_id)
    return items


def read_attached_policies(response: Any, request_id: str | None) -> list[AttachedPolicy]:
    """ListPoliciesForRole and ListPoliciesForUser answer in the same shape."""
    body = body_of(response, request_id)
    items = required_items(body.policies, "policy", "Policies.Policy", request_id)
    return [attached_policy_from(item, request_id) for item in items]


def attached_policy_from(model: Any, request_id: str | None) -> AttachedPolicy:
    return AttachedPolicy(
        policy_type=required_text(model.policy_type, "Policy.PolicyType", request_id),
        policy_name=required_text(model.policy_name, "Policy.PolicyName", request_id),
        description=optional_text(model.description),
        default_version=optional_text(model.default_version),
        attach_date=optional_text(model.attach_date),
    )


def next_page_marker(body: Any, request_id: str | None) -> str | None:
    truncated = body.is_truncated
    if isinstance(truncated, str):
        truncated = truncated.lower() == "true"
    if not truncated:
        return None
    marker = optional_text(body.marker)
    if marker is None:
        raise InvalidResponse("Marker", request_id)
    return marker


def document_text(document: str | dict[str, Any], *, trust: bool) -> str:
    """Send documents in canonical form; a malformed one raises PolicyError before sending."""
    return policies.policy_to_text(policies.canonical_policy(document, trust=trust))


def checked_description(text: str | None) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str) or not 1 <= len(text) <= policies.MAX_ROLE_DESCRIPTION_LENGTH:
        raise policies.PolicyError(
            f"A description is 1 to {policies.MAX_ROLE_DESCRIPTION_LENGTH} characters."
        )
    return text


def checked_seconds(value: object, *, low: int, high: int, what: str) -> int:
    """`value` when it is a whole number of seconds (not a bool) from `low` to `high`;
    otherwise a PolicyError saying `what` lasts that long."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise policies.PolicyError(f"{what} {low} to {high} seconds; got {value!r}.")
    return value


T = TypeVar("T")


class SdkTransport:
    """The SDK clients for one account's credentials and the one way a request is sent."""

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
        # What every SDK client of this transport (and of its subclasses' products) is built with.
        self._sdk_options: dict[str, Any] = {
            "region_id": region_id,
            "protocol": protocol or settings.ALIBABA_CLOUD_PROTOCOL,
            "connect_timeout": connect_timeout_ms or settings.ALIBABA_CLOUD_CONNECT_TIMEOUT_MS,
            "read_timeout": read_timeout_ms or settings.ALIBABA_CLOUD_READ_TIMEOUT_MS,
        }
        self._ram_endpoint = ram_endpoint or settings.ALIBABA_RAM_ENDPOINT
        self._sts_endpoint = sts_endpoint or settings.ALIBABA_STS_ENDPOINT
        self._ram = _RamSdkClient(self._sdk_config(endpoint=self._ram_endpoint))
        self._sts = _StsSdkClient(self._sdk_config(endpoint=self._sts_endpoint))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(access_key_id={self._credentials.access_key_id!r}, "
            f"ram={self._ram_endpoint!r}, sts={self._sts_endpoint!r})"
        )

    def _sdk_config(self, *, endpoint: str, **extra: Any) -> openapi_models.Config:
        """An SDK client's configuration: this transport's credentials and options (region,
        protocol, timeouts), with `extra` settings of one product."""
        return openapi_models.Config(
            access_key_id=self._credentials.access_key_id,
            access_key_secret=self._credentials.access_key_secret,
            security_token=self._credentials.security_token or None,
            endpoint=endpoint,
            user_agent=USER_AGENT,
            # One request per call: retrying is the caller's job (it knows the budget).
            retry_options=RetryOptions({"retryable": False}),
            **self._sdk_options,
            **extra,
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
            request_id = response_request_id(response)
            try:
                result = read(response, request_id)
            except InvalidResponse as invalid:
                error = invalid_response(action, invalid.what, invalid.request_id)
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

    def _list_pages(
        self,
        action: str,
        target: str,
        send: Callable[[str | None, int], Any],
        read_page: Callable[[Any, str | None], list[T]],
        *,
        next_of: Callable[[Any, str | None], str | None] = next_page_marker,
        cursor_name: str = "Marker",
        page_size: int = _PAGE_SIZE,
        max_pages: int = _MAX_PAGES,
    ) -> list[T]:
        """Every item of a list across its pages, one request (and record) a page.

        `send(token, page_size)` sends one page's request; `read_page(body, request_id)` reads
        that page's items and `next_of(body, request_id)` the next page's token (RAM's
        `Marker` by default; OOS and ECS call theirs `NextToken`), None on the last page. A
        token that does not advance, or paging that never ends, is an invalid answer rather
        than an endless loop or a silently short list.
        """
        found: list[T] = []
        token: str | None = None

        def read(response: Any, request_id: str | None) -> tuple[list[T], str | None]:
            body = body_of(response, request_id)
            return read_page(body, request_id), next_of(body, request_id)

        for _ in range(max_pages):
            page, next_token = self._call(
                action,
                target,
                functools.partial(send, token, page_size),
                read,
                mutating=False,
            )
            found.extend(page)
            if next_token is None:
                return found
            if next_token == token:
                raise invalid_response(
                    action, f"{cursor_name} (it did not advance)", self.last_request_id
                )
            token = next_token
        raise invalid_response(action, f"end of paging after {max_pages} pages", None)

    @staticmethod
    def _request_id_only(response: Any, request_id: str | None) -> str | None:
        body_of(response, request_id)
        return request_id

    # -- attachments, shared by roles and users --------------------------------------------------
    # The caller validates its principal's name (roles and users follow different rules) and
    # builds the SDK request; these helpers hold what the two kinds of principal have in common.
    def _list_attached_policies(
        self, action: str, principal: str, send: Callable[[], Any]
    ) -> list[AttachedPolicy]:
        return self._call(action, principal, send, read_attached_policies, mutating=False)

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
