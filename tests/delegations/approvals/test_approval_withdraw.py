"""An approver takes back their own approval while the request still waits for its quorum:
the approval is gone (the request needs one more again), the withdrawal is audited and the
owner's other admins are told. Nobody withdraws someone else's approval, nor one that already
completed the quorum. It is also the way out when an earlier approver's chosen end has passed:
that approver withdraws, and the request can be approved afresh instead of rejected."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.services import approval_rule_set
from delegations.lifecycle.services import (
    delegation_approval_withdraw,
    delegation_approve,
    delegation_reject,
)
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import (
    ApprovalRule,
    CatalogRole,
    Delegation,
    DelegationApproval,
    OutboxMessage,
)
from notifications.models import Delivery
from tests.delegations.factories import fleet_of
from tests.personas import make_member

pytestmark = pytest.mark.django_db
S = Delegation.Status


@pytest.fixture
def quorum_2(ecs_admin: CatalogRole, owner_admin: User, owner_admin_2: User) -> ApprovalRule:
    return approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)


def approve(delegation: Delegation, user: User, **extra: object) -> Delegation:
    return delegation_approve(delegation=delegation, approved_by=user, with_mfa=True, **extra)


def approvers_of(delegation: Delegation) -> set[object]:
    return set(
        DelegationApproval.objects.filter(delegation=delegation).values_list(
            "approver_id", flat=True
        )
    )


def test_an_approver_withdraws_their_approval_before_the_quorum(
    requested: Delegation,
    quorum_2: ApprovalRule,
    owner_admin: User,
    owner_admin_2: User,
    partner_admin: User,
) -> None:
    approve(requested, owner_admin)
    outbox_before = OutboxMessage.objects.count()
    version = Delegation.objects.get(pk=requested.pk).version

    withdrawn = delegation_approval_withdraw(delegation=requested, withdrawn_by=owner_admin)

    assert withdrawn.changed and withdrawn.status == S.REQUESTED
    assert withdrawn.version == version  # like an approval, it makes nobody's page stale
    assert approvers_of(requested) == set()
    assert OutboxMessage.objects.count() == outbox_before
    event = AuditEvent.objects.get(
        target_id=str(requested.pk), action="delegation.approval_withdrawn"
    )
    assert event.actor == owner_admin
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.metadata["approvals_counted"] == 0
    assert event.metadata["approvals_required"] == 2
    assert event.metadata["approved_at"]
    # The owner's other admins hear of it; the person who withdrew does not, nor the partner.
    told = set(
        Delivery.objects.filter(
            event="delegation.approval_withdrawn", recipient__isnull=False
        ).values_list("recipient_id", flat=True)
    )
    assert told == {owner_admin_2.pk}
    # Now two approvals are needed again, and the same person may approve afresh.
    assert approve(requested, owner_admin_2).status == S.REQUESTED
    assert approve(requested, owner_admin).status == S.APPROVED


def test_a_second_click_changes_nothing(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User
) -> None:
    approve(requested, owner_admin)
    delegation_approval_withdraw(delegation=requested, withdrawn_by=owner_admin)
    again = delegation_approval_withdraw(delegation=requested, withdrawn_by=owner_admin)
    assert not again.changed
    assert AuditEvent.objects.filter(action="delegation.approval_withdrawn").count() == 1
    assert Delivery.objects.filter(event="delegation.approval_withdrawn").count() == 1


def test_nobody_withdraws_someone_elses_approval(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User
) -> None:
    approve(requested, owner_admin)
    result = delegation_approval_withdraw(delegation=requested, withdrawn_by=owner_admin_2)
    assert not result.changed
    assert approvers_of(requested) == {owner_admin.pk}
    assert not AuditEvent.objects.filter(action="delegation.approval_withdrawn").exists()


@pytest.mark.parametrize("who", ["partner_admin", "auditor", "foreign_owner_admin"])
def test_only_the_owners_admins_withdraw(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, who: str, request
) -> None:
    approve(requested, owner_admin)
    with pytest.raises(PermissionDenied):
        delegation_approval_withdraw(
            delegation=requested, withdrawn_by=request.getfixturevalue(who)
        )
    assert approvers_of(requested) == {owner_admin.pk}


def test_an_approval_that_completed_the_quorum_cannot_be_withdrawn(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User
) -> None:
    approve(requested, owner_admin)
    approve(requested, owner_admin_2)
    for approver in (owner_admin, owner_admin_2):
        with pytest.raises(DelegationConflict, match="already decided"):
            delegation_approval_withdraw(delegation=requested, withdrawn_by=approver)
    assert approvers_of(requested) == {owner_admin.pk, owner_admin_2.pk}
    assert Delegation.objects.get(pk=requested.pk).status == S.APPROVED


def test_nothing_to_withdraw_once_the_request_was_rejected(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User
) -> None:
    approve(requested, owner_admin)
    delegation_reject(delegation=requested, rejected_by=owner_admin_2, reason="No longer needed")
    with pytest.raises(DelegationConflict, match="already decided"):
        delegation_approval_withdraw(delegation=requested, withdrawn_by=owner_admin)
    assert approvers_of(requested) == {owner_admin.pk}


def test_a_fleet_account_is_not_withdrawn_from_alone(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User
) -> None:
    approve(requested, owner_admin)
    fleet_of(requested)
    with pytest.raises(DelegationConflict, match="fleet"):
        delegation_approval_withdraw(delegation=requested, withdrawn_by=owner_admin)
    assert approvers_of(requested) == {owner_admin.pk}


def test_an_approval_whose_end_passed_is_withdrawn_and_the_request_approved_afresh(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User
) -> None:
    approve(requested, owner_admin, ends_at=timezone.now() + dt.timedelta(hours=1))
    DelegationApproval.objects.filter(delegation=requested).update(
        ends_at=timezone.now() - dt.timedelta(minutes=1)
    )
    with pytest.raises(ValidationError, match="withdraw their approval"):
        approve(requested, owner_admin_2)
    delegation_approval_withdraw(delegation=requested, withdrawn_by=owner_admin)
    assert approve(requested, owner_admin_2).status == S.REQUESTED
    approved = approve(requested, owner_admin)
    assert approved.status == S.APPROVED
    assert approved.ends_at is None  # the withdrawn approval's end no longer applies


# --- the request page ----------------------------------------------------------------------


def test_the_button_is_shown_only_to_the_approver_who_approved(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User, login
) -> None:
    approve(requested, owner_admin)
    page = reverse("delegations:detail", args=[requested.pk])
    mine = login(owner_admin).get(page).content.decode()
    assert 'data-testid="withdraw-approval"' in mine
    theirs = login(owner_admin_2).get(page).content.decode()
    assert 'data-testid="withdraw-approval"' not in theirs
    # Once the quorum is complete there is nothing to withdraw.
    approve(requested, owner_admin_2)
    assert 'data-testid="withdraw-approval"' not in login(owner_admin).get(page).content.decode()


def test_withdrawing_through_the_page(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User, login
) -> None:
    approve(requested, owner_admin)
    url = reverse("delegations:approval_withdraw", args=[requested.pk])
    assert login(owner_admin).get(url).status_code == 405
    response = login(owner_admin).post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("delegations:detail", args=[requested.pk])
    body = response.content.decode()
    assert "Your approval is withdrawn" in body
    assert 'data-testid="withdraw-approval"' not in body
    assert approvers_of(requested) == set()
    # Someone else's post withdraws nothing of another approver's.
    approve(requested, owner_admin)
    other = login(owner_admin_2).post(url, follow=True).content.decode()
    assert "You have no approval on this request to withdraw" in other
    assert approvers_of(requested) == {owner_admin.pk}


def test_the_page_refuses_once_decided(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, owner_admin_2: User, login
) -> None:
    approve(requested, owner_admin)
    approve(requested, owner_admin_2)
    url = reverse("delegations:approval_withdraw", args=[requested.pk])
    body = login(owner_admin).post(url, follow=True).content.decode()
    assert "already decided" in body
    assert approvers_of(requested) == {owner_admin.pk, owner_admin_2.pk}


def test_the_page_is_the_owners_only(
    requested: Delegation,
    quorum_2: ApprovalRule,
    owner_admin: User,
    company_a: Organisation,
    partner_admin: User,
    foreign_owner_admin: User,
    login,
) -> None:
    approve(requested, owner_admin)
    url = reverse("delegations:approval_withdraw", args=[requested.pk])
    assert login(partner_admin).post(url).status_code == 403
    assert login(foreign_owner_admin).post(url).status_code == 404
    auditor_a = make_member(company_a, Membership.Role.AUDITOR, email="aud@company-a.example")
    assert login(auditor_a).post(url).status_code == 403
    assert approvers_of(requested) == {owner_admin.pk}


@pytest.fixture
def english_after() -> Iterator[None]:
    """A page served in zh-hans leaves the thread speaking it (LocaleMiddleware never
    deactivates): the tests after this one read English again."""
    yield
    translation.activate("en")


def test_the_withdrawal_reads_in_chinese(
    requested: Delegation, quorum_2: ApprovalRule, owner_admin: User, login, english_after: None
) -> None:
    approve(requested, owner_admin)
    owner_admin.language = "zh-hans"
    owner_admin.save(update_fields=["language"])
    client = login(owner_admin)
    page = client.get(reverse("delegations:detail", args=[requested.pk])).content.decode()
    assert "撤回我的审批" in page
    body = client.post(
        reverse("delegations:approval_withdraw", args=[requested.pk]), follow=True
    ).content.decode()
    assert "您的审批已撤回" in body
