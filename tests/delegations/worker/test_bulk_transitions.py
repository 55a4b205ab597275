"""A round that moves many partners on one role moves them in bulk (issue 19, many partners
at scale): their rows are locked and loaded in one statement and each move costs only its
own writes. Counted with Django's CaptureQueriesContext against cloudsim; no time measured."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from delegations.models import Delegation
from delegations.worker.engine import ReconcileOutcome

Status = Delegation.Status

# What one more partner adds to a round that applies a role for every partner on it: nothing.
# Its two transitions (approved → applying → active) move with the others in one UPDATE per
# batch, their audit events are written together (the chain locked once, the organisations'
# previous links read once, events and scope rows inserted together), the notices of both
# moves read every admin and preference at once and insert every delivery in one statement,
# and the partners' connected accounts are read once. (Before issue 19 item 6: 17 per partner
# on PostgreSQL and 23 on SQLite, then 5 and 11.)
PINNED_PER_PARTNER = {"postgresql": 0, "sqlite": 0}


def _round_statements(owner_world, partners: int) -> tuple[int, list[str]]:
    delegations = [owner_world.offer() for _ in range(partners)]
    with CaptureQueriesContext(connection) as captured:
        report = owner_world.reconcile()
    assert report.outcome == ReconcileOutcome.CONVERGED
    assert [owner_world.status(d) for d in delegations] == [Status.ACTIVE] * partners
    statements = [q["sql"] for q in captured.captured_queries]
    return len(statements), statements


def test_a_round_takes_the_same_statements_for_any_number_of_partners(owner_world) -> None:
    small, _ = _round_statements(owner_world, 2)
    for delegation in Delegation.objects.filter(managed_role=owner_world.managed_role()):
        owner_world.revoke(delegation)
    owner_world.reconcile()

    large, statements = _round_statements(owner_world, 8)

    per_partner = (large - small) / 6
    locks = [s for s in statements if "FOR UPDATE" in s.upper() and "delegations_delegation" in s]
    assert per_partner == PINNED_PER_PARTNER[connection.vendor], "\n".join(statements)
    if connection.features.has_select_for_update:
        # One lock statement per batch of transitions (to applying, to active), however many.
        assert len(locks) == 2, locks


def test_the_lock_loads_a_roles_shared_rows_once_for_all_its_partners(owner_world) -> None:
    """A role's partners share one owner, one catalogue role and one managed role: the lock
    reads each once (not joined into every row), and every row has them without a query."""
    from django.db import transaction

    from delegations.lifecycle.transitions import delegations_lock_for_worker

    ids = {owner_world.offer().pk for _ in range(2)}
    with transaction.atomic(), CaptureQueriesContext(connection) as two:
        delegations_lock_for_worker(delegation_ids=ids)
    ids |= {owner_world.offer().pk for _ in range(6)}

    with transaction.atomic():
        with CaptureQueriesContext(connection) as eight:
            rows = delegations_lock_for_worker(delegation_ids=ids)
        with CaptureQueriesContext(connection) as reading:
            shared = {
                (id(row.owner), id(row.catalog_role), id(row.managed_role), row.partner.pk)
                for row in rows.values()
            }

    assert len(eight.captured_queries) == len(two.captured_queries)
    assert reading.captured_queries == []
    assert len(rows) == 8
    assert len({(owner, role, managed) for owner, role, managed, _ in shared}) == 1
    assert len({partner for *_, partner in shared}) == 8
