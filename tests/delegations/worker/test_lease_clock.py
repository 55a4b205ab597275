"""The lease is timed by the database's clock, not by the worker's: a worker whose clock runs
ahead cannot take a lease another worker still holds, one whose clock runs behind does not
shorten the lease it holds, and neither the sweep nor the "access being applied" probe of a
worker with a wrong clock mistakes a live lease for a dead one.

Each test sets one worker's clock (`timezone.now`, what the worker's Python code reads) off by
more than a lease lasts, while the database keeps the real time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from django.db.models.functions import Now
from django.utils import timezone

from delegations.models import ManagedRole
from delegations.worker.lease import access_being_applied, lease_duration
from delegations.worker.owner_role import RoleLease
from delegations.worker.periodic import managed_roles_sweep_stuck
from tests.delegations.factories import ManagedRoleFactory

pytestmark = pytest.mark.django_db

# Beyond a whole lease: a clock this far off saw every lease it compares with run out.
SKEW = lease_duration() + dt.timedelta(seconds=15)

Clock = Callable[[dt.timedelta], AbstractContextManager[None]]


@pytest.fixture
def clock_off_by(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """`with clock_off_by(offset):` this worker's clock reads the real time plus `offset`."""
    real_now = timezone.now

    @contextmanager
    def off_by(offset: dt.timedelta) -> Iterator[None]:
        with monkeypatch.context() as patch:
            patch.setattr(timezone, "now", lambda: real_now() + offset)
            yield

    return off_by


def _holder(role: ManagedRole) -> str:
    return ManagedRole.objects.values_list("locked_by", flat=True).get(pk=role.pk)


def test_a_worker_whose_clock_runs_ahead_cannot_take_a_held_lease(clock_off_by: Clock) -> None:
    role = ManagedRoleFactory()
    holder = RoleLease(role.pk)
    assert holder.claim()

    with clock_off_by(SKEW):
        assert not RoleLease(role.pk).claim()

    assert _holder(role) == holder.token
    holder.renew()  # still the holder's: it goes on


def test_a_worker_whose_clock_runs_behind_keeps_its_lease_for_the_whole_duration(
    clock_off_by: Clock,
) -> None:
    role = ManagedRoleFactory()
    holder = RoleLease(role.pk)
    with clock_off_by(-SKEW):
        assert holder.claim()
        holder.renew()
        assert holder.beat()

    assert not RoleLease(role.pk).claim()
    assert _holder(role) == holder.token


def test_a_lease_run_out_by_the_database_clock_is_taken_whatever_the_worker_clock(
    clock_off_by: Clock,
) -> None:
    role = ManagedRoleFactory()
    ManagedRole.objects.filter(pk=role.pk).update(
        locked_by="dead-worker", locked_until=Now() - dt.timedelta(seconds=1)
    )
    taker = RoleLease(role.pk)

    with clock_off_by(-SKEW):
        assert taker.claim()

    assert _holder(role) == taker.token


def test_a_sweep_whose_clock_runs_ahead_leaves_a_live_lease_alone(clock_off_by: Clock) -> None:
    role = ManagedRoleFactory()
    holder = RoleLease(role.pk)
    assert holder.claim()

    with clock_off_by(SKEW):
        assert managed_roles_sweep_stuck()["leases_freed"] == 0
        assert access_being_applied()

    assert _holder(role) == holder.token
