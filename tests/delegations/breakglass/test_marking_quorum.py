"""An emergency role's marking is the approval of its activations, given ahead of time, so it
needs what approving a request of the role from the partner needs, and so does withdrawing it:
the approver groups attached, and, when the role's quorum asks for two approvals, two people
who may approve it: the marking, or its removal, is then a four-eyes proposal (whatever the
owner's four-eyes setting) that a second such person approves. A quorum above two cannot be
met by a proposal's two people, so such a role is not marked."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.four_eyes import (
    approval_rule_set_or_propose,
    four_eyes_set,
    rule_proposal_approve,
)
from delegations.approvals.services import approval_rule_set, approver_group_create
from delegations.breakglass import services as breakglass_services
from delegations.breakglass.proposals import (
    break_glass_role_remove_or_propose,
    break_glass_role_set_or_propose,
)
from delegations.breakglass.services import break_glass_role_remove, break_glass_role_set
from delegations.models import ApprovalRule, BreakGlassRole, CatalogRole, RuleProposal
from tests.delegations.lifecycle.test_decision_races import race
from tests.personas import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def marking_of(
    company_a: Organisation,
    company_b: Organisation,
    ecs_admin: CatalogRole,
    partner_staff: User,
    allow_b: None,
):
    def arguments(user: User) -> dict[str, object]:
        return {
            "owner": company_a,
            "catalog_role": ecs_admin,
            "partner": company_b,
            "people": [partner_staff],
            "max_hours": 4,
            "user": user,
        }

    return arguments


def test_unmarking_needs_what_marking_needs(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    marking_of,
) -> None:
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin_2],
        catalog_roles=[ecs_admin],
    )
    marking = break_glass_role_set_or_propose(**marking_of(owner_admin_2))
    assert isinstance(marking, BreakGlassRole)

    with pytest.raises(PermissionDenied, match="ECS approvers"):
        break_glass_role_remove(marking=marking, removed_by=owner_admin)
    with pytest.raises(PermissionDenied, match="ECS approvers"):
        break_glass_role_remove_or_propose(marking=marking, user=owner_admin)
    assert BreakGlassRole.objects.get().is_active
    denied = AuditEvent.objects.filter(action="break_glass.role_remove_denied")
    assert denied.count() == 2
    assert all(event.outcome == AuditEvent.Outcome.DENIED for event in denied)

    break_glass_role_remove_or_propose(marking=marking, user=owner_admin_2)
    assert not BreakGlassRole.objects.get().is_active


def test_with_a_quorum_of_two_two_people_who_may_approve_agree_on_a_marking(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    marking_of,
) -> None:
    outsider = make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin, owner_admin_2],
        catalog_roles=[ecs_admin],
    )
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    arguments = marking_of(owner_admin)
    direct = {key: value for key, value in arguments.items() if key != "user"}

    # Four eyes is off, yet one approver alone does not mark it.
    with pytest.raises(PermissionDenied, match="two"):
        break_glass_role_set(set_by=owner_admin, **direct)
    assert AuditEvent.objects.filter(action="break_glass.role_set_denied").count() == 1
    proposal = break_glass_role_set_or_propose(**arguments)
    assert isinstance(proposal, RuleProposal)
    assert not BreakGlassRole.objects.exists()

    # The second person must be one who may approve the role too.
    with pytest.raises(PermissionDenied, match="ECS approvers"):
        rule_proposal_approve(proposal=proposal, approved_by=outsider)
    assert AuditEvent.objects.filter(action="rule_proposal.denied").count() == 1
    rule_proposal_approve(proposal=proposal, approved_by=owner_admin_2)
    marking = BreakGlassRole.objects.get()
    assert marking.is_active

    # Withdrawing it takes the same two.
    removal = break_glass_role_remove_or_propose(marking=marking, user=owner_admin)
    assert isinstance(removal, RuleProposal)
    assert BreakGlassRole.objects.get().is_active
    with pytest.raises(PermissionDenied, match="ECS approvers"):
        rule_proposal_approve(proposal=removal, approved_by=outsider)
    rule_proposal_approve(proposal=removal, approved_by=owner_admin_2)
    assert not BreakGlassRole.objects.get().is_active


def test_a_role_needing_more_than_two_approvals_is_not_marked(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    marking_of,
) -> None:
    make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    approval_rule_set(catalog_role=ecs_admin, approvals_required=3, set_by=owner_admin)
    with pytest.raises(ValidationError, match="3"):
        break_glass_role_set_or_propose(**marking_of(owner_admin))
    assert not RuleProposal.objects.exists() and not BreakGlassRole.objects.exists()


def test_a_marked_role_keeps_a_quorum_of_two_or_less(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    marking_of,
) -> None:
    """A quorum above two would leave the marking standing for fewer people than a request of
    the role needs, and it could not be made again: raising it is refused, naming the partner,
    until the marking is withdrawn."""
    make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    marking = break_glass_role_set_or_propose(**marking_of(owner_admin))
    assert isinstance(marking, BreakGlassRole)
    for propose in (False, True):
        if propose:
            four_eyes_set(owner=company_a, user=owner_admin, on=True)
        with pytest.raises(ValidationError, match="Company B") as refused:
            approval_rule_set_or_propose(
                catalog_role=ecs_admin,
                user=owner_admin,
                approvals_required=3,
                auto_approve_max_hours=None,
            )
        assert "approvals_required" in refused.value.message_dict
    assert not ApprovalRule.objects.exists() and not RuleProposal.objects.exists()
    # Two stays possible: a marking is agreed by two.
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)

    four_eyes_set(owner=company_a, user=owner_admin, on=False)
    removal = break_glass_role_remove_or_propose(marking=marking, user=owner_admin)
    rule_proposal_approve(proposal=removal, approved_by=owner_admin_2)
    approval_rule_set(catalog_role=ecs_admin, approvals_required=3, set_by=owner_admin)
    assert ApprovalRule.objects.get().approvals_required == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL")
def test_a_marking_and_a_quorum_of_three_cannot_both_pass(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    marking_of,
) -> None:
    make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    make_member(company_a, Membership.Role.ADMIN, email="fourth@company-a.example")
    marked, raised = race(
        lambda: break_glass_role_set_or_propose(**marking_of(owner_admin)),
        lambda: approval_rule_set(catalog_role=ecs_admin, approvals_required=3, set_by=owner_admin),
    )
    passed = [result for result in (marked, raised) if not isinstance(result, Exception)]
    refused = [result for result in (marked, raised) if isinstance(result, ValidationError)]
    assert len(passed) == 1 and len(refused) == 1, (marked, raised)


@pytest.fixture
def against_a_quorum_raise(
    ecs_admin: CatalogRole, owner_admin_2: User, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Callable[[], object]], tuple[object, object]]:
    """`against_a_quorum_raise(action)` races `action`, one admin's change of a marking made
    alone, against another admin raising the role's quorum from 1 to 2, forcing the raise in
    right after the action first read the quorum: it commits there unless a lock the action
    holds keeps it waiting. Returns what each side returned or raised."""

    def run(action: Callable[[], object]) -> tuple[object, object]:
        quorum_read, quorum_raised = threading.Event(), threading.Event()
        needs_second_admin = breakglass_services.break_glass_needs_second_admin

        def read_then_let_the_raise_in(**arguments: object) -> bool:
            answer = needs_second_admin(**arguments)
            if not quorum_read.is_set():
                quorum_read.set()
                quorum_raised.wait(timeout=3)
            return answer

        def raise_quorum() -> ApprovalRule:
            quorum_read.wait(timeout=10)
            try:
                return approval_rule_set(
                    catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin_2
                )
            finally:
                quorum_raised.set()

        monkeypatch.setattr(
            breakglass_services, "break_glass_needs_second_admin", read_then_let_the_raise_in
        )
        changed, raised = race(action, raise_quorum)
        monkeypatch.undo()
        return changed, raised

    return run


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL")
def test_a_marking_alone_and_a_quorum_of_two_serialise(
    owner_admin: User, marking_of, against_a_quorum_raise
) -> None:
    """The raise must wait for the marking (made under a quorum of 1, it stands), or the
    marking, coming second, must see the quorum of 2 and be refused: never a marking made
    alone once the quorum of 2 is in force."""
    direct = {key: value for key, value in marking_of(owner_admin).items() if key != "user"}
    marked, raised = against_a_quorum_raise(
        lambda: break_glass_role_set(set_by=owner_admin, **direct)
    )
    assert isinstance(raised, ApprovalRule), raised
    quorum_changed = AuditEvent.objects.get(action="approval_rule.changed").sequence
    if isinstance(marked, BreakGlassRole):
        assert AuditEvent.objects.get(action="break_glass.role_set").sequence < quorum_changed
    else:
        assert isinstance(marked, PermissionDenied), marked
        assert not BreakGlassRole.objects.exists()
        denied = AuditEvent.objects.get(action="break_glass.role_set_denied")
        assert denied.sequence > quorum_changed


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL")
def test_a_removal_alone_and_a_quorum_of_two_serialise(
    owner_admin: User, marking_of, against_a_quorum_raise
) -> None:
    """What two agreed on is not withdrawn by one either: the removal comes before the quorum
    of 2, or after it and refused."""
    direct = {key: value for key, value in marking_of(owner_admin).items() if key != "user"}
    marking = break_glass_role_set(set_by=owner_admin, **direct)
    removed, raised = against_a_quorum_raise(
        lambda: break_glass_role_remove(marking=marking, removed_by=owner_admin)
    )
    assert isinstance(raised, ApprovalRule), raised
    quorum_changed = AuditEvent.objects.get(action="approval_rule.changed").sequence
    if isinstance(removed, BreakGlassRole):
        assert not removed.is_active
        assert AuditEvent.objects.get(action="break_glass.role_removed").sequence < quorum_changed
    else:
        assert isinstance(removed, PermissionDenied), removed
        assert BreakGlassRole.objects.get().is_active
        denied = AuditEvent.objects.get(action="break_glass.role_remove_denied")
        assert denied.sequence > quorum_changed
