"""Notification batches step aside while a worker applies access (issue 19 item 6): the probe
they ask is "does a worker hold a lease now"."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.broker import urgent_work_running
from delegations.models import ManagedRole, PartnerUserPolicy
from delegations.worker.lease import access_being_applied, leased_models
from delegations.worker.owner_role import RoleLease
from tests.delegations.factories import ManagedRoleFactory

pytestmark = pytest.mark.django_db


def test_a_held_lease_is_access_being_applied_until_released_or_run_out() -> None:
    role = ManagedRoleFactory()
    assert not access_being_applied() and not urgent_work_running()

    lease = RoleLease(role.pk)
    assert lease.claim()
    assert access_being_applied() and urgent_work_running()

    assert lease.release_if_converged(version=role.desired_version)
    assert not access_being_applied() and not urgent_work_running()

    # A dead worker's lease counts only until it runs out.
    ManagedRole.objects.filter(pk=role.pk).update(
        locked_by="dead-worker", locked_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert not access_being_applied()


def test_every_leased_table_is_probed() -> None:
    assert {ManagedRole, PartnerUserPolicy} <= set(leased_models())
