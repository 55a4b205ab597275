"""Lifting a cut-off says what it really does, and does only that (issue 18 item 3).

Against cloudsim through the real worker: with a partner still on the role the policies go
back for that partner; on a role the portal deleted since (retired), or one nobody is on,
there is nothing to re-attach: the page and the message say so and no work reaches the
worker.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from delegations.models import Delegation, OutboxMessage, RoleCutOff
from delegations.partner.services import role_cut_off, role_cut_off_lift
from tests.delegations.partner.test_partner_views import with_mfa
from tests.fixtures.worker import OwnerWorld

pytestmark = pytest.mark.django_db

ECS = ("System", "AliyunECSFullAccess")


def _reconcile_messages(world: OwnerWorld) -> int:
    return OutboxMessage.objects.filter(
        kind=OutboxMessage.Kind.RECONCILE_ROLE, object_id=str(world.managed_role().pk)
    ).count()


def _cut_off(world: OwnerWorld, delegation: Delegation) -> RoleCutOff:
    cut = role_cut_off(
        delegation=delegation, cut_off_by=world.admin, reason="Leaked key", with_mfa=True
    )
    world.reconcile()
    return cut


def _lift_in_the_browser_of(world: OwnerWorld, login, delegation: Delegation, cut: RoleCutOff):
    client = with_mfa(login(world.admin), world.admin)
    page = client.get(reverse("delegations:issuances", args=[delegation.pk])).content.decode()
    response = client.post(
        reverse("delegations:cut_off_lift", args=[delegation.pk, cut.pk]), follow=True
    )
    assert response.status_code == 200
    return page, response.content.decode()


def test_lifting_on_a_role_deleted_since_says_it_is_retired_and_sends_no_work(
    owner_world: OwnerWorld, login
) -> None:
    world = owner_world
    delegation = world.offer()
    world.reconcile()
    cut = _cut_off(world, delegation)  # the cut-off also revoked the only partner
    assert world.status(delegation) == Delegation.Status.REVOKED
    assert world.role() is None, "nobody needs the role: the worker deleted it"
    messages_before, seq = _reconcile_messages(world), world.last_seq()

    page, after = _lift_in_the_browser_of(world, login, delegation, cut)

    assert "Nothing to re-attach: the role is retired" in page
    assert "attach the policies again" not in page
    assert "Nothing to re-attach" in after and "is retired" in after
    assert "being attached again" not in after
    assert RoleCutOff.objects.get(pk=cut.pk).lifted_at is not None
    assert _reconcile_messages(world) == messages_before
    assert world.cloud_calls(seq, mutating=True) == []
    event = AuditEvent.objects.get(action="delegation.cut_off_lifted")
    assert event.metadata["role_retired"] is True
    assert event.metadata["policies_reattached_for"] == []


def test_lifting_on_a_kept_role_nobody_is_on_attaches_nothing_until_a_new_grant(
    owner_world: OwnerWorld, login
) -> None:
    world = owner_world
    world.catalog_role.keep_role_when_empty = True
    world.catalog_role.save(update_fields=["keep_role_when_empty"])
    delegation = world.offer()
    world.reconcile()
    cut = _cut_off(world, delegation)
    assert world.role() is not None and world.attached() == set()
    messages_before = _reconcile_messages(world)

    page, after = _lift_in_the_browser_of(world, login, delegation, cut)

    assert "no partner is on this role now" in page
    assert "Nothing to re-attach: no partner is on ecs-admin now" in after
    assert "being attached again" not in after and "retired" not in after
    assert _reconcile_messages(world) == messages_before
    assert world.attached() == set()

    world.offer()
    world.reconcile()
    assert world.attached() == {ECS}


def test_lifting_with_a_partner_still_on_the_role_reattaches_for_that_partner(
    owner_world: OwnerWorld, login
) -> None:
    world = owner_world
    first = world.offer()
    second = world.offer()
    world.reconcile()
    cut = _cut_off(world, first)
    assert world.attached() == set() and world.status(second) == Delegation.Status.ACTIVE

    page, after = _lift_in_the_browser_of(world, login, first, cut)

    assert f"attaches the policies again for {second.partner.name}" in page
    assert f"being attached again for {second.partner.name}" in after
    world.reconcile()
    assert world.attached() == {ECS}


def test_a_second_lift_changes_nothing(owner_world: OwnerWorld) -> None:
    world = owner_world
    delegation = world.offer()
    world.reconcile()
    cut = _cut_off(world, delegation)
    first = role_cut_off_lift(cut_off=cut, lifted_by=world.admin, with_mfa=True)
    again = role_cut_off_lift(cut_off=cut, lifted_by=world.admin, with_mfa=True)
    assert first.changed and not again.changed
    assert AuditEvent.objects.filter(action="delegation.cut_off_lifted").count() == 1
