"""A round's first read of the role is in flight while the round moves its delegations into
applying (a role's hundred partners take as long to move as a call takes to answer), and it
is recorded and used like any read. Against cloudsim; nothing timed."""

from __future__ import annotations

import threading
from collections import Counter

from delegations.models import CloudCall, Delegation
from delegations.worker import owner_role
from delegations.worker.engine import ReconcileOutcome

Status = Delegation.Status


def test_the_first_read_is_sent_before_the_move_into_applying(owner_world, monkeypatch) -> None:
    delegations = [owner_world.offer() for _ in range(3)]
    read_started = threading.Event()
    seen: dict[str, object] = {}
    real_ask, real_transition_all = owner_role.ask_role, owner_role._transition_all

    def ask_role(*args, **kwargs):
        seen.setdefault("reader", threading.current_thread().name)
        read_started.set()
        return real_ask(*args, **kwargs)

    def transition_all(moves, **kwargs):
        if moves and moves[0][2] == Status.APPROVED:  # the move into applying
            # The read went out first: it is answered while this move runs.
            seen["read_in_flight"] = read_started.wait(timeout=10)
        return real_transition_all(moves, **kwargs)

    monkeypatch.setattr(owner_role, "ask_role", ask_role)
    monkeypatch.setattr(owner_role, "_transition_all", transition_all)
    seq = owner_world.last_seq()

    report = owner_world.reconcile()

    assert seen["read_in_flight"] is True
    assert str(seen["reader"]).startswith("first-read")
    assert report.outcome == ReconcileOutcome.CONVERGED and report.rounds == 1
    assert sorted(report.activated) == sorted(str(d.pk) for d in delegations)
    # The early read is the round's only first read, recorded once like the others.
    five = {"GetRole": 2, "CreateRole": 1, "AttachPolicyToRole": 1, "ListPoliciesForRole": 1}
    assert Counter(c["action"] for c in owner_world.cloud_calls(seq)) == Counter(five)
    recorded = CloudCall.objects.filter(managed_role=owner_world.managed_role())
    assert Counter(recorded.values_list("action", flat=True)) == Counter(five)
