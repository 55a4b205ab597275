"""An approver takes back their own approval of a fleet grant while it still waits for its
quorum, with the rules of a request's approval: only their own, only an owner admin, only while
undecided, under the fleet's row lock and each account's. Every account's approval goes at
once (each audited as `delegation.approval_withdrawn`), the fleet's event is
`fleet.approval_withdrawn`, and the owner's other admins hear of it once for the fleet. On the
fleet page, *Withdraw my approval* is shown only to them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from auditor.presentation import describe_event
from delegations.approvals.services import approval_rule_set
from delegations.fleet import services as fleet
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import CatalogRole, Delegation, DelegationApproval, FleetGrant
from notifications.models import Delivery
from tests.delegations.fleet.test_services import (  # noqa: F401 - fixtures
    all_accounts,
    events,
    fleet_role,
    make_fleet,
    members,
    staging_accounts,
    statuses,
)
from tests.personas import make_member

pytestmark = pytest.mark.django_db
Status = Delegation.Status
BUTTON = 'data-testid="fleet-withdraw-approval"'


@pytest.fixture
def approved_once(
    make_fleet: Callable[..., FleetGrant],  # noqa: F811
    fleet_role: CatalogRole,  # noqa: F811
    owner_admin: User,
    owner_admin_2: User,
) -> FleetGrant:
    """A fleet of a role that needs two approvals, approved by `owner_admin` only."""
    approval_rule_set(catalog_role=fleet_role, approvals_required=2, set_by=owner_admin)
    grant = make_fleet()
    fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    return FleetGrant.objects.get(pk=grant.pk)


def approvers_of(grant: FleetGrant) -> dict[str, set[object]]:
    """Each account's approvers, by account UID."""
    return {
        member.managed_role.cloud_account.account_uid: set(
            DelegationApproval.objects.filter(delegation=member).values_list(
                "approver_id", flat=True
            )
        )
        for member in members(grant)
    }


def approve(grant: FleetGrant, user: User) -> FleetGrant:
    return fleet.fleet_approve(
        fleet=FleetGrant.objects.get(pk=grant.pk), approved_by=user, with_mfa=True
    )


def test_an_approval_short_of_the_quorum_is_on_the_fleets_record_too(
    approved_once: FleetGrant, owner_admin: User
) -> None:
    """As its withdrawal is: the fleet's own history shows who approved it while it waits."""
    recorded = AuditEvent.objects.get(
        action="fleet.approval_recorded", target_id=str(approved_once.pk)
    )
    assert recorded.actor_id == owner_admin.pk
    assert recorded.metadata["approvals_counted"] == 1
    assert recorded.metadata["approvals_required"] == 2
    assert sorted(recorded.metadata["accounts"]) == sorted(
        m.managed_role.cloud_account.account_uid for m in members(approved_once)
    )
    assert not AuditEvent.objects.filter(action="fleet.approved").exists()


def test_an_approver_withdraws_their_approval_of_every_account_before_the_quorum(
    approved_once: FleetGrant, owner_admin: User, owner_admin_2: User, partner_admin: User
) -> None:
    assert all(given == {owner_admin.pk} for given in approvers_of(approved_once).values())

    withdrawn = fleet.fleet_approval_withdraw(fleet=approved_once, withdrawn_by=owner_admin)

    assert withdrawn.changed and withdrawn.decided_at is None
    assert withdrawn.version == approved_once.version + 1  # like an approval of the fleet
    assert all(given == set() for given in approvers_of(approved_once).values())
    assert statuses(approved_once) == [Status.REQUESTED] * 4
    assert events(approved_once)[-1] == "fleet.approval_withdrawn"
    event = AuditEvent.objects.get(
        target_id=str(approved_once.pk), action="fleet.approval_withdrawn"
    )
    assert event.actor == owner_admin
    assert event.metadata["accounts"] == list(approvers_of(approved_once))
    assert event.metadata["approvals_counted"] == 0
    assert event.metadata["approvals_required"] == 2
    assert (
        describe_event(event).title == f"{event.actor_label} withdrew their approval of the fleet"
    )
    # Each account's own record, as a request's withdrawal.
    for member in members(approved_once):
        assert AuditEvent.objects.filter(
            target_id=str(member.pk), action="delegation.approval_withdrawn"
        ).exists()
    # One notice for the fleet to the owner's other admins; none to the person or the partner.
    told = Delivery.objects.filter(event="delegation.approval_withdrawn", recipient__isnull=False)
    assert sorted(told.values_list("recipient_id", flat=True)) == [owner_admin_2.pk]
    assert "in 4 accounts was withdrawn" in told.get().content["title"]
    # Two approvals are needed again, and the same person may approve afresh.
    assert approve(approved_once, owner_admin_2).decided_at is None
    assert approve(approved_once, owner_admin).decided_at is not None
    assert set(statuses(approved_once)) <= {Status.APPROVED, Status.SCHEDULED}


def test_a_second_click_changes_nothing(approved_once: FleetGrant, owner_admin: User) -> None:
    fleet.fleet_approval_withdraw(fleet=approved_once, withdrawn_by=owner_admin)
    again = fleet.fleet_approval_withdraw(fleet=approved_once, withdrawn_by=owner_admin)
    assert not again.changed
    assert events(approved_once).count("fleet.approval_withdrawn") == 1
    assert AuditEvent.objects.filter(action="delegation.approval_withdrawn").count() == 4


