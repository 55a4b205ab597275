"""Break-glass: an owner marks an emergency role for a partner's named people; one of them
activates it with a reason and gets access at once (the normal worker path), every owner
admin is told at once, an owner admin reviews it (confirm, or revoke and flag), and an
unreviewed activation is reminded, then escalated. Bad input saves nothing."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from auditor.reports import access_report
from delegations.breakglass.services import (
    break_glass_activate,
    break_glass_confirm,
    break_glass_revoke,
    break_glass_role_remove,
    break_glass_role_set,
    break_glass_sweep,
)
from delegations.inbox.selectors import inbox_for
from delegations.lifecycle.automatic import delegation_mark_active
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import (
    BreakGlassActivation,
    BreakGlassRole,
    CatalogRole,
    Delegation,
    OutboxMessage,
    StaffAssignment,
)
from notifications.models import Delivery
from notifications.services import preferences_update
from tests.personas import make_member

pytestmark = pytest.mark.django_db
S = Delegation.Status
Review = BreakGlassActivation.Review

REASON = "Production database down, on-call must restart the ECS fleet"


@pytest.fixture
def marking(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> BreakGlassRole:
    return break_glass_role_set(
        owner=company_a,
        set_by=owner_admin,
        catalog_role=ecs_admin,
        partner=company_b,
        people=[partner_staff],
        max_hours=4,
    )


def activate(marking: BreakGlassRole, user: User, **overrides: object) -> BreakGlassActivation:
    arguments: dict[str, object] = {
        "marking": marking,
        "activated_by": user,
        "reason": REASON,
        "hours": 2,
        "with_mfa": True,
    }
    arguments.update(overrides)
    return break_glass_activate(**arguments)  # type: ignore[arg-type]


def test_an_activation_applies_at_once_and_tells_every_owner_admin(
    marking: BreakGlassRole, partner_staff: User, owner_admin: User, owner_admin_2: User
) -> None:
    # A security notice: nobody can mute it.
    with pytest.raises(ValidationError):
        preferences_update(user=owner_admin_2, muted=["break_glass.activated"])
    outbox_before = OutboxMessage.objects.count()

    activation = activate(marking, partner_staff)

    delegation = activation.delegation
    assert delegation.status == S.APPROVED
    assert delegation.origin == Delegation.Origin.BREAK_GLASS
    assert delegation.ends_at == activation.ends_at
    assert activation.ends_at - activation.activated_at == dt.timedelta(hours=2)
    assert activation.review_due_at - activation.activated_at == dt.timedelta(hours=24)
    assert OutboxMessage.objects.count() == outbox_before + 1  # the worker applies it now
    told = set(
        Delivery.objects.filter(event="break_glass.activated").values_list(
            "recipient__email", flat=True
        )
    )
    assert told == {owner_admin.email, owner_admin_2.email}
    event = AuditEvent.objects.get(action="delegation.break_glass_activated")
    assert event.actor_id == partner_staff.pk
    assert event.metadata["reason"] == REASON and event.metadata["break_glass"] is True


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"hours": 5}, "hours"),  # over the role's 4 h
        ({"hours": 0}, "hours"),
        ({"reason": ""}, "reason"),
        ({"reason": "db down"}, "reason"),  # too short for a reviewer to check
    ],
)
def test_bad_input_is_a_form_error_and_saves_nothing(
    marking: BreakGlassRole, partner_staff: User, overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        activate(marking, partner_staff, **overrides)
    assert field in refused.value.message_dict
    assert not Delegation.objects.exists() and not BreakGlassActivation.objects.exists()


def test_a_person_not_named_is_refused_and_audited(
    marking: BreakGlassRole, partner_admin: User
) -> None:
    with pytest.raises(PermissionDenied):
        activate(marking, partner_admin)
    assert not Delegation.objects.exists()
    denied = AuditEvent.objects.get(action="break_glass.activation_denied")
    assert denied.outcome == AuditEvent.Outcome.DENIED and denied.actor_id == partner_admin.pk


def test_a_removed_marking_cannot_be_activated(
    marking: BreakGlassRole, partner_staff: User, owner_admin: User
) -> None:
    break_glass_role_remove(marking=marking, removed_by=owner_admin)
    with pytest.raises(PermissionDenied):
        activate(marking, partner_staff)


def test_marking_rejects_a_window_over_24_hours_and_people_of_another_organisation(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_staff: User,
    foreign_partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    arguments = {
        "owner": company_a,
        "set_by": owner_admin,
        "catalog_role": ecs_admin,
        "partner": company_b,
    }
    with pytest.raises(ValidationError) as too_long:
        break_glass_role_set(**arguments, people=[partner_staff], max_hours=25)
    assert "max_hours" in too_long.value.message_dict
    with pytest.raises(ValidationError) as stranger:
        break_glass_role_set(**arguments, people=[foreign_partner_staff], max_hours=4)
    assert "people" in stranger.value.message_dict
    with pytest.raises(ValidationError) as nobody:
        break_glass_role_set(**arguments, people=[], max_hours=4)
    assert "people" in nobody.value.message_dict
    assert not BreakGlassRole.objects.exists()


def test_only_an_owner_admin_marks_a_role(
    company_a: Organisation,
    company_b: Organisation,
    auditor: User,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    with pytest.raises(PermissionDenied):
        break_glass_role_set(
            owner=company_a,
            set_by=auditor,
            catalog_role=ecs_admin,
            partner=company_b,
            people=[partner_staff],
            max_hours=4,
        )


def test_confirm_keeps_the_access_and_tells_both_sides(
    marking: BreakGlassRole, partner_staff: User, owner_admin_2: User, partner_admin: User
) -> None:
    activation = activate(marking, partner_staff)
    done = break_glass_confirm(activation=activation, reviewed_by=owner_admin_2, note="Real outage")
    assert done.review == Review.CONFIRMED and not done.flagged
    assert Delegation.objects.get(pk=activation.delegation_id).status == S.APPROVED
    event = AuditEvent.objects.get(action="break_glass.confirmed")
    assert event.metadata["reviewed_within_deadline"] is True
    assert Delivery.objects.filter(event="break_glass.reviewed", recipient=partner_admin).exists()
    # A double click changes nothing; a different second review is a conflict.
    assert break_glass_confirm(activation=activation, reviewed_by=owner_admin_2).pk == done.pk
    with pytest.raises(DelegationConflict):
        break_glass_revoke(activation=activation, reviewed_by=owner_admin_2, note="changed mind")


def test_revoke_and_flag_ends_the_access_through_the_lifecycle(
    marking: BreakGlassRole, partner_staff: User, owner_admin: User
) -> None:
    activation = activate(marking, partner_staff)
    delegation_mark_active(delegation=activation.delegation)
    done = break_glass_revoke(activation=activation, reviewed_by=owner_admin, note="No outage")
    assert done.review == Review.REVOKED and done.flagged
    delegation = Delegation.objects.get(pk=activation.delegation_id)
    assert delegation.status == S.REVOKING and delegation.end_cause == Delegation.EndCause.REVOKED
    # Revoking needs a note saying why (it is the flag's record).
    another = activate(marking, partner_staff)
    with pytest.raises(ValidationError):
        break_glass_revoke(activation=another, reviewed_by=owner_admin, note="")
    assert BreakGlassActivation.objects.get(pk=another.pk).review == Review.PENDING


def test_reviewers_are_owner_admins_outside_the_partner(
    marking: BreakGlassRole, partner_staff: User, auditor: User, company_b: Organisation
) -> None:
    activation = activate(marking, partner_staff)
    with pytest.raises(PermissionDenied):
        break_glass_confirm(activation=activation, reviewed_by=auditor)
    both = make_member(company_b, Membership.Role.STAFF, email="both@company-a.example")
    Membership.objects.create(
        user=both, organisation=marking.organisation, role=Membership.Role.ADMIN
    )
    with pytest.raises(PermissionDenied):
        break_glass_confirm(activation=activation, reviewed_by=both)
    assert (
        AuditEvent.objects.filter(
            action="break_glass.activation_denied", outcome=AuditEvent.Outcome.DENIED
        ).count()
        == 2
    )
    assert BreakGlassActivation.objects.get(pk=activation.pk).review == Review.PENDING


def test_sweep_assigns_the_activator_once_active_then_reminds_then_escalates(
    marking: BreakGlassRole, partner_staff: User, owner_admin: User, owner_admin_2: User
) -> None:
    activation = activate(marking, partner_staff)
    assert break_glass_sweep()["assigned"] == 0  # not active yet
    delegation_mark_active(delegation=activation.delegation)
    assert break_glass_sweep()["assigned"] == 1
    assert StaffAssignment.objects.get(delegation=activation.delegation).user == partner_staff
    assert break_glass_sweep()["assigned"] == 0  # idempotent

    due = activation.review_due_at
    assert break_glass_sweep(now=due - dt.timedelta(hours=5))["escalated"] == 0
    assert break_glass_sweep(now=due - dt.timedelta(hours=3))["escalated"] == 1
    assert break_glass_sweep(now=due - dt.timedelta(hours=2))["escalated"] == 0  # once
    assert break_glass_sweep(now=due + dt.timedelta(minutes=1))["escalated"] == 1
    assert break_glass_sweep(now=due + dt.timedelta(hours=1))["escalated"] == 0
    levels = [
        event.metadata["escalation"]
        for event in AuditEvent.objects.filter(action="break_glass.review_escalated").order_by(
            "sequence"
        )
    ]
    assert levels == ["Reminded", "Escalated"]
    told = Delivery.objects.filter(event="break_glass.review_due").values_list(
        "recipient__email", flat=True
    )
    assert {owner_admin.email, owner_admin_2.email} <= set(told)
    assert BreakGlassActivation.objects.get(pk=activation.pk).escalation == 2


def test_the_owner_admins_inbox_lists_reviews_waiting(
    marking: BreakGlassRole, partner_staff: User, owner_admin: User
) -> None:
    membership = Membership.objects.get(user=owner_admin, organisation=marking.organisation)
    activation = activate(marking, partner_staff)
    assert [item.kind for item in inbox_for(membership=membership)] == ["break_glass"]
    break_glass_confirm(activation=activation, reviewed_by=owner_admin)
    assert inbox_for(membership=membership) == []


def test_the_access_report_marks_the_break_glass_window_and_its_review(
    marking: BreakGlassRole, partner_staff: User, owner_admin: User, company_a: Organisation
) -> None:
    activation = activate(marking, partner_staff)
    delegation_mark_active(delegation=activation.delegation)
    break_glass_confirm(activation=activation, reviewed_by=owner_admin, note="Real outage")
    now = timezone.now()
    report = access_report(
        organisation=company_a,
        account_uid=marking.catalog_role.cloud_account.account_uid,
        catalog_role=None,
        since=now - dt.timedelta(hours=1),
        until=now + dt.timedelta(hours=3),
        now=now,
    )
    (row,) = [r for r in report.rows if r.delegation_id == str(activation.delegation_id)]
    assert row.approved_by.startswith("break-glass: ")
    assert any(note.startswith("Break-glass window") and REASON in note for note in row.notes)
    assert any("confirmed by" in note for note in row.notes)
