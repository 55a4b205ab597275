"""CC-07: credentials issued at the same moment as a revoke. Issuing locks the delegation row
that `delegation_revoke` locks, checks the status and calls AssumeRole inside that lock, so a
revoke either waits for the issuance to commit or is seen by it. Never is a credential issued
(nor an AssumeRole made) after the revoke committed.

Real concurrency needs real row locks: PostgreSQL (CI). The first two tests force each order
of the two transactions by watching PostgreSQL's lock waits, so both outcomes are exercised on
every run; the third races many issuers against a revoke at staggered moments and checks the
invariant whatever order the scheduler picked. cloudsim logs a call before it answers, so the
order of its call log is the order in which calls took effect.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from audit.models import AuditEvent
from delegations.models import CredentialIssuance, Delegation, StaffAssignment
from delegations.partner.credentials import CredentialRefused, credentials_issue
from tests.fixtures.partner import PartnerWorld

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL"),
]
ROUNDS = 4
ISSUERS = 4
WAIT_SECONDS = 20


class Worker(threading.Thread):
    """Runs `action` on its own database connection and keeps its result or exception."""

    def __init__(self, action: Callable[[], object], *, start_after: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.action = action
        self.start_after = start_after
        self.result: object = None

    def run(self) -> None:
        try:
            if self.start_after:
                time.sleep(self.start_after)
            self.result = self.action()
        except Exception as error:
            self.result = error
        finally:
            connection.close()

    def outcome(self) -> object:
        self.join(timeout=WAIT_SECONDS * 3)
        assert not self.is_alive(), "a worker thread did not finish"
        return self.result


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def sessions_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def issuer_holds_its_row_locks() -> bool:
    """True while a session sits in its transaction right after locking its rows (the one
    statement that locks the delegation, membership and assignment rows together), the last
    lock `credentials_issue` takes before it calls AssumeRole."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND state = 'idle in transaction'"
            " AND query LIKE %s AND query LIKE %s",
            ['%"delegations_staffassignment"%', "%FOR UPDATE%"],
        )
        return cursor.fetchone()[0] > 0


def assume_role_calls(world: PartnerWorld, since: int) -> list[dict]:
    return [
        c
        for c in world.sim.calls(since)
        if c.get("action") == "AssumeRole"
        and c.get("parameters", {}).get("RoleArn") == world.role_arn
    ]


def revoke_and_mark(world: PartnerWorld, delegation_id: object, marker: dict) -> Delegation:
    """Revoke, then make one cloud call: its log position is the first after the commit."""
    result = world.revoke(Delegation.objects.get(pk=delegation_id))
    world.owner_root().get_caller_identity()
    marker["seq"] = world.sim.last_call_seq()
    return result


def audit_sequences(delegation: Delegation, action: str) -> list[int]:
    return list(
        AuditEvent.objects.filter(action=action, target_id=str(delegation.pk)).values_list(
            "sequence", flat=True
        )
    )


def alice_assigned(world: PartnerWorld) -> tuple[Delegation, StaffAssignment, int]:
    """An active delegation with Alice assigned and applied; the call log's position now."""
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)
    world.drain()
    return delegation, assignment, world.sim.last_call_seq()


def test_a_revoke_waits_for_an_issuance_already_holding_the_lock(
    partner_world_tx: PartnerWorld,
) -> None:
    world = partner_world_tx
    delegation, assignment, start_seq = alice_assigned(world)
    # The issuance holds the delegation's row lock while AssumeRole takes this long.
    world.sim.set_faults("AssumeRole:latency:1:1500")
    try:
        issuer = Worker(
            lambda: credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
        )
        issuer.start()
        wait_until(issuer_holds_its_row_locks, "the issuer holds its locks")
        marker: dict[str, int] = {}
        revoker = Worker(lambda: revoke_and_mark(world, delegation.pk, marker))
        revoker.start()
        wait_until(lambda: sessions_waiting_on_a_lock() >= 1, "the revoke waits for the lock")
        issued, revoked = issuer.outcome(), revoker.outcome()
    finally:
        world.sim.clear_faults()

    assert not isinstance(issued, Exception), issued
    assert isinstance(revoked, Delegation), revoked
    [issued_at] = audit_sequences(delegation, "credentials.issued")
    [revoked_at] = audit_sequences(delegation, "delegation.revoke_requested")
    assert issued_at < revoked_at
    [call] = assume_role_calls(world, start_seq)
    assert call["outcome"] == "success" and call["seq"] < marker["seq"]
    assert CredentialIssuance.objects.filter(delegation=delegation).count() == 1
    world.drain()