def test_nobody_withdraws_someone_elses_approval(
    approved_once: FleetGrant, owner_admin: User, owner_admin_2: User
) -> None:
    result = fleet.fleet_approval_withdraw(fleet=approved_once, withdrawn_by=owner_admin_2)
    assert not result.changed and result.version == approved_once.version
    assert all(given == {owner_admin.pk} for given in approvers_of(approved_once).values())
    assert "fleet.approval_withdrawn" not in events(approved_once)


@pytest.mark.parametrize("who", ["partner_admin", "auditor", "foreign_owner_admin"])
def test_only_the_owners_admins_withdraw(
    approved_once: FleetGrant, owner_admin: User, who: str, request: pytest.FixtureRequest
) -> None:
    with pytest.raises(PermissionDenied):
        fleet.fleet_approval_withdraw(
            fleet=approved_once, withdrawn_by=request.getfixturevalue(who)
        )
    assert all(given == {owner_admin.pk} for given in approvers_of(approved_once).values())


def test_an_approval_that_completed_the_quorum_cannot_be_withdrawn(
    approved_once: FleetGrant, owner_admin: User, owner_admin_2: User
) -> None:
    approve(approved_once, owner_admin_2)
    for approver in (owner_admin, owner_admin_2):
        with pytest.raises(DelegationConflict, match="already decided"):
            fleet.fleet_approval_withdraw(fleet=approved_once, withdrawn_by=approver)
    assert all(
        given == {owner_admin.pk, owner_admin_2.pk}
        for given in approvers_of(approved_once).values()
    )


def test_nothing_to_withdraw_once_the_fleet_was_rejected(
    approved_once: FleetGrant, owner_admin: User, owner_admin_2: User
) -> None:
    fleet.fleet_reject(fleet=approved_once, rejected_by=owner_admin_2, reason="Not this quarter")
    with pytest.raises(DelegationConflict, match="already decided"):
        fleet.fleet_approval_withdraw(fleet=approved_once, withdrawn_by=owner_admin)
    assert all(given == {owner_admin.pk} for given in approvers_of(approved_once).values())


# --- the fleet page ------------------------------------------------------------------------


def detail(grant: FleetGrant) -> str:
    return reverse("delegations:fleet_detail", args=[grant.pk])


def withdraw_url(grant: FleetGrant) -> str:
    return reverse("delegations:fleet_approval_withdraw", args=[grant.pk])


def test_the_button_is_shown_only_to_the_approver_who_approved(
    approved_once: FleetGrant, owner_admin: User, owner_admin_2: User, login
) -> None:
    mine = login(owner_admin).get(detail(approved_once)).content.decode()
    assert BUTTON in mine and "1 of 2 approvals" in mine
    # Having approved, they may not approve twice: no Approve, the reason instead.
    assert 'data-testid="fleet-approve"' not in mine and "already approved" in mine
    theirs = login(owner_admin_2).get(detail(approved_once)).content.decode()
    assert BUTTON not in theirs and 'data-testid="fleet-approve"' in theirs
    # Once the quorum is complete there is nothing to withdraw.
    approve(approved_once, owner_admin_2)
    assert BUTTON not in login(owner_admin).get(detail(approved_once)).content.decode()


def test_withdrawing_through_the_page(
    approved_once: FleetGrant, owner_admin: User, owner_admin_2: User, login
) -> None:
    url = withdraw_url(approved_once)
    assert login(owner_admin).get(url).status_code == 405
    response = login(owner_admin).post(url, follow=True)
    assert response.redirect_chain[-1][0] == detail(approved_once)
    body = response.content.decode()
    assert "Your approval of the fleet is withdrawn" in body
    assert BUTTON not in body and 'data-testid="fleet-approve"' in body
    assert "0 of 2 approvals" in body
    assert all(given == set() for given in approvers_of(approved_once).values())
    # Someone else's post withdraws nothing of another approver's.
    approve(approved_once, owner_admin)
    other = login(owner_admin_2).post(url, follow=True).content.decode()
    assert "You have no approval on this fleet to withdraw" in other
    assert all(given == {owner_admin.pk} for given in approvers_of(approved_once).values())


def test_the_page_refuses_once_decided(
    approved_once: FleetGrant, owner_admin: User, owner_admin_2: User, login
) -> None:
    approve(approved_once, owner_admin_2)
    body = login(owner_admin).post(withdraw_url(approved_once), follow=True).content.decode()
    assert "already decided" in body


def test_the_page_is_the_owners_only(
    approved_once: FleetGrant,
    owner_admin: User,
    company_a: Organisation,
    partner_admin: User,
    foreign_owner_admin: User,
    login,
) -> None:
    url = withdraw_url(approved_once)
    assert login(partner_admin).post(url).status_code == 403
    assert login(foreign_owner_admin).post(url).status_code == 404
    auditor_a = make_member(company_a, Membership.Role.AUDITOR, email="aud@company-a.example")
    assert login(auditor_a).post(url).status_code == 403
    assert all(given == {owner_admin.pk} for given in approvers_of(approved_once).values())


def test_the_withdrawal_reads_in_chinese(
    approved_once: FleetGrant, owner_admin: User, login
) -> None:
    owner_admin.language = "zh-hans"
    owner_admin.save(update_fields=["language"])
    client = login(owner_admin)
    assert "撤回我的审批" in client.get(detail(approved_once)).content.decode()
    body = client.post(withdraw_url(approved_once), follow=True).content.decode()
    assert "您对批量授权的审批已从每个账号撤回" in body
