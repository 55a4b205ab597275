"""The fail-safe end date in the cloud: a time-bound grant's trust statement stops new
AssumeRole calls after its end, evaluated by cloudsim at the moment of the call, so access ends
even though no worker or scheduler runs; an open-ended grant on the same role is unaffected,
and overlapping grants of one partner keep the later end."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import transaction
from django.utils import timezone

from cloud import policies
from cloud.client import CloudClient, CloudCredentials
from cloud.errors import CloudError
from delegations.models import Delegation
from delegations.outbox import outbox_enqueue_reconcile
from delegations.role_plan import DesiredRole, _trust
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
        return Delegation(pk=uuid.uuid4(), partner_account_uid="12345678", ends_at=ends_at)

    def end_times(*grants: Delegation) -> tuple[tuple[str, str], ...]:
        # Each grant trusts the partner's whole account (`delegation_principals`).
        return principal_end_times(list(grants), {g.pk: frozenset({principal}) for g in grants})

    assert end_times(grant(end_1), grant(end_2)) == ((principal, "2027-02-01T00:00:00Z"),)
    assert end_times(grant(end_2), grant(end_1)) == ((principal, "2027-02-01T00:00:00Z"),)
    assert end_times(grant(end_1), grant(None)) == ()


def test_an_end_time_never_admits_a_principal_without_its_external_id() -> None:
    """A principal trusted under its ExternalId keeps that one statement: an end-time statement
    of its own (an Allow without the Condition) would let it in without the ExternalId."""
    conditioned = "acs:ram::12345678:user/alice"
    plain = "acs:ram::87654321:root"
    end = "2027-02-01T00:00:00Z"
    desired = DesiredRole(
        role_name="ecs-ops",
        owner_account_uid="11223344",
        managed_principals_wanted=frozenset({conditioned, plain}),
        principal_conditions={conditioned: policies.external_id_condition("ext-1234")},
        principal_end_times=((conditioned, end), (plain, end)),
    )

    merged = _trust(
        None,
        desired,
        wanted={conditioned, plain},
        managed=frozenset({conditioned, plain}),
        parking=None,
    )

    admitting = [s for s in merged["Statement"] if conditioned in s["Principal"].get("RAM", ())]
    assert len(admitting) == 1
    assert policies.EXTERNAL_ID_KEY in str(admitting[0]["Condition"])
    assert policies.trust_policy_end_times(merged) == {plain: end}