def test_an_issuance_waiting_behind_a_revoke_is_refused_without_calling_the_cloud(
    partner_world_tx: PartnerWorld,
) -> None:
    world = partner_world_tx
    delegation, assignment, start_seq = alice_assigned(world)
    revoke_locked = threading.Event()
    may_commit = threading.Event()

    def revoke_held_open() -> Delegation:
        # The revoke's transaction stays open (its row lock held) until the issuer waits on it.
        with transaction.atomic():
            result = world.revoke(Delegation.objects.get(pk=delegation.pk))
            revoke_locked.set()
            assert may_commit.wait(WAIT_SECONDS)
        return result

    revoker = Worker(revoke_held_open)
    revoker.start()
    assert revoke_locked.wait(WAIT_SECONDS)
    issuer = Worker(
        lambda: credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    )
    issuer.start()
    try:
        wait_until(lambda: sessions_waiting_on_a_lock() >= 1, "the issuer waits for the lock")
    finally:
        may_commit.set()
    revoked, refused = revoker.outcome(), issuer.outcome()

    assert isinstance(revoked, Delegation), revoked
    assert isinstance(refused, CredentialRefused), refused
    assert refused.code == "DelegationNotActive"
    [revoked_at] = audit_sequences(delegation, "delegation.revoke_requested")
    [refused_at] = audit_sequences(delegation, "credentials.refused")
    assert revoked_at < refused_at
    assert audit_sequences(delegation, "credentials.issued") == []
    assert assume_role_calls(world, start_seq) == []
    assert not CredentialIssuance.objects.filter(delegation=delegation).exists()
    world.drain()


def test_no_credentials_after_the_revoke_commits(partner_world_tx: PartnerWorld) -> None:
    world = partner_world_tx
    chance = random.Random(7)
    for round_index in range(ROUNDS):
        delegation = world.active_delegation()
        assignment = world.assign(delegation, world.alice)
        world.drain()
        world.sim.set_faults("AssumeRole:latency:1:20-80")
        marker: dict[str, int] = {}
        start_seq = world.sim.last_call_seq()

        def issue(a=assignment) -> object:
            return credentials_issue(assignment=a, user=world.alice, duration_seconds=900)

        # Issuers start spread over 0.3 s and the revoke somewhere among them, differently each
        # round, so it lands before, between and during their AssumeRole calls.
        threads = [Worker(issue, start_after=chance.uniform(0, 0.3)) for _ in range(ISSUERS)]
        revoker = Worker(
            lambda d=delegation.pk, m=marker: revoke_and_mark(world, d, m),
            start_after=0.05 * round_index + chance.uniform(0, 0.1),
        )
        for thread in [*threads, revoker]:
            thread.start()
        results = [thread.outcome() for thread in threads]
        revoked = revoker.outcome()
        world.sim.clear_faults()

        assert isinstance(revoked, Delegation), revoked
        issued = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, CredentialRefused)]
        assert len(issued) + len(refused) == ISSUERS, results
        assert all(r.code == "DelegationNotActive" for r in refused)
        [revoked_at] = audit_sequences(delegation, "delegation.revoke_requested")
        issued_at = audit_sequences(delegation, "credentials.issued")
        assert len(issued_at) == len(issued)
        # Audit order is commit order along the chain: every issuance before the revoke, every
        # refusal after it.
        assert all(sequence < revoked_at for sequence in issued_at)
        assert all(s > revoked_at for s in audit_sequences(delegation, "credentials.refused"))
        # The cloud saw no AssumeRole on the role after the revoke committed, and exactly one
        # successful AssumeRole per recorded issuance.
        calls = assume_role_calls(world, start_seq)
        assert all(c["seq"] < marker["seq"] for c in calls)
        assert len([c for c in calls if c.get("outcome") == "success"]) == len(issued)
        assert CredentialIssuance.objects.filter(delegation=delegation).count() == len(issued)
        world.drain()
