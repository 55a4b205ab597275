"""An owner admin who joins a partner organisation never decides that partner's requests
again (segregation of duties), so joining takes a possible approver away from them exactly as
taking the admin out of an approver group does: when that leaves some role's requests from that
partner with fewer people who could decide them than the role's quorum, the join (by accepting
an invitation, or added directly) is refused, naming the owner, the partner, the role and its
quorum, audited as refused, and nothing changes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection

from accounts import invitations
from accounts import services as accounts_services
from accounts.models import Invitation, Membership, Organisation, User
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


@pytest.fixture
def quorum_of_two(ecs_admin: CatalogRole, owner_admin: User, owner_admin_2: User) -> None:
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)


def _denied_joins() -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action="member.join_denied", outcome=AuditEvent.Outcome.DENIED)
    )


def _invite(
    company_b: Organisation, partner_admin: User, email: str, capture: Callable
) -> tuple[Invitation, str]:
    with capture(execute=True):
        invitation = invitations.invitation_create(
            organisation=company_b,
            email=email,
            role=Membership.Role.STAFF,
            invited_by=partner_admin,
            base_url="http://testserver/",
        )
    url = next(word for word in mail.outbox[-1].body.split() if "/invitations/" in word)
    return invitation, url.split("testserver", 1)[1]


def _assert_refusal_names_everything(message: str) -> None:
    assert "Company A" in message and "Company B" in message
    assert "ecs-admin" in message and "quorum of 2" in message


def test_accepting_an_invitation_the_owners_quorum_cannot_spare_is_refused(
    company_b: Organisation,
    partner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
    quorum_of_two: None,
    login: Callable,
    django_capture_on_commit_callbacks: Callable,
) -> None:
    invitation, path = _invite(
        company_b, partner_admin, owner_admin_2.email, django_capture_on_commit_callbacks
    )
    client = login(owner_admin_2)
    response = client.post(path, follow=True)
    _assert_refusal_names_everything(response.content.decode())
    assert not Membership.objects.filter(user=owner_admin_2, organisation=company_b).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
    assert not AuditEvent.objects.filter(action="invitation.accepted").exists()
    [event] = _denied_joins()
    assert event.actor_id == owner_admin_2.pk and event.target_label == owner_admin_2.email
    assert event.organisation_id == company_b.pk
    assert "quorum of 2" in event.metadata["denied_because"]


def test_adding_an_owner_admin_the_quorum_needs_is_refused(
    company_b: Organisation,
    partner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
    quorum_of_two: None,
) -> None:
    with pytest.raises(ValidationError) as refused:
        accounts_services.membership_create(
            organisation=company_b,
            user=owner_admin_2,
            role=Membership.Role.STAFF,
            added_by=partner_admin,
        )
    _assert_refusal_names_everything(" ".join(refused.value.messages))
    assert not Membership.objects.filter(user=owner_admin_2, organisation=company_b).exists()
    assert not AuditEvent.objects.filter(
        action="member.added", target_label=owner_admin_2.email
    ).exists()
    [event] = _denied_joins()
    assert event.actor_id == partner_admin.pk and event.after == {
        "email": owner_admin_2.email,
        "role": Membership.Role.STAFF,
    }


def test_an_owner_admin_the_quorum_does_not_need_may_join(
    company_a: Organisation,
    company_b: Organisation,
    partner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
    quorum_of_two: None,
) -> None:
    make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    accounts_services.membership_create(
        organisation=company_b,
        user=owner_admin_2,
        role=Membership.Role.STAFF,
        added_by=partner_admin,
    )
    assert Membership.objects.filter(user=owner_admin_2, organisation=company_b).exists()
    assert not _denied_joins()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL")
def test_a_join_and_a_group_change_that_together_break_a_quorum_cannot_both_pass(
    company_a: Organisation,
    company_b: Organisation,
    partner_admin: User,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    allowance_b: PartnerAllowance,
) -> None:
    """Each alone keeps two possible approvers of company B's requests; together they would
    leave one. The join takes the owner's rules lock a change of the groups takes, so the
    second to run sees the first."""
    third = make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    group = b_group(company_a, owner_admin, allowance_b, owner_admin, owner_admin_2, third)
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    joined, narrowed = race(
        lambda: accounts_services.membership_create(
            organisation=company_b,
            user=owner_admin,
            role=Membership.Role.STAFF,
            added_by=partner_admin,
        ),
        lambda: approver_group_update(
            group=group,
            updated_by=owner_admin,
            name=group.name,
            members=[owner_admin, owner_admin_2],
            partner_allowances=[allowance_b],
        ),
    )
    outcomes = [result for result in (joined, narrowed) if not isinstance(result, Exception)]
    refused = [result for result in (joined, narrowed) if isinstance(result, ValidationError)]
    assert len(outcomes) == 1 and len(refused) == 1, (joined, narrowed)
