"""A quorum must be reachable by the people who could really decide each request for the
role: the members of the groups attached to the role *or to the requesting partner* (any owner
admin when none is), never someone who belongs to that partner. A rule, or a change of the
groups, that leaves a role's requests from some partner with fewer possible approvers than its
quorum would leave those requests waiting for ever, so it is refused and nothing is saved."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from delegations.approvals import four_eyes
from delegations.approvals.services import (
    approval_rule_set,
    approver_group_create,
    approver_group_delete,
    approver_group_update,
)
from delegations.lifecycle.services import delegation_approve
from delegations.models import (
    ApprovalRule,
    ApproverGroup,
    CatalogRole,
    Delegation,
    PartnerAllowance,
    RuleProposal,
)
from tests.delegations.lifecycle.test_views import with_mfa
from tests.personas import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def allowance_b(company_a: Organisation, allow_b: None) -> PartnerAllowance:
    return PartnerAllowance.objects.get(organisation=company_a)


def b_group(owner: Organisation, by: User, allowance: PartnerAllowance, *members: User):
    return approver_group_create(
        owner=owner,
        created_by=by,
        name="Company B approvers",
        members=list(members),
        partner_allowances=[allowance],
    )


def test_a_quorum_the_partners_group_cannot_meet_is_refused(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
) -> None:
    # Two owner admins, but only one of them decides company B's requests.
    b_group(company_a, owner_admin, allowance_b, owner_admin)
    with pytest.raises(ValidationError) as refused:
        approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    message = " ".join(refused.value.messages)
    assert "could never be reached" in message
    assert "Company B" in message and allowance_b.partner_account_uid in message
    assert "approvals_required" in refused.value.error_dict
    assert not ApprovalRule.objects.exists()


def test_the_same_quorum_is_refused_as_a_four_eyes_proposal(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
) -> None:
    b_group(company_a, owner_admin, allowance_b, owner_admin)
    four_eyes.four_eyes_set(owner=company_a, user=owner_admin, on=True)
    with pytest.raises(ValidationError, match="could never be reached"):
        four_eyes.approval_rule_set_or_propose(
            catalog_role=ecs_admin,
            user=owner_admin,
            approvals_required=2,
            auto_approve_max_hours=None,
        )
    assert not RuleProposal.objects.exists()


def test_a_partner_group_that_would_leave_a_quorum_unmeetable_is_refused(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
) -> None:
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    with pytest.raises(ValidationError) as refused:
        b_group(company_a, owner_admin, allowance_b, owner_admin)
    message = " ".join(refused.value.messages)
    assert "ecs-admin" in message and "quorum of 2" in message
    assert not ApproverGroup.objects.exists()
    # With both admins in it, the group leaves the quorum reachable.
    group = b_group(company_a, owner_admin, allowance_b, owner_admin, owner_admin_2)
    # Taking one out again is refused, and so is deleting the group when it is the one that
    # keeps enough people on company B's requests.
    with pytest.raises(ValidationError, match="quorum of 2"):
        approver_group_update(
            group=group,
            updated_by=owner_admin,
            name=group.name,
            members=[owner_admin],
            partner_allowances=[allowance_b],
        )
    assert set(ApproverGroup.objects.get().members.all()) == {owner_admin, owner_admin_2}


def test_deleting_a_group_that_keeps_a_quorum_reachable_is_refused(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
) -> None:
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    b_group(company_a, owner_admin, allowance_b, owner_admin, owner_admin_2)
    second = approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="Company B night shift",
        members=[owner_admin_2],
        partner_allowances=[allowance_b],
    )
    first = ApproverGroup.objects.get(name="Company B approvers")
    # Without the first group only owner_admin_2 would decide company B's requests.
    with pytest.raises(ValidationError, match="quorum of 2"):
        approver_group_delete(group=first, deleted_by=owner_admin)
    four_eyes.four_eyes_set(owner=company_a, user=owner_admin, on=True)
    with pytest.raises(ValidationError, match="quorum of 2"):
        four_eyes.approver_group_delete_or_propose(group=first, user=owner_admin)
    assert not RuleProposal.objects.filter(kind=RuleProposal.Kind.GROUP_DELETE).exists()
    # The second group may go: the first still names both admins.
    assert four_eyes.approver_group_delete_or_propose(group=second, user=owner_admin) is not None
    assert ApproverGroup.objects.count() == 2


def test_an_owner_admin_who_belongs_to_the_partner_is_not_counted(
    company_a: Organisation,
    company_b: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allow_b: None,
) -> None:
    # owner_admin_2 is also a member of company B: never a decider of its requests.
    Membership.objects.create(
        user=owner_admin_2, organisation=company_b, role=Membership.Role.STAFF
    )
    with pytest.raises(ValidationError, match="could never be reached"):
        approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)


def test_a_change_that_does_not_make_it_worse_is_not_refused(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
) -> None:
    """A group already short of a quorum (set before this check existed) may still be
    renamed or given more people: only changes that take possible approvers away are
    refused."""
    group = b_group(company_a, owner_admin, allowance_b, owner_admin)
    ApprovalRule.objects.create(catalog_role=ecs_admin, approvals_required=3)
    third = make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    approver_group_update(
        group=group,
        updated_by=owner_admin,
        name="Company B deciders",
        members=[owner_admin, third],
        partner_allowances=[allowance_b],
    )
    assert ApproverGroup.objects.get().name == "Company B deciders"


def test_a_reachable_quorum_with_partner_groups_is_accepted_and_decided(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
    requested: Delegation,
) -> None:
    b_group(company_a, owner_admin, allowance_b, owner_admin, owner_admin_2)
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    first = delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    assert first.status == Delegation.Status.REQUESTED
    second = delegation_approve(delegation=requested, approved_by=owner_admin_2, with_mfa=True)
    assert second.status == Delegation.Status.APPROVED


# --- the approval-rules page -----------------------------------------------------------------


def test_the_page_tells_why_a_quorum_or_a_group_change_is_refused(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
    login,
) -> None:
    client = with_mfa(login(owner_admin), owner_admin)
    group = b_group(company_a, owner_admin, allowance_b, owner_admin)
    response = client.post(
        reverse("delegations:approval_quorum_set", args=[ecs_admin.pk]),
        {f"{ecs_admin.pk}-approvals_required": "2"},
    )
    assert response.status_code == 400
    assert "could never be reached" in response.content.decode()
    assert not ApprovalRule.objects.exists()

    group.members.add(owner_admin_2)
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    response = client.post(
        reverse("delegations:approver_group_edit", args=[group.pk]),
        {"name": group.name, "members": [owner_admin.pk], "partner_allowances": [allowance_b.pk]},
    )
    assert response.status_code == 400
    assert "quorum of 2" in response.content.decode()
    # Deleting a group that keeps the quorum reachable is told as a message, not an error.
    other = approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="Company B night shift",
        members=[owner_admin_2],
        partner_allowances=[allowance_b],
    )
    assert other.pk
    response = client.post(
        reverse("delegations:approver_group_delete", args=[group.pk]), follow=True
    )
    assert response.status_code == 200
    assert "quorum of 2" in response.content.decode()
    assert ApproverGroup.objects.filter(pk=group.pk).exists()
