"""The Overview starts with what waits for this person, counted in the navigation; each item
links to the page that acts on it; the empty state says so; pages without a user still
render."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from delegations.inbox.context_processors import inbox
from delegations.models import Delegation
from tests.delegations.factories import CloudAccountFactory, DelegationFactory
from tests.delegations.fleet.test_services import (  # noqa: F401 - fixtures
    all_accounts,
    fleet_role,
    make_fleet,
    members,
    staging_accounts,
)

pytestmark = pytest.mark.django_db


def test_the_owner_s_overview_starts_with_the_request_to_decide(
    login: Any, owner_admin: User, requested: Delegation
) -> None:
    page = login(owner_admin).get(reverse("accounts:home")).content.decode()
    assert 'data-testid="inbox-count"' in page
    uid = requested.managed_role.cloud_account.account_uid
    assert f"Decide: ecs-admin ({uid}) · Company B" in page
    assert reverse("delegations:detail", args=[requested.pk]) in page
    assert page.index("Waiting for you") < page.index("Organisation</h2>")


def test_a_failed_apply_is_an_item_to_retry(
    login: Any, owner_admin: User, requested: Delegation
) -> None:
    Delegation.objects.filter(pk=requested.pk).update(status="failed", last_error_code="Throttling")
    page = login(owner_admin).get(reverse("accounts:home")).content.decode()
    uid = requested.managed_role.cloud_account.account_uid
    assert f"Failed to apply: ecs-admin ({uid}) · Company B" in page and "Throttling" in page


def test_the_partner_admin_is_asked_to_assign_people_to_ready_access(
    login: Any, partner_admin: User, ecs_admin: Any, company_b: Any
) -> None:
    delegation = DelegationFactory(
        catalog_role=ecs_admin, partner=company_b, status="active", activated_at=timezone.now()
    )
    page = login(partner_admin).get(reverse("accounts:home")).content.decode()
    assert "Assign people: ecs-admin" in page
    assert reverse("delegations:delegation_staff", args=[delegation.pk]) in page


def test_the_empty_state_says_nothing_waits(login: Any, owner_admin: User, company_a: Any) -> None:
    CloudAccountFactory(organisation=company_a)
    page = login(owner_admin).get(reverse("accounts:home")).content.decode()
    assert "Nothing waits for you" in page
    assert 'data-testid="inbox-count"' not in page


def test_other_organisations_requests_never_show(
    login: Any, foreign_owner_admin: User, requested: Delegation, company_c: Any
) -> None:
    CloudAccountFactory(organisation=company_c)
    page = login(foreign_owner_admin).get(reverse("accounts:home")).content.decode()
    assert "ecs-admin" not in page and "Nothing waits for you" in page


@pytest.mark.parametrize("admin", ["owner_admin", "partner_admin"])
def test_an_organisation_not_connected_yet_is_asked_to_connect_first(
    request: pytest.FixtureRequest, login: Any, admin: str
) -> None:
    """Before its cloud account is connected, an owner can grant nothing and a partner's staff
    can use nothing: that comes first, on both sides, until it is done."""
    user = request.getfixturevalue(admin)
    organisation = user.memberships.get().organisation
    page = login(user).get(reverse("accounts:home")).content.decode()
    assert "Connect your Alibaba Cloud account" in page
    assert organisation.account_uid in page
    assert page.index("Connect your Alibaba Cloud account") < page.index("Organisation</h2>")
    assert 'data-testid="inbox-count"' in page

    CloudAccountFactory(organisation=organisation)
    assert "Connect your Alibaba Cloud account" not in (
        login(user).get(reverse("accounts:home")).content.decode()
    )


def test_staff_are_not_asked_to_connect(login: Any, partner_staff: User) -> None:
    page = login(partner_staff).get(reverse("accounts:home")).content.decode()
    assert "Connect your Alibaba Cloud account" not in page


def test_the_context_processor_tolerates_requests_without_a_user() -> None:
    request = RequestFactory().get("/")
    assert inbox(request) == {"inbox": []}


def test_an_error_page_answers_without_counting_the_inbox(
    login: Any, owner_admin: User, requested: Delegation
) -> None:
    """A refusal or a missing page is drawn without the reads behind the navigation's count
    (a crawler probing pages it may not see costs the inbox nothing)."""
    client = login(owner_admin)
    assert 'data-testid="inbox-count"' in client.get(reverse("accounts:home")).content.decode()
    missing = client.get("/no/such/page/")
    assert missing.status_code == 404
    assert 'data-testid="inbox-count"' not in missing.content.decode()


def test_a_fleet_waiting_for_a_decision_is_one_item_for_the_fleet_page(
    login: Any,
    owner_admin: User,
    company_a: Any,
    make_fleet: Any,  # noqa: F811
) -> None:
    """A fleet's accounts are decided together on its page: one item says how many, not one
    identical line per account linking to pages that send the owner to the fleet."""
    grant = make_fleet()
    page = login(owner_admin).get(reverse("accounts:home")).content.decode()
    assert page.count("Decide: ecs-admin · Company B") == 1
    assert "A fleet grant: 4 accounts, decided together." in page
    assert reverse("delegations:fleet_detail", args=[grant.pk]) in page
    for member in members(grant):
        assert reverse("delegations:detail", args=[member.pk]) not in page


def test_each_item_names_the_owners_account_its_role_is_in(
    login: Any, owner_admin: User, partner_admin: User, requested: Delegation
) -> None:
    """A fleet puts one role name in several of the owner's accounts: two failed accounts,
    or two accesses nobody is assigned to, are two items that must not read the same."""
    from tests.delegations.factories import CloudAccountFactory, ManagedRoleFactory

    staging = CloudAccountFactory(
        organisation=requested.owner, account_uid="11223355", alias="", is_primary=False
    )
    elsewhere = DelegationFactory(
        catalog_role=requested.catalog_role,
        partner=requested.partner,
        managed_role=ManagedRoleFactory(cloud_account=staging, role_name="ecs-admin"),
    )
    home = requested.managed_role.cloud_account.account_uid
    Delegation.objects.filter(pk__in=[requested.pk, elsewhere.pk]).update(status="failed")
    page = login(owner_admin).get(reverse("accounts:home")).content.decode()
    assert f"Failed to apply: ecs-admin ({home}) · Company B" in page
    assert "Failed to apply: ecs-admin (11223355) · Company B" in page
    Delegation.objects.filter(pk__in=[requested.pk, elsewhere.pk]).update(
        status="active", activated_at=timezone.now()
    )
    page = login(partner_admin).get(reverse("accounts:home")).content.decode()
    assert f"Assign people: ecs-admin ({home}) from Company A" in page
    assert "Assign people: ecs-admin (11223355) from Company A" in page
