"""Four eyes and a rule that changed since the proposal: a proposal is written against its
target as it was then (the diff the second admin reads); approving it after that target
changed, or went, would apply a change nobody reviewed against what is in force now. It is
refused as outdated, on the record, and its author proposes it again (review findings)."""

from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.four_eyes import (
    approval_rule_set_or_propose,
    approver_group_delete_or_propose,
    approver_group_update_or_propose,
    four_eyes_set,
    rule_proposal_approve,
)
from delegations.approvals.services import approver_group_create
from delegations.breakglass.proposals import (
    break_glass_role_remove_or_propose,
    break_glass_role_set_or_propose,
)
from delegations.catalog.proposals import (
    catalog_role_update_or_propose,
    partner_allowance_remove_or_propose,
)
from delegations.models import (
    ApprovalRule,
    ApproverGroup,
    BreakGlassRole,
    CatalogRole,
    PartnerAllowance,
    RuleProposal,
)
from tests.delegations.lifecycle.test_views import with_mfa
from tests.fixtures.worker import OwnerWorld
from tests.personas import make_member

pytestmark = pytest.mark.django_db
Status = RuleProposal.Status
OUTDATED = "written against a rule that has changed since"


@pytest.fixture
def owner_admin_3(company_a: Organisation) -> User:
    return make_member(company_a, Membership.Role.ADMIN, email="third-admin@company-a.example")


@pytest.fixture
def group(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    owner_admin_3: User,
) -> ApproverGroup:
    created = approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin, owner_admin_2, owner_admin_3],
        catalog_roles=[ecs_admin],
    )
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    return created


def _refused_as_outdated(proposal: RuleProposal, *, by: User) -> None:
    with pytest.raises(ValidationError, match=OUTDATED):
        rule_proposal_approve(proposal=proposal, approved_by=by)
    refused = RuleProposal.objects.get(pk=proposal.pk)
    assert refused.status == Status.OUTDATED
    assert refused.decided_by == by and refused.decided_at is not None
    event = AuditEvent.objects.get(action="rule_proposal.outdated", target_id=str(proposal.pk))
    assert event.actor_id == by.pk and event.metadata["kind"] == proposal.kind
    assert not AuditEvent.objects.filter(
        action="rule_proposal.approved", target_id=str(proposal.pk)
    ).exists()


def _update(group: ApproverGroup, by: User, name: str, members: list[User]) -> RuleProposal:
    proposal = approver_group_update_or_propose(
        group=group,
        user=by,
        name=name,
        members=members,
        catalog_roles=list(group.catalog_roles.all()),
        partner_allowances=[],
    )
    assert isinstance(proposal, RuleProposal)
    return proposal


def test_a_rename_written_before_an_approver_was_removed_does_not_put_them_back(
    group: ApproverGroup, owner_admin: User, owner_admin_2: User, owner_admin_3: User
) -> None:
    everyone = [owner_admin, owner_admin_2, owner_admin_3]
    rename = _update(group, owner_admin_3, "ECS approvers (prod)", everyone)
    assert rename.before["members"] == rename.after["members"]  # the diff shows no member change
    removal = _update(group, owner_admin, "ECS approvers", [owner_admin, owner_admin_2])
    rule_proposal_approve(proposal=removal, approved_by=owner_admin_2)

    _refused_as_outdated(rename, by=owner_admin_2)

    now = ApproverGroup.objects.get(pk=group.pk)
    assert now.name == "ECS approvers"
    assert set(now.members.all()) == {owner_admin, owner_admin_2}


def test_a_quorum_proposal_written_before_a_newer_rule_does_not_overwrite_it(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    owner_admin_3: User,
) -> None:
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    old = approval_rule_set_or_propose(
        catalog_role=ecs_admin, user=owner_admin, approvals_required=2, auto_approve_max_hours=None
    )
    newer = approval_rule_set_or_propose(
        catalog_role=ecs_admin,
        user=owner_admin_2,
        approvals_required=3,
        auto_approve_max_hours=None,
    )
    rule_proposal_approve(proposal=newer, approved_by=owner_admin)

    _refused_as_outdated(old, by=owner_admin_3)

    assert ApprovalRule.objects.get(catalog_role=ecs_admin).approvals_required == 3


def test_a_proposal_whose_target_did_not_change_still_applies(
    group: ApproverGroup, owner_admin: User, owner_admin_2: User, owner_admin_3: User
) -> None:
    rename = _update(group, owner_admin_3, "Renamed", [owner_admin, owner_admin_2, owner_admin_3])
    other = approval_rule_set_or_propose(
        catalog_role=group.catalog_roles.get(),
        user=owner_admin,
        approvals_required=2,
        auto_approve_max_hours=None,
    )
    rule_proposal_approve(proposal=other, approved_by=owner_admin_2)  # another target
    assert rule_proposal_approve(proposal=rename, approved_by=owner_admin).status == Status.APPLIED
    assert ApproverGroup.objects.get(pk=group.pk).name == "Renamed"


