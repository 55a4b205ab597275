"""Four eyes on where a catalogue role is offered: with the owner's setting on, offering a
role in other cloud accounts (every connected one, or those ticked) is a proposal with a diff
that a second owner admin approves, like every other change of the catalogue; the page
proposes instead of changing, and a proposal whose role changed since is outdated."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts.models import Organisation, User
from delegations.approvals.four_eyes import four_eyes_set, rule_proposal_approve
from delegations.catalog.proposals import catalog_role_set_accounts_or_propose
from delegations.catalog.services import catalog_role_set_accounts
from delegations.models import CatalogRole, CloudAccount, RuleProposal
from tests.delegations.factories import CloudAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_account(company_a: Organisation) -> CloudAccount:
    return CloudAccountFactory(
        organisation=company_a, account_uid="55667788", alias="company-a-ops", is_primary=False
    )


def test_the_page_proposes_with_four_eyes_on(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    second_account: CloudAccount,
    owner_admin: User,
    owner_admin_2: User,
    login,
) -> None:
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    url = reverse("delegations:catalog_role_accounts", args=[ecs_admin.pk])
    response = login(owner_admin).post(url, {"accounts": [str(second_account.pk)]}, follow=True)
    assert response.status_code == 200
    assert "a second admin must approve it" in response.content.decode()
    role = CatalogRole.objects.get(pk=ecs_admin.pk)
    assert not role.extra_accounts.exists() and not role.offered_in_all_accounts
    proposal = RuleProposal.objects.get()
    assert proposal.kind == RuleProposal.Kind.CATALOG_ROLE_SET_ACCOUNTS
    assert proposal.before["extra_accounts"] == []
    assert proposal.after["extra_accounts"] == [second_account.account_uid]

    with pytest.raises(PermissionDenied):
        rule_proposal_approve(proposal=proposal, approved_by=owner_admin)
    rule_proposal_approve(proposal=proposal, approved_by=owner_admin_2)
    assert list(CatalogRole.objects.get(pk=ecs_admin.pk).extra_accounts.all()) == [second_account]


def test_a_proposal_for_a_role_offered_elsewhere_since_is_outdated(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    second_account: CloudAccount,
    owner_admin: User,
    owner_admin_2: User,
) -> None:
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    proposal = catalog_role_set_accounts_or_propose(
        catalog_role=ecs_admin, user=owner_admin, all_accounts=True
    )
    assert isinstance(proposal, RuleProposal)
    catalog_role_set_accounts(
        catalog_role=ecs_admin,
        changed_by=owner_admin,
        accounts=[second_account],
        all_accounts=False,
    )
    with pytest.raises(ValidationError, match="changed since"):
        rule_proposal_approve(proposal=proposal, approved_by=owner_admin_2)
    assert not CatalogRole.objects.get(pk=ecs_admin.pk).offered_in_all_accounts


def test_without_four_eyes_it_applies_at_once(
    ecs_admin: CatalogRole, second_account: CloudAccount, owner_admin: User
) -> None:
    role = catalog_role_set_accounts_or_propose(
        catalog_role=ecs_admin, user=owner_admin, all_accounts=True
    )
    assert isinstance(role, CatalogRole) and role.offered_in_all_accounts
    assert not RuleProposal.objects.exists()
