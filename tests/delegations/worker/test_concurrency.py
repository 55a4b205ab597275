"""Many workers on one role at once (threads calling the task, each with its own database
connection): the lease serialises them, nothing is lost, nothing revoked comes back."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections

from audit.models import AuditEvent
from cloud import policies
from delegations.models import CloudCall, Delegation, ManagedRole
from delegations.worker.tasks import reconcile_role, run_outbox_message

Status = Delegation.Status

pytestmark = pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason=(
        "the in-memory SQLite test database answers concurrent writers with 'table is locked' "
        "instead of waiting; test_concurrency_processes.py races real workers on a SQLite file"
    ),
)


def _in_thread(work: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        try:
            return work()
        finally:
            connections.close_all()

    return run


def _principal(delegation: Delegation) -> str:
    return f"acs:ram::{delegation.partner_account_uid}:root"


def _trust_documents(world, since: int) -> list[set[str]]:
    """Every trust policy the portal wrote, in the order cloudsim applied them."""
    documents = []
    for call in world.cloud_calls(since, mutating=True):
        text = call["parameters"].get("NewAssumeRolePolicyDocument") or call["parameters"].get(
            "AssumeRolePolicyDocument"
        )
        if text and call["outcome"] == "success":
            documents.append(set(policies.trust_policy_principals(json.loads(text)).ram))
    return documents


def test_twenty_approvals_and_five_revocations_in_parallel(owner_world_tx) -> None:
    world = owner_world_tx
    role_id = str(world.managed_role().pk)
    initial = [world.offer() for _ in range(5)]
    reconcile_role.apply(args=[role_id])
    assert {world.status(d) for d in initial} == {Status.ACTIVE}
    partners = [world.partner() for _ in range(20)]
    seq = world.last_seq()
    created: list[Delegation] = []
    lock = threading.Lock()

    def approve(partner) -> None:
        delegation = world.offer(partner)
        with lock:
            created.append(delegation)
        reconcile_role.apply(args=[role_id])

    def revoke(delegation) -> None:
        world.revoke(Delegation.objects.get(pk=delegation.pk))
        reconcile_role.apply(args=[role_id])

    work = [lambda p=p: approve(p) for p in partners] + [lambda d=d: revoke(d) for d in initial]
    random.Random(7).shuffle(work)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(_in_thread(job)) for job in work]:
            future.result()

    # No extra run: the last holder saw every change committed before it let go.
    assert len(created) == 20
    assert {world.status(d) for d in created} == {Status.ACTIVE}
    assert {world.status(d) for d in initial} == {Status.REVOKED}
    assert world.trusted() == {_principal(d) for d in created}
    managed = ManagedRole.objects.get(pk=role_id)
    assert managed.locked_by == ""
    assert managed.applied_version == managed.desired_version
    assert not CloudCall.objects.filter(outcome=CloudCall.Outcome.PENDING).exists()

    # Once a revoked partner left the trust policy it never came back, not even for a moment.
    revoked = {_principal(d) for d in initial}
    gone: set[str] = set()
    for principals in _trust_documents(world, seq):
        assert not (gone & principals), "a revoked partner reappeared"
        gone |= revoked - principals


def test_duplicate_deliveries_have_one_effect_and_one_audit_event(owner_world_tx) -> None:
    """The same outbox message delivered four times, concurrently."""
    world = owner_world_tx
    delegation = world.offer()
    message_id = world.published[-1]
    seq = world.last_seq()
    barrier = threading.Barrier(4)

    def deliver() -> str:
        barrier.wait()
        return run_outbox_message.apply(args=[message_id]).get()

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = [f.result() for f in [pool.submit(_in_thread(deliver)) for _ in range(4)]]

    assert "converged" in outcomes
    assert world.status(delegation) == Status.ACTIVE
    effects = [c for c in world.cloud_calls(seq, mutating=True) if c["outcome"] == "success"]
    assert [c["action"] for c in effects] == ["CreateRole", "AttachPolicyToRole"]
    actions = list(
        AuditEvent.objects.filter(target_id=str(delegation.pk)).values_list("action", flat=True)
    )
    assert sorted(actions) == sorted(
        ["delegation.offered", "delegation.applying", "delegation.activated"]
    )
