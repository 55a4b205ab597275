"""CC-07: credentials issued at the same moment as a revoke. Issuing locks the delegation row
that `delegation_revoke` locks, checks the status and calls AssumeRole inside that lock, so a
revoke either waits for the issuance to commit or is seen by it. Never is a credential issued
(nor an AssumeRole made) after the revoke committed.

Real concurrency needs real row locks: PostgreSQL (CI). cloudsim adds latency to AssumeRole so
the two really overlap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection

from audit.models import AuditEvent
from delegations.models import CredentialIssuance, Delegation
from delegations.partner.credentials import CredentialRefused, credentials_issue
from tests.fixtures.partner import PartnerWorld

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL"),
]
ROUNDS = 4
ISSUERS = 4


def race(*actions: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int, action: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = action()
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_no_credentials_after_the_revoke_commits(partner_world_tx: PartnerWorld) -> None:
    world = partner_world_tx
    totals = {"issued": 0, "refused": 0}
    for round_index in range(ROUNDS):
        delegation = world.active_delegation()
        assignment = world.assign(delegation, world.alice)
        world.drain()
        world.sim.set_faults("AssumeRole:latency:1:80")
        marker: dict[str, int] = {}

        def revoke(
            delegation_id=delegation.pk, delay=0.03 * (round_index + 1), marker=marker
        ) -> object:
            # Staggered so the revoke lands before, during and after issuers' AssumeRole.
            time.sleep(delay)
            result = world.revoke(Delegation.objects.get(pk=delegation_id))
            # The first cloud request made after the revoke committed.
            world.owner_root().get_caller_identity()
            marker["seq"] = world.sim.last_call_seq()
            return result

        def issue(a=assignment) -> object:
            return credentials_issue(assignment=a, user=world.alice, duration_seconds=900)

        start_seq = world.sim.last_call_seq()
        results = race(revoke, *[issue] * ISSUERS)
        world.sim.clear_faults()
        assert isinstance(results[0], Delegation), results[0]
        issued = [r for r in results[1:] if not isinstance(r, Exception)]
        refused = [r for r in results[1:] if isinstance(r, CredentialRefused)]
        assert len(issued) + len(refused) == ISSUERS, results
        assert all(r.code == "DelegationNotActive" for r in refused)
        totals["issued"] += len(issued)
        totals["refused"] += len(refused)

        revoke_event = AuditEvent.objects.get(
            action="delegation.revoke_requested", target_id=str(delegation.pk)
        )
        issued_events = AuditEvent.objects.filter(
            action="credentials.issued", target_id=str(delegation.pk)
        )
        assert issued_events.count() == len(issued)
        # Audit order is commit order along the chain: every issuance before the revoke.
        assert all(e.sequence < revoke_event.sequence for e in issued_events)
        assert all(
            e.sequence > revoke_event.sequence
            for e in AuditEvent.objects.filter(
                action="credentials.refused", target_id=str(delegation.pk)
            )
        )
        # The cloud saw no AssumeRole on the role after the revoke committed, and exactly one
        # successful AssumeRole per recorded issuance.
        assume = [
            c
            for c in world.sim.calls(start_seq)
            if c.get("action") == "AssumeRole"
            and c.get("parameters", {}).get("RoleArn") == world.role_arn
        ]
        assert all(c["seq"] < marker["seq"] for c in assume)
        assert len([c for c in assume if c.get("outcome") == "success"]) == len(issued)
        assert CredentialIssuance.objects.filter(delegation=delegation).count() == len(issued)
        world.drain()
    # Both sides of the race happened: some issuances took the lock first, some saw the revoke.
    assert totals["issued"] > 0 and totals["refused"] > 0, totals
