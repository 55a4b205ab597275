"""A run that releases a role's lease without settling it (a permanent failure, a desired
state that kept moving) hands over the change it leaves: a reconcile told "busy" meanwhile
left that change to the holder, and without a hand-over it would wait for the outbox's
republish (a minute or more)."""

from __future__ import annotations

from django.utils import timezone

from cloud import policies
from delegations.lifecycle.services import delegation_retry
from delegations.models import Delegation, OutboxMessage
from delegations.worker import engine, owner_role
from delegations.worker.engine import ReconcileOutcome
from tests.fixtures.worker import random_uid

Status = Delegation.Status


def _published(world) -> None:
    """The messages so far were published: the run below is theirs."""
    OutboxMessage.objects.filter(done_at__isnull=True).update(dispatched_at=timezone.now())


def test_a_change_made_while_a_run_fails_is_handed_over_when_it_releases(
    owner_world_tx, monkeypatch
) -> None:
    world = owner_world_tx
    # A role of the same name made by hand: the portal refuses it, without any write.
    world.client().create_role(
        world.role_name,
        trust_document=policies.build_trust_policy([f"acs:ram::{random_uid()}:root"]),
        description="Made by hand in the console",
        max_session_duration=3600,
    )
    delegation = world.offer()
    real_fail = owner_role._RoleReconciler.fail
    fixed: list[bool] = []

    def fail_while_the_owner_fixes_it(self, info):
        cleanup = real_fail(self, info)
        if not fixed:
            fixed.append(True)
            # Right after the failure shows, the owner deletes the hand-made role and retries.
            world.client().delete_role(world.role_name)
            delegation_retry(
                delegation=Delegation.objects.get(pk=delegation.pk), retried_by=world.admin
            )
        return cleanup

    monkeypatch.setattr(owner_role._RoleReconciler, "fail", fail_while_the_owner_fixes_it)
    _published(world)
    told = world.worker_takes_messages_at_once(monkeypatch)

    assert world.reconcile().outcome == ReconcileOutcome.FAILED

    assert [outcome for _, outcome in told] == [ReconcileOutcome.BUSY, ReconcileOutcome.CONVERGED]
    assert world.status(delegation) == Status.ACTIVE


def test_a_run_out_of_rounds_hands_over_the_change_it_leaves(
    owner_world_tx, settings, monkeypatch
) -> None:
    world = owner_world_tx
    settings.PORTAL_RECONCILE_MAX_ROUNDS = 1
    first = world.offer()
    real_verify = engine.verify
    second: list[Delegation] = []

    def verify_while_another_partner_is_offered(subject, **kwargs):
        if not second:
            second.append(world.offer())
        return real_verify(subject, **kwargs)

    monkeypatch.setattr(engine, "verify", verify_while_another_partner_is_offered)
    _published(world)
    told = world.worker_takes_messages_at_once(monkeypatch)

    world.reconcile()

    assert [outcome for _, outcome in told] == [ReconcileOutcome.BUSY, ReconcileOutcome.CONVERGED]
    assert world.status(first) == Status.ACTIVE
    assert world.status(second[0]) == Status.ACTIVE
