"""An owner (company A) with one active delegation to company B, Alice assigned to it, and
access reviews scheduled; the first round starts when a test asks."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.utils import timezone

from accounts.models import Organisation, User
from delegations.lifecycle.automatic import delegation_mark_active
from delegations.lifecycle.services import delegation_approve
from delegations.models import Delegation, ReviewOutcome, ReviewSchedule, StaffAssignment
from delegations.reviews.services import review_schedule_set


@pytest.fixture
def active(make_request: Callable[..., Delegation], owner_admin: User) -> Delegation:
    delegation = make_request(ends_at=timezone.now() + dt.timedelta(days=30))
    delegation_approve(delegation=delegation, approved_by=owner_admin, with_mfa=True)
    return delegation_mark_active(delegation=delegation)


@pytest.fixture
def assignment(active: Delegation, partner_staff: User, partner_admin: User) -> StaffAssignment:
    return StaffAssignment.objects.create(
        delegation=active, partner=active.partner, user=partner_staff, assigned_by=partner_admin
    )


@pytest.fixture
def schedule(company_a: Organisation, owner_admin: User) -> Callable[..., ReviewSchedule]:
    def make(outcome: str = ReviewOutcome.REMIND) -> ReviewSchedule:
        return review_schedule_set(
            owner=company_a,
            set_by=owner_admin,
            every_days=90,
            deadline_days=14,
            default_outcome=outcome,
        )

    return make
