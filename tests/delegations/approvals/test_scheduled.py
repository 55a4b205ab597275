"""Scheduled access: a request may start later; approved, it waits as scheduled with nothing
in the cloud, the scheduler applies it shortly before its start, and revoking or expiring it
before then ends it at once."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from delegations.approvals.services import approval_rule_set
from delegations.lifecycle.automatic import delegations_expire_due, delegations_start_due
from delegations.lifecycle.services import delegation_approve, delegation_revoke
from delegations.lifecycle.transitions import START_LEAD
from delegations.models import Delegation, OutboxMessage
from tests.delegations.lifecycle.test_views import with_mfa

pytestmark = pytest.mark.django_db
S = Delegation.Status


def actions(delegation: Delegation) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_id=str(delegation.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )


@pytest.fixture
def later() -> dt.datetime:
    return timezone.now().replace(microsecond=0) + dt.timedelta(hours=2)


@pytest.fixture
def scheduled(
    make_request: Callable[..., Delegation], owner_admin: User, later: dt.datetime
) -> Delegation:
    delegation = make_request(starts_at=later, ends_at=later + dt.timedelta(hours=8))
    return delegation_approve(delegation=delegation, approved_by=owner_admin, with_mfa=True)


def test_approved_for_later_waits_with_nothing_for_the_cloud(
    scheduled: Delegation, later: dt.datetime
) -> None:
    assert scheduled.status == S.SCHEDULED
    assert scheduled.starts_at == later
    assert OutboxMessage.objects.count() == 0
    approved = AuditEvent.objects.get(target_id=str(scheduled.pk), action="delegation.approved")
    assert approved.metadata["scheduled_start"]


def test_the_scheduler_applies_it_shortly_before_its_start(
    scheduled: Delegation, later: dt.datetime
) -> None:
    assert delegations_start_due(now=later - START_LEAD - dt.timedelta(minutes=1)) == 0
    assert Delegation.objects.get(pk=scheduled.pk).status == S.SCHEDULED
    assert delegations_start_due(now=later - START_LEAD) == 1
    started = Delegation.objects.get(pk=scheduled.pk)
    assert started.status == S.APPROVED
    assert OutboxMessage.objects.count() == 1
    assert actions(scheduled)[-1] == "delegation.scheduled_start"
    # Run again: nothing more happens.
    assert delegations_start_due(now=later) == 0
    assert OutboxMessage.objects.count() == 1


def test_revoking_a_scheduled_grant_ends_it_at_once(
    scheduled: Delegation, owner_admin: User
) -> None:
    revoked = delegation_revoke(delegation=scheduled, revoked_by=owner_admin, reason="Not needed")
    assert revoked.status == S.REVOKED and revoked.ended_at is not None
    assert OutboxMessage.objects.count() == 0
    assert delegations_start_due(now=scheduled.starts_at) == 0
    again = delegation_revoke(delegation=scheduled, revoked_by=owner_admin, reason="Not needed")
    assert not again.changed


def test_a_scheduled_grant_past_its_end_expires_without_the_cloud(
    scheduled: Delegation, later: dt.datetime
) -> None:
    assert delegations_expire_due(now=later + dt.timedelta(hours=9)) == 1
    assert Delegation.objects.get(pk=scheduled.pk).status == S.EXPIRED
    assert OutboxMessage.objects.count() == 0


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (dt.timedelta(hours=-1), None, "starts_at"),
        (dt.timedelta(days=91), None, "starts_at"),
        (dt.timedelta(hours=2), dt.timedelta(hours=1), "ends_at"),
    ],
)
def test_bad_starts_are_refused_and_nothing_is_saved(
    make_request: Callable[..., Delegation],
    start: dt.timedelta,
    end: dt.timedelta | None,
    field: str,
) -> None:
    now = timezone.now()
    with pytest.raises(ValidationError) as raised:
        make_request(starts_at=now + start, ends_at=now + end if end else None)
    assert field in raised.value.error_dict
    assert not Delegation.objects.exists()


def test_the_pages_say_when_it_starts(
    login: Callable[..., Client],
    partner_admin: User,
    owner_admin: User,
    scheduled: Delegation,
) -> None:
    page = with_mfa(login(owner_admin), owner_admin).get(
        reverse("delegations:detail", args=[scheduled.pk])
    )
    body = page.content.decode()
    assert "starts in 1\xa0hour" in body or "starts in 2\xa0hours" in body
    assert "Scheduled" in body
    assert 'data-testid="revoke-form"' in body


def test_the_request_form_takes_a_start(
    login: Callable[..., Client],
    partner_admin: User,
    link_a: tuple[object, str],
    ecs_admin: object,
    allow_b: None,
) -> None:
    client = with_mfa(login(partner_admin), partner_admin)
    url = reverse("delegations:request")
    client.post(url, {"partner_link_code": link_a[1]})
    start = (timezone.now() + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        url,
        {
            "catalog_role": ecs_admin.pk,  # type: ignore[attr-defined]
            "reason": "Weekend maintenance window",
            "starts_at": start,
            "duration": "open",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    delegation = Delegation.objects.get()
    assert delegation.starts_at.strftime("%Y-%m-%dT%H:%M") == start
    too_far = (timezone.now() + dt.timedelta(days=120)).strftime("%Y-%m-%dT%H:%M")
    delegation.delete()
    response = client.post(
        url,
        {
            "catalog_role": ecs_admin.pk,  # type: ignore[attr-defined]
            "reason": "Later",
            "starts_at": too_far,
            "duration": "open",
        },
    )
    assert response.status_code == 400
    assert "more than 90 days" in response.content.decode()


def test_the_request_page_runs_the_auto_approval_rule(
    login: Callable[..., Client],
    partner_admin: User,
    owner_admin: User,
    link_a: tuple[object, str],
    ecs_admin: object,
    allow_b: None,
) -> None:
    approval_rule_set(
        catalog_role=ecs_admin,  # type: ignore[arg-type]
        approvals_required=1,
        auto_approve_max_hours=8,
        set_by=owner_admin,
    )
    client = with_mfa(login(partner_admin), partner_admin)
    url = reverse("delegations:request")
    client.post(url, {"partner_link_code": link_a[1]})
    ends = (timezone.now() + dt.timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        url,
        {
            "catalog_role": ecs_admin.pk,  # type: ignore[attr-defined]
            "reason": "Restart the web fleet tonight",
            "duration": "until",
            "ends_at": ends,
        },
        follow=True,
    )
    assert "Approved automatically" in response.content.decode()
    assert Delegation.objects.get().status == S.APPROVED


def test_the_approver_may_shorten_never_lengthen(
    make_request: Callable[..., Delegation], owner_admin: User
) -> None:
    asked = timezone.now() + dt.timedelta(hours=8)
    delegation = make_request(ends_at=asked)
    with pytest.raises(ValidationError, match="shorten"):
        delegation_approve(
            delegation=delegation,
            approved_by=owner_admin,
            with_mfa=True,
            ends_at=asked + dt.timedelta(hours=1),
        )
    assert Delegation.objects.get(pk=delegation.pk).status == S.REQUESTED
    shorter = timezone.now() + dt.timedelta(hours=2)
    approved = delegation_approve(
        delegation=delegation, approved_by=owner_admin, with_mfa=True, ends_at=shorter
    )
    assert approved.status == S.APPROVED and approved.ends_at == shorter
    event = AuditEvent.objects.get(target_id=str(delegation.pk), action="delegation.approved")
    assert event.metadata["ends_at_set_by_approvers"]


def test_an_open_ended_request_gets_an_end_from_the_page(
    login: Callable[..., Client], owner_admin: User, requested: Delegation
) -> None:
    client = with_mfa(login(owner_admin), owner_admin)
    end = (timezone.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        reverse("delegations:approve", args=[requested.pk]), {"version": 1, "ends_at": end}
    )
    assert response.status_code == 302
    assert Delegation.objects.get(pk=requested.pk).ends_at.strftime("%Y-%m-%dT%H:%M") == end
