"""Approvers deciding one quorum request at the same moment: the delegation's row lock makes
the count exact (never over, never under), and approve ∥ reject ends with one outcome.

Real concurrency needs real row locks, so these run on PostgreSQL (CI); SQLite serialises
writers and is covered by the sequential tests in test_services.py.
"""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.services import approval_rule_set, approver_group_create
from delegations.fleet.services import (
    fleet_approval_withdraw,
    fleet_approve,
    fleet_reject,
    fleet_revoke,
)
from delegations.lifecycle.automatic import (
    delegation_expire,
    delegation_mark_active,
    delegation_mark_revoked,
)
from delegations.lifecycle.extensions import (
    extension_approval_withdraw,
    extension_approve,
    extension_request,
)
from delegations.lifecycle.services import (
    delegation_approval_withdraw,
    delegation_approve,
    delegation_reject,
    delegation_revoke,
)
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import (
    ApprovalRule,
    ApproverGroup,
    CatalogRole,
    Delegation,
    DelegationApproval,
    DelegationExtension,
    FleetGrant,
    OutboxMessage,
    PartnerAllowance,
)
from tests.delegations.fleet.test_services import (  # noqa: F401 - fixtures
    all_accounts,
    fleet_role,
    make_fleet,
    staging_accounts,
)
from tests.delegations.lifecycle.test_decision_races import race
from tests.personas import make_member

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL"),
]
ROUNDS = 5
Status = Delegation.Status


@pytest.fixture
def approvers(company_a: Organisation, owner_admin: User, owner_admin_2: User) -> list[User]:
    more = [
        make_member(company_a, Membership.Role.ADMIN, email=f"approver-{i}@company-a.example")
        for i in range(3)
    ]
    return [owner_admin, owner_admin_2, *more]


def _close(delegation: Delegation, by: User) -> None:
    final = Delegation.objects.get(pk=delegation.pk)
    if final.status == Delegation.Status.APPROVED:
        delegation_revoke(delegation=final, revoked_by=by, reason="next round")
        delegation_mark_revoked(delegation=final)


def test_n_approvers_at_once_reach_the_quorum_exactly_once(
    make_request, ecs_admin: CatalogRole, approvers: list[User]
) -> None:
    approval_rule_set(catalog_role=ecs_admin, approvals_required=3, set_by=approvers[0])
    for _ in range(ROUNDS):
        outbox_before = OutboxMessage.objects.count()
        delegation = make_request()
        results = race(
            *[
                lambda d=delegation, u=user: delegation_approve(
                    delegation=d, approved_by=u, with_mfa=True, expected_version=1
                )
                for user in approvers
            ]
        )
        # Three approvals counted, the third approves, the last two are told it is decided.
        assert sum(isinstance(r, Delegation) for r in results) == 3, results
        assert sum(isinstance(r, DelegationConflict) for r in results) == 2, results
        final = Delegation.objects.get(pk=delegation.pk)
        assert final.status == Delegation.Status.APPROVED
        assert DelegationApproval.objects.filter(delegation=delegation).count() == 3
        events = list(
            AuditEvent.objects.filter(target_id=str(delegation.pk)).values_list("action", flat=True)
        )
        assert events.count("delegation.approval_recorded") == 2
        assert events.count("delegation.approved") == 1
        assert OutboxMessage.objects.count() == outbox_before + 1
        _close(delegation, approvers[0])


def test_approve_against_reject_on_a_quorum_request(
    make_request, ecs_admin: CatalogRole, approvers: list[User]
) -> None:
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=approvers[0])
    for _ in range(ROUNDS):
        delegation = make_request()
        delegation_approve(delegation=delegation, approved_by=approvers[0], with_mfa=True)
        approve, reject = race(
            lambda d=delegation: delegation_approve(
                delegation=d, approved_by=approvers[1], with_mfa=True, expected_version=1
            ),
            lambda d=delegation: delegation_reject(
                delegation=d, rejected_by=approvers[2], reason="No", expected_version=1
            ),
        )
        winners = [r for r in (approve, reject) if isinstance(r, Delegation)]
        assert len(winners) == 1, (approve, reject)
        final = Delegation.objects.get(pk=delegation.pk)
        assert final.status in (Delegation.Status.APPROVED, Delegation.Status.REJECTED)
        assert final.status == winners[0].status
        _close(delegation, approvers[0])


