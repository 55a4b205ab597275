"""One live activation per emergency role and partner: activating again while an activation's
access is live (applying or active, its window not over, nobody ending it) is refused with a
message naming the live one, instead of granting the same access a second time. Once it has
ended (or is being ended), the role can be activated again, with a new reason and review."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.breakglass.services import (
    BreakGlassAlreadyLive,
    break_glass_activate,
    break_glass_revoke,
    break_glass_role_set,
)
from delegations.lifecycle.automatic import delegation_mark_active, delegations_expire_due
from delegations.models import BreakGlassActivation, BreakGlassRole, CatalogRole, Delegation
from tests.delegations.lifecycle.test_views import with_mfa
from tests.personas import make_member

pytestmark = pytest.mark.django_db
REASON = "Production database down, on-call must restart the ECS fleet"


@pytest.fixture
def colleague(company_b: Organisation) -> User:
    return make_member(company_b, Membership.Role.STAFF, email="bob@company-b.example")


@pytest.fixture
def marking(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_staff: User,
    colleague: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> BreakGlassRole:
    return break_glass_role_set(
        owner=company_a,
        set_by=owner_admin,
        catalog_role=ecs_admin,
        partner=company_b,
        people=[partner_staff, colleague],
        max_hours=4,
    )


def activate(marking: BreakGlassRole, user: User, hours: int = 2) -> BreakGlassActivation:
    return break_glass_activate(
        marking=marking, activated_by=user, reason=REASON, hours=hours, with_mfa=True
    )


@pytest.mark.parametrize("second", ["same person", "another named person"])
def test_a_second_activation_while_one_is_live_is_refused_and_names_it(
    marking: BreakGlassRole, partner_staff: User, colleague: User, second: str
) -> None:
    live = activate(marking, partner_staff)
    delegation_mark_active(delegation=live.delegation)

    with pytest.raises(BreakGlassAlreadyLive) as refused:
        activate(marking, partner_staff if second == "same person" else colleague)

    assert refused.value.activation.pk == live.pk
    assert partner_staff.email in str(refused.value)
    assert Delegation.objects.count() == 1 and BreakGlassActivation.objects.count() == 1
    denied = AuditEvent.objects.get(action="break_glass.activation_denied")
    assert denied.metadata["live_activation"] == str(live.pk)


def test_an_activation_still_being_applied_is_live_too(
    marking: BreakGlassRole, partner_staff: User
) -> None:
    activate(marking, partner_staff)  # approved: the worker has not applied it yet
    with pytest.raises(BreakGlassAlreadyLive):
        activate(marking, partner_staff)
    assert Delegation.objects.count() == 1


def test_once_the_live_one_is_revoked_or_expired_the_role_activates_again(
    marking: BreakGlassRole, partner_staff: User, owner_admin: User
) -> None:
    first = activate(marking, partner_staff)
    delegation_mark_active(delegation=first.delegation)
    break_glass_revoke(activation=first, reviewed_by=owner_admin, note="No outage")
    second = activate(marking, partner_staff, hours=1)
    delegation_mark_active(delegation=second.delegation)

    delegations_expire_due(now=second.ends_at + dt.timedelta(minutes=1))

    third = activate(marking, partner_staff)
    assert BreakGlassActivation.objects.count() == 3 and third.pk not in (first.pk, second.pk)


def test_the_page_points_the_second_activation_at_the_live_one(
    login: Callable[..., Client], marking: BreakGlassRole, partner_staff: User, colleague: User
) -> None:
    live = activate(marking, partner_staff)
    client = with_mfa(login(colleague), colleague)
    prefix = str(marking.pk)

    response = client.post(
        reverse("delegations:break_glass_activate", args=[marking.pk]),
        {f"{prefix}-hours": 2, f"{prefix}-reason": REASON},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("delegations:break_glass") + f"#activation-{live.pk}"
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "already live" in message and partner_staff.email in message
    assert BreakGlassActivation.objects.count() == 1
    # The page shows the live window where the form was, with no second button.
    page = client.get(reverse("delegations:break_glass")).content.decode()
    assert 'data-testid="break-glass-live"' in page
    assert 'data-testid="activate-break-glass"' not in page
