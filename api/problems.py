"""Errors as `application/problem+json` (RFC 9457): one exception handler for every API view.

Each problem has a stable `type` (a path under /api/v1/problems/ that describes it), a `title`
that never changes for that type, a `detail` for this occurrence and the `status`. Clients
branch on `type`, never on the words.
"""

import math
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from api.negotiation import PROBLEM_CONTENT_TYPE as PROBLEM_CONTENT_TYPE
from audit.services import AUDIT_UNAVAILABLE_RETRY_AFTER_SECONDS, AuditError
from core.db import ReportsChange
from delegations.lifecycle.transitions import DelegationConflict
from delegations.partner.credentials import CredentialRefused

StrOrPromise = str | Promise

PROBLEM_BASE = "/api/v1/problems/"

# slug -> (title, description). The slugs are the stable part of each `type`.
PROBLEM_TYPES: dict[str, tuple[StrOrPromise, StrOrPromise]] = {
    "validation": (
        _("Invalid request"),
        _("A field is missing, of the wrong type or out of range."),
    ),
    "unknown-fields": (
        _("Unknown fields"),
        _("The body names fields this operation does not take."),
    ),
    "malformed": (_("Malformed body"), _("The body is not valid JSON.")),
    "too-large": (_("Body too large"), _("The body is larger than the portal accepts.")),
    "unsupported-media-type": (_("Unsupported media type"), _("Send application/json.")),
    "not-acceptable": (
        _("Not acceptable"),
        _(
            "The API answers in JSON and its errors in problem+json: accept application/json "
            "or application/problem+json (or */*)."
        ),
    ),
    "unauthenticated": (
        _("Not authenticated"),
        _("No token, or the token is unknown, expired, revoked or its membership ended."),
    ),
    "forbidden": (_("Forbidden"), _("Your role in this organisation does not allow this.")),
    "insufficient-scope": (_("Insufficient scope"), _("The token does not hold the scope needed.")),
    "decisions-disabled": (
        _("Decisions through the API are off"),
        _(
            "The organisation has not allowed approving, rejecting, offering or revoking through "
            "the API; an admin can turn it on under API settings."
        ),
    ),
    "mfa-required": (
        _("A fresh MFA-confirmed token is needed"),
        _(
            "Decisions need a token created within the last 12 hours right after confirming "
            "with two-factor authentication."
        ),
    ),
    "no-access": (
        _("No usable access"),
        _(
            "You have no usable access to this delegation; `reason` says why (none, ended, "
            "not-assigned) and `request_url` where to ask for it."
        ),
    ),
    "not-found": (_("Not found"), _("Nothing with this id exists for your organisation.")),
    "method-not-allowed": (_("Method not allowed"), _("This operation does not take this method.")),
    "conflict": (
        _("Conflict"),
        _("The object is no longer in the state you acted on (someone else decided, or it moved)."),
    ),
    "credentials-refused": (
        _("Credentials refused"),
        _("The portal or the cloud refused to issue credentials; `code` says why."),
    ),
    "rate-limited": (_("Too many requests"), _("Slow down; `Retry-After` says when to try again.")),
    "audit-unavailable": (
        _("The audit log is unavailable"),
        _("Nothing was changed because the change could not be recorded."),
    ),
    "server-error": (_("Server error"), _("Something failed on the portal's side.")),
}


def problem_type(slug: str) -> str:
    return PROBLEM_BASE + slug


