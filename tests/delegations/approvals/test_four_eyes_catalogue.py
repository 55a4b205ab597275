"""Four eyes on the catalogue, the allow-list and break-glass marking (issue 14, item 3): with
the owner's setting on, each change is a proposal with a diff that a second owner admin
approves before it takes effect; its author approving it is refused and audited."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.four_eyes import four_eyes_set, rule_proposal_approve
from delegations.breakglass.proposals import (
    break_glass_role_remove_or_propose,
    break_glass_role_set_or_propose,
)
from delegations.catalog.proposals import (
    catalog_role_update_or_propose,
    partner_allowance_add_or_propose,
    partner_allowance_remove_or_propose,
)
from delegations.models import (
    BreakGlassRole,
    CatalogRole,
    PartnerAllowance,
    RuleProposal,
)
from tests.delegations.lifecycle.test_views import with_mfa
from tests.fixtures.worker import OwnerWorld
from tests.personas import make_member

pytestmark = pytest.mark.django_db
Kind = RuleProposal.Kind


def _refused_for_author(proposal: RuleProposal) -> None:
    with pytest.raises(PermissionDenied):
        rule_proposal_approve(proposal=proposal, approved_by=proposal.proposed_by)
    denied = AuditEvent.objects.filter(
        action="rule_proposal.denied", target_id=str(proposal.pk)
    ).get()
    assert denied.outcome == AuditEvent.Outcome.DENIED
    assert RuleProposal.objects.get(pk=proposal.pk).status == RuleProposal.Status.PENDING


def test_a_catalogue_role_edit_waits_for_a_second_admin(owner_world: OwnerWorld) -> None:
    world = owner_world
    second = make_member(world.organisation, Membership.Role.ADMIN)
    four_eyes_set(owner=world.organisation, user=world.admin, on=True)
    role = world.catalog_role

    proposal = catalog_role_update_or_propose(
        catalog_role=role,
        user=world.admin,
        description="Operate ECS, read-only",
        policy_keys=[("System", "AliyunECSReadOnlyAccess")],
        max_session_duration=7200,
        keep_role_when_empty=False,
    )

    assert isinstance(proposal, RuleProposal) and proposal.kind == Kind.CATALOG_ROLE_UPDATE
    assert proposal.before["policies"] == ["System:AliyunECSFullAccess"]
    assert proposal.after["policies"] == ["System:AliyunECSReadOnlyAccess"]
    assert proposal.after["max_session_duration"] == 7200
    unchanged = CatalogRole.objects.get(pk=role.pk)
    assert unchanged.policies == role.policies and unchanged.max_session_duration == 3600
    _refused_for_author(proposal)

    rule_proposal_approve(proposal=proposal, approved_by=second)

    changed = CatalogRole.objects.get(pk=role.pk)
    assert changed.policies == [{"type": "System", "name": "AliyunECSReadOnlyAccess"}]
    assert changed.max_session_duration == 7200
    updated = AuditEvent.objects.get(action="catalog_role.updated")
    assert updated.actor_id == world.admin.pk  # made as its author, approved by the second
    approved = AuditEvent.objects.get(action="rule_proposal.approved")
    assert approved.actor_id == second.pk
    assert approved.metadata["proposed_by"] == str(world.admin.pk)


def test_allow_list_changes_are_proposals(
    company_a: Organisation, owner_admin: User, owner_admin_2: User
) -> None:
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    added = partner_allowance_add_or_propose(
        owner=company_a, user=owner_admin, partner_account_uid="5555666677778888", label="New"
    )
    assert isinstance(added, RuleProposal) and added.after["partner_account_uid"] == (
        "5555666677778888"
    )
    assert not PartnerAllowance.objects.exists()
    _refused_for_author(added)
    rule_proposal_approve(proposal=added, approved_by=owner_admin_2)
    allowance = PartnerAllowance.objects.get()
    assert allowance.partner_account_uid == "5555666677778888"

    removal = partner_allowance_remove_or_propose(allowance=allowance, user=owner_admin_2)
    assert isinstance(removal, RuleProposal) and removal.kind == Kind.ALLOWANCE_REMOVE
    assert PartnerAllowance.objects.exists()
    rule_proposal_approve(proposal=removal, approved_by=owner_admin)
    assert not PartnerAllowance.objects.exists()


def test_bad_allow_list_input_is_refused_before_any_proposal(
    company_a: Organisation, owner_admin: User
) -> None:
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    with pytest.raises(ValidationError):
        partner_allowance_add_or_propose(
            owner=company_a, user=owner_admin, partner_account_uid="not-a-uid"
        )
    assert not RuleProposal.objects.exists()


def test_break_glass_marking_is_a_proposal(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    proposal = break_glass_role_set_or_propose(
        owner=company_a,
        user=owner_admin,
        catalog_role=ecs_admin,
        partner=company_b,
        people=[partner_staff],
        max_hours=6,
    )
    assert isinstance(proposal, RuleProposal) and proposal.after["max_hours"] == 6
    assert not BreakGlassRole.objects.exists()
    _refused_for_author(proposal)
    rule_proposal_approve(proposal=proposal, approved_by=owner_admin_2)
    marking = BreakGlassRole.objects.get()
    assert marking.max_hours == 6 and list(marking.people.all()) == [partner_staff]

    removal = break_glass_role_remove_or_propose(marking=marking, user=owner_admin_2)
    assert isinstance(removal, RuleProposal)
    assert BreakGlassRole.objects.get().is_active
    rule_proposal_approve(proposal=removal, approved_by=owner_admin)
    assert not BreakGlassRole.objects.get().is_active


def test_the_allow_list_form_proposes_with_four_eyes_on(
    login, company_a: Organisation, owner_admin: User
) -> None:
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    client: Client = with_mfa(login(owner_admin), owner_admin)
    response = client.post(
        reverse("delegations:allowance_add"),
        {"partner_account_uid": "5555666677778888", "label": "New"},
    )
    assert response.status_code == 302
    assert not PartnerAllowance.objects.exists()
    assert RuleProposal.objects.get().kind == Kind.ALLOWANCE_ADD
