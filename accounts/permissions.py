"""Access checks for views: who may act for the current organisation, and in which role.

Views use `organisation_member_required(roles=...)` (or `OrganisationMemberRequiredMixin`) and
then read `request.membership` / `request.organisation`, which `CurrentOrganisationMiddleware`
sets on every request from the person's memberships.
"""

import time
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from allauth.account.authentication import get_authentication_records
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.models import Membership

ADMIN = Membership.Role.ADMIN
AUDITOR = Membership.Role.AUDITOR
STAFF = Membership.Role.STAFF

ViewFunc = Callable[..., HttpResponse]


def check_organisation_access(request: HttpRequest, roles: Iterable[str] | None) -> None:
    """Raise PermissionDenied unless the current membership has one of `roles` (any if None)."""
    membership = getattr(request, "membership", None)
    if membership is None:
        raise PermissionDenied("You are not a member of any organisation.")
    if roles is not None and membership.role not in set(roles):
        raise PermissionDenied("Your role in this organisation does not allow this.")


def organisation_member_required(
    view: ViewFunc | None = None, *, roles: Iterable[str] | None = None
) -> Any:
    """Sign-in plus a membership of the current organisation, optionally with one of `roles`.

    Anonymous people are sent to sign in; people without any organisation see the
    "no organisation" page; members without the role get 403.
    """
    allowed = tuple(roles) if roles is not None else None

    def decorator(view_func: ViewFunc) -> ViewFunc:
        @wraps(view_func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if getattr(request, "membership", None) is None:
                return redirect("accounts:no_organisation")
            check_organisation_access(request, allowed)
            return view_func(request, *args, **kwargs)

        return wrapper

    if view is not None:
        return decorator(view)
    return decorator


admin_required = organisation_member_required(roles=[ADMIN])


class OrganisationMemberRequiredMixin:
    """Class-based views: set `required_roles` (None means any member)."""

    required_roles: Iterable[str] | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        checked = organisation_member_required(roles=self.required_roles)(super().dispatch)  # type: ignore[misc]
        return checked(request, *args, **kwargs)


def recent_authentications(request: HttpRequest) -> list[dict[str, Any]]:
    """This session's sign-ins and identity confirmations (allauth's records, each with its
    `method`) made within ACCOUNT_REAUTHENTICATION_TIMEOUT: what sensitive actions require."""
    cutoff = time.time() - settings.ACCOUNT_REAUTHENTICATION_TIMEOUT
    return [
        record
        for record in get_authentication_records(request, request.user)
        if isinstance(record, dict) and record.get("at", 0) >= cutoff
    ]


def require_mfa(*, with_mfa: bool) -> None:
    """Granting or restoring access to a cloud role (approve, offer, cut-off and its lift)
    needs the acting admin's recent sign-in to have used two-factor authentication, when the
    deployment requires it; `with_mfa` is what the view read from `recent_authentications`."""
    if settings.PORTAL_REQUIRE_MFA and not with_mfa:
        raise PermissionDenied(
            "Granting access needs a recent sign-in with two-factor authentication."
        )
