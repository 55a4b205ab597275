"""Error pages: plain words, never a stack trace. Each shows the request id so a person can
quote it and an operator can find the log lines."""

import logging
from collections.abc import Callable

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotFound,
    HttpResponseServerError,
    JsonResponse,
)
from django.template import loader
from django.utils.translation import gettext as _
from django.views.decorators.csrf import requires_csrf_token

from audit.services import AUDIT_UNAVAILABLE_RETRY_AFTER_SECONDS, AuditError
from core.request_id import current_request_id

logger = logging.getLogger(__name__)

# Clients that cannot read a page: the aliyun CLI and the SDKs fetch the credentials URI and
# parse its JSON whatever the Accept header says.
JSON_URL_NAMES = frozenset({"credentials_uri"})


def _render(request: HttpRequest, template: str, context: dict | None = None) -> str:
    # Every error page shows the request id, so a person can quote it to an operator. It
    # does not count the inbox for the navigation: a refusal is answered without the reads
    # behind that count (a crawler probing pages it may not see pays for none of them).
    context = {"request_id": current_request_id(), "inbox": (), **(context or {})}
    return loader.render_to_string(template, context, request=request)


@requires_csrf_token
def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return HttpResponseBadRequest(_render(request, "400.html"))


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # PermissionDenied messages in this code base are written for people ("Your role in this
    # organisation does not allow this."), so they are shown.
    reason = str(exception) if exception is not None and str(exception) else ""
    return HttpResponseForbidden(_render(request, "403.html", {"reason": reason}))


@requires_csrf_token
def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return HttpResponseNotFound(_render(request, "404.html"))


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: the failure may be in the database or a context processor.
    request_id = current_request_id()
    try:
        body = loader.get_template("500.html").render({"request_id": request_id})
    except Exception:  # the error page itself must never fail
        body = f"<h1>Something went wrong</h1><p>Request id: {request_id}</p>"
    return HttpResponseServerError(body)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return HttpResponseForbidden(_render(request, "403_csrf.html"))


def _wants_json(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    if match is not None and match.url_name in JSON_URL_NAMES:
        return True
    return "application/json" in request.headers.get("Accept", "")


def audit_unavailable(request: HttpRequest) -> HttpResponse:
    """503: the ledger could not record a change, so the change was rolled back.

    The portal writes no change without its audit event (`audit.services.audit_record` fails
    closed), so "nothing was changed" is true and is what the person needs to hear."""
    request_id = current_request_id()
    response: HttpResponse
    if _wants_json(request):
        response = JsonResponse(
            {
                "Code": "AuditUnavailable",
                "Message": _(
                    "The audit log could not record this, so nothing was changed. "
                    "Try again in a moment."
                ),
                "RequestId": request_id,
            },
            status=503,
        )
    else:
        try:
            body = _render(request, "503.html")
        except Exception:  # the error page itself must never fail
            body = "<h1>{}</h1><p>{}</p><p>{}</p>".format(
                _("Nothing was changed"),
                _(
                    "The audit log could not record this, so nothing was changed. "
                    "Try again in a moment."
                ),
                _("Request id: %(request_id)s") % {"request_id": request_id},
            )
        response = HttpResponse(body, status=503)
    response["Retry-After"] = str(AUDIT_UNAVAILABLE_RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class AuditFailureMiddleware:
    """Answers a view's `AuditError` with `audit_unavailable` instead of a 500.

    Listed last in MIDDLEWARE, so its `process_exception` runs first, before any other
    middleware could turn the error into something else."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, AuditError):
            return None
        # Logged as an error with its traceback: an operator must fix the ledger, and the
        # person's page shows only the request id that finds this line.
        logger.error(
            "The audit log refused an event; the change was rolled back.",
            exc_info=(type(exception), exception, exception.__traceback__),
        )
        return audit_unavailable(request)
