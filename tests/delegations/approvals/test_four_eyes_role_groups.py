"""Four eyes on a catalogue role that an approver group governs: the second admin who approves
a change of the role must be one of the group's members, as deciding its requests needs; any
other owner admin is refused, on the record, and the proposal waits."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.four_eyes import four_eyes_set, rule_proposal_approve
from delegations.approvals.services import approver_group_create
from delegations.catalog.proposals import catalog_role_deactivate_or_propose
from delegations.models import CatalogRole, RuleProposal
from tests.personas import make_member

pytestmark = pytest.mark.django_db


def _governed_by_a_group(
    company_a: Organisation, ecs_admin: CatalogRole, owner_admin: User
) -> User:
    """Attach an approver group of one new admin (returned) to the role; four eyes on."""
    member = make_member(company_a, Membership.Role.ADMIN, email="ecs-approver@company-a.example")
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[member],
        catalog_roles=[ecs_admin],
    )
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    return member


def test_only_the_roles_approver_group_confirms_a_change_of_it(
    company_a: Organisation, ecs_admin: CatalogRole, owner_admin: User, owner_admin_2: User
) -> None:
    member = _governed_by_a_group(company_a, ecs_admin, owner_admin)
    proposal = catalog_role_deactivate_or_propose(catalog_role=ecs_admin, user=owner_admin)
    assert isinstance(proposal, RuleProposal)

    with pytest.raises(PermissionDenied, match="ECS approvers"):
        rule_proposal_approve(proposal=proposal, approved_by=owner_admin_2)
    assert RuleProposal.objects.get(pk=proposal.pk).status == RuleProposal.Status.PENDING
    assert CatalogRole.objects.get(pk=ecs_admin.pk).is_active
    [denied] = AuditEvent.objects.filter(action="rule_proposal.denied")
    assert (
        denied.actor_id == owner_admin_2.pk and "ECS approvers" in denied.metadata["denied_because"]
    )

    rule_proposal_approve(proposal=proposal, approved_by=member)
    assert not CatalogRole.objects.get(pk=ecs_admin.pk).is_active


def test_without_a_group_on_the_role_any_other_admin_confirms(
    company_a: Organisation, ecs_admin: CatalogRole, owner_admin: User, owner_admin_2: User
) -> None:
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    proposal = catalog_role_deactivate_or_propose(catalog_role=ecs_admin, user=owner_admin)
    rule_proposal_approve(proposal=proposal, approved_by=owner_admin_2)
    assert not CatalogRole.objects.get(pk=ecs_admin.pk).is_active


def test_the_rules_page_offers_approve_only_to_those_who_may_approve(
    company_a: Organisation, ecs_admin: CatalogRole, owner_admin: User, owner_admin_2: User, login
) -> None:
    member = _governed_by_a_group(company_a, ecs_admin, owner_admin)
    catalog_role_deactivate_or_propose(catalog_role=ecs_admin, user=owner_admin)
    page_url = reverse("delegations:approval_rules")

    outside = login(owner_admin_2).get(page_url).content.decode()
    assert 'data-testid="approve-proposal"' not in outside
    assert 'data-testid="reject-proposal"' in outside
    assert "Only members of ECS approvers" in outside
    assert member.email in outside  # who may approve instead

    author = login(owner_admin).get(page_url).content.decode()
    assert 'data-testid="approve-proposal"' not in author
    assert member.email in author  # the author is told who may approve it

    inside = login(member).get(page_url).content.decode()
    assert 'data-testid="approve-proposal"' in inside
    assert 'data-testid="proposal-deciders"' not in inside
