"""Per-request tenancy, the person's language and time zone, and the MFA rule for admins."""

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts import selectors
from accounts.models import Membership
from accounts.permissions import OrganisationHttpRequest, admin_must_enrol_mfa
from core.time_zones import zone_or_utc


class PersonLocaleMiddleware:
    """A signed-in person's own language (when they chose one) wins over the browser's cookie
    and Accept-Language, which LocaleMiddleware has read before this; their time zone is
    the one every page shows times in (UTC until known). Bearer-token API requests are
    anonymous here: Accept-Language decides for them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            if user.language:
                translation.activate(user.language)
                request.LANGUAGE_CODE = translation.get_language()
            timezone.activate(zone_or_utc(user.time_zone))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            # A thread serves the next request with nothing of this person's left active.
            timezone.deactivate()


class CurrentOrganisationMiddleware:
    """Sets `request.memberships`, `request.membership` and `request.organisation`.

    The session only remembers which organisation the person last chose; the membership is
    read from the database on every request, so removing someone takes effect at once.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: OrganisationHttpRequest) -> HttpResponse:
        request.memberships = []
        request.membership = None
        request.organisation = None
        if request.user.is_authenticated:
            memberships = selectors.memberships_for_user(user=request.user)
            for each in memberships:
                # The person's own memberships: their `user` is the request's user, already
                # loaded (the inbox in every page's navigation reads it; no second read).
                each.user = request.user
            preferred = request.session.get(selectors.CURRENT_ORGANISATION_SESSION_KEY)
            membership = selectors.membership_resolve_current(
                memberships=memberships, preferred_organisation_id=preferred
            )
            current_id = str(membership.organisation_id) if membership else None
            if preferred != current_id:
                if current_id:
                    request.session[selectors.CURRENT_ORGANISATION_SESSION_KEY] = current_id
                else:
                    request.session.pop(selectors.CURRENT_ORGANISATION_SESSION_KEY, None)
            request.memberships = memberships
            request.membership = membership
            request.organisation = membership.organisation if membership else None
        return self.get_response(request)


# Paths an admin without MFA may still use: signing out, setting up MFA and the rest of the
# account pages, switching to another organisation, accepting an invitation, reading the
# embedded mailbox, static files and probes.
_MFA_EXEMPT_PREFIXES = (
    "/accounts/",
    "/static/",
    "/dev/mail/",
    "/invitations/",
    "/healthz",
    "/i18n/",
)
_MFA_EXEMPT_NAMES = ("accounts:switch_organisation", "accounts:preferences")


class AdminMfaRequiredMiddleware:
    """With PORTAL_REQUIRE_MFA, an admin without an authenticator app is sent to enrol one
    before they can do anything as admin."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._must_enrol(request):
            messages.warning(
                request,
                _(
                    "Your organisation requires two-factor authentication for admins. "
                    "Set up an authenticator app to continue."
                ),
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)

    def _must_enrol(self, request: HttpRequest) -> bool:
        membership: Membership | None = getattr(request, "membership", None)
        if not admin_must_enrol_mfa(membership):
            return False
        path = request.path_info
        if path.startswith(_MFA_EXEMPT_PREFIXES) or path == "/readyz":
            return False
        return not any(path == reverse(name) for name in _MFA_EXEMPT_NAMES)