class ProblemException(exceptions.APIException):
    """An API error with its problem type slug (and extra members for the body). Its detail is
    written with gettext where it is raised, so in the language the request asked for
    (Accept-Language, or the signed-in person's); the slug and extra members never change.
    `retry_after` (seconds) becomes the Retry-After header a 429 promises."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        status_code: int,
        retry_after: float | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.slug = slug
        self.status_code = status_code
        self.retry_after = retry_after
        self.extra = extra


def conflict_unless_changed(result: ReportsChange, detail: str) -> None:
    """A 409 conflict when an action found nothing to do (`result.changed` False: the caller
    has no approval to withdraw). A page only says so; a client needs a status to branch on,
    and a second call (or one by someone else) finds the object unlike what it acted on."""
    if not result.changed:
        raise ProblemException("conflict", detail, status_code=status.HTTP_409_CONFLICT)


class PayloadTooLarge(ProblemException):
    def __init__(self) -> None:
        super().__init__(
            "too-large",
            gettext("Send at most %(limit)d bytes.")
            % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )


def problem_response(
    slug: str,
    detail: StrOrPromise,
    *,
    status_code: int,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    title, _description = PROBLEM_TYPES[slug]
    body = {
        "type": problem_type(slug),
        "title": str(title),
        "status": status_code,
        "detail": str(detail),
        **extra,
    }
    response = Response(body, status=status_code, headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _validation_messages(error: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(error, "error_dict"):
        return {
            field: [message for item in items for message in item.messages]
            for field, items in error.error_dict.items()
        }
    return {"non_field_errors": list(error.messages)}


def _drf_problem(exc: exceptions.APIException) -> tuple[str, str, dict[str, Any]]:
    """slug, detail and extra members for DRF's own exceptions."""
    if isinstance(exc, exceptions.ValidationError):
        return (
            "validation",
            gettext("Some fields are not valid; see `errors`."),
            {"errors": exc.detail},
        )
    if isinstance(exc, exceptions.ParseError):
        return "malformed", str(exc.detail), {}
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return "unsupported-media-type", str(exc.detail), {}
    if isinstance(exc, exceptions.NotAcceptable):
        return "not-acceptable", str(PROBLEM_TYPES["not-acceptable"][1]), {}
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return "unauthenticated", str(exc.detail), {}
    if isinstance(exc, exceptions.PermissionDenied):
        return "forbidden", str(exc.detail), {}
    if isinstance(exc, exceptions.NotFound):
        return "not-found", str(PROBLEM_TYPES["not-found"][1]), {}
    if isinstance(exc, exceptions.MethodNotAllowed):
        return "method-not-allowed", str(exc.detail), {}
    if isinstance(exc, exceptions.Throttled):
        return "rate-limited", str(exc.detail), {}
    return "server-error", str(exc.detail), {}


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error an API view raises becomes a problem document."""
    set_rollback()
    headers: dict[str, str] = {}
    if isinstance(exc, RequestDataTooBig):
        # Django's own refusal, raised when a view without `ApiView`'s early check (the
        # device flow's) reads an oversized body; unanswered here it would be an HTML 400.
        exc = PayloadTooLarge()
    if isinstance(exc, ProblemException):
        if exc.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(exc.retry_after))
        return problem_response(
            exc.slug, str(exc.detail), status_code=exc.status_code, headers=headers, **exc.extra
        )
    if isinstance(exc, Http404):
        return problem_response(
            "not-found", PROBLEM_TYPES["not-found"][1], status_code=status.HTTP_404_NOT_FOUND
        )
    if isinstance(exc, DjangoPermissionDenied):
        return problem_response(
            "forbidden", str(exc) or str(PROBLEM_TYPES["forbidden"][1]), status_code=403
        )
    if isinstance(exc, DjangoValidationError):
        return problem_response(
            "validation",
            " ".join(exc.messages),
            status_code=400,
            errors=_validation_messages(exc),
        )
    if isinstance(exc, DelegationConflict):
        return problem_response("conflict", str(exc), status_code=409)
    if isinstance(exc, CredentialRefused):
        return problem_response(
            "credentials-refused", exc.message, status_code=exc.status, code=exc.code
        )
    if isinstance(exc, AuditError):
        return problem_response(
            "audit-unavailable",
            PROBLEM_TYPES["audit-unavailable"][1],
            status_code=503,
            headers={"Retry-After": str(AUDIT_UNAVAILABLE_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, exceptions.APIException):
        slug, detail, extra = _drf_problem(exc)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        wait = getattr(exc, "wait", None)
        if wait is not None:
            headers["Retry-After"] = str(int(wait))
        return problem_response(slug, detail, status_code=exc.status_code, headers=headers, **extra)
    return None
