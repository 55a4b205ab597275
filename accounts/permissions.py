"""Access checks for views: who may act for the current organisation, in which role, and
whether they confirmed who they are recently enough for a sensitive action.

Views use `organisation_member_required(roles=...)` (or `OrganisationMemberRequiredMixin`) and
then read `request.membership` / `request.organisation`, which `CurrentOrganisationMiddleware`
sets on every request from the person's memberships. Such views take an
`AuthenticatedHttpRequest`: the decorator is what makes its attributes true.
"""

import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any

# Suspending a POST and replaying it after the person confirmed who they are is allauth's own
# reauthentication mechanism; it has no public wrapper that can send to the MFA page.
from allauth.account.authentication import get_authentication_records
from allauth.account.internal.flows.reauthentication import suspend_request
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from accounts.models import Membership, Organisation, User

ADMIN = Membership.Role.ADMIN
AUDITOR = Membership.Role.AUDITOR
STAFF = Membership.Role.STAFF

ViewFunc = Callable[..., HttpResponse]


class OrganisationHttpRequest(HttpRequest):
    """Any request after `CurrentOrganisationMiddleware`: the person's memberships, and the
    current one (None when anonymous or in no organisation)."""

    memberships: list[Membership]
    membership: Membership | None
    organisation: Organisation | None


class SignedInHttpRequest(OrganisationHttpRequest):
    """A request that passed `login_required`: the person is signed in."""

    user: User


class AuthenticatedHttpRequest(SignedInHttpRequest):
    """A request that passed `organisation_member_required`: signed in, with a current
    membership and organisation."""

    membership: Membership
    organisation: Organisation


def check_organisation_access(request: HttpRequest, roles: Iterable[str] | None) -> None:
    """Raise PermissionDenied unless the current membership has one of `roles` (any if None)."""
    membership = getattr(request, "membership", None)
    if membership is None:
        raise PermissionDenied(_("You are not a member of any organisation."))
    if roles is not None and membership.role not in set(roles):
        raise PermissionDenied(_("Your role in this organisation does not allow this."))


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


# --- the current organisation and role -------------------------------------------------------


def organisation_of_kind(
    request: AuthenticatedHttpRequest, kind: Organisation.Kind, *, refusal: str | Promise
) -> Organisation:
    """The current organisation when it is of `kind` (owner or partner); otherwise 403 with
    `refusal`, which names what only that kind of organisation does."""
    organisation = request.organisation
    if organisation.kind != kind:
        raise PermissionDenied(refusal)
    return organisation


def current_organisation_of(
    kind: Organisation.Kind, *, refusal: Promise
) -> Callable[[AuthenticatedHttpRequest], Organisation]:
    """`organisation_of_kind` for pages that are all for one kind of organisation: a module
    names it once (`_owner = current_organisation_of(OWNER, refusal=gettext_lazy(...))`) and
    its views call `_owner(request)`. `refusal` is lazy: it is read in the person's language
    when it is shown."""

    def current(request: AuthenticatedHttpRequest) -> Organisation:
        return organisation_of_kind(request, kind, refusal=refusal)

    return current


def is_admin(request: AuthenticatedHttpRequest) -> bool:
    """Whether the person is an admin of the current organisation."""
    return request.membership.role == ADMIN


def is_admin_of(request: AuthenticatedHttpRequest, organisation_id: object) -> bool:
    """Whether the person is an admin, and the current organisation is `organisation_id`
    (e.g. the owner or the partner of a delegation on a page both sides can read)."""
    return request.membership.organisation_id == organisation_id and is_admin(request)


# --- step-up: a recent confirmation of who the person is --------------------------------------


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
            _("Granting access needs a recent sign-in with two-factor authentication.")
        )


class MfaRule(enum.Enum):
    """When a step-up must be confirmed with the authenticator app, not just the password."""

    # Granting or taking away access, and handling the owner's keys: when the portal requires
    # MFA (PORTAL_REQUIRE_MFA); someone without an authenticator is refused.
    PORTAL = "portal"
    # Revealing one's own credentials: whenever the person has an authenticator, so a stolen
    # password alone never shows a secret.
    ENROLLED = "enrolled"


