"""Access reviews across the boundary: a round puts each active delegation to the owner's
approvers and each assigned person to the partner's admins, both sides hear, answers go
through the lifecycle (shorten, revoke) and the partner area (unassign), and at the deadline
the configured outcome applies to what nobody answered. Bad input saves nothing."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.services import approver_group_create
from delegations.inbox.selectors import inbox_for
from delegations.models import (
    Delegation,
    ReviewCampaign,
    ReviewItem,
    ReviewOutcome,
    ReviewSchedule,
    StaffAssignment,
)
from delegations.reviews.selectors import review_report, waiting_for
from delegations.reviews.services import (
    review_campaign_start,
    review_decide,
    review_schedule_set,
    reviews_sweep,
)
from notifications.models import Delivery
from tests.delegations.factories import CloudAccountFactory

pytestmark = pytest.mark.django_db
S = Delegation.Status
D = ReviewItem.Decision


def start(company_a: Organisation, owner_admin: User) -> ReviewCampaign:
    return review_campaign_start(owner=company_a, started_by=owner_admin)


def item(campaign: ReviewCampaign, side: str) -> ReviewItem:
    return ReviewItem.objects.get(campaign=campaign, side=side)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"every_days": 0}, "every_days"),
        ({"every_days": 400}, "every_days"),
        ({"deadline_days": 0}, "deadline_days"),
        ({"deadline_days": 120}, "deadline_days"),  # after the next round would start
        ({"default_outcome": "ignore"}, "default_outcome"),
    ],
)
def test_bad_schedules_are_form_errors_and_save_nothing(
    company_a: Organisation, owner_admin: User, arguments: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {
        "every_days": 90,
        "deadline_days": 14,
        "default_outcome": ReviewOutcome.REMIND,
        **arguments,
    }
    with pytest.raises(ValidationError) as refused:
        review_schedule_set(owner=company_a, set_by=owner_admin, **values)  # type: ignore[arg-type]
    assert field in refused.value.message_dict
    assert not ReviewSchedule.objects.exists()


def test_a_round_asks_both_sides(
    company_a: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    partner_admin: User,
    active: Delegation,
    assignment: StaffAssignment,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule()
    campaign = start(company_a, owner_admin)
    assert item(campaign, "owner").delegation == active
    assert item(campaign, "partner").assignment == assignment
    asked = Delivery.objects.filter(event="access_review.requested")
    assert {owner_admin_2.email, partner_admin.email} <= set(
        asked.values_list("recipient__email", flat=True)
    )
    assert AuditEvent.objects.get(action="access_review.started").after["delegations"] == 1
    with pytest.raises(ValidationError):
        start(company_a, owner_admin)  # one open round at a time
    # Each side's inbox: the owner's approvers and the partner's admins.
    assert waiting_for(organisation=company_a, user=owner_admin).count() == 1
    assert waiting_for(organisation=active.partner, user=partner_admin).count() == 1


def test_answers_go_through_the_lifecycle_and_the_partner_area(
    company_a: Organisation,
    owner_admin: User,
    partner_admin: User,
    active: Delegation,
    assignment: StaffAssignment,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule()
    campaign = start(company_a, owner_admin)
    new_end = timezone.now() + dt.timedelta(days=3)
    done = review_decide(
        item=item(campaign, "owner"),
        decided_by=owner_admin,
        decision=D.SHORTEN,
        new_ends_at=new_end,
        note="Project ends sooner",
    )
    assert done.decision == D.SHORTEN and done.decided_by == owner_admin
    assert Delegation.objects.get(pk=active.pk).ends_at == new_end
    assert AuditEvent.objects.filter(action="delegation.shortened").exists()
    review_decide(item=item(campaign, "partner"), decided_by=partner_admin, decision=D.UNASSIGN)
    assert StaffAssignment.objects.get(pk=assignment.pk).ended_at is not None
    rows = review_report(organisation=company_a, campaign=campaign)
    assert {(row.side, row.decision, row.decided_by) for row in rows} == {
        ("owner", "shorten", owner_admin.email),
        ("partner", "unassign", partner_admin.email),
    }
    # The partner's report holds its own question and the owner's answer about its access.
    assert len(review_report(organisation=active.partner)) == 2


def test_wrong_answers_and_wrong_people_are_refused(
    company_a: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    partner_admin: User,
    auditor: User,
    active: Delegation,
    assignment: StaffAssignment,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule()
    campaign = start(company_a, owner_admin)
    owner_item, partner_item = item(campaign, "owner"), item(campaign, "partner")
    for person, question in (
        (partner_admin, owner_item),
        (auditor, owner_item),
        (owner_admin, partner_item),
    ):
        with pytest.raises(PermissionDenied):
            review_decide(item=question, decided_by=person, decision=D.KEEP)
    assert AuditEvent.objects.filter(action="access_review.denied").count() == 3
    with pytest.raises(ValidationError):
        review_decide(item=owner_item, decided_by=owner_admin, decision=D.UNASSIGN)
    with pytest.raises(ValidationError):  # a revoke says why
        review_decide(item=owner_item, decided_by=owner_admin, decision=D.REVOKE)
    with pytest.raises(ValidationError):  # shortening never lengthens
        review_decide(
            item=owner_item,
            decided_by=owner_admin,
            decision=D.SHORTEN,
            new_ends_at=active.ends_at + dt.timedelta(days=1),
        )
    assert ReviewItem.objects.get(pk=owner_item.pk).decision == D.PENDING
    # Approver groups scope who answers, like who approves.
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin_2],
        catalog_roles=[active.catalog_role],
    )
    with pytest.raises(PermissionDenied):
        review_decide(item=owner_item, decided_by=owner_admin, decision=D.KEEP)
    assert review_decide(item=owner_item, decided_by=owner_admin_2, decision=D.KEEP).decision == (
        D.KEEP
    )
    # Answered: a double click changes nothing, another answer is refused.
    review_decide(item=owner_item, decided_by=owner_admin_2, decision=D.KEEP)
    with pytest.raises(ValidationError):
        review_decide(item=owner_item, decided_by=owner_admin_2, decision=D.REVOKE, note="x")


def test_revoke_answer_revokes_through_the_lifecycle(
    company_a: Organisation,
    owner_admin: User,
    active: Delegation,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule()
    campaign = start(company_a, owner_admin)
    review_decide(
        item=item(campaign, "owner"), decided_by=owner_admin, decision=D.REVOKE, note="Unused"
    )
    delegation = Delegation.objects.get(pk=active.pk)
    assert delegation.status == S.REVOKING and delegation.revoked_by == owner_admin


def test_the_deadline_revokes_what_nobody_answered(
    company_a: Organisation,
    owner_admin: User,
    active: Delegation,
    assignment: StaffAssignment,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule(ReviewOutcome.REVOKE)
    campaign = start(company_a, owner_admin)
    assert reviews_sweep(now=campaign.deadline_at - dt.timedelta(minutes=1))["closed"] == 0
    counts = reviews_sweep(now=campaign.deadline_at + dt.timedelta(minutes=1))
    assert counts["closed"] == 1
    delegation = Delegation.objects.get(pk=active.pk)
    assert delegation.status == S.REVOKING and delegation.end_cause == "revoked"
    assert delegation.revoked_by is None
    assert StaffAssignment.objects.get(pk=assignment.pk).ended_at is not None
    assert set(ReviewItem.objects.values_list("decision", flat=True)) == {D.REVOKED_BY_DEADLINE}
    event = AuditEvent.objects.get(action="delegation.revoke_requested")
    assert event.actor_id is None and event.metadata["rule"] == "access_review_deadline"
    assert ReviewCampaign.objects.get().status == ReviewCampaign.Status.CLOSED
    # Re-running changes nothing.
    assert reviews_sweep(now=campaign.deadline_at + dt.timedelta(hours=1))["closed"] == 0


def test_an_answer_after_the_deadline_is_refused_before_the_sweep_closes_the_round(
    company_a: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    active: Delegation,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule(ReviewOutcome.REVOKE)
    campaign = start(company_a, owner_admin)
    ReviewCampaign.objects.filter(pk=campaign.pk).update(
        deadline_at=timezone.now() - dt.timedelta(minutes=3)
    )
    with pytest.raises(ValidationError, match="deadline of this access review has passed"):
        review_decide(item=item(campaign, "owner"), decided_by=owner_admin_2, decision=D.KEEP)
    reviews_sweep()
    assert Delegation.objects.get(pk=active.pk).status == S.REVOKING


def test_the_deadline_reminds_and_keeps_when_so_configured(
    company_a: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    active: Delegation,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule(ReviewOutcome.REMIND)
    campaign = start(company_a, owner_admin)
    # A daily reminder while answers are owed, once per day.
    day_two = campaign.started_at + dt.timedelta(days=1, hours=1)
    assert reviews_sweep(now=day_two)["reminded"] == 1
    assert reviews_sweep(now=day_two)["reminded"] == 0
    reviews_sweep(now=campaign.deadline_at + dt.timedelta(minutes=1))
    assert Delegation.objects.get(pk=active.pk).status == S.ACTIVE
    assert ReviewItem.objects.get().decision == D.REMINDED
    assert Delivery.objects.filter(event="access_review.reminder", recipient=owner_admin_2).exists()


def test_the_schedule_starts_rounds_by_itself(
    company_a: Organisation,
    owner_admin: User,
    active: Delegation,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    first = schedule()
    assert reviews_sweep(now=first.next_run_at + dt.timedelta(seconds=1))["started"] == 1
    campaign = ReviewCampaign.objects.get()
    assert campaign.started_by is None
    assert ReviewSchedule.objects.get().next_run_at == campaign.started_at + dt.timedelta(days=90)


def test_both_sides_inboxes_list_the_answers_owed(
    company_a: Organisation,
    owner_admin: User,
    partner_admin: User,
    active: Delegation,
    assignment: StaffAssignment,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule()
    # Connected, so that what waits for the partner's admin is the review alone.
    CloudAccountFactory(organisation=active.partner)
    campaign = start(company_a, owner_admin)
    owner_side = Membership.objects.get(user=owner_admin, organisation=company_a)
    partner_side = Membership.objects.get(user=partner_admin, organisation=active.partner)
    assert [i.kind for i in inbox_for(membership=owner_side)] == ["review"]
    assert [i.kind for i in inbox_for(membership=partner_side)] == ["review"]
    review_decide(item=item(campaign, "partner"), decided_by=partner_admin, decision=D.KEEP)
    assert inbox_for(membership=partner_side) == []
