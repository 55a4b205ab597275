"""Many partners approved together on one role: one reconcile, one round and the five cloud
calls a new role strictly needs, whatever their number. Against cloudsim; no time measured."""

from __future__ import annotations

from collections import Counter

from delegations.models import CloudCall, Delegation
from delegations.worker.engine import ReconcileOutcome

Status = Delegation.Status

# GetRole (absent), CreateRole with every partner, AttachPolicyToRole, and the verifying
# GetRole and ListPoliciesForRole.
FIVE_CALLS = Counter(
    {"GetRole": 2, "CreateRole": 1, "AttachPolicyToRole": 1, "ListPoliciesForRole": 1}
)


def test_partners_approved_together_converge_in_one_round_of_five_calls(owner_world) -> None:
    delegations = [owner_world.offer() for _ in range(12)]
    seq = owner_world.last_seq()

    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.CONVERGED
    assert report.rounds == 1
    assert report.mutating_calls == 2
    assert sorted(report.activated) == sorted(str(d.pk) for d in delegations)
    assert Counter(c["action"] for c in owner_world.cloud_calls(seq)) == FIVE_CALLS
    assert owner_world.trusted() == {d.principal_arn for d in delegations}
    # Every request the cloud answered is recorded once, as before.
    recorded = CloudCall.objects.filter(managed_role=owner_world.managed_role())
    assert Counter(recorded.values_list("action", flat=True)) == FIVE_CALLS
    # A second reconcile finds nothing to do: the one round covered every approval.
    assert owner_world.reconcile().outcome == ReconcileOutcome.NOTHING_TO_DO
