"""The fail-safe end date in the cloud: a time-bound grant's trust statement stops new
AssumeRole calls after its end, evaluated by cloudsim at the moment of the call, so access ends
even though no worker or scheduler runs; an open-ended grant on the same role is unaffected,
and overlapping grants of one partner keep the later end."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from cloud import policies
from cloud.client import CloudClient, CloudCredentials
from cloud.errors import CloudError
from delegations.models import Delegation
from delegations.outbox import outbox_enqueue_reconcile
from delegations.role_state import principal_end_times
from delegations.worker.engine import ReconcileOutcome
from tests.fixtures.worker import OwnerWorld

Status = Delegation.Status


def _assume(world: OwnerWorld, partner_key: tuple[str, str], session: str) -> object:
    client = CloudClient(
        CloudCredentials(*partner_key),
        ram_endpoint=world.sim.endpoint,
        sts_endpoint=world.sim.endpoint,
    )
    role_arn = policies.role_arn(world.uid, world.role_name)
    return client.assume_role(role_arn=role_arn, session_name=session, duration_seconds=900)


def _partner_with_key(world: OwnerWorld) -> tuple[object, tuple[str, str]]:
    """A partner organisation, its cloud account and a RAM user there allowed to call
    AssumeRole (an account's root may not assume roles)."""
    partner = world.partner()
    account = world.sim.create_account(uid=partner.account_uid, alias=f"p-{partner.account_uid}")
    root = CloudClient(
        CloudCredentials(account["root"]["access_key_id"], account["root"]["access_key_secret"]),
        ram_endpoint=world.sim.endpoint,
        sts_endpoint=world.sim.endpoint,
    )
    user = world.sim.create_user(partner.account_uid, "operator")
    root.attach_policy_to_user(
        user_name="operator", policy_type="System", policy_name="AliyunSTSAssumeRoleAccess"
    )
    return partner, (user["access_key_id"], user["access_key_secret"])


def test_assume_role_after_the_end_is_refused_with_no_worker_running(
    owner_world: OwnerWorld,
) -> None:
    world = owner_world
    timed_partner, timed_key = _partner_with_key(world)
    open_partner, open_key = _partner_with_key(world)
    timed = world.offer(timed_partner, ends_at=timezone.now() + dt.timedelta(hours=2))
    world.offer(open_partner)
    assert world.reconcile().outcome == ReconcileOutcome.CONVERGED
    assert world.status(timed) == Status.ACTIVE
    document = world.role().trust_document
    assert policies.trust_policy_end_times(document) == {
        timed.principal_arn: policies.trust_end_time(timed.ends_at)
    }
    assert _assume(world, timed_key, "before-the-end")

    # The end passes while the worker and the scheduler are down: make the statement's end
    # lie in the past (the ledger row moved back, reconciled once, then nothing runs).
    Delegation.objects.filter(pk=timed.pk).update(
        starts_at=timezone.now() - dt.timedelta(hours=3),
        ends_at=timezone.now() - dt.timedelta(seconds=1),
    )
    with transaction.atomic():
        outbox_enqueue_reconcile(managed_role=world.managed_role())
    assert world.reconcile().outcome == ReconcileOutcome.CONVERGED
    assert world.status(timed) == Status.ACTIVE  # nobody expired it
    assert timed.principal_arn in world.trusted()  # still named: the condition refuses
    with pytest.raises(CloudError) as refused:
        _assume(world, timed_key, "after-the-end")
    assert refused.value.code == "NoPermission"
    assert _assume(world, open_key, "open-ended")  # the other partner is untouched


def test_overlapping_grants_keep_the_later_end_and_open_ended_wins() -> None:
    principal = "acs:ram::12345678:root"
    end_1 = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    end_2 = dt.datetime(2027, 2, 1, tzinfo=dt.UTC)

    def grant(ends_at: dt.datetime | None) -> Delegation:
        return Delegation(partner_account_uid="12345678", ends_at=ends_at)

    assert principal_end_times([grant(end_1), grant(end_2)]) == (
        (principal, "2027-02-01T00:00:00Z"),
    )
    assert principal_end_times([grant(end_2), grant(end_1)]) == (
        (principal, "2027-02-01T00:00:00Z"),
    )
    assert principal_end_times([grant(end_1), grant(None)]) == ()
