"""A worker killed between any two steps: the next run (after the sweeper frees its lease)
converges, closes the dead worker's dangling intents, and leaves no orphan or duplicate."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from delegations.models import CloudCall, Delegation
from delegations.worker import owner_role as apply
from delegations.worker.engine import (
    ReconcileOutcome,
)
from delegations.worker.lease import (
    lease_duration,
)
from delegations.worker.periodic import managed_roles_sweep_stuck

Status = Delegation.Status
ECS = ("System", "AliyunECSFullAccess")
CLOUD_METHODS = (
    "get_role",
    "list_policies_for_role",
    "create_role",
    "update_role",
    "attach_policy_to_role",
    "detach_policy_from_role",
    "delete_role",
)


COUNTER_LOCK = threading.Lock()


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, not even `finally` clean-ups that matter."""


class KillingClient:
    """Wraps a real client; the run dies just before or just after its n-th cloud call, counted
    over every client of the run (reads may go out side by side on two clients)."""

    def __init__(self, real: Any, *, at: int, when: str, counter: list[int]) -> None:
        self._real = real
        self._at = at
        self._when = when
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._real, name)
        if name not in CLOUD_METHODS:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with COUNTER_LOCK:
                self._counter[0] += 1
                number = self._counter[0]
            if number == self._at and self._when == "before":
                raise Killed(f"killed before {name}")
            result = attribute(*args, **kwargs)
            if number == self._at and self._when == "after":
                raise Killed(f"killed after {name}")
            return result

        return call


def _run_killed(world, monkeypatch, *, at: int, when: str) -> bool:
    """One run that dies at the kill point, leaving its lease held like a dead process.
    Returns whether it died (the flow may finish before reaching the point)."""
    real_make = apply.make_cloud_client
    counter = [0]

    def make(managed_role):
        return KillingClient(real_make(managed_role), at=at, when=when, counter=counter)

    with monkeypatch.context() as patch:
        patch.setattr(apply, "make_cloud_client", make)
        patch.setattr(apply.RoleLease, "release", lambda self, **kwargs: None)
        try:
            world.reconcile()
        except Killed:
            return True
    return False


def _restart(world) -> None:
    later = timezone.now() + lease_duration() + dt.timedelta(seconds=1)
    managed_roles_sweep_stuck(now=later)
    assert world.reconcile().outcome in (
        ReconcileOutcome.CONVERGED,
        ReconcileOutcome.NOTHING_TO_DO,
    )


def _check_converged(world, delegations: dict[str, Delegation]) -> None:
    active = [d for d in delegations.values() if world.status(d) == Status.ACTIVE]
    for name, delegation in delegations.items():
        expected = Status.REVOKED if name.startswith("revoked") else Status.ACTIVE
        assert world.status(delegation) == expected, name
    wanted = {f"acs:ram::{d.partner_account_uid}:root" for d in active}
    if wanted:
        assert world.trusted() == wanted
        assert world.attached() == {ECS}
    else:
        assert world.role() is None
    assert not CloudCall.objects.filter(outcome=CloudCall.Outcome.PENDING).exists()
    for delegation in delegations.values():
        actions = list(
            AuditEvent.objects.filter(target_id=str(delegation.pk)).values_list("action", flat=True)
        )
        assert len(actions) == len(set(actions)), actions


def _first_apply(world) -> dict[str, Delegation]:
    return {"one": world.offer()}


def _second_partner(world) -> dict[str, Delegation]:
    first = world.offer()
    world.reconcile()
    return {"one": first, "two": world.offer()}


def _revoke_one(world) -> dict[str, Delegation]:
    first, second = world.offer(), world.offer()
    world.reconcile()
    world.revoke(second)
    return {"one": first, "revoked": second}


def _revoke_last(world) -> dict[str, Delegation]:
    only = world.offer()
    world.reconcile()
    world.revoke(only)
    return {"revoked": only}


FLOWS: dict[str, Callable[[Any], dict[str, Delegation]]] = {
    "first_apply": _first_apply,  # GetRole, CreateRole, Attach, GetRole, ListPolicies
    "second_partner": _second_partner,  # GetRole, ListPolicies, UpdateRole, GetRole, List
    "revoke_one": _revoke_one,  # GetRole, ListPolicies, UpdateRole, GetRole, List
    "revoke_last": _revoke_last,  # GetRole, ListPolicies, Detach, DeleteRole, GetRole
}


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("at", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_killed_at_every_cloud_call_converges(
    owner_world, monkeypatch, flow: str, at: int, when: str
) -> None:
    delegations = FLOWS[flow](owner_world)

    died = _run_killed(owner_world, monkeypatch, at=at, when=when)
    assert died, "every kill point of these flows is reached"
    _restart(owner_world)

    _check_converged(owner_world, delegations)
    dangling = CloudCall.objects.filter(note="resolved by reconcile")
    assert all(c.outcome == CloudCall.Outcome.UNKNOWN for c in dangling)


@pytest.mark.parametrize(
    "service", ["delegation_mark_applying", "delegation_mark_active", "delegation_mark_revoked"]
)
def test_killed_right_after_a_transition_commit_converges(
    owner_world, monkeypatch, service: str
) -> None:
    delegations = _revoke_one(owner_world) if service.endswith("revoked") else {}
    delegations.setdefault("fresh", owner_world.offer())
    real = getattr(apply, service)

    def commit_then_die(**kwargs: Any) -> Delegation:
        real(**kwargs)
        raise Killed(f"killed after {service}")

    with monkeypatch.context() as patch:
        patch.setattr(apply, service, commit_then_die)
        patch.setattr(apply.RoleLease, "release", lambda self, **kwargs: None)
        with pytest.raises(Killed):
            owner_world.reconcile()
    _restart(owner_world)

    _check_converged(owner_world, delegations)


def test_a_dead_workers_intent_is_closed_by_the_next_run(owner_world, monkeypatch) -> None:
    owner_world.offer()
    assert _run_killed(owner_world, monkeypatch, at=2, when="after")  # after CreateRole
    pending = CloudCall.objects.get(outcome=CloudCall.Outcome.PENDING)
    assert pending.action == "CreateRole"

    # Before the sweeper frees the lease, another run must keep off the role.
    assert owner_world.reconcile().outcome == ReconcileOutcome.BUSY
    _restart(owner_world)

    pending.refresh_from_db()
    assert pending.outcome == CloudCall.Outcome.UNKNOWN
    assert pending.note == "resolved by reconcile"
    events = list(
        AuditEvent.objects.filter(target_id=str(pending.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert events == ["cloud.call_intent", "cloud.call_result"]
