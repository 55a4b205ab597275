"""Marking an emergency role is a grant made ahead of time: its activations get no approval,
so marking one needs what approving a request of that role from that partner needs (an owner
admin outside the partner, in the approver groups attached to the role or the partner), with
four eyes on or off. The refusal saves nothing and is on the record."""

from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.four_eyes import four_eyes_set, rule_proposal_approve
from delegations.approvals.services import approver_group_create, approver_group_update
from delegations.breakglass.proposals import break_glass_role_set_or_propose
from delegations.breakglass.services import break_glass_role_set
from delegations.models import (
    ApproverGroup,
    BreakGlassRole,
    CatalogRole,
    PartnerAllowance,
    RuleProposal,
)
from tests.delegations.lifecycle.test_views import with_mfa
from tests.personas import make_member

pytestmark = pytest.mark.django_db


def mark(
    owner: Organisation, user: User, role: CatalogRole, partner: Organisation, person: User
) -> BreakGlassRole:
    return break_glass_role_set(
        owner=owner, set_by=user, catalog_role=role, partner=partner, people=[person], max_hours=4
    )


def group(owner: Organisation, admin: User, member: User, **attached: object) -> ApproverGroup:
    return approver_group_create(
        owner=owner,
        created_by=admin,
        name="ECS approvers",
        members=[member],
        **attached,  # type: ignore[arg-type]
    )


def test_an_owner_admin_outside_the_roles_approver_group_cannot_mark_it(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    group(company_a, owner_admin, owner_admin_2, catalog_roles=[ecs_admin])

    with pytest.raises(PermissionDenied) as refused:
        mark(company_a, owner_admin, ecs_admin, company_b, partner_staff)

    assert "ECS approvers" in str(refused.value)
    assert not BreakGlassRole.objects.exists()
    denied = AuditEvent.objects.get(action="break_glass.role_set_denied")
    assert denied.outcome == AuditEvent.Outcome.DENIED and denied.actor_id == owner_admin.pk
    # A member of the group may.
    assert mark(company_a, owner_admin_2, ecs_admin, company_b, partner_staff).is_active


def test_a_group_attached_to_the_partner_decides_its_emergency_roles_too(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    allowance = PartnerAllowance.objects.get(organisation=company_a)
    group(company_a, owner_admin, owner_admin_2, partner_allowances=[allowance])

    with pytest.raises(PermissionDenied):
        mark(company_a, owner_admin, ecs_admin, company_b, partner_staff)
    assert not BreakGlassRole.objects.exists()


def test_an_owner_admin_who_is_also_of_the_partner_cannot_mark_its_roles(
    company_a: Organisation,
    company_b: Organisation,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    both = make_member(company_a, Membership.Role.ADMIN, email="both@company-a.example")
    Membership.objects.create(user=both, organisation=company_b, role=Membership.Role.STAFF)

    with pytest.raises(PermissionDenied):
        mark(company_a, both, ecs_admin, company_b, partner_staff)
    assert not BreakGlassRole.objects.exists()


def test_with_four_eyes_only_a_member_of_the_group_proposes_a_marking(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    group(company_a, owner_admin, owner_admin_2, catalog_roles=[ecs_admin])
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    arguments = {
        "owner": company_a,
        "catalog_role": ecs_admin,
        "partner": company_b,
        "people": [partner_staff],
        "max_hours": 4,
    }

    with pytest.raises(PermissionDenied):
        break_glass_role_set_or_propose(user=owner_admin, **arguments)  # type: ignore[arg-type]
    assert not RuleProposal.objects.exists()

    proposal = break_glass_role_set_or_propose(user=owner_admin_2, **arguments)  # type: ignore[arg-type]
    assert isinstance(proposal, RuleProposal)
    rule_proposal_approve(proposal=proposal, approved_by=owner_admin)
    assert BreakGlassRole.objects.get().is_active


def test_a_proposal_whose_author_left_the_group_since_is_outdated(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    third = make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    approvers = group(company_a, owner_admin, owner_admin_2, catalog_roles=[ecs_admin])
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    proposal = break_glass_role_set_or_propose(
        owner=company_a,
        user=owner_admin_2,
        catalog_role=ecs_admin,
        partner=company_b,
        people=[partner_staff],
        max_hours=4,
    )
    assert isinstance(proposal, RuleProposal)
    # The group changes (directly, as the proposal machinery itself would apply it).
    approver_group_update(
        group=approvers,
        updated_by=owner_admin,
        name="ECS approvers",
        members=[third],
        catalog_roles=[ecs_admin],
        partner_allowances=[],
    )

    with pytest.raises(ValidationError):
        rule_proposal_approve(proposal=proposal, approved_by=owner_admin)

    assert not BreakGlassRole.objects.exists()
    assert RuleProposal.objects.get(pk=proposal.pk).status == RuleProposal.Status.OUTDATED


def test_the_page_tells_an_admin_outside_the_group_why_and_saves_nothing(
    login: Callable[..., Client],
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    group(company_a, owner_admin, owner_admin_2, catalog_roles=[ecs_admin])
    client = with_mfa(login(owner_admin), owner_admin)
    data = {
        "catalog_role": ecs_admin.pk,
        "partner": company_b.pk,
        "people": [partner_staff.pk],
        "max_hours": 4,
    }

    response = client.post(reverse("delegations:break_glass_role_set"), data, follow=True)

    assert response.status_code == 200
    assert "ECS approvers" in response.content.decode()
    assert not BreakGlassRole.objects.exists()
