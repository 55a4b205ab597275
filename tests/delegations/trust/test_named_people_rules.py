"""Deciding on a named person (owner-approved trust scope) follows the rules the delegation's
own approval follows: only while the delegation is pending or granted (never once it was
revoked, expired, rejected or failed, nor past its end), only by someone who may decide the
delegation (its approver groups; never a member of the partner), and approving makes the grant
checks of an approval (allow-list, active catalogue role). A refused decision changes nothing
and the refusal is on the record."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.services import approver_group_create
from delegations.lifecycle.named_people import trusted_person_decide
from delegations.lifecycle.starting import delegation_offer
from delegations.models import (
    CatalogRole,
    Delegation,
    PartnerAllowance,
    TrustedPerson,
    TrustScope,
)
from tests.personas import mark_reauthenticated_with_mfa

pytestmark = pytest.mark.django_db
S = Delegation.Status


@pytest.fixture
def named(requested: Delegation, partner_admin: User) -> TrustedPerson:
    """Company B's ecs-admin, active, trusting named people the owner approves; Alice is
    proposed and waits for the owner."""
    Delegation.objects.filter(pk=requested.pk).update(
        status=S.ACTIVE, trust_scope=TrustScope.NAMED_OWNER_APPROVED
    )
    return TrustedPerson.objects.create(
        delegation=requested, ram_user_name="Alice", proposed_by=partner_admin
    )


def approve_on_page(client: Client, person: TrustedPerson):
    return client.post(reverse("delegations:trust_person_approve", args=[person.pk]), follow=True)


def owner_page(login, user: User) -> Client:
    return mark_reauthenticated_with_mfa(login(user), user)


def status_of(person: TrustedPerson) -> str:
    return TrustedPerson.objects.get(pk=person.pk).status


@pytest.mark.parametrize("status", [S.REVOKED, S.EXPIRED, S.FAILED, S.REVOKING, S.REJECTED])
def test_no_decision_on_a_delegation_that_ended_or_failed(
    named: TrustedPerson, owner_admin: User, login, status: str
) -> None:
    Delegation.objects.filter(pk=named.delegation_id).update(status=status)
    response = approve_on_page(owner_page(login, owner_admin), named)
    assert response.status_code == 200
    assert "named people can no longer be decided" in response.content.decode()
    assert status_of(named) == TrustedPerson.Status.PENDING
    with pytest.raises(ValidationError, match="can no longer be decided"):
        trusted_person_decide(
            person=named, decided_by=owner_admin, approve=False, reason="No", with_mfa=False
        )
    assert status_of(named) == TrustedPerson.Status.PENDING
    assert not AuditEvent.objects.filter(action="trust.person_approved").exists()


def test_no_decision_once_the_delegations_end_has_passed(
    named: TrustedPerson, owner_admin: User
) -> None:
    now = timezone.now()
    Delegation.objects.filter(pk=named.delegation_id).update(
        starts_at=now - dt.timedelta(hours=2), ends_at=now - dt.timedelta(minutes=1)
    )
    with pytest.raises(ValidationError, match="can no longer be decided"):
        trusted_person_decide(person=named, decided_by=owner_admin, approve=True, with_mfa=True)
    assert status_of(named) == TrustedPerson.Status.PENDING


def test_only_the_roles_approver_group_decides_named_people(
    named: TrustedPerson,
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    login,
) -> None:
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin_2],
        catalog_roles=[ecs_admin],
    )
    response = approve_on_page(owner_page(login, owner_admin), named)
    assert "Only members of ECS approvers" in response.content.decode()
    assert status_of(named) == TrustedPerson.Status.PENDING
    with pytest.raises(PermissionDenied, match="ECS approvers"):
        trusted_person_decide(
            person=named, decided_by=owner_admin, approve=False, reason="No", with_mfa=False
        )
    assert status_of(named) == TrustedPerson.Status.PENDING
    denied = AuditEvent.objects.filter(action="trust.person_decision_denied")
    assert denied.count() == 2
    assert all(event.outcome == AuditEvent.Outcome.DENIED for event in denied)
    assert "ECS approvers" in denied.first().metadata["denied_because"]

    response = approve_on_page(owner_page(login, owner_admin_2), named)
    assert response.status_code == 200
    assert status_of(named) == TrustedPerson.Status.APPROVED


def test_a_group_on_the_partner_scopes_named_people_too(
    named: TrustedPerson, company_a: Organisation, owner_admin: User, owner_admin_2: User
) -> None:
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="Company B approvers",
        members=[owner_admin],
        partner_allowances=[PartnerAllowance.objects.get(organisation=company_a)],
    )
    with pytest.raises(PermissionDenied, match="Company B approvers"):
        trusted_person_decide(person=named, decided_by=owner_admin_2, approve=True, with_mfa=True)
    decided = trusted_person_decide(
        person=named, decided_by=owner_admin, approve=True, with_mfa=True
    )
    assert decided.status == TrustedPerson.Status.APPROVED


def test_an_owner_admin_who_belongs_to_the_partner_never_decides(
    named: TrustedPerson, company_b: Organisation, owner_admin: User
) -> None:
    Membership.objects.create(user=owner_admin, organisation=company_b, role=Membership.Role.STAFF)
    with pytest.raises(PermissionDenied, match="partner"):
        trusted_person_decide(person=named, decided_by=owner_admin, approve=True, with_mfa=True)
    assert status_of(named) == TrustedPerson.Status.PENDING


def test_approving_makes_the_grant_checks_of_an_approval(
    named: TrustedPerson, company_a: Organisation, ecs_admin: CatalogRole, owner_admin: User
) -> None:
    PartnerAllowance.objects.filter(organisation=company_a).delete()
    with pytest.raises(ValidationError, match="allow-list"):
        trusted_person_decide(person=named, decided_by=owner_admin, approve=True, with_mfa=True)
    assert status_of(named) == TrustedPerson.Status.PENDING
    # Refusing a person grants nothing: it needs no grant check.
    refused = trusted_person_decide(
        person=named,
        decided_by=owner_admin,
        approve=False,
        reason="Not on contract",
        with_mfa=False,
    )
    assert refused.status == TrustedPerson.Status.REJECTED


def test_approving_needs_the_owner_approved_scope_still(
    named: TrustedPerson, owner_admin: User
) -> None:
    Delegation.objects.filter(pk=named.delegation_id).update(trust_scope=TrustScope.PARTNER_ACCOUNT)
    with pytest.raises(ValidationError, match="no longer takes named people"):
        trusted_person_decide(person=named, decided_by=owner_admin, approve=True, with_mfa=True)
    assert status_of(named) == TrustedPerson.Status.PENDING


@pytest.mark.parametrize("status", [S.REQUESTED, S.SCHEDULED, S.APPROVED, S.APPLYING, S.ACTIVE])
def test_pending_and_granted_delegations_take_decisions(
    named: TrustedPerson, owner_admin: User, status: str
) -> None:
    Delegation.objects.filter(pk=named.delegation_id).update(status=status)
    decided = trusted_person_decide(
        person=named, decided_by=owner_admin, approve=True, with_mfa=True
    )
    assert decided.status == TrustedPerson.Status.APPROVED


def test_the_admin_who_offered_the_access_decides_its_named_people(
    company_a: Organisation,
    company_b: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    partner_admin: User,
    allow_b: None,
) -> None:
    """An offer is its owner admin's own decision: the offerer (the delegation's requester)
    is not kept from deciding on the people the partner proposes; the proposer stands in the
    requester's place."""
    offered = delegation_offer(
        owner=company_a,
        offered_by=owner_admin,
        partner=company_b,
        catalog_role=ecs_admin,
        reason="Support contract",
        ends_at=None,
        with_mfa=True,
        trust_scope=TrustScope.NAMED_OWNER_APPROVED,
    )
    assert offered.requested_by == owner_admin
    person = TrustedPerson.objects.create(
        delegation=offered, ram_user_name="Alice", proposed_by=partner_admin
    )
    decided = trusted_person_decide(
        person=person, decided_by=owner_admin, approve=True, with_mfa=True
    )
    assert decided.status == TrustedPerson.Status.APPROVED


