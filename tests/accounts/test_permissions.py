"""The tenancy helpers other apps build on: decorator, mixin and current-organisation reads."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.views import View

from accounts import selectors
from accounts.middleware import CurrentOrganisationMiddleware
from accounts.models import Organisation, User
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    MfaRule,
    OrganisationMemberRequiredMixin,
    organisation_member_required,
    organisation_of_kind,
    step_up,
    step_up_confirmed,
)

pytestmark = pytest.mark.django_db


def request_as(user: object, path: str = "/x/") -> HttpRequest:
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore

    request = RequestFactory().get(path)
    request.user = user or AnonymousUser()
    request.session = SessionStore()
    CurrentOrganisationMiddleware(lambda r: HttpResponse())(request)
    return request


@organisation_member_required(roles=[ADMIN, AUDITOR])
def owner_side_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(selectors.current_organisation(request).name)


@organisation_member_required
def any_member_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(selectors.current_membership(request).role)


class AdminOnlyView(OrganisationMemberRequiredMixin, View):
    required_roles = (ADMIN,)

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")


def test_decorator_lets_listed_roles_in(auditor: User, company_a: Organisation) -> None:
    response = owner_side_view(request_as(auditor))
    assert response.content == b"Company A"


def test_decorator_refuses_other_roles_with_403(partner_staff: User) -> None:
    with pytest.raises(PermissionDenied):
        owner_side_view(request_as(partner_staff))


def test_decorator_without_roles_admits_any_member(partner_staff: User) -> None:
    assert any_member_view(request_as(partner_staff)).content == b"staff"


def test_decorator_sends_anonymous_people_to_sign_in() -> None:
    response = any_member_view(request_as(None, "/somewhere/"))
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/somewhere/"


def test_decorator_sends_people_without_organisation_to_the_explanation(
    company_a: Organisation,
) -> None:
    from tests.factories import UserFactory

    response = any_member_view(request_as(UserFactory()))
    assert response.status_code == 302
    assert response["Location"] == "/organisation/none/"


def test_mixin(owner_admin: User, auditor: User) -> None:
    view: Callable = AdminOnlyView.as_view()
    assert view(request_as(owner_admin)).content == b"ok"
    with pytest.raises(PermissionDenied):
        view(request_as(auditor))


def test_selectors_read_what_the_middleware_set(auditor: User, company_a: Organisation) -> None:
    request = request_as(auditor)
    assert selectors.current_organisation(request) == company_a
    assert selectors.current_membership(request).role == "auditor"
    assert [m.organisation for m in request.memberships] == [company_a]
    assert selectors.current_organisation(request_as(None)) is None


@pytest.mark.parametrize("bad", ["", "x", "1" * 300, None, "00000000-0000-4000-8000-000000000000"])
def test_selectors_answer_404_for_malformed_and_missing_ids(
    company_a: Organisation, bad: object
) -> None:
    from django.http import Http404

    with pytest.raises(Http404):
        selectors.membership_get_for_organisation(organisation=company_a, membership_id=bad)
    with pytest.raises(Http404):
        selectors.invitation_get_for_organisation(organisation=company_a, invitation_id=bad)


def post_as(user: User) -> HttpRequest:
    from django.contrib.sessions.backends.db import SessionStore

    request = RequestFactory().post("/act/", {"reason": "why"})
    request.user = user
    request.session = SessionStore()
    CurrentOrganisationMiddleware(lambda r: HttpResponse())(request)
    return request


def test_step_up_without_a_recent_sign_in_asks_for_the_password_and_keeps_the_post(
    owner_admin: User, settings
) -> None:
    settings.PORTAL_REQUIRE_MFA = False
    confirmation = step_up(post_as(owner_admin))
    assert confirmation.response is not None
    assert confirmation.response["Location"] == "/accounts/reauthenticate/?next=%2Fact%2F"


def test_step_up_after_a_recent_password_sign_in_lets_the_action_through(
    owner_admin: User, settings
) -> None:
    from allauth.account.internal.flows.login import record_authentication

    settings.PORTAL_REQUIRE_MFA = False
    request = post_as(owner_admin)
    record_authentication(request, owner_admin, method="password")
    confirmation = step_up(request)
    assert confirmation.response is None and confirmation.with_mfa is False


def test_step_up_when_the_portal_requires_mfa_refuses_someone_without_an_authenticator(
    auditor: User, settings
) -> None:
    from allauth.account.internal.flows.login import record_authentication

    settings.PORTAL_REQUIRE_MFA = True
    request = post_as(auditor)
    record_authentication(request, auditor, method="password")
    with pytest.raises(PermissionDenied, match="two-factor"):
        step_up(request)
    # Revealing one's own credentials asks for MFA only of people who have it.
    assert step_up(request, rule=MfaRule.ENROLLED).response is None


def test_step_up_confirmed_by_mfa_says_so(owner_admin: User, settings) -> None:
    from allauth.account.internal.flows.login import record_authentication

    settings.PORTAL_REQUIRE_MFA = True
    request = post_as(owner_admin)
    record_authentication(request, owner_admin, method="mfa")
    confirmation = step_up(request)
    assert confirmation.response is None and confirmation.with_mfa is True


@pytest.mark.parametrize(
    ("method", "confirmed", "reads"), [(None, False, 0), ("password", False, 1), ("mfa", True, 0)]
)
def test_revealing_a_secret_asks_an_enrolled_person_for_mfa_reading_only_when_it_must(
    owner_admin: User,
    django_assert_num_queries: Any,
    method: str | None,
    confirmed: bool,
    reads: int,
) -> None:
    from allauth.account.internal.flows.login import record_authentication

    request = post_as(owner_admin)
    if method:
        record_authentication(request, owner_admin, method=method)
    # Only a password-only sign-in needs to know whether the person has an authenticator.
    with django_assert_num_queries(reads):
        assert step_up_confirmed(request, rule=MfaRule.ENROLLED) is confirmed


def test_organisation_of_kind_refuses_the_other_kind_with_the_reason_given(
    partner_admin: User,
) -> None:
    request = request_as(partner_admin)
    assert organisation_of_kind(request, Organisation.Kind.PARTNER, refusal="x").is_partner
    with pytest.raises(PermissionDenied, match="Only owners do this"):
        organisation_of_kind(request, Organisation.Kind.OWNER, refusal="Only owners do this.")
