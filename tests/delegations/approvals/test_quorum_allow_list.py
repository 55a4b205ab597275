"""A member of a partner never decides that partner's requests, so putting a partner on the
allow-list when some of the owner's admins belong to it starts that partner's requests with
fewer possible approvers than the other partners': when that leaves some role's requests from
it with fewer people who could decide them than the role's quorum, the addition (made now, or
proposed and approved under four eyes) is refused, naming the admins, the owner, the partner,
the role and its quorum, audited as refused, and nothing is added."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from accounts.services import membership_create
from audit.models import AuditEvent
from auditor.presentation import describe_event
from delegations.approvals.four_eyes import four_eyes_set, rule_proposal_approve
from delegations.approvals.services import approval_rule_set
from delegations.catalog.allow_list import partner_allowance_add
from delegations.catalog.proposals import partner_allowance_add_or_propose
from delegations.models import CatalogRole, PartnerAllowance, RuleProposal
from tests.delegations.lifecycle.test_decision_races import race
from tests.personas import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def quorum_of_two(ecs_admin: CatalogRole, owner_admin: User, owner_admin_2: User) -> None:
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)


@pytest.fixture
def admin_in_b(company_b: Organisation, owner_admin_2: User) -> User:
    """The owner's second admin is also one of company B's staff (B is not allow-listed yet)."""
    Membership.objects.create(user=owner_admin_2, organisation=company_b, role="staff")
    return owner_admin_2


def _denied_additions() -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action="partner_allowance.add_denied", outcome=AuditEvent.Outcome.DENIED
        ).order_by("sequence")
    )


def _assert_refusal_names_everything(message: str, admin: User) -> None:
    assert admin.email in message and "Company A" in message and "Company B" in message
    assert "ecs-admin" in message and "quorum of 2" in message


def test_allow_listing_a_partner_the_quorum_could_not_decide_for_is_refused(
    company_a: Organisation,
    owner_admin: User,
    admin_in_b: User,
    quorum_of_two: None,
) -> None:
    with pytest.raises(ValidationError) as refused:
        partner_allowance_add(
            owner=company_a, added_by=owner_admin, partner_account_uid="12345678", label="B"
        )
    assert "partner_account_uid" in refused.value.message_dict
    _assert_refusal_names_everything(" ".join(refused.value.messages), admin_in_b)
    assert not PartnerAllowance.objects.exists()
    assert not AuditEvent.objects.filter(action="partner_allowance.added").exists()
    [event] = _denied_additions()
    assert event.actor_id == owner_admin.pk and event.organisation_id == company_a.pk
    assert event.target_label == "12345678"
    assert event.after == {"partner_account_uid": "12345678", "label": "B"}
    assert "quorum of 2" in event.metadata["denied_because"]
    described = describe_event(event)
    assert described.category == "denied"
    assert described.title.endswith(
        "<admin@company-a.example> tried to put 12345678 on the allow-list and was refused"
    )
    assert [fact.label for fact in described.facts] == ["Why"]
    assert "quorum of 2" in described.facts[0].value


def test_the_page_shows_the_refusal_on_the_form(
    company_a: Organisation,
    owner_admin: User,
    admin_in_b: User,
    quorum_of_two: None,
    login: Callable,
) -> None:
    response = login(owner_admin).post(
        reverse("delegations:allowance_add"), {"partner_account_uid": "12345678", "label": ""}
    )
    assert response.status_code == 400
    errors = response.context["allowance_form"].errors["partner_account_uid"]
    _assert_refusal_names_everything(" ".join(errors), admin_in_b)
    assert not PartnerAllowance.objects.exists()
    assert len(_denied_additions()) == 1


def test_a_partner_is_allow_listed_when_enough_people_could_still_decide(
    company_a: Organisation,
    owner_admin: User,
    admin_in_b: User,
    quorum_of_two: None,
) -> None:
    make_member(company_a, Membership.Role.ADMIN, email="third@company-a.example")
    partner_allowance_add(owner=company_a, added_by=owner_admin, partner_account_uid="12345678")
    assert PartnerAllowance.objects.filter(partner_account_uid="12345678").exists()
    assert not _denied_additions()


def test_a_partner_nobody_of_the_owner_belongs_to_is_allow_listed(
    company_a: Organisation, company_b: Organisation, owner_admin: User, quorum_of_two: None
) -> None:
    partner_allowance_add(owner=company_a, added_by=owner_admin, partner_account_uid="12345678")
    assert PartnerAllowance.objects.exists() and not _denied_additions()


def test_four_eyes_refuses_the_proposal_and_its_approval(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    quorum_of_two: None,
) -> None:
    """Proposed while nobody of the owner belonged to B, approved after one joined it: the
    approval is refused, on the record, and the proposal waits (a third admin mends it)."""
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    proposal = partner_allowance_add_or_propose(
        owner=company_a, user=owner_admin, partner_account_uid="12345678", label="B"
    )
    assert isinstance(proposal, RuleProposal)
    Membership.objects.create(user=owner_admin_2, organisation=company_b, role="staff")

    with pytest.raises(ValidationError, match="quorum of 2"):
        partner_allowance_add_or_propose(
            owner=company_a, user=owner_admin, partner_account_uid="12345678", label="B"
        )
    third = make_member(company_a, Membership.Role.AUDITOR, email="third@company-a.example")
    with pytest.raises(ValidationError, match="quorum of 2"):
        rule_proposal_approve(proposal=proposal, approved_by=owner_admin_2)
    assert not PartnerAllowance.objects.exists()
    proposal.refresh_from_db()
    assert proposal.status == RuleProposal.Status.PENDING
    denied = _denied_additions()
    assert [event.actor_id for event in denied] == [owner_admin.pk, owner_admin_2.pk]

    Membership.objects.filter(user=third).update(role=Membership.Role.ADMIN)
    rule_proposal_approve(proposal=proposal, approved_by=owner_admin_2)
    assert PartnerAllowance.objects.filter(partner_account_uid="12345678").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL")
def test_an_addition_and_a_join_that_together_break_a_quorum_cannot_both_pass(
    company_a: Organisation,
    company_b: Organisation,
    partner_admin: User,
    owner_admin: User,
    owner_admin_2: User,
    quorum_of_two: None,
) -> None:
    """Each alone leaves two possible approvers of company B's requests; together they would
    leave one. Both take the owner's rules lock before they look, so the second sees the
    first."""
    for _ in range(5):
        PartnerAllowance.objects.all().delete()
        Membership.objects.filter(user=owner_admin_2, organisation=company_b).delete()
        added, joined = race(
            lambda: partner_allowance_add(
                owner=company_a, added_by=owner_admin, partner_account_uid="12345678"
            ),
            lambda: membership_create(
                organisation=company_b,
                user=owner_admin_2,
                role=Membership.Role.STAFF,
                added_by=partner_admin,
            ),
        )
        passed = [result for result in (added, joined) if not isinstance(result, Exception)]
        refused = [result for result in (added, joined) if isinstance(result, ValidationError)]
        assert len(passed) == 1 and len(refused) == 1, (added, joined)
