"""Four eyes on approval-rule changes: with it on, changes are proposals with a diff that a
second owner admin approves; the author cannot; nobody turns it off alone."""

from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from accounts.models import Organisation, User
from audit.models import AuditEvent
from delegations.approvals.four_eyes import (
    approval_rule_set_or_propose,
    approver_group_create_or_propose,
    four_eyes_on,
    four_eyes_set,
    rule_proposal_approve,
    rule_proposal_reject,
)
from delegations.models import ApprovalRule, ApproverGroup, CatalogRole, RuleProposal
from tests.delegations.lifecycle.test_views import with_mfa

pytestmark = pytest.mark.django_db


@pytest.fixture
def on(company_a: Organisation, owner_admin: User) -> None:
    four_eyes_set(owner=company_a, user=owner_admin, on=True)


def test_without_four_eyes_changes_apply_at_once(
    company_a: Organisation, owner_admin: User
) -> None:
    group = approver_group_create_or_propose(
        owner=company_a,
        user=owner_admin,
        name="Ops",
        members=[owner_admin],
        catalog_roles=[],
        partner_allowances=[],
    )
    assert isinstance(group, ApproverGroup)


def test_a_proposal_takes_effect_only_when_a_second_admin_approves(
    on: None,
    company_a: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    ecs_admin: CatalogRole,
) -> None:
    proposal = approval_rule_set_or_propose(
        catalog_role=ecs_admin, user=owner_admin, approvals_required=2, auto_approve_max_hours=None
    )
    assert isinstance(proposal, RuleProposal)
    assert proposal.before["approvals_required"] == 1 and proposal.after["approvals_required"] == 2
    assert not ApprovalRule.objects.exists()
    with pytest.raises(PermissionDenied, match="second admin"):
        rule_proposal_approve(proposal=proposal, approved_by=owner_admin)
    assert AuditEvent.objects.filter(action="rule_proposal.denied", outcome="denied").exists()
    rule_proposal_approve(proposal=proposal, approved_by=owner_admin_2)
    assert ApprovalRule.objects.get(catalog_role=ecs_admin).approvals_required == 2
    with pytest.raises(ValidationError, match="already decided"):
        rule_proposal_approve(proposal=proposal, approved_by=owner_admin_2)


def test_bad_proposals_are_form_errors_and_save_nothing(
    on: None, company_a: Organisation, owner_admin: User, ecs_admin: CatalogRole
) -> None:
    with pytest.raises(ValidationError):
        approval_rule_set_or_propose(
            catalog_role=ecs_admin,
            user=owner_admin,
            approvals_required=6,
            auto_approve_max_hours=None,
        )
    with pytest.raises(ValidationError):
        approver_group_create_or_propose(
            owner=company_a,
            user=owner_admin,
            name="",
            members=[],
            catalog_roles=[],
            partner_allowances=[],
        )
    assert not RuleProposal.objects.exists()


def test_nobody_turns_four_eyes_off_alone(
    on: None, company_a: Organisation, owner_admin: User, owner_admin_2: User
) -> None:
    proposal = four_eyes_set(owner=company_a, user=owner_admin, on=False)
    assert isinstance(proposal, RuleProposal)
    assert four_eyes_on(owner=company_a)
    rule_proposal_reject(proposal=proposal, rejected_by=owner_admin_2, reason="Keep it")
    assert four_eyes_on(owner=company_a)
    again = four_eyes_set(owner=company_a, user=owner_admin_2, on=False)
    rule_proposal_approve(proposal=again, approved_by=owner_admin)
    assert not four_eyes_on(owner=company_a)


def test_the_page_shows_the_diff_and_the_second_admin_approves(
    on: None,
    login: Callable[..., Client],
    owner_admin: User,
    owner_admin_2: User,
    ecs_admin: CatalogRole,
    foreign_owner_admin: User,
) -> None:
    first = with_mfa(login(owner_admin), owner_admin)
    field = f"{ecs_admin.pk}-approvals_required"
    response = first.post(
        reverse("delegations:approval_quorum_set", args=[ecs_admin.pk]), {field: "2"}, follow=True
    )
    assert "second admin must approve" in response.content.decode()
    proposal = RuleProposal.objects.get()
    page = first.get(reverse("delegations:approval_rules")).content.decode()
    assert "approvals_required: 1" in page and "approvals_required: 2" in page
    assert 'data-testid="approve-proposal"' not in page  # the author cannot
    decide = reverse("delegations:rule_proposal_decide", args=[proposal.pk])
    foreign = with_mfa(login(foreign_owner_admin), foreign_owner_admin)
    assert foreign.post(decide, {"approve": "1"}).status_code == 404
    assert first.post(decide, {"approve": "1"}).status_code == 302
    assert not ApprovalRule.objects.exists()
    second = with_mfa(login(owner_admin_2), owner_admin_2)
    assert second.post(decide, {"approve": "1"}).status_code == 302
    assert ApprovalRule.objects.get(catalog_role=ecs_admin).approvals_required == 2
