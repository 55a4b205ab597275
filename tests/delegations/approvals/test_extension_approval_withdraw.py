"""An approver takes back their own approval of an extension while it still waits for its
quorum, with the rules of a request's approval (test_approval_withdraw.py): only their own,
only an owner admin, only while undecided, under the delegation's row lock; audited as
`delegation.extension_approval_withdrawn`, and the owner's other admins are told. On the
delegation page, *Withdraw my approval* in the extension panel is shown only to them."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from auditor.presentation import describe_event
from delegations.approvals.services import approval_rule_set
from delegations.lifecycle.extensions import (
    extension_approval_withdraw,
    extension_approve,
    extension_reject,
)
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import CatalogRole, Delegation, DelegationExtension, OutboxMessage
from notifications.models import Delivery
from tests.delegations.approvals.test_extensions import active, ask  # noqa: F401
from tests.personas import make_member

pytestmark = pytest.mark.django_db
E = DelegationExtension.Status
WITHDRAWN = "delegation.extension_approval_withdrawn"


@pytest.fixture
def asked(
    active: Delegation,  # noqa: F811
    partner_admin: User,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
) -> DelegationExtension:
    """An extension of a role that now needs two approvals, approved by `owner_admin` only."""
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    extension = ask(active, partner_admin)
    approve(extension, owner_admin)
    return extension


def approve(extension: DelegationExtension, user: User) -> DelegationExtension:
    return extension_approve(extension=extension, approved_by=user, with_mfa=True)


def approvers_of(extension: DelegationExtension) -> set[object]:
    return {
        entry["approver"] for entry in DelegationExtension.objects.get(pk=extension.pk).approvals
    }


def test_an_approver_withdraws_their_approval_before_the_quorum(
    asked: DelegationExtension,
    owner_admin: User,
    owner_admin_2: User,
    partner_admin: User,
) -> None:
    outbox_before = OutboxMessage.objects.count()
    version = Delegation.objects.get(pk=asked.delegation_id).version

    withdrawn = extension_approval_withdraw(extension=asked, withdrawn_by=owner_admin)

    assert withdrawn.changed and withdrawn.status == E.REQUESTED
    assert approvers_of(asked) == set()
    after = Delegation.objects.get(pk=asked.delegation_id)
    assert after.version == version and after.ends_at == asked.previous_ends_at
    assert OutboxMessage.objects.count() == outbox_before
    event = AuditEvent.objects.get(target_id=str(asked.delegation_id), action=WITHDRAWN)
    assert event.actor == owner_admin
    assert event.outcome == AuditEvent.Outcome.SUCCESS
    assert event.metadata["extension"] == str(asked.pk)
    assert event.metadata["approvals_counted"] == 0
    assert event.metadata["approvals_required"] == 2
    assert event.metadata["approved_at"] and event.metadata["with_mfa"] is True
    # The auditor's console names it.
    assert (
        describe_event(event).title
        == f"{event.actor_label} withdrew their approval of the extension"
    )
    # The owner's other admins hear of it; the person who withdrew does not, nor the partner.
    told = set(
        Delivery.objects.filter(
            event="delegation.approval_withdrawn", recipient__isnull=False
        ).values_list("recipient_id", flat=True)
    )
    assert told == {owner_admin_2.pk}
    # Two approvals are needed again, and the same person may approve afresh.
    assert approve(asked, owner_admin_2).status == E.REQUESTED
    assert approve(asked, owner_admin).status == E.APPROVED
    assert Delegation.objects.get(pk=asked.delegation_id).ends_at == asked.new_ends_at


def test_a_second_click_changes_nothing_and_a_new_withdrawal_is_told_again(
    asked: DelegationExtension, owner_admin: User, owner_admin_2: User
) -> None:
    extension_approval_withdraw(extension=asked, withdrawn_by=owner_admin)
    again = extension_approval_withdraw(extension=asked, withdrawn_by=owner_admin)
    assert not again.changed
    assert AuditEvent.objects.filter(action=WITHDRAWN).count() == 1
    told = Delivery.objects.filter(event="delegation.approval_withdrawn", recipient=owner_admin_2)
    assert told.count() == 1
    # Approved and withdrawn once more: a withdrawal of its own, told of its own.
    approve(asked, owner_admin)
    assert extension_approval_withdraw(extension=asked, withdrawn_by=owner_admin).changed
    assert AuditEvent.objects.filter(action=WITHDRAWN).count() == 2
    assert told.count() == 2


def test_nobody_withdraws_someone_elses_approval(
    asked: DelegationExtension, owner_admin: User, owner_admin_2: User
) -> None:
    result = extension_approval_withdraw(extension=asked, withdrawn_by=owner_admin_2)
    assert not result.changed
    assert approvers_of(asked) == {owner_admin.pk}
    assert not AuditEvent.objects.filter(action=WITHDRAWN).exists()


@pytest.mark.parametrize("who", ["partner_admin", "auditor", "foreign_owner_admin"])
def test_only_the_owners_admins_withdraw(
    asked: DelegationExtension, owner_admin: User, who: str, request: pytest.FixtureRequest
) -> None:
    with pytest.raises(PermissionDenied):
        extension_approval_withdraw(extension=asked, withdrawn_by=request.getfixturevalue(who))
    assert approvers_of(asked) == {owner_admin.pk}


def test_an_approval_that_completed_the_quorum_cannot_be_withdrawn(
    asked: DelegationExtension, owner_admin: User, owner_admin_2: User
) -> None:
    approve(asked, owner_admin_2)
    for approver in (owner_admin, owner_admin_2):
        with pytest.raises(DelegationConflict, match="already decided"):
            extension_approval_withdraw(extension=asked, withdrawn_by=approver)
    assert approvers_of(asked) == {owner_admin.pk, owner_admin_2.pk}
    assert DelegationExtension.objects.get(pk=asked.pk).status == E.APPROVED


def test_nothing_to_withdraw_once_the_extension_was_rejected(
    asked: DelegationExtension, owner_admin: User, owner_admin_2: User
) -> None:
    extension_reject(extension=asked, rejected_by=owner_admin_2, reason="Not this week")
    with pytest.raises(DelegationConflict, match="already decided"):
        extension_approval_withdraw(extension=asked, withdrawn_by=owner_admin)
    assert approvers_of(asked) == {owner_admin.pk}


# --- the delegation page -------------------------------------------------------------------


def detail(delegation: Delegation) -> str:
    return reverse("delegations:detail", args=[delegation.pk])


def withdraw_url(extension: DelegationExtension) -> str:
    return reverse(
        "delegations:extension_approval_withdraw", args=[extension.delegation_id, extension.pk]
    )


BUTTON = 'data-testid="withdraw-extension-approval"'


def test_the_button_is_shown_only_to_the_approver_who_approved(
    asked: DelegationExtension,
    owner_admin: User,
    owner_admin_2: User,
    partner_admin: User,
    login,
) -> None:
    assert BUTTON in login(owner_admin).get(detail(asked.delegation)).content.decode()
    assert BUTTON not in login(owner_admin_2).get(detail(asked.delegation)).content.decode()
    assert BUTTON not in login(partner_admin).get(detail(asked.delegation)).content.decode()
    # Once the quorum is complete there is nothing to withdraw.
    approve(asked, owner_admin_2)
    assert BUTTON not in login(owner_admin).get(detail(asked.delegation)).content.decode()


def test_withdrawing_through_the_page(
    asked: DelegationExtension,
    owner_admin: User,
    owner_admin_2: User,
    login,
) -> None:
    url = withdraw_url(asked)
    assert login(owner_admin).get(url).status_code == 405
    response = login(owner_admin).post(url, follow=True)
    assert response.redirect_chain[-1][0] == detail(asked.delegation)
    body = response.content.decode()
    assert "Your approval of the extension is withdrawn" in body
    assert BUTTON not in body and 'data-testid="approve-extension"' in body
    assert approvers_of(asked) == set()
    # Someone else's post withdraws nothing of another approver's.
    approve(asked, owner_admin)
    other = login(owner_admin_2).post(url, follow=True).content.decode()
    assert "You have no approval on this extension to withdraw" in other
    assert approvers_of(asked) == {owner_admin.pk}


def test_the_page_refuses_once_decided(
    asked: DelegationExtension, owner_admin: User, owner_admin_2: User, login
) -> None:
    approve(asked, owner_admin_2)
    body = login(owner_admin).post(withdraw_url(asked), follow=True).content.decode()
    assert "already decided" in body
    assert approvers_of(asked) == {owner_admin.pk, owner_admin_2.pk}


def test_the_page_is_the_owners_only(
    asked: DelegationExtension,
    owner_admin: User,
    company_a: Organisation,
    partner_admin: User,
    foreign_owner_admin: User,
    login,
) -> None:
    url = withdraw_url(asked)
    assert login(partner_admin).post(url).status_code == 403
    assert login(foreign_owner_admin).post(url).status_code == 404
    auditor_a = make_member(company_a, Membership.Role.AUDITOR, email="aud@company-a.example")
    assert login(auditor_a).post(url).status_code == 403
    # An extension this delegation does not have is 404 too.
    wrong = reverse(
        "delegations:extension_approval_withdraw",
        args=[asked.delegation_id, "00000000-0000-0000-0000-000000000000"],
    )
    assert login(owner_admin).post(wrong).status_code == 404
    assert approvers_of(asked) == {owner_admin.pk}


def test_the_withdrawal_reads_in_chinese(
    asked: DelegationExtension, owner_admin: User, login
) -> None:
    owner_admin.language = "zh-hans"
    owner_admin.save(update_fields=["language"])
    client = login(owner_admin)
    assert "撤回我的审批" in client.get(detail(asked.delegation)).content.decode()
    body = client.post(withdraw_url(asked), follow=True).content.decode()
    assert "您对延期的审批已撤回" in body
