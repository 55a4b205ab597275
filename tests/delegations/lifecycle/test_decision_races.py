"""Two owner admins deciding one request at the same moment: exactly one decision wins, the
other gets a DelegationConflict, and the audit log and the outbox show one decision.

Real concurrency needs real row locks, so these run on PostgreSQL (CI); SQLite serialises
writers and is covered by the sequential tests in test_services_lifecycle.py.
"""

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from accounts.models import User
from audit.models import AuditEvent
from delegations.lifecycle.automatic import delegation_mark_revoked
from delegations.lifecycle.services import delegation_approve, delegation_reject, delegation_revoke
from delegations.lifecycle.starting import delegation_withdraw
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import Delegation, OutboxMessage

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL"),
]
ROUNDS = 8


def race(*actions: Callable[[], object]) -> list[object]:
    """Run the actions in threads released at the same instant; return result or exception."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int, action: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = action()
        except Exception as error:  # the test inspects what each side got
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def decisions(delegation: Delegation) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            target_id=str(delegation.pk),
            action__in=["delegation.approved", "delegation.rejected"],
        ).values_list("action", flat=True)
    )


def test_approve_against_reject_exactly_one_wins(
    make_request: Callable[..., Delegation],
    owner_admin: User,
    owner_admin_2: User,
    company_b: object,
    ecs_admin: object,
) -> None:
    outcomes = {"approved": 0, "rejected": 0}
    for _ in range(ROUNDS):
        outbox_before = OutboxMessage.objects.count()
        delegation = make_request()
        approve, reject = race(
            lambda d=delegation: delegation_approve(
                delegation=d, approved_by=owner_admin, with_mfa=True, expected_version=1
            ),
            lambda d=delegation: delegation_reject(
                delegation=d, rejected_by=owner_admin_2, reason="No", expected_version=1
            ),
        )
        winners = [r for r in (approve, reject) if isinstance(r, Delegation)]
        losers = [r for r in (approve, reject) if isinstance(r, DelegationConflict)]
        assert len(winners) == 1 and len(losers) == 1, (approve, reject)
        assert "already decided" in str(losers[0])
        final = Delegation.objects.get(pk=delegation.pk)
        assert final.status == winners[0].status
        assert decisions(final) == [
            "delegation.approved" if final.status == "approved" else "delegation.rejected"
        ]
        expected_outbox = 1 if final.status == "approved" else 0
        assert OutboxMessage.objects.count() == outbox_before + expected_outbox
        outcomes[final.status] += 1
        # Close the round so the next request for the same role is allowed.
        if final.status == "approved":
            delegation_revoke(delegation=final, revoked_by=owner_admin, reason="next")
            delegation_mark_revoked(delegation=final)
    # Both outcomes happen over the rounds in practice; either is a correct single winner.
    assert sum(outcomes.values()) == ROUNDS


def test_two_admins_approving_at_once_one_wins_the_other_is_told(
    make_request: Callable[..., Delegation], owner_admin: User, owner_admin_2: User
) -> None:
    for _ in range(ROUNDS):
        outbox_before = OutboxMessage.objects.count()
        delegation = make_request()
        first, second = race(
            lambda d=delegation: delegation_approve(
                delegation=d, approved_by=owner_admin, with_mfa=True, expected_version=1
            ),
            lambda d=delegation: delegation_approve(
                delegation=d, approved_by=owner_admin_2, with_mfa=True, expected_version=1
            ),
        )
        assert sum(isinstance(r, Delegation) for r in (first, second)) == 1, (first, second)
        assert sum(isinstance(r, DelegationConflict) for r in (first, second)) == 1
        final = Delegation.objects.get(pk=delegation.pk)
        assert decisions(final) == ["delegation.approved"]
        assert OutboxMessage.objects.count() == outbox_before + 1
        delegation_revoke(delegation=final, revoked_by=owner_admin, reason="next")
        delegation_mark_revoked(delegation=final)


def test_double_click_from_one_admin_is_one_approval(
    make_request: Callable[..., Delegation], owner_admin: User
) -> None:
    for _ in range(ROUNDS):
        outbox_before = OutboxMessage.objects.count()
        delegation = make_request()
        first, second = race(
            lambda d=delegation: delegation_approve(
                delegation=d, approved_by=owner_admin, with_mfa=True, expected_version=1
            ),
            lambda d=delegation: delegation_approve(
                delegation=d, approved_by=owner_admin, with_mfa=True, expected_version=1
            ),
        )
        assert isinstance(first, Delegation) and isinstance(second, Delegation), (first, second)
        assert sorted([first.changed, second.changed]) == [False, True]
        assert decisions(delegation) == ["delegation.approved"]
        assert OutboxMessage.objects.count() == outbox_before + 1
        delegation_revoke(delegation=delegation, revoked_by=owner_admin, reason="next")
        delegation_mark_revoked(delegation=delegation)


def test_withdraw_against_approve_exactly_one_wins(
    make_request: Callable[..., Delegation], owner_admin: User, partner_admin: User
) -> None:
    for _ in range(ROUNDS):
        outbox_before = OutboxMessage.objects.count()
        delegation = make_request()
        approve, withdraw = race(
            lambda d=delegation: delegation_approve(
                delegation=d, approved_by=owner_admin, with_mfa=True, expected_version=1
            ),
            lambda d=delegation: delegation_withdraw(
                delegation=d, withdrawn_by=partner_admin, expected_version=1
            ),
        )
        winners = [r for r in (approve, withdraw) if isinstance(r, Delegation)]
        losers = [r for r in (approve, withdraw) if isinstance(r, DelegationConflict)]
        assert len(winners) == 1 and len(losers) == 1, (approve, withdraw)
        final = Delegation.objects.get(pk=delegation.pk)
        assert final.status == winners[0].status
        ends = list(
            AuditEvent.objects.filter(
                target_id=str(final.pk),
                action__in=["delegation.approved", "delegation.withdrawn"],
            ).values_list("action", flat=True)
        )
        if final.status == "approved":
            assert ends == ["delegation.approved"]
            assert "this one is approved" in str(losers[0])
            assert OutboxMessage.objects.count() == outbox_before + 1
            delegation_revoke(delegation=final, revoked_by=owner_admin, reason="next")
            delegation_mark_revoked(delegation=final)
        else:
            assert final.status == "withdrawn"
            assert ends == ["delegation.withdrawn"]
            assert "withdrew this request" in str(losers[0])
            assert OutboxMessage.objects.count() == outbox_before
