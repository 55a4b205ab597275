"""Issue 19, item 2: stale reads are never written back.

cloudsim's `GetRole:stale` fault answers GetRole with the trust policy from before the last
write (anyone's) for a while. RAM has no conditional update, so the worker must not plan a write
from such a read: it waits `PORTAL_RAM_READ_SETTLE_SECONDS` after a read and reads again before
writing, it never plans from a read that shows the state from before its own last write, and it
reports any principal not managed here that a read before a write showed and the write did not
keep."""

from __future__ import annotations

import json

import pytest

from cloud import policies
from delegations.lifecycle.drift import NOT_KEPT_BY_WRITE
from delegations.models import Delegation, DriftFinding
from delegations.worker.engine import ReconcileOutcome
from tests.fixtures.worker import random_uid

Status = Delegation.Status
Kind = DriftFinding.Kind


def _principal(delegation: Delegation) -> str:
    return f"acs:ram::{Delegation.objects.get(pk=delegation.pk).partner_account_uid}:root"


def _set_trust(world, principals: set[str]) -> None:
    """Someone outside the portal rewrites the role's trust policy in RAM."""
    world.client().update_role(
        world.role_name, trust_document=policies.build_trust_policy(sorted(principals))
    )


def _written_principals(world, since: int) -> list[set[str]]:
    """The principals of every trust policy the portal sent to RAM after `since`."""
    written = []
    for call in world.cloud_calls(since, mutating=True):
        parameters = call["parameters"]
        document = parameters.get("NewAssumeRolePolicyDocument") or parameters.get(
            "AssumeRolePolicyDocument"
        )
        if document:
            written.append(set(policies.trust_policy_principals(json.loads(document)).ram))
    return written


def _stale_reads(world, since: int) -> int:
    return sum(1 for call in world.cloud_calls(since) if call.get("stale_read"))


@pytest.fixture
def lagging(owner_world, settings):
    """GetRole answers with the previous trust policy for 1.5 s after any trust-policy write;
    the portal is told the cloud lags (a settle delay longer than that)."""
    settings.PORTAL_RAM_READ_SETTLE_SECONDS = 2.0

    def start() -> None:
        owner_world.sim.set_faults({"action": "GetRole", "kind": "stale", "arg": "1.5"})

    return start


def test_a_principal_added_outside_just_before_is_kept(owner_world, lagging) -> None:
    first = owner_world.offer()
    owner_world.reconcile()
    outsider = f"acs:ram::{random_uid()}:root"
    _set_trust(owner_world, owner_world.trusted() | {outsider})
    lagging()
    second = owner_world.offer()
    seq = owner_world.last_seq()

    assert owner_world.reconcile().outcome == ReconcileOutcome.CONVERGED

    assert _stale_reads(owner_world, seq), "the fault should have served a stale read"
    assert all(outsider in written for written in _written_principals(owner_world, seq))
    owner_world.sim.clear_faults()
    assert owner_world.trusted() == {_principal(first), _principal(second), outsider}
    assert owner_world.status(second) == Status.ACTIVE
    # Kept, and reported as added outside the portal (as any unmanaged principal is).
    finding = DriftFinding.objects.get(subject=outsider)
    assert finding.kind == Kind.UNMANAGED_PRINCIPAL_ADDED
    assert not finding.details.get(NOT_KEPT_BY_WRITE)


def test_a_principal_removed_outside_is_not_written_back_and_is_reported(
    owner_world, lagging
) -> None:
    first = owner_world.offer()
    owner_world.reconcile()
    outsider = f"acs:ram::{random_uid()}:root"
    _set_trust(owner_world, owner_world.trusted() | {outsider})
    second = owner_world.offer()
    owner_world.reconcile()  # the portal writes a policy that keeps the outsider
    assert outsider in owner_world.trusted()
    _set_trust(owner_world, owner_world.trusted() - {outsider})  # ...who is then removed
    lagging()
    third = owner_world.offer()
    seq = owner_world.last_seq()

    assert owner_world.reconcile().outcome == ReconcileOutcome.CONVERGED

    assert _stale_reads(owner_world, seq), "the fault should have served a stale read"
    written = _written_principals(owner_world, seq)
    assert written and all(outsider not in principals for principals in written)
    owner_world.sim.clear_faults()
    assert owner_world.trusted() == {_principal(d) for d in (first, second, third)}
    # The stale read showed it and the write did not keep it: the owner hears of it, and the
    # drift check (which cannot see it any more) does not clear that as "gone".
    finding = DriftFinding.objects.get(subject=outsider, resolved_at__isnull=True)
    assert finding.details[NOT_KEPT_BY_WRITE] is True


def test_a_read_from_before_the_portals_own_write_is_not_planned_from(
    owner_world, settings
) -> None:
    """No settle delay here (the demo's setting): the check against the portal's own last write
    works alone. The revoked partner's principal was added by the portal's last write; a read
    from before that write does not show it, and planning from it would call the revocation
    done while the partner can still assume the role."""
    settings.PORTAL_RAM_READ_SETTLE_SECONDS = 0
    keep = owner_world.offer()
    owner_world.reconcile()
    leave = owner_world.offer()
    owner_world.reconcile()
    # From now on (and for the 3 s after the portal's last write) GetRole lags that write.
    owner_world.sim.set_faults({"action": "GetRole", "kind": "stale", "arg": "3"})
    owner_world.revoke(leave)
    seq = owner_world.last_seq()

    assert owner_world.reconcile().outcome == ReconcileOutcome.CONVERGED

    assert _stale_reads(owner_world, seq), "the fault should have served a stale read"
    assert owner_world.status(leave) == Status.REVOKED
    owner_world.sim.clear_faults()
    assert owner_world.trusted() == {_principal(keep)}
