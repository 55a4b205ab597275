"""Error pages: plain words, never a stack trace. Each shows the request id so a person can
quote it and an operator can find the log lines."""

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotFound,
    HttpResponseServerError,
)
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token

from core.request_id import current_request_id


def _request_id(request: HttpRequest) -> str:
    return getattr(request, "request_id", None) or current_request_id()


def _render(request: HttpRequest, template: str, context: dict | None = None) -> str:
    # Every error page shows the request id, so a person can quote it to an operator.
    context = {"request_id": _request_id(request), **(context or {})}
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
    request_id = _request_id(request)
    try:
        body = loader.get_template("500.html").render({"request_id": request_id})
    except Exception:  # the error page itself must never fail
        body = f"<h1>Something went wrong</h1><p>Request id: {request_id}</p>"
    return HttpResponseServerError(body)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return HttpResponseForbidden(_render(request, "403_csrf.html"))
