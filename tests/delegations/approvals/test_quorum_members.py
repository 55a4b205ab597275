"""Removing an owner admin, or demoting one, takes a possible approver away exactly as taking
them out of an approver group does: when that leaves some role's requests, from some partner,
with fewer people who could decide them than the role's quorum, it is refused (naming the
partner and the role's quorum), audited as refused, and nothing changes."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from accounts import services as accounts_services
from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.services import approval_rule_set, approver_group_update
from delegations.models import CatalogRole, PartnerAllowance
from tests.delegations.approvals.test_quorum_scopes import b_group
from tests.delegations.lifecycle.test_decision_races import race
from tests.personas import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def allowance_b(company_a: Organisation, allow_b: None) -> PartnerAllowance:
    return PartnerAllowance.objects.get(organisation=company_a)


def _membership(user: User, owner: Organisation) -> Membership:
    return Membership.objects.get(user=user, organisation=owner)


def _denied(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, outcome=AuditEvent.Outcome.DENIED))


def test_removing_an_admin_the_quorum_needs_is_refused(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
) -> None:
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    member = _membership(owner_admin_2, company_a)
    with pytest.raises(ValidationError) as refused:
        accounts_services.membership_remove(membership=member, removed_by=owner_admin)
    message = " ".join(refused.value.messages)
    assert "ecs-admin" in message and "quorum of 2" in message
    assert "Company B" in message and allowance_b.partner_account_uid in message
    assert Membership.objects.filter(pk=member.pk).exists()
    assert not AuditEvent.objects.filter(action="member.removed").exists()
    [event] = _denied("member.remove_denied")
    assert event.actor_id == owner_admin.pk and event.target_label == owner_admin_2.email
    assert "quorum of 2" in event.metadata["denied_because"]


def test_demoting_an_admin_the_partners_group_needs_is_refused(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
) -> None:
    # A third admin keeps the quorum reachable for other partners, but company B's requests
    # are decided by its group alone, whose two members are both needed.
    make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    b_group(company_a, owner_admin, allowance_b, owner_admin, owner_admin_2)
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    member = _membership(owner_admin_2, company_a)
    with pytest.raises(ValidationError) as refused:
        accounts_services.membership_change_role(
            membership=member, role=Membership.Role.AUDITOR, changed_by=owner_admin
        )
    message = " ".join(refused.value.messages)
    assert "Company B" in message and "ecs-admin" in message and "quorum of 2" in message
    member.refresh_from_db()
    assert member.role == Membership.Role.ADMIN
    assert not AuditEvent.objects.filter(action="member.role_changed").exists()
    [event] = _denied("member.role_change_denied")
    assert event.before == {"role": "admin"} and event.after == {"role": "auditor"}


def test_an_admin_the_quorum_does_not_need_may_go(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
) -> None:
    third = make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    # The group deciding company B's requests does not count on the third admin, and the
    # other partners' requests still have two possible approvers without them.
    b_group(company_a, owner_admin, allowance_b, owner_admin, owner_admin_2)
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    accounts_services.membership_change_role(
        membership=_membership(third, company_a),
        role=Membership.Role.AUDITOR,
        changed_by=owner_admin,
    )
    accounts_services.membership_remove(
        membership=_membership(third, company_a), removed_by=owner_admin
    )
    assert not Membership.objects.filter(user=third).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL")
def test_a_removal_and_a_group_change_that_together_break_a_quorum_cannot_both_pass(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
) -> None:
    """Each alone keeps two possible approvers of company B's requests; together they would
    leave one. The removal takes the owner's rules lock a change of the groups takes, so the
    second to run sees the first."""
    third = make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    group = b_group(company_a, owner_admin, allowance_b, owner_admin, owner_admin_2, third)
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    removed, narrowed = race(
        lambda: accounts_services.membership_remove(
            membership=_membership(third, company_a), removed_by=owner_admin
        ),
        lambda: approver_group_update(
            group=group,
            updated_by=owner_admin,
            name=group.name,
            members=[owner_admin_2, third],
            partner_allowances=[allowance_b],
        ),
    )
    outcomes = [result for result in (removed, narrowed) if not isinstance(result, Exception)]
    refused = [result for result in (removed, narrowed) if isinstance(result, ValidationError)]
    assert len(outcomes) == 1 and len(refused) == 1, (removed, narrowed)