@dataclass(frozen=True)
class StepUp:
    """The outcome of `step_up`: `response` is where to send the person to confirm (None
    when they did recently); `with_mfa` says whether a recent confirmation used MFA."""

    response: HttpResponse | None
    with_mfa: bool


def _mfa_required(request: HttpRequest, rule: MfaRule) -> bool:
    if rule is MfaRule.PORTAL:
        return bool(settings.PORTAL_REQUIRE_MFA)
    return bool(is_mfa_enabled(request.user))


def _confirmation(request: HttpRequest, rule: MfaRule) -> tuple[bool, bool]:
    """Whether the person confirmed recently enough for `rule`, and whether by MFA."""
    recent = recent_authentications(request)
    with_mfa = any(record.get("method") == "mfa" for record in recent)
    if with_mfa or not recent:
        # Confirmed by MFA satisfies every rule, and no recent sign-in satisfies none: only a
        # password-only confirmation needs to know whether MFA was required (a read).
        return with_mfa, with_mfa
    return not _mfa_required(request, rule), with_mfa


def step_up_confirmed(request: HttpRequest, *, rule: MfaRule = MfaRule.PORTAL) -> bool:
    """Whether the person confirmed who they are within ACCOUNT_REAUTHENTICATION_TIMEOUT, by
    MFA when `rule` asks for it."""
    confirmed, _with_mfa = _confirmation(request, rule)
    return confirmed


def step_up_page(request: HttpRequest, *, rule: MfaRule = MfaRule.PORTAL) -> str:
    """The page where the person confirms who they are (by MFA when `rule` asks for it)."""
    if _mfa_required(request, rule):
        if not is_mfa_enabled(request.user):
            raise PermissionDenied(_("This needs two-factor authentication; set it up first."))
        return reverse("mfa_reauthenticate")
    return reverse("account_reauthenticate")


def step_up(request: HttpRequest, *, rule: MfaRule = MfaRule.PORTAL) -> StepUp:
    """The one step-up check of sensitive actions: unconfirmed, `response` sends the person to
    confirm who they are, and allauth keeps the POST to replay it afterwards. Never for a POST
    carrying a secret (the session would keep it): check `step_up_confirmed` and refuse."""
    confirmed, with_mfa = _confirmation(request, rule)
    if confirmed:
        return StepUp(response=None, with_mfa=with_mfa)
    return StepUp(
        response=suspend_request(request, step_up_page(request, rule=rule)), with_mfa=False
    )


def admin_must_enrol_mfa(membership: Membership | None) -> bool:
    """With PORTAL_REQUIRE_MFA, an admin without an authenticator app may not act as admin
    until they enrol one: on the web (the middleware sends them to enrol) and through the API
    alike (a token made before the rule, or while acting for another organisation, does not
    get round it)."""
    return (
        settings.PORTAL_REQUIRE_MFA
        and membership is not None
        and membership.role == Membership.Role.ADMIN
        and not is_mfa_enabled(membership.user, types=["totp"])
    )


# --- role checks for services (no request: the person and the organisation are given) --------


def is_member(user: User, organisation: Organisation, roles: Iterable[str] | None = None) -> bool:
    """Whether `user` belongs to `organisation`, in one of `roles` (any role when None)."""
    members = Membership.objects.filter(user=user, organisation=organisation)
    if roles is not None:
        members = members.filter(role__in=list(roles))
    return members.exists()


def is_admin_member(user: User, organisation: Organisation) -> bool:
    """Whether `user` is an admin of `organisation`."""
    return is_member(user, organisation, [Membership.Role.ADMIN])


def require_admin_member(user: User, organisation: Organisation, *, refusal: str) -> None:
    """PermissionDenied(`refusal`) unless `user` is an admin of `organisation`."""
    if not is_admin_member(user, organisation):
        raise PermissionDenied(refusal)


def require_owner_admin(user: User, owner: Organisation, *, refusal: str) -> None:
    """PermissionDenied(`refusal`) unless `owner` is a resource owner and `user` its admin."""
    if not owner.is_owner or not is_admin_member(user, owner):
        raise PermissionDenied(refusal)