def test_approving_a_change_of_a_deleted_group_says_it_is_outdated(
    group: ApproverGroup,
    owner_admin: User,
    owner_admin_2: User,
    login: Callable[..., Client],
) -> None:
    update = _update(group, owner_admin, "ECS approvers", [owner_admin_2])
    delete = approver_group_delete_or_propose(group=group, user=owner_admin)
    assert isinstance(delete, RuleProposal)
    rule_proposal_approve(proposal=delete, approved_by=owner_admin_2)
    client = with_mfa(login(owner_admin_2), owner_admin_2)
    client.raise_request_exception = False

    response = client.post(
        reverse("delegations:rule_proposal_decide", args=[update.pk]),
        {"approve": "1"},
        follow=True,
    )

    assert response.status_code == 200
    assert OUTDATED in response.content.decode()
    assert RuleProposal.objects.get(pk=update.pk).status == Status.OUTDATED
    assert not ApproverGroup.objects.filter(pk=group.pk).exists()


def test_deleting_a_group_twice_is_refused_the_second_time(
    group: ApproverGroup, owner_admin: User, owner_admin_2: User
) -> None:
    first = approver_group_delete_or_propose(group=group, user=owner_admin)
    second = approver_group_delete_or_propose(group=group, user=owner_admin_2)
    assert isinstance(first, RuleProposal) and isinstance(second, RuleProposal)
    rule_proposal_approve(proposal=first, approved_by=owner_admin_2)
    _refused_as_outdated(second, by=owner_admin)


def test_the_page_marks_a_waiting_proposal_that_is_already_outdated(
    group: ApproverGroup,
    owner_admin: User,
    owner_admin_2: User,
    owner_admin_3: User,
    login: Callable[..., Client],
) -> None:
    rename = _update(group, owner_admin_3, "Renamed", [owner_admin, owner_admin_2, owner_admin_3])
    removal = _update(group, owner_admin, "ECS approvers", [owner_admin, owner_admin_2])
    rule_proposal_approve(proposal=removal, approved_by=owner_admin_2)

    page = with_mfa(login(owner_admin_2), owner_admin_2).get(reverse("delegations:approval_rules"))

    html = page.content.decode()
    assert f'data-proposal="{rename.pk}"' in html and OUTDATED in html
    assert 'data-testid="approve-proposal"' not in html  # only "Reject" is offered
    assert 'data-testid="reject-proposal"' in html


def test_a_catalogue_role_edit_written_before_another_edit_is_outdated(
    owner_world: OwnerWorld,
) -> None:
    world = owner_world
    second = make_member(world.organisation, Membership.Role.ADMIN)
    four_eyes_set(owner=world.organisation, user=world.admin, on=True)

    def edit(by: User, hours: int) -> RuleProposal:
        proposal = catalog_role_update_or_propose(
            catalog_role=CatalogRole.objects.get(pk=world.catalog_role.pk),
            user=by,
            description="Operate ECS",
            policy_keys=[("System", "AliyunECSFullAccess")],
            max_session_duration=hours * 3600,
            keep_role_when_empty=False,
        )
        assert isinstance(proposal, RuleProposal)
        return proposal

    old, newer = edit(world.admin, 2), edit(second, 4)
    rule_proposal_approve(proposal=newer, approved_by=world.admin)

    _refused_as_outdated(old, by=second)

    assert CatalogRole.objects.get(pk=world.catalog_role.pk).max_session_duration == 4 * 3600


def test_removing_a_partner_already_removed_from_the_allow_list_is_outdated(
    company_a: Organisation, owner_admin: User, owner_admin_2: User
) -> None:
    allowance = PartnerAllowance.objects.create(
        organisation=company_a, partner_account_uid="5555666677778888", label="New"
    )
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    first = partner_allowance_remove_or_propose(allowance=allowance, user=owner_admin)
    second = partner_allowance_remove_or_propose(allowance=allowance, user=owner_admin_2)
    assert isinstance(first, RuleProposal) and isinstance(second, RuleProposal)
    rule_proposal_approve(proposal=first, approved_by=owner_admin_2)
    _refused_as_outdated(second, by=owner_admin)


def test_a_break_glass_marking_written_before_it_was_removed_is_outdated(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    four_eyes_set(owner=company_a, user=owner_admin, on=True)

    def mark(hours: int) -> RuleProposal:
        proposal = break_glass_role_set_or_propose(
            owner=company_a,
            user=owner_admin,
            catalog_role=ecs_admin,
            partner=company_b,
            people=[partner_staff],
            max_hours=hours,
        )
        assert isinstance(proposal, RuleProposal)
        return proposal

    rule_proposal_approve(proposal=mark(6), approved_by=owner_admin_2)
    marking = BreakGlassRole.objects.get()
    longer = mark(12)  # written while the marking is on, for 6 hours
    removal = break_glass_role_remove_or_propose(marking=marking, user=owner_admin)
    assert isinstance(removal, RuleProposal)
    rule_proposal_approve(proposal=removal, approved_by=owner_admin_2)

    _refused_as_outdated(longer, by=owner_admin_2)

    assert not BreakGlassRole.objects.get().is_active
