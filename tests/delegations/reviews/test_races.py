"""Races of the oversight rules on PostgreSQL (issue 14): two approvers answering one review
question at the same moment end with one answer; an answer racing the deadline ends with
either the answer or the deadline's outcome, never both; two reviewers of one break-glass
activation end with one review; two named people activating one emergency role at once end
with one live activation.

Real concurrency needs real row locks, so these run on PostgreSQL (CI); SQLite serialises
writers and is covered by the sequential tests.
"""

import datetime as dt
from collections.abc import Callable

import pytest
from django.db import connection

from accounts.models import Organisation, User
from audit.models import AuditEvent
from delegations.breakglass.services import (
    BreakGlassAlreadyLive,
    break_glass_activate,
    break_glass_confirm,
    break_glass_revoke,
    break_glass_role_set,
)
from delegations.models import (
    BreakGlassActivation,
    CatalogRole,
    Delegation,
    ReviewItem,
    ReviewOutcome,
    ReviewSchedule,
    StaffAssignment,
)
from delegations.reviews.services import review_campaign_close, review_campaign_start, review_decide
from tests.delegations.lifecycle.test_decision_races import race

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL"),
]
D = ReviewItem.Decision


def test_two_approvers_answer_one_question_once(
    company_a: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    active: Delegation,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule()
    campaign = review_campaign_start(owner=company_a, started_by=owner_admin)
    question = ReviewItem.objects.get(campaign=campaign, side="owner")

    results = race(
        lambda: review_decide(item=question, decided_by=owner_admin, decision=D.KEEP),
        lambda: review_decide(
            item=question, decided_by=owner_admin_2, decision=D.REVOKE, note="Unused"
        ),
    )

    answered = ReviewItem.objects.get(pk=question.pk)
    assert sum(isinstance(result, ReviewItem) for result in results) == 1, results
    assert AuditEvent.objects.filter(action="access_review.decided").count() == 1
    revoked = Delegation.objects.get(pk=active.pk).status == Delegation.Status.REVOKING
    assert revoked == (answered.decision == D.REVOKE)


def test_an_answer_racing_the_deadline_ends_one_way(
    company_a: Organisation,
    owner_admin: User,
    partner_admin: User,
    active: Delegation,
    assignment: StaffAssignment,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule(ReviewOutcome.REVOKE)
    campaign = review_campaign_start(owner=company_a, started_by=owner_admin)
    question = ReviewItem.objects.get(campaign=campaign, side="partner")

    race(
        lambda: review_decide(item=question, decided_by=partner_admin, decision=D.KEEP),
        lambda: review_campaign_close(
            campaign=campaign, now=campaign.deadline_at + dt.timedelta(seconds=1)
        ),
    )

    decision = ReviewItem.objects.get(pk=question.pk).decision
    assert decision in (D.KEEP, D.REVOKED_BY_DEADLINE)
    ended = StaffAssignment.objects.get(pk=assignment.pk).ended_at is not None
    assert ended == (decision == D.REVOKED_BY_DEADLINE)


def test_two_reviewers_of_one_activation_end_with_one_review(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    partner_staff: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    marking = break_glass_role_set(
        owner=company_a,
        set_by=owner_admin,
        catalog_role=ecs_admin,
        partner=company_b,
        people=[partner_staff],
        max_hours=4,
    )
    activation = break_glass_activate(
        marking=marking,
        activated_by=partner_staff,
        reason="Production database down, on-call must restart the fleet",
        hours=2,
        with_mfa=True,
    )

    race(
        lambda: break_glass_confirm(activation=activation, reviewed_by=owner_admin),
        lambda: break_glass_revoke(activation=activation, reviewed_by=owner_admin_2, note="No"),
    )

    reviewed = BreakGlassActivation.objects.get(pk=activation.pk)
    assert reviewed.review in (
        BreakGlassActivation.Review.CONFIRMED,
        BreakGlassActivation.Review.REVOKED,
    )
    events = AuditEvent.objects.filter(
        action__in=["break_glass.confirmed", "break_glass.revoked_and_flagged"]
    )
    assert events.count() == 1
    revoked = reviewed.delegation.end_cause == Delegation.EndCause.REVOKED
    assert revoked == (reviewed.review == BreakGlassActivation.Review.REVOKED)


def test_two_people_activating_one_emergency_role_at_once_get_one_grant(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_staff: User,
    partner_admin: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    marking = break_glass_role_set(
        owner=company_a,
        set_by=owner_admin,
        catalog_role=ecs_admin,
        partner=company_b,
        people=[partner_staff, partner_admin],
        max_hours=4,
    )

    def activate(person: User) -> Callable[[], object]:
        return lambda: break_glass_activate(
            marking=marking,
            activated_by=person,
            reason="Production database down, on-call must restart the fleet",
            hours=2,
            with_mfa=True,
        )

    results = race(activate(partner_staff), activate(partner_admin))

    assert sum(isinstance(result, BreakGlassActivation) for result in results) == 1, results
    assert sum(isinstance(result, BreakGlassAlreadyLive) for result in results) == 1, results
    assert Delegation.objects.count() == 1 and BreakGlassActivation.objects.count() == 1
    assert AuditEvent.objects.filter(action="break_glass.activation_denied").count() == 1