def test_extension_against_expiry_exactly_one_wins(
    make_request, partner_admin: User, approvers: list[User]
) -> None:
    outcomes = set()
    for _ in range(ROUNDS):
        delegation = make_request(ends_at=timezone.now() + dt.timedelta(hours=4))
        delegation_approve(delegation=delegation, approved_by=approvers[0], with_mfa=True)
        delegation = delegation_mark_active(delegation=delegation)
        extension = extension_request(
            delegation=delegation,
            requested_by=partner_admin,
            new_ends_at=delegation.ends_at + dt.timedelta(hours=8),
            reason="More time",
        )
        due = delegation.ends_at + dt.timedelta(seconds=1)
        approved, expired = race(
            lambda e=extension: extension_approve(
                extension=e, approved_by=approvers[1], with_mfa=True
            ),
            lambda d=delegation, at=due: delegation_expire(delegation=d, now=at),
        )
        assert not isinstance(approved, Exception), approved
        assert not isinstance(expired, Exception), expired
        final = Delegation.objects.get(pk=delegation.pk)
        decided = DelegationExtension.objects.get(pk=extension.pk)
        if decided.status == DelegationExtension.Status.APPROVED:
            assert final.status == Delegation.Status.ACTIVE
            assert final.ends_at == extension.new_ends_at
            delegation_revoke(delegation=final, revoked_by=approvers[0], reason="next round")
        else:
            assert decided.status == DelegationExtension.Status.LAPSED
            assert final.status == Delegation.Status.REVOKING
            assert final.ends_at == extension.previous_ends_at
        delegation_mark_revoked(delegation=Delegation.objects.get(pk=delegation.pk))
        outcomes.add(decided.status)
    assert outcomes


def test_a_quorum_raise_against_a_narrower_group_cannot_both_pass(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allow_b: None,
) -> None:
    """Each change alone keeps the quorum reachable; together they would not (one person
    deciding company B's requests of a role needing two). The owner's rules lock lets exactly
    one of them through, and the other's check sees it."""
    allowance = PartnerAllowance.objects.get(organisation=company_a)
    for round_number in range(ROUNDS):
        ApprovalRule.objects.filter(catalog_role=ecs_admin).delete()
        ApproverGroup.objects.all().delete()
        raised, grouped = race(
            lambda: approval_rule_set(
                catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin
            ),
            lambda n=round_number: approver_group_create(
                owner=company_a,
                created_by=owner_admin,
                name=f"Company B approvers {n}",
                members=[owner_admin],
                partner_allowances=[allowance],
            ),
        )
        passed = [r for r in (raised, grouped) if not isinstance(r, Exception)]
        refused = [r for r in (raised, grouped) if isinstance(r, ValidationError)]
        assert len(passed) == 1 and len(refused) == 1, (raised, grouped)
        two_needed = ApprovalRule.objects.filter(
            catalog_role=ecs_admin, approvals_required=2
        ).exists()
        assert two_needed != ApproverGroup.objects.exists()


def test_a_withdrawal_against_the_approval_that_completes_the_quorum(
    make_request, ecs_admin: CatalogRole, approvers: list[User]
) -> None:
    """Under the row lock one of them comes first: either the request is approved with both
    approvals and the withdrawal is told it is decided, or the first approval is gone and the
    second is counted alone (still requested)."""
    first, second = approvers[0], approvers[1]
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=first)
    for _ in range(ROUNDS):
        delegation = make_request()
        delegation_approve(delegation=delegation, approved_by=first, with_mfa=True)
        withdrawn, approved = race(
            lambda d=delegation: delegation_approval_withdraw(delegation=d, withdrawn_by=first),
            lambda d=delegation: delegation_approve(
                delegation=d, approved_by=second, with_mfa=True
            ),
        )
        final = Delegation.objects.get(pk=delegation.pk)
        given = set(
            DelegationApproval.objects.filter(delegation=delegation).values_list(
                "approver_id", flat=True
            )
        )
        assert isinstance(approved, Delegation), approved
        if final.status == Delegation.Status.APPROVED:
            assert isinstance(withdrawn, DelegationConflict), withdrawn
            assert given == {first.pk, second.pk}
        else:
            assert final.status == Delegation.Status.REQUESTED
            assert isinstance(withdrawn, Delegation) and withdrawn.changed
            assert given == {second.pk}
            delegation_reject(delegation=final, rejected_by=approvers[2], reason="next round")
        _close(delegation, first)


