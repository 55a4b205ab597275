"""A role the portal deleted on purpose is *retired*, not drift (issue 18 item 2).

Against cloudsim through the real worker: a partner is granted `ecs-admin`, revoked, and the
worker deletes the role once nobody needs it. The Roles page, its counts and the periodic
drift check must all read that as what the portal wants now; a new grant makes the role live
again. A cut-off role's detached policies are the portal's wish too, not drift.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from delegations.lifecycle import selectors
from delegations.models import CloudCall, Delegation, DriftFinding, ManagedRole
from delegations.partner.services import role_cut_off
from delegations.worker.periodic import managed_role_check_drift
from tests.fixtures.worker import OwnerWorld

pytestmark = pytest.mark.django_db


@pytest.fixture
def retired(owner_world: OwnerWorld, settings) -> tuple[OwnerWorld, Delegation]:
    """ecs-admin granted to one partner, then revoked: the worker deleted the role."""
    settings.PORTAL_DRIFT_QUIET_AFTER_RECONCILE_SECONDS = 0
    delegation = owner_world.offer()
    owner_world.reconcile()
    owner_world.revoke(delegation)
    owner_world.reconcile()
    assert owner_world.role() is None
    return owner_world, delegation


def _page(world: OwnerWorld, login) -> str:
    return login(world.admin).get(reverse("delegations:roles")).content.decode()


def _card(body: str, role: ManagedRole) -> str:
    match = re.search(rf'<section[^>]*id="role-{role.pk}".*?</section>', body, re.S)
    assert match, "the role has its card"
    return match.group(0)


def test_a_role_deleted_after_the_last_revoke_is_retired_with_when_and_why(retired) -> None:
    world, delegation = retired
    role = world.managed_role()
    deletion = CloudCall.objects.get(
        managed_role=role, action="DeleteRole", outcome=CloudCall.Outcome.OK
    )

    comparison = selectors.role_comparison(managed_role=role)

    assert comparison.state == "retired" and not comparison.has_drift
    assert comparison.retirement is not None
    assert comparison.retirement.deleted_at == deletion.finished_at
    assert comparison.retirement.request_id == deletion.request_id != ""
    assert delegation.partner.name in comparison.retirement.why
    assert "revoked" in comparison.retirement.why
    assert comparison.policies == [] and comparison.principals == []


def test_the_roles_page_shows_a_retired_role_greyed_and_counts_no_drift(
    retired, login: Client
) -> None:
    world, _ = retired
    role = world.managed_role()
    deletion = CloudCall.objects.get(managed_role=role, action="DeleteRole")

    body = _page(world, login)
    card = _card(body, role)

    assert 'data-state="retired"' in card and "role-retired" in card
    assert "Retired" in card and deletion.request_id in card
    assert "Drift" not in card and "(drift)" not in card and "badge-danger" not in card
    assert "has-drift" not in card
    counts = re.search(r'data-testid="role-counts".*?</p>', body, re.S).group(0)
    assert "0 with drift" in counts and "1 retired" in counts


def test_the_periodic_drift_check_raises_nothing_for_a_retired_role(retired) -> None:
    world, _ = retired
    role = world.managed_role()

    first = managed_role_check_drift(managed_role_id=role.pk)
    second = managed_role_check_drift(managed_role_id=role.pk)

    assert first.outcome == second.outcome == "checked"
    assert first.open_findings == second.open_findings == []
    assert not DriftFinding.objects.filter(managed_role=role).exists()
    assert selectors.role_comparison(managed_role=world.managed_role()).state == "retired"


def test_a_retired_role_granted_again_is_live(retired) -> None:
    world, _ = retired

    again = world.offer()
    pending = selectors.role_comparison(managed_role=world.managed_role())
    assert pending.retirement is None and pending.state != "retired"
    assert any(row.state == "pending_add" for row in pending.principals)

    world.reconcile()
    live = selectors.role_comparison(managed_role=world.managed_role())
    assert world.status(again) == Delegation.Status.ACTIVE
    assert live.retirement is None and live.state == "in_sync"
    assert [row.state for row in live.policies] == ["ok"]


def test_a_cut_off_roles_detached_policies_are_not_drift(owner_world: OwnerWorld) -> None:
    world = owner_world
    first, second = world.offer(), world.offer()
    world.reconcile()
    role_cut_off(delegation=first, cut_off_by=world.admin, reason="Leaked key", with_mfa=True)
    world.reconcile()
    assert world.attached() == set() and world.status(second) == Delegation.Status.ACTIVE

    comparison = selectors.role_comparison(managed_role=world.managed_role())

    assert [(row.state, row.in_cloud) for row in comparison.policies] == [("cut_off", False)]
    assert comparison.state == "in_sync" and not comparison.has_drift
