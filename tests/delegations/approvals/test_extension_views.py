"""The extension panel on the delegation page: the partner admin asks, an owner approver
decides; foreign ids are 404, bad dates save nothing."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from delegations.lifecycle.automatic import delegation_mark_active
from delegations.lifecycle.extensions import extension_request
from delegations.lifecycle.services import delegation_approve
from delegations.models import Delegation, DelegationExtension
from tests.delegations.lifecycle.test_views import with_mfa

pytestmark = pytest.mark.django_db


@pytest.fixture
def active(make_request: Callable[..., Delegation], owner_admin: User) -> Delegation:
    delegation = make_request(ends_at=timezone.now() + dt.timedelta(hours=4))
    delegation_approve(delegation=delegation, approved_by=owner_admin, with_mfa=True)
    return delegation_mark_active(delegation=delegation)


def detail(delegation: Delegation) -> str:
    return reverse("delegations:detail", args=[delegation.pk])


def test_partner_asks_and_owner_approves_through_the_page(
    login: Callable[..., Client], partner_admin: User, owner_admin: User, active: Delegation
) -> None:
    partner = with_mfa(login(partner_admin), partner_admin)
    assert 'data-testid="extension-request-form"' in partner.get(detail(active)).content.decode()
    new_end = (active.ends_at + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = partner.post(
        reverse("delegations:extend", args=[active.pk]),
        {"new_ends_at": new_end, "reason": "Cut-over moved to tomorrow"},
        follow=True,
    )
    assert "More time asked for" in response.content.decode()
    extension = DelegationExtension.objects.get()
    owner = with_mfa(login(owner_admin), owner_admin)
    page = owner.get(detail(active)).content.decode()
    assert "Cut-over moved to tomorrow" in page and 'data-testid="approve-extension"' in page
    response = owner.post(
        reverse("delegations:extension_decide", args=[active.pk, extension.pk]),
        {"approve": "1"},
        follow=True,
    )
    assert "access continues without a gap" in response.content.decode()
    assert Delegation.objects.get(pk=active.pk).ends_at.strftime("%Y-%m-%dT%H:%M") == new_end


def test_bad_input_and_foreign_ids(
    login: Callable[..., Client],
    partner_admin: User,
    owner_admin: User,
    foreign_owner_admin: User,
    active: Delegation,
) -> None:
    partner = with_mfa(login(partner_admin), partner_admin)
    url = reverse("delegations:extend", args=[active.pk])
    for data in ({"new_ends_at": "tomorrow", "reason": "x"}, {"new_ends_at": "", "reason": ""}):
        assert partner.post(url, data).status_code == 302
    earlier = (active.ends_at - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = partner.post(url, {"new_ends_at": earlier, "reason": "x"}, follow=True)
    assert "at least 5 minutes after" in response.content.decode()
    assert not DelegationExtension.objects.exists()
    extension = extension_request(
        delegation=active,
        requested_by=partner_admin,
        new_ends_at=active.ends_at + dt.timedelta(hours=2),
        reason="More",
    )
    foreign = with_mfa(login(foreign_owner_admin), foreign_owner_admin)
    decide = reverse("delegations:extension_decide", args=[active.pk, extension.pk])
    assert foreign.post(decide, {"approve": "1"}).status_code == 404
    assert foreign.post(url, {"new_ends_at": earlier, "reason": "x"}).status_code == 404
    assert partner.post(decide, {"approve": "1"}).status_code == 403
    assert partner.get(decide).status_code == 405
    assert DelegationExtension.objects.get().status == DelegationExtension.Status.REQUESTED
