"""Extensions: asked by the partner, decided like a request (groups, quorum, nobody twice),
approved without a gap (the fail-safe end moves with a reconcile), rejected or lapsed so that
access ends as planned."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.services import approval_rule_set, approver_group_create
from delegations.lifecycle.automatic import delegation_mark_active, delegations_expire_due
from delegations.lifecycle.extensions import (
    extension_approve,
    extension_reject,
    extension_request,
)
from delegations.lifecycle.services import delegation_approve
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import (
    CatalogRole,
    Delegation,
    DelegationExtension,
    OutboxMessage,
    PartnerAllowance,
)
from notifications.models import Delivery
from tests.personas import make_member

pytestmark = pytest.mark.django_db
S = Delegation.Status
E = DelegationExtension.Status


@pytest.fixture
def active(make_request: Callable[..., Delegation], owner_admin: User) -> Delegation:
    delegation = make_request(ends_at=timezone.now() + dt.timedelta(hours=4))
    delegation_approve(delegation=delegation, approved_by=owner_admin, with_mfa=True)
    return delegation_mark_active(delegation=delegation)


def ask(delegation: Delegation, partner_admin: User, hours: int = 8) -> DelegationExtension:
    return extension_request(
        delegation=delegation,
        requested_by=partner_admin,
        new_ends_at=delegation.ends_at + dt.timedelta(hours=hours),
        reason="The migration overran",
    )


def test_an_approved_extension_moves_the_end_without_a_gap(
    active: Delegation, partner_admin: User, owner_admin_2: User
) -> None:
    extension = ask(active, partner_admin)
    # The approval's message was published: the extension's request gets one of its own.
    OutboxMessage.objects.update(dispatched_at=timezone.now())
    outbox_before = OutboxMessage.objects.count()
    done = extension_approve(extension=extension, approved_by=owner_admin_2, with_mfa=True)
    assert done.status == E.APPROVED
    after = Delegation.objects.get(pk=active.pk)
    assert after.ends_at == extension.new_ends_at and after.status == S.ACTIVE
    assert OutboxMessage.objects.count() == outbox_before + 1  # the fail-safe end moves
    actions = list(
        AuditEvent.objects.filter(target_id=str(active.pk)).values_list("action", flat=True)
    )
    assert "delegation.extension_requested" in actions and "delegation.extended" in actions


def test_a_rejected_extension_leaves_the_planned_end(
    active: Delegation, partner_admin: User, owner_admin: User
) -> None:
    planned = active.ends_at
    extension = ask(active, partner_admin)
    assert extension_reject(extension=extension, rejected_by=owner_admin, reason="No").status == (
        E.REJECTED
    )
    assert Delegation.objects.get(pk=active.pk).ends_at == planned
    with pytest.raises(DelegationConflict):
        extension_approve(extension=extension, approved_by=owner_admin, with_mfa=True)


def test_an_extension_after_the_end_lapses(
    active: Delegation, partner_admin: User, owner_admin: User
) -> None:
    extension = ask(active, partner_admin)
    assert delegations_expire_due(now=active.ends_at + dt.timedelta(seconds=1)) == 1
    lapsed = extension_approve(extension=extension, approved_by=owner_admin, with_mfa=True)
    assert lapsed.status == E.LAPSED
    assert Delegation.objects.get(pk=active.pk).ends_at == extension.previous_ends_at


def test_quorum_and_groups_apply_to_extensions(
    active: Delegation,
    partner_admin: User,
    owner_admin: User,
    owner_admin_2: User,
    company_a: Organisation,
    ecs_admin: CatalogRole,
) -> None:
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin, owner_admin_2],
        catalog_roles=[ecs_admin],
    )
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    extension = ask(active, partner_admin)
    assert extension_approve(
        extension=extension, approved_by=owner_admin, with_mfa=True
    ).status == (E.REQUESTED)
    with pytest.raises(PermissionDenied, match="already approved"):
        extension_approve(extension=extension, approved_by=owner_admin, with_mfa=True)
    assert AuditEvent.objects.filter(
        action="delegation.extension_denied", outcome="denied"
    ).exists()
    assert (
        extension_approve(extension=extension, approved_by=owner_admin_2, with_mfa=True).status
        == E.APPROVED
    )


def quorum_of_two(ecs_admin: CatalogRole, owner_admin: User) -> None:
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)


def demote(user: User, owner: Organisation, partner: Organisation) -> None:
    Membership.objects.filter(user=user, organisation=owner).update(role=Membership.Role.AUDITOR)


def join_partner(user: User, owner: Organisation, partner: Organisation) -> None:
    Membership.objects.create(user=user, organisation=partner, role=Membership.Role.STAFF)


@pytest.mark.parametrize("since", [demote, join_partner], ids=["demoted", "joined_partner"])
def test_an_extension_approval_stops_counting_when_its_approver_could_no_longer_decide(
    active: Delegation,
    partner_admin: User,
    owner_admin: User,
    owner_admin_2: User,
    company_a: Organisation,
    company_b: Organisation,
    ecs_admin: CatalogRole,
    since: Callable[[User, Organisation, Organisation], None],
) -> None:
    # Found by review: extensions use the same tally, which counted such approvals.
    quorum_of_two(ecs_admin, owner_admin)
    extension = ask(active, partner_admin)
    extension_approve(extension=extension, approved_by=owner_admin_2, with_mfa=True)
    since(owner_admin_2, company_a, company_b)
    assert (
        extension_approve(extension=extension, approved_by=owner_admin, with_mfa=True).status
        == E.REQUESTED
    )
    assert Delegation.objects.get(pk=active.pk).ends_at == extension.previous_ends_at
    third = make_member(company_a, Membership.Role.ADMIN, email="third-admin@company-a.example")
    assert (
        extension_approve(extension=extension, approved_by=third, with_mfa=True).status
        == E.APPROVED
    )


def take_off_the_allow_list(delegation: Delegation) -> None:
    PartnerAllowance.objects.filter(
        organisation=delegation.owner, partner_account_uid=delegation.partner.account_uid
    ).delete()


def deactivate_the_role(delegation: Delegation) -> None:
    CatalogRole.objects.filter(pk=delegation.catalog_role_id).update(is_active=False)


def make_the_role_high_privilege(delegation: Delegation) -> None:
    CatalogRole.objects.filter(pk=delegation.catalog_role_id).update(
        policies=[{"type": "System", "name": "AliyunRAMFullAccess"}], allows_high_privilege=False
    )


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (take_off_the_allow_list, "allow-list"),
        (deactivate_the_role, "not in the owner's catalogue"),
        (make_the_role_high_privilege, "no opt-in for high privilege"),
    ],
    ids=["partner_off_the_allow_list", "role_deactivated", "role_now_high_privilege"],
)
def test_an_extension_is_refused_when_the_access_could_no_longer_be_granted(
    active: Delegation,
    partner_admin: User,
    owner_admin_2: User,
    change: Callable[[Delegation], None],
    refusal: str,
) -> None:
    # Found by review: extending never re-ran the checks an approval makes.
    extension = ask(active, partner_admin)
    change(active)
    outbox_before = OutboxMessage.objects.count()
    with pytest.raises(ValidationError, match=refusal):
        extension_approve(extension=extension, approved_by=owner_admin_2, with_mfa=True)
    assert DelegationExtension.objects.get(pk=extension.pk).status == E.REQUESTED
    assert DelegationExtension.objects.get(pk=extension.pk).approvals == []
    assert Delegation.objects.get(pk=active.pk).ends_at == extension.previous_ends_at
    assert OutboxMessage.objects.count() == outbox_before
    if change is make_the_role_high_privilege:
        denied = AuditEvent.objects.get(action="delegation.extension_denied")
        assert "high privilege" in denied.metadata["denied_because"]


def test_bad_extensions_are_refused_and_nothing_is_saved(
    active: Delegation,
    make_request: Callable[..., Delegation],
    partner_admin: User,
    owner_admin: User,
) -> None:
    with pytest.raises(ValidationError):
        extension_request(
            delegation=active,
            requested_by=partner_admin,
            new_ends_at=active.ends_at - dt.timedelta(hours=1),
            reason="earlier?",
        )
    with pytest.raises(ValidationError):
        extension_request(
            delegation=active,
            requested_by=partner_admin,
            new_ends_at=active.ends_at + dt.timedelta(hours=1),
            reason="",
        )
    with pytest.raises(PermissionDenied):
        extension_request(
            delegation=active,
            requested_by=owner_admin,
            new_ends_at=active.ends_at + dt.timedelta(hours=1),
            reason="owner",
        )
    assert not DelegationExtension.objects.exists()
    ask(active, partner_admin)
    with pytest.raises(ValidationError, match="already waiting"):
        ask(active, partner_admin, hours=10)
    assert DelegationExtension.objects.count() == 1


def _told(event: str) -> set[int]:
    return set(
        Delivery.objects.filter(event=event, recipient__isnull=False).values_list(
            "recipient_id", flat=True
        )
    )


def test_extensions_are_announced_once_each_to_the_side_that_acts_next(
    active: Delegation, partner_admin: User, owner_admin: User, owner_admin_2: User
) -> None:
    first = ask(active, partner_admin)
    assert {owner_admin.pk, owner_admin_2.pk} <= _told("delegation.extension_requested")
    assert partner_admin.pk not in _told("delegation.extension_requested")

    extension_approve(extension=first, approved_by=owner_admin_2, with_mfa=True)
    extended = _told("delegation.extended")
    assert partner_admin.pk in extended and owner_admin_2.pk not in extended

    # A second extension of the same delegation is a new notice, not a duplicate of the first.
    second = ask(Delegation.objects.get(pk=active.pk), partner_admin)
    requested = Delivery.objects.filter(
        event="delegation.extension_requested", recipient=owner_admin
    )
    assert requested.count() == 2
    extension_reject(extension=second, rejected_by=owner_admin, reason="Not this week")
    assert partner_admin.pk in _told("delegation.extension_rejected")
