"""Open console through a step-up: the one other page whose form may end on the sign-in host.

Open console (`console_open`) answers 303 to the federation sign-in, and browsers check a
form's redirects against the `form-action` of the page that holds the form. My access allows
the sign-in origin itself (`views.my_access`). When the person must first confirm who they are,
allauth keeps the POST and replays it as the answer to the confirmation page's own form (the
password, the authenticator code or the security key): that page then needs the same
allowance, and only while its `next` is Open console.
"""

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from core.security_headers import allow_form_action
from delegations.partner.console_sign_in import console_signin_base_url

CONSOLE_OPEN_VIEW = "delegations:console_open"
# The confirmation pages post plain forms; any other body (JSON, uploads) is never one of them.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def leads_to_console_open(request: HttpRequest) -> bool:
    """Whether the page's `next` (query or form field) is an Open console POST to replay."""
    wanted = request.GET.get("next", "")
    if not wanted and request.method == "POST" and request.content_type in FORM_TYPES:
        wanted = request.POST.get("next", "")
    if not wanted:
        return False
    try:
        return resolve(urlsplit(wanted).path).view_name == CONSOLE_OPEN_VIEW
    except Resolver404:
        return False


class ConsoleStepUpFormActionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            getattr(settings, "PORTAL_CONSOLE_FEDERATION", False)
            and "text/html" in response.get("Content-Type", "")
            and leads_to_console_open(request)
        ):
            allow_form_action(response, url=console_signin_base_url())
        return response