def test_an_extension_withdrawal_against_the_approval_that_completes_the_quorum(
    make_request, partner_admin: User, ecs_admin: CatalogRole, approvers: list[User]
) -> None:
    """The same for an extension, under the same row lock: either it is approved with both
    approvals (the end moved) and the withdrawal is told it is decided, or the first approval is
    gone and the second is counted alone (still requested, the end where it was)."""
    first, second = approvers[0], approvers[1]
    for _ in range(ROUNDS):
        delegation = make_request(ends_at=timezone.now() + dt.timedelta(hours=4))
        delegation_approve(delegation=delegation, approved_by=first, with_mfa=True)
        delegation = delegation_mark_active(delegation=delegation)
        approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=first)
        extension = extension_request(
            delegation=delegation,
            requested_by=partner_admin,
            new_ends_at=delegation.ends_at + dt.timedelta(hours=8),
            reason="More time",
        )
        extension_approve(extension=extension, approved_by=first, with_mfa=True)
        withdrawn, approved = race(
            lambda e=extension: extension_approval_withdraw(extension=e, withdrawn_by=first),
            lambda e=extension: extension_approve(extension=e, approved_by=second, with_mfa=True),
        )
        assert isinstance(approved, DelegationExtension), approved
        decided = DelegationExtension.objects.get(pk=extension.pk)
        given = [entry["approver"] for entry in decided.approvals]
        final = Delegation.objects.get(pk=delegation.pk)
        if decided.status == DelegationExtension.Status.APPROVED:
            assert isinstance(withdrawn, DelegationConflict), withdrawn
            assert given == [first.pk, second.pk]
            assert final.ends_at == extension.new_ends_at
        else:
            assert decided.status == DelegationExtension.Status.REQUESTED
            assert isinstance(withdrawn, DelegationExtension) and withdrawn.changed
            assert given == [second.pk]
            assert final.ends_at == extension.previous_ends_at
        approval_rule_set(catalog_role=ecs_admin, approvals_required=1, set_by=first)
        delegation_revoke(delegation=final, revoked_by=first, reason="next round")
        delegation_mark_revoked(delegation=Delegation.objects.get(pk=delegation.pk))


def test_a_fleet_withdrawal_against_the_approval_that_completes_the_quorum(
    make_fleet,  # noqa: F811
    fleet_role: CatalogRole,  # noqa: F811
    approvers: list[User],
) -> None:
    """The same for a fleet, under the fleet's row lock: either every account is approved with
    both approvals and the withdrawal is told it is decided, or the first approval is gone from
    every account and the second is counted alone (the fleet still requested)."""
    first, second = approvers[0], approvers[1]
    approval_rule_set(catalog_role=fleet_role, approvals_required=2, set_by=first)
    for _ in range(ROUNDS):
        grant = make_fleet()
        fleet_approve(fleet=grant, approved_by=first, with_mfa=True)
        withdrawn, approved = race(
            lambda g=grant: fleet_approval_withdraw(fleet=g, withdrawn_by=first),
            lambda g=grant: fleet_approve(fleet=g, approved_by=second, with_mfa=True),
        )
        assert isinstance(approved, FleetGrant), approved
        accounts = list(Delegation.objects.filter(fleet=grant))
        given = {
            frozenset(
                DelegationApproval.objects.filter(delegation=account).values_list(
                    "approver_id", flat=True
                )
            )
            for account in accounts
        }
        if FleetGrant.objects.get(pk=grant.pk).decided_at is not None:
            assert isinstance(withdrawn, DelegationConflict), withdrawn
            assert given == {frozenset({first.pk, second.pk})}
            fleet_revoke(fleet=grant, revoked_by=approvers[2], reason="next round")
            for account in Delegation.objects.filter(fleet=grant, status=Status.REVOKING):
                delegation_mark_revoked(delegation=account)
        else:
            assert isinstance(withdrawn, FleetGrant) and withdrawn.changed
            assert given == {frozenset({second.pk})}
            assert {account.status for account in accounts} == {Status.REQUESTED}
            fleet_reject(fleet=grant, rejected_by=approvers[2], reason="next round")