def test_the_trust_page_offers_the_decision_only_while_it_can_be_made(
    named: TrustedPerson, owner_admin: User, login
) -> None:
    page = reverse("delegations:trust", args=[named.delegation_id])
    client = login(owner_admin)
    assert 'data-testid="approve-Alice"' in client.get(page).content.decode()
    Delegation.objects.filter(pk=named.delegation_id).update(status=S.REVOKED)
    body = client.get(page).content.decode()
    assert 'data-testid="approve-Alice"' not in body
    assert 'data-testid="reject-Alice"' not in body


def test_the_trust_page_offers_the_decision_only_to_those_who_may_make_it(
    named: TrustedPerson,
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    login,
) -> None:
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin_2],
        catalog_roles=[ecs_admin],
    )
    page_url = reverse("delegations:trust", args=[named.delegation_id])
    outside = login(owner_admin).get(page_url).content.decode()
    assert 'data-testid="approve-Alice"' not in outside
    assert 'data-testid="reject-Alice"' not in outside
    assert "Only members of ECS approvers" in outside
    assert owner_admin_2.email in outside  # who may decide instead
    inside = login(owner_admin_2).get(page_url).content.decode()
    assert 'data-testid="approve-Alice"' in inside and 'data-testid="reject-Alice"' in inside
    assert 'data-testid="people-deciders"' not in inside
