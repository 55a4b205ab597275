"""Grants approved for a later start are access the owner gave: a round asks about them like
about active ones (otherwise one starting after the deadline is never reviewed), and the pages
say they have not started yet. Answers and the deadline's outcome end them before their start."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organisation, User
from audit.models import AuditEvent
from delegations.lifecycle.services import delegation_approve
from delegations.models import (
    Delegation,
    ReviewCampaign,
    ReviewItem,
    ReviewOutcome,
    ReviewSchedule,
)
from delegations.reviews.selectors import review_report
from delegations.reviews.services import review_campaign_start, review_decide, reviews_sweep
from tests.delegations.lifecycle.test_views import with_mfa

pytestmark = pytest.mark.django_db
S = Delegation.Status
D = ReviewItem.Decision


@pytest.fixture
def scheduled(make_request: Callable[..., Delegation], owner_admin: User) -> Delegation:
    """Approved today for a start in 30 days: after the 14-day deadline of a round started now."""
    starts_at = timezone.now().replace(microsecond=0) + dt.timedelta(days=30)
    delegation = make_request(starts_at=starts_at, ends_at=starts_at + dt.timedelta(days=60))
    approved = delegation_approve(delegation=delegation, approved_by=owner_admin, with_mfa=True)
    assert approved.status == S.SCHEDULED
    return approved


def start(company_a: Organisation, owner_admin: User) -> ReviewCampaign:
    return review_campaign_start(owner=company_a, started_by=owner_admin)


def test_a_round_asks_about_a_grant_that_starts_after_its_deadline(
    company_a: Organisation,
    owner_admin: User,
    scheduled: Delegation,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule()
    campaign = start(company_a, owner_admin)

    assert scheduled.starts_at > campaign.deadline_at
    question = ReviewItem.objects.get(campaign=campaign, side=ReviewItem.Side.OWNER)
    assert question.delegation_id == scheduled.pk
    started = AuditEvent.objects.get(action="access_review.started")
    assert started.after["delegations"] == 1 and started.after["not_started"] == 1
    (row,) = review_report(organisation=company_a, campaign=campaign)
    assert row.starts_at == scheduled.starts_at and row.not_started_when_asked


def test_revoking_it_in_the_review_ends_it_before_its_start(
    company_a: Organisation,
    owner_admin: User,
    scheduled: Delegation,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule()
    campaign = start(company_a, owner_admin)
    question = ReviewItem.objects.get(campaign=campaign)

    review_decide(item=question, decided_by=owner_admin, decision=D.REVOKE, note="Not needed")

    assert Delegation.objects.get(pk=scheduled.pk).status == S.REVOKED


def test_the_deadline_revokes_it_when_nobody_answered(
    company_a: Organisation,
    owner_admin: User,
    scheduled: Delegation,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule(ReviewOutcome.REVOKE)
    campaign = start(company_a, owner_admin)

    reviews_sweep(now=campaign.deadline_at + dt.timedelta(minutes=1))

    assert Delegation.objects.get(pk=scheduled.pk).status == S.REVOKED
    assert ReviewItem.objects.get(campaign=campaign).decision == D.REVOKED_BY_DEADLINE


def test_the_review_page_and_the_report_say_it_has_not_started(
    login: Callable[..., Client],
    company_a: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    scheduled: Delegation,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    schedule()
    campaign = start(company_a, owner_admin)
    client = with_mfa(login(owner_admin_2), owner_admin_2)

    page = client.get(reverse("delegations:access_review", args=[campaign.pk]))

    assert page.status_code == 200
    assert 'data-testid="review-not-started"' in page.content.decode()
    report = client.get(reverse("audit:review_report") + f"?campaign={campaign.pk}")
    assert 'data-testid="review-not-started"' in report.content.decode()
