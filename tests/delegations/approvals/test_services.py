"""Approver groups and quorum through the lifecycle's approve and reject: who may decide,
how many must agree, what is refused (and audited as denied) and what is saved."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.selectors import approval_progress
from delegations.approvals.services import (
    approval_rule_set,
    approver_group_create,
    approver_group_delete,
    approver_group_update,
)
from delegations.lifecycle.services import delegation_approve, delegation_reject
from delegations.lifecycle.starting import (
    delegation_auto_approve,
    delegation_offer,
    delegation_withdraw,
)
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import (
    ApprovalRule,
    ApproverGroup,
    CatalogRole,
    Delegation,
    DelegationApproval,
    OutboxMessage,
    PartnerAllowance,
    TrustScope,
)
from tests.personas import make_member

pytestmark = pytest.mark.django_db
S = Delegation.Status


def actions_for(target: object) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_id=str(target.pk))  # type: ignore[attr-defined]
        .order_by("sequence")
        .values_list("action", flat=True)
    )


@pytest.fixture
def owner_admin_3(company_a: Organisation) -> User:
    return make_member(company_a, Membership.Role.ADMIN, email="third-admin@company-a.example")


@pytest.fixture
def quorum_2(ecs_admin: CatalogRole, owner_admin: User, owner_admin_2: User) -> ApprovalRule:
    return approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)


def approve(delegation: Delegation, user: User) -> Delegation:
    return delegation_approve(delegation=delegation, approved_by=user, with_mfa=True)


# --- without rules: today's behaviour -----------------------------------------------------------


def test_without_rules_one_owner_admin_approves(requested: Delegation, owner_admin: User) -> None:
    result = approve(requested, owner_admin)
    assert result.status == S.APPROVED
    assert DelegationApproval.objects.filter(delegation=requested).count() == 1
    event = AuditEvent.objects.get(target_id=str(requested.pk), action="delegation.approved")
    assert event.metadata["approvals_required"] == 1
    assert event.metadata["approvers"] == [str(owner_admin.pk)]


# --- quorum --------------------------------------------------------------------------------------


def test_quorum_two_waits_for_the_second_distinct_approver(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User
) -> None:
    outbox_before = OutboxMessage.objects.count()
    first = approve(requested, owner_admin)
    assert first.status == S.REQUESTED and first.changed
    assert first.version == 1  # a partial approval does not make the other's page stale
    assert OutboxMessage.objects.count() == outbox_before  # nothing for the cloud yet
    assert actions_for(requested)[-1] == "delegation.approval_recorded"
    recorded = AuditEvent.objects.get(
        target_id=str(requested.pk), action="delegation.approval_recorded"
    )
    assert recorded.metadata["approvals_counted"] == 1
    assert recorded.metadata["approvals_required"] == 2

    second = approve(requested, owner_admin_2)
    assert second.status == S.APPROVED and second.decided_by == owner_admin_2
    assert OutboxMessage.objects.count() == outbox_before + 1
    approved = AuditEvent.objects.get(target_id=str(requested.pk), action="delegation.approved")
    assert sorted(approved.metadata["approvers"]) == sorted(
        [str(owner_admin.pk), str(owner_admin_2.pk)]
    )


def test_nobody_approves_twice_and_the_attempt_is_audited(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User
) -> None:
    approve(requested, owner_admin)
    with pytest.raises(PermissionDenied, match="already approved"):
        approve(requested, owner_admin)
    assert DelegationApproval.objects.filter(delegation=requested).count() == 1
    denied = AuditEvent.objects.filter(
        target_id=str(requested.pk), action="delegation.approve_denied"
    ).get()
    assert denied.outcome == AuditEvent.Outcome.DENIED
    assert Delegation.objects.get(pk=requested.pk).status == S.REQUESTED


def test_one_rejection_ends_a_request_with_approvals(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User
) -> None:
    approve(requested, owner_admin)
    rejected = delegation_reject(delegation=requested, rejected_by=owner_admin_2, reason="No")
    assert rejected.status == S.REJECTED
    with pytest.raises(DelegationConflict):
        approve(requested, owner_admin_2)


def test_a_partner_member_never_counts(
    requested: Delegation,
    quorum_2: ApprovalRule,
    owner_admin: User,
    company_b: Organisation,
    owner_admin_3: User,
) -> None:
    Membership.objects.create(user=owner_admin_3, organisation=company_b, role="staff")
    approve(requested, owner_admin)
    with pytest.raises(PermissionDenied, match="member of the requesting partner"):
        approve(requested, owner_admin_3)
    assert Delegation.objects.get(pk=requested.pk).status == S.REQUESTED


def test_an_approval_stops_counting_when_its_approver_is_no_longer_an_owner_admin(
    requested: Delegation,
    quorum_2: ApprovalRule,
    company_a: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    owner_admin_3: User,
) -> None:
    # Found by review: an ex-admin's earlier approval still made up the quorum.
    approve(requested, owner_admin)
    Membership.objects.filter(user=owner_admin, organisation=company_a).update(
        role=Membership.Role.AUDITOR
    )
    assert approve(requested, owner_admin_2).status == S.REQUESTED
    recorded = AuditEvent.objects.filter(
        target_id=str(requested.pk), action="delegation.approval_recorded"
    ).last()
    assert recorded is not None and recorded.metadata["approvals_counted"] == 1
    approved = approve(requested, owner_admin_3)
    assert approved.status == S.APPROVED
    event = AuditEvent.objects.get(target_id=str(requested.pk), action="delegation.approved")
    assert sorted(event.metadata["approvers"]) == sorted(
        [str(owner_admin_2.pk), str(owner_admin_3.pk)]
    )


def test_an_approval_stops_counting_when_its_approver_joins_the_requesting_partner(
    requested: Delegation,
    quorum_2: ApprovalRule,
    company_b: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    owner_admin_3: User,
) -> None:
    # Found by review: someone who joined the partner since approving still counted.
    approve(requested, owner_admin)
    Membership.objects.create(user=owner_admin, organisation=company_b, role="staff")
    assert approve(requested, owner_admin_2).status == S.REQUESTED
    progress = approval_progress(delegation=requested, user=owner_admin_3)
    assert (progress.tally.counted, progress.tally.required) == (1, 2)
    assert approve(requested, owner_admin_3).status == S.APPROVED


def test_the_narrowest_trust_scope_any_approver_chose_applies(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User
) -> None:
    # Found by review: only the approver completing the quorum set the trust scope.
    assert requested.trust_scope == TrustScope.PARTNER_ACCOUNT
    first = delegation_approve(
        delegation=requested,
        approved_by=owner_admin,
        with_mfa=True,
        trust_scope=TrustScope.NAMED_OWNER_APPROVED,
    )
    assert first.status == S.REQUESTED
    second = delegation_approve(
        delegation=requested,
        approved_by=owner_admin_2,
        with_mfa=True,
        trust_scope=TrustScope.NAMED_PARTNER_MANAGED,
    )
    assert second.status == S.APPROVED
    assert Delegation.objects.get(pk=requested.pk).trust_scope == TrustScope.NAMED_OWNER_APPROVED
    assert dict(
        DelegationApproval.objects.filter(delegation=requested).values_list(
            "approver__email", "trust_scope"
        )
    ) == {
        owner_admin.email: TrustScope.NAMED_OWNER_APPROVED,
        owner_admin_2.email: TrustScope.NAMED_PARTNER_MANAGED,
    }
    event = AuditEvent.objects.get(target_id=str(requested.pk), action="delegation.approved")
    assert event.metadata["trust_scope"] == TrustScope.NAMED_OWNER_APPROVED


def test_an_approver_who_keeps_the_requested_scope_is_not_widened_by_the_next(
    make_request: Callable[..., Delegation],
    ecs_admin: CatalogRole,
    quorum_2: ApprovalRule,
    owner_admin: User,
    owner_admin_2: User,
) -> None:
    ecs_admin.default_trust_scope = TrustScope.NAMED_PARTNER_MANAGED
    ecs_admin.save()
    delegation = make_request()
    assert delegation.trust_scope == TrustScope.NAMED_PARTNER_MANAGED
    approve(delegation, owner_admin)  # the role's default: named people
    delegation_approve(
        delegation=delegation,
        approved_by=owner_admin_2,
        with_mfa=True,
        trust_scope=TrustScope.PARTNER_ACCOUNT,
    )
    after = Delegation.objects.get(pk=delegation.pk)
    assert after.status == S.APPROVED
    assert after.trust_scope == TrustScope.NAMED_PARTNER_MANAGED


def test_one_approver_alone_may_still_choose_a_wider_scope(
    make_request: Callable[..., Delegation], ecs_admin: CatalogRole, owner_admin: User
) -> None:
    ecs_admin.default_trust_scope = TrustScope.NAMED_OWNER_APPROVED
    ecs_admin.save()
    delegation = delegation_approve(
        delegation=make_request(),
        approved_by=owner_admin,
        with_mfa=True,
        trust_scope=TrustScope.PARTNER_ACCOUNT,
    )
    assert delegation.status == S.APPROVED
    assert Delegation.objects.get(pk=delegation.pk).trust_scope == TrustScope.PARTNER_ACCOUNT


def test_an_earlier_approvers_end_that_has_passed_refuses_the_next_approval(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User
) -> None:
    # Found by review: the quorum completed with an end already past, and a reconcile queued.
    delegation_approve(
        delegation=requested,
        approved_by=owner_admin,
        with_mfa=True,
        ends_at=timezone.now() + dt.timedelta(hours=1),
    )
    # Two hours later: the end the first approver set lies in the past.
    Delegation.objects.filter(pk=requested.pk).update(
        starts_at=timezone.now() - dt.timedelta(hours=2)
    )
    DelegationApproval.objects.filter(delegation=requested).update(
        ends_at=timezone.now() - dt.timedelta(hours=1)
    )
    outbox_before = OutboxMessage.objects.count()
    with pytest.raises(ValidationError, match="an earlier approver set has passed"):
        approve(requested, owner_admin_2)
    after = Delegation.objects.get(pk=requested.pk)
    assert after.status == S.REQUESTED
    assert DelegationApproval.objects.filter(delegation=requested).count() == 1
    assert OutboxMessage.objects.count() == outbox_before
    assert delegation_reject(
        delegation=requested, rejected_by=owner_admin_2, reason="Dates passed"
    ).status == (S.REJECTED)


@pytest.mark.parametrize("bad", [0, 6, -1])
def test_quorum_out_of_range_is_a_form_error(
    ecs_admin: CatalogRole, owner_admin: User, bad: int
) -> None:
    with pytest.raises(ValidationError) as raised:
        approval_rule_set(catalog_role=ecs_admin, approvals_required=bad, set_by=owner_admin)
    assert "approvals_required" in raised.value.error_dict
    assert not ApprovalRule.objects.exists()


def test_a_quorum_nobody_could_reach_is_refused(ecs_admin: CatalogRole, owner_admin: User) -> None:
    with pytest.raises(ValidationError, match="could never be reached"):
        approval_rule_set(catalog_role=ecs_admin, approvals_required=3, set_by=owner_admin)


def test_changing_the_quorum_is_audited_with_a_version(
    quorum_2: ApprovalRule, ecs_admin: CatalogRole, owner_admin: User
) -> None:
    rule = approval_rule_set(catalog_role=ecs_admin, approvals_required=1, set_by=owner_admin)
    assert rule.version == 2
    assert actions_for(ecs_admin) == ["approval_rule.changed", "approval_rule.changed"]


# --- approver groups -----------------------------------------------------------------------------


def test_a_group_on_the_role_scopes_who_decides(
    requested: Delegation,
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
) -> None:
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin_2],
        catalog_roles=[ecs_admin],
    )
    with pytest.raises(PermissionDenied, match="ECS approvers"):
        approve(requested, owner_admin)
    with pytest.raises(PermissionDenied, match="ECS approvers"):
        delegation_reject(delegation=requested, rejected_by=owner_admin, reason="no")
    denied = list(
        AuditEvent.objects.filter(target_id=str(requested.pk), outcome="denied").values_list(
            "action", flat=True
        )
    )
    assert sorted(denied) == ["delegation.approve_denied", "delegation.reject_denied"]
    assert approve(requested, owner_admin_2).status == S.APPROVED


def test_a_group_on_the_partner_scopes_who_decides(
    requested: Delegation, company_a: Organisation, owner_admin: User, owner_admin_2: User
) -> None:
    allowance = PartnerAllowance.objects.get(organisation=company_a)
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="Company B approvers",
        members=[owner_admin],
        partner_allowances=[allowance],
    )
    with pytest.raises(PermissionDenied):
        approve(requested, owner_admin_2)
    assert approve(requested, owner_admin).status == S.APPROVED


def test_someone_who_left_the_group_no_longer_counts(
    requested: Delegation,
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    owner_admin_3: User,
) -> None:
    group = approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin, owner_admin_2, owner_admin_3],
        catalog_roles=[ecs_admin],
    )
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    approve(requested, owner_admin)
    approver_group_update(
        group=group,
        updated_by=owner_admin_2,
        name="ECS approvers",
        members=[owner_admin_2, owner_admin_3],
        catalog_roles=[ecs_admin],
    )
    assert approve(requested, owner_admin_2).status == S.REQUESTED
    assert approve(requested, owner_admin_3).status == S.APPROVED


def test_group_bad_input_saves_nothing(
    company_a: Organisation,
    company_c: Organisation,
    owner_admin: User,
    auditor: User,
    foreign_role: CatalogRole,
) -> None:
    with pytest.raises(ValidationError) as raised:
        approver_group_create(owner=company_a, created_by=owner_admin, name="", members=[])
    assert set(raised.value.error_dict) == {"name", "members"}
    with pytest.raises(ValidationError, match="auditors never"):
        approver_group_create(owner=company_a, created_by=owner_admin, name="G", members=[auditor])
    with pytest.raises(ValidationError) as raised:
        approver_group_create(
            owner=company_a,
            created_by=owner_admin,
            name="G",
            members=[owner_admin],
            catalog_roles=[foreign_role],
        )
    assert "catalog_roles" in raised.value.error_dict
    assert not ApproverGroup.objects.exists()


def test_group_names_are_unique_per_owner_and_changes_are_audited(
    company_a: Organisation, owner_admin: User
) -> None:
    group = approver_group_create(
        owner=company_a, created_by=owner_admin, name="Ops", members=[owner_admin]
    )
    with pytest.raises(ValidationError, match="already a group"):
        approver_group_create(
            owner=company_a, created_by=owner_admin, name="ops", members=[owner_admin]
        )
    approver_group_delete(group=group, deleted_by=owner_admin)
    assert actions_for(group) == ["approver_group.created", "approver_group.deleted"]
    assert not ApproverGroup.objects.exists()


def test_an_auditor_never_approves(requested: Delegation, auditor: User) -> None:
    with pytest.raises(PermissionDenied):
        approve(requested, auditor)


def test_double_click_after_quorum_is_unchanged(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User
) -> None:
    approve(requested, owner_admin)
    approve(requested, owner_admin_2)
    again = approve(requested, owner_admin)
    assert again.status == S.APPROVED and not again.changed


def test_the_requester_never_counts_in_quorum(
    make_request: Callable[..., Delegation], quorum_2: ApprovalRule, owner_admin: User
) -> None:
    delegation = make_request()
    assert delegation.requested_by != owner_admin
    assert approve(delegation, owner_admin).status == S.REQUESTED


def test_offers_follow_the_rules(
    company_a: Organisation,
    company_b: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allow_b: None,
) -> None:
    def offer(by: User) -> Delegation:
        return delegation_offer(
            owner=company_a,
            offered_by=by,
            partner=company_b,
            catalog_role=ecs_admin,
            reason="Support contract",
            ends_at=None,
            with_mfa=True,
        )

    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin_2],
        catalog_roles=[ecs_admin],
    )
    with pytest.raises(PermissionDenied, match="ECS approvers"):
        offer(owner_admin)
    approval_rule_set(catalog_role=ecs_admin, approvals_required=1, set_by=owner_admin)
    group = ApproverGroup.objects.get()
    group.members.add(owner_admin)
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    with pytest.raises(ValidationError, match="needs 2 approvals"):
        offer(owner_admin_2)
    assert not Delegation.objects.exists()


def test_auto_approval_within_the_rule_and_never_beyond(
    make_request: Callable[..., Delegation], ecs_admin: CatalogRole, owner_admin: User
) -> None:
    approval_rule_set(
        catalog_role=ecs_admin, approvals_required=1, auto_approve_max_hours=8, set_by=owner_admin
    )
    long = make_request(ends_at=timezone.now() + dt.timedelta(hours=9))
    assert not delegation_auto_approve(delegation=long).changed
    assert Delegation.objects.get(pk=long.pk).status == S.REQUESTED
    delegation_withdraw(delegation=long, withdrawn_by=long.requested_by)
    short = make_request(ends_at=timezone.now() + dt.timedelta(hours=4))
    approved = delegation_auto_approve(delegation=short)
    assert approved.changed and approved.status == S.APPROVED and approved.decided_by is None
    event = AuditEvent.objects.get(target_id=str(short.pk), action="delegation.auto_approved")
    assert event.metadata["rule_version"] == 1 and event.metadata["auto_approve_max_hours"] == 8
    assert OutboxMessage.objects.count() == 1


def test_auto_approval_bad_input(ecs_admin: CatalogRole, owner_admin: User) -> None:
    for bad in (0, 25):
        with pytest.raises(ValidationError):
            approval_rule_set(
                catalog_role=ecs_admin,
                approvals_required=1,
                auto_approve_max_hours=bad,
                set_by=owner_admin,
            )
    ecs_admin.allows_high_privilege = True
    ecs_admin.save()
    with pytest.raises(ValidationError, match="never approved automatically"):
        approval_rule_set(
            catalog_role=ecs_admin,
            approvals_required=1,
            auto_approve_max_hours=2,
            set_by=owner_admin,
        )
    assert not ApprovalRule.objects.exists()
