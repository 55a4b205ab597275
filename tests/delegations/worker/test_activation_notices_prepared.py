"""A round renders its activation notices while its verifying reads are out (issue 19 item 6:
the worker would only wait for those answers, and rendering a role's hundred notices after
them held every activation back). What the activation then writes is exactly what it would
have rendered itself, and a delegation that changed in between is told as it is now."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from delegations.lifecycle.automatic import delegations_mark_many, delegations_mark_many_prepare
from delegations.lifecycle.transitions import delegations_lock_for_worker
from delegations.models import Delegation
from delegations.notices import transitions as notices
from delegations.worker import owner_role
from delegations.worker.engine import ReconcileOutcome
from notifications.models import Delivery
from tests.factories import MembershipFactory

Status = Delegation.Status


def _offer_with_admins(owner_world: Any, count: int) -> list[Delegation]:
    delegations = []
    for _ in range(count):
        partner = owner_world.partner()
        MembershipFactory(organisation=partner)
        delegations.append(owner_world.offer(partner))
    return delegations


def _activation_deliveries(delegations: list[Delegation]) -> list[tuple[Any, ...]]:
    return sorted(
        (d.idempotency_key, d.recipient_id, d.recipient_email, d.channel_id, repr(d.content))
        for d in Delivery.objects.filter(
            event="delegation.active",
            idempotency_key__startswith="delegation.active:",
        )
        if any(str(delegation.pk) in d.idempotency_key for delegation in delegations)
    )


def _to_applying(delegations: list[Delegation]) -> None:
    with transaction.atomic():
        rows = delegations_lock_for_worker(delegation_ids=[d.pk for d in delegations])
        delegations_mark_many(delegations=list(rows.values()), to=Status.APPLYING)


def _activate(delegations: list[Delegation], *, prepared: Any = None) -> None:
    with transaction.atomic():
        rows = delegations_lock_for_worker(delegation_ids=[d.pk for d in delegations])
        delegations_mark_many(delegations=list(rows.values()), to=Status.ACTIVE, prepared=prepared)


def _loaded(delegations: list[Delegation]) -> list[Delegation]:
    # As the worker's round holds them: read before its writes, partner and role joined.
    return list(
        Delegation.objects.filter(pk__in=[d.pk for d in delegations])
        .select_related("catalog_role", "partner")
        .order_by("pk")
    )


class _RolledBack(Exception):
    pass


def test_prepared_notices_are_what_the_activation_would_render(owner_world) -> None:
    delegations = _offer_with_admins(owner_world, 3)
    _to_applying(delegations)
    try:
        with transaction.atomic():
            _activate(delegations)
            rendered_in_the_move = _activation_deliveries(delegations)
            raise _RolledBack
    except _RolledBack:
        pass
    assert Delivery.objects.filter(event="delegation.active").count() == 0

    prepared = delegations_mark_many_prepare(delegations=_loaded(delegations), to=Status.ACTIVE)
    _activate(delegations, prepared=prepared)

    assert len(rendered_in_the_move) == 3
    assert _activation_deliveries(delegations) == rendered_in_the_move


def test_a_delegation_changed_after_preparing_is_told_as_it_is_now(
    owner_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    delegations = _offer_with_admins(owner_world, 3)
    _to_applying(delegations)
    prepared = delegations_mark_many_prepare(delegations=_loaded(delegations), to=Status.ACTIVE)
    # Meanwhile the owner moves one end date (an extension does not change the version).
    new_end = (timezone.now() + dt.timedelta(days=40)).replace(hour=9, minute=0, second=0)
    Delegation.objects.filter(pk=delegations[0].pk).update(ends_at=new_end)
    rendered: list[int] = []
    render = notices.deliveries_render

    def counting(announcements: Any) -> Any:
        announcements = list(announcements)
        rendered.append(len(announcements))
        return render(announcements)

    monkeypatch.setattr(notices, "deliveries_render", counting)

    _activate(delegations, prepared=prepared)

    assert rendered == [1]  # the changed one only; the other two were written as prepared
    changed = Delivery.objects.get(
        event="delegation.active", idempotency_key__contains=str(delegations[0].pk)
    )
    assert new_end.strftime("%Y-%m-%d %H:%M UTC") in repr(changed.content)
    assert Delivery.objects.filter(event="delegation.active").count() == 3


def test_a_round_renders_its_activation_notices_before_it_activates(
    owner_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    delegations = _offer_with_admins(owner_world, 4)
    moving: list[bool] = [False]
    rendered: list[tuple[bool, int]] = []
    render, mark_many = notices.deliveries_render, owner_role.delegations_mark_many

    def counting(announcements: Any) -> Any:
        announcements = list(announcements)
        rendered.append((moving[0], len(announcements)))
        return render(announcements)

    def marking(**kwargs: Any) -> Any:
        moving[0] = kwargs["to"] == Status.ACTIVE
        try:
            return mark_many(**kwargs)
        finally:
            moving[0] = False

    monkeypatch.setattr(notices, "deliveries_render", counting)
    monkeypatch.setattr(owner_role, "delegations_mark_many", marking)

    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.CONVERGED
    assert [owner_world.status(d) for d in delegations] == [Status.ACTIVE] * 4
    # Rendered once, ahead of the activation (during the verifying reads); the activation
    # itself renders nothing and writes the four.
    assert (False, 4) in rendered
    assert [count for in_move, count in rendered if in_move] == [0]
    assert len(_activation_deliveries(delegations)) == 4
