"""Auditors are read-only everywhere: one rule at the door, not one check per view.

Whatever a view does, an unsafe request (POST, PUT, PATCH, DELETE…) from someone acting as
an auditor gets 403 before the view runs, so a page added later cannot forget it. The only
exceptions are the person's own account: signing out, their password, email and two-factor
settings, their sessions, switching to another organisation they belong to, and accepting
an invitation addressed to them.

One action of the history pages is open to them as well, by name and for POST only:
"Verify now" (`audit:verify_start`). Proving the record unaltered is the auditor's own job;
it changes no organisation's data, only adds a verification run and its audit events.
"""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext

from accounts.models import Membership

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# allauth's own-account pages (sign-up, which registers an organisation, is not one of them).
PERSONAL_URL_PREFIXES = ("account_", "mfa_", "usersessions_")
PERSONAL_URL_EXCLUDED = frozenset({"account_signup"})
PERSONAL_URL_NAMES = frozenset(
    {
        "accounts:switch_organisation",
        "accounts:invitation_accept",
        # The person's own language and time zone.
        "accounts:preferences",
        "set_language",
    }
)
# Auditor actions that are POSTs but read-only in substance (see the module docstring).
AUDITOR_ALLOWED_POSTS = frozenset({"audit:verify_start"})


def is_personal_url(view_name: str | None) -> bool:
    if not view_name or view_name in PERSONAL_URL_EXCLUDED:
        return False
    return view_name in PERSONAL_URL_NAMES or view_name.startswith(PERSONAL_URL_PREFIXES)


class AuditorReadOnlyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> None:
        if request.method in SAFE_METHODS:
            return None
        membership = getattr(request, "membership", None)
        if membership is None or membership.role != Membership.Role.AUDITOR:
            return None
        match = request.resolver_match
        view_name = match.view_name if match else None
        if is_personal_url(view_name):
            return None
        if request.method == "POST" and view_name in AUDITOR_ALLOWED_POSTS:
            return None
        raise PermissionDenied(
            gettext("Auditors have read-only access: they cannot change anything.")
        )
