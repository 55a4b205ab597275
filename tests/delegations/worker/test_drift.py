"""The periodic reconciler: drift between cloudsim and the ledger is reported once, audited,
cleared when it goes away, and repaired or accepted as the owner decides."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from cloud import policies
from delegations.lifecycle.drift import drift_resolve
from delegations.models import Delegation, DriftFinding, ManagedRole, OutboxMessage
from delegations.worker import periodic
from delegations.worker.periodic import (
    managed_role_check_drift,
    managed_roles_periodic_pass,
    managed_roles_sweep_stuck,
)
from delegations.worker.role_reads import read_role
from tests.fixtures.worker import random_uid

Kind = DriftFinding.Kind
Status = Delegation.Status


@pytest.fixture
def settled(owner_world, settings):
    """Two active partners on the role, reconciled and quiet."""
    settings.PORTAL_DRIFT_QUIET_AFTER_RECONCILE_SECONDS = 0
    first, second = owner_world.offer(), owner_world.offer()
    owner_world.reconcile()
    return owner_world, first, second


def _check(world):
    return managed_role_check_drift(managed_role_id=world.managed_role().pk)


def _principal(delegation: Delegation) -> str:
    return f"acs:ram::{delegation.partner_account_uid}:root"


def _set_trust(world, principals: set[str]) -> None:
    world.client().update_role(
        world.role_name, trust_document=policies.build_trust_policy(sorted(principals))
    )


def _open(world) -> set[tuple[str, str]]:
    return set(
        DriftFinding.objects.filter(
            managed_role=world.managed_role(), resolved_at__isnull=True
        ).values_list("kind", "subject")
    )


def test_a_settled_role_has_no_drift_and_the_check_changes_nothing(settled) -> None:
    world, _, _ = settled
    seq = world.last_seq()

    check = _check(world)

    assert check.outcome == "checked"
    assert check.open_findings == []
    assert world.cloud_calls(seq, mutating=True) == []
    assert not DriftFinding.objects.exists()


def test_missing_principal_is_reported_once_and_repaired_on_request(settled) -> None:
    world, first, second = settled
    _set_trust(world, {_principal(second)})

    _check(world)
    _check(world)

    assert _open(world) == {(Kind.MANAGED_PRINCIPAL_MISSING, _principal(first))}
    finding = DriftFinding.objects.get()
    assert (
        AuditEvent.objects.filter(action="drift.detected", target_id=str(finding.pk)).count() == 1
    )
    # Reported, not silently fixed: the cloud still lacks the partner until the owner decides.
    assert world.trusted() == {_principal(second)}

    drift_resolve(finding=finding, resolved_by=world.admin, resolution="repair")
    world.reconcile()

    assert world.trusted() == {_principal(first), _principal(second)}
    assert _check(world).open_findings == []
    assert world.status(first) == Status.ACTIVE


def test_revoked_partner_back_in_the_trust_policy(settled) -> None:
    world, first, second = settled
    world.revoke(first)
    world.reconcile()
    _set_trust(world, {_principal(first), _principal(second)})

    _check(world)

    assert _open(world) == {(Kind.REVOKED_PRINCIPAL_BACK, _principal(first))}
    drift_resolve(finding=DriftFinding.objects.get(), resolved_by=world.admin, resolution="repair")
    world.reconcile()
    assert world.trusted() == {_principal(second)}


def test_a_partner_whose_delegation_failed_before_it_was_active_is_removed_at_once(
    settled,
) -> None:
    world, first, second = settled
    # What a give-up of an older version left behind: the partner's delegation failed while
    # applying, after the portal's own write trusted them, with nothing pending on the role.
    Delegation.objects.filter(pk=second.pk).update(
        status=Status.FAILED, failed_phase=Delegation.Phase.APPLYING, activated_at=None
    )
    OutboxMessage.objects.all().delete()

    check = _check(world)

    assert check.open_findings == [(Kind.REVOKED_PRINCIPAL_BACK, _principal(second))]
    assert check.outcome == "reconcile_requested"
    world.reconcile()
    assert world.trusted() == {_principal(first)}
    assert _check(world).open_findings == []
    assert world.status(second) == Status.FAILED


def test_a_revoked_partner_back_is_left_to_the_owner(settled) -> None:
    world, first, second = settled
    world.revoke(first)
    world.reconcile()
    _set_trust(world, {_principal(first), _principal(second)})

    assert _check(world).outcome == "checked"
    assert world.trusted() == {_principal(first), _principal(second)}


def test_unmanaged_principal_is_reported_kept_and_accepted(settled) -> None:
    world, first, second = settled
    outsider = f"acs:ram::{random_uid()}:root"
    _set_trust(world, {_principal(first), _principal(second), outsider})

    _check(world)
    assert _open(world) == {(Kind.UNMANAGED_PRINCIPAL_ADDED, outsider)}

    drift_resolve(finding=DriftFinding.objects.get(), resolved_by=world.admin, resolution="accept")
    third = world.offer()
    world.reconcile()
    world.revoke(Delegation.objects.get(pk=first.pk))
    world.reconcile()

    assert outsider in world.trusted()
    assert world.trusted() == {_principal(second), _principal(third), outsider}
    # Accepted: not reported again while it stays.
    assert _check(world).open_findings == []
    assert _open(world) == set()


def test_detached_policy_and_deleted_role(settled) -> None:
    world, first, second = settled
    world.client().detach_policy_from_role(
        role_name=world.role_name, policy_type="System", policy_name="AliyunECSFullAccess"
    )
    _check(world)
    assert _open(world) == {(Kind.POLICY_DETACHED, "System:AliyunECSFullAccess")}

    world.client().delete_role(world.role_name)
    _check(world)
    assert _open(world) == {(Kind.ROLE_DELETED, "")}
    cleared = DriftFinding.objects.get(kind=Kind.POLICY_DETACHED)
    assert cleared.resolution == DriftFinding.Resolution.GONE
    assert AuditEvent.objects.filter(action="drift.cleared", target_id=str(cleared.pk)).exists()

    drift_resolve(
        finding=DriftFinding.objects.get(kind=Kind.ROLE_DELETED),
        resolved_by=world.admin,
        resolution="repair",
    )
    world.reconcile()
    assert world.trusted() == {_principal(first), _principal(second)}
    assert world.attached() == {("System", "AliyunECSFullAccess")}
    assert _check(world).open_findings == []


def test_accepting_a_missing_principal_revokes_that_delegation(settled) -> None:
    world, first, second = settled
    _set_trust(world, {_principal(second)})
    _check(world)

    drift_resolve(finding=DriftFinding.objects.get(), resolved_by=world.admin, resolution="accept")
    world.reconcile()

    assert world.status(first) == Status.REVOKED
    assert world.trusted() == {_principal(second)}
    assert _check(world).open_findings == []


def test_a_role_with_pending_work_gets_a_reconcile_not_a_drift_check(settled) -> None:
    world, _, _ = settled
    world.offer()
    published = len(world.published)
    checked: list[str] = []

    counts = managed_roles_periodic_pass(check_drift=checked.append)

    assert checked == []
    # The offer already left an undone outbox message: the dispatcher republishes it.
    assert counts == {"reconcile_requested": 0, "drift_checks": 0}
    assert len(world.published) == published
    world.reconcile()
    assert managed_roles_periodic_pass(check_drift=checked.append)["drift_checks"] == 1
    assert checked == [str(world.managed_role().pk)]


def test_a_change_made_while_a_drift_check_holds_the_lease_is_reconciled_after_it(
    settled, monkeypatch
) -> None:
    # A reconcile that finds the lease held leaves the change to the holder; a drift check
    # holds it too, and must hand the change on rather than leave it to the outbox's
    # republish a minute or more later.
    world, first, second = settled
    told: list[str] = []

    messages = OutboxMessage.objects.filter(object_id=str(world.managed_role().pk))
    before = messages.count()

    def read_role_while_revoked(*args, **kwargs):
        world.revoke(first)
        # The revoke's message was published, and its worker found the lease held.
        messages.update(dispatched_at=timezone.now())
        told.append(world.reconcile().outcome)
        return read_role(*args, **kwargs)

    monkeypatch.setattr(periodic, "read_role", read_role_while_revoked)

    check = _check(world)

    assert told == ["busy"]
    assert check.outcome == "reconcile_requested"
    # The revoke's own message, and the check's request handed on after it released.
    assert messages.count() == before + 2
    world.reconcile()
    assert world.status(first) == Status.REVOKED
    assert world.trusted() == {_principal(second)}


def test_pending_work_a_drift_check_finds_is_asked_for_after_it_frees_the_lease(
    owner_world_tx, settings, monkeypatch
) -> None:
    # The check holds the lease when it finds work pending: a reconcile asked for then may
    # start before the release, be told "busy" and leave the work to a check that
    # reconciles nothing (it would wait for the outbox's republish, a minute or more).
    world = owner_world_tx
    settings.PORTAL_DRIFT_QUIET_AFTER_RECONCILE_SECONDS = 0
    first, second = world.offer(), world.offer()
    world.reconcile()
    # A revoke whose own message was published and whose worker lost the race for the lease
    # to the drift check (its message is dispatched, not done).
    world.revoke(first)
    OutboxMessage.objects.filter(done_at__isnull=True).update(dispatched_at=timezone.now())
    told = world.worker_takes_messages_at_once(monkeypatch)

    check = _check(world)

    assert check.outcome == "reconcile_requested"
    assert [outcome for _, outcome in told] == ["converged"]
    assert world.status(first) == Status.REVOKED
    assert world.trusted() == {_principal(second)}


def test_a_drift_check_right_after_a_reconcile_waits(owner_world, settings) -> None:
    settings.PORTAL_DRIFT_QUIET_AFTER_RECONCILE_SECONDS = 60
    owner_world.offer()
    owner_world.reconcile()
    seq = owner_world.last_seq()

    assert _check(owner_world).outcome == "recently_reconciled"
    assert owner_world.cloud_calls(seq) == []


def test_the_sweeper_frees_a_dead_workers_lease_and_re_requests(owner_world) -> None:
    delegation = owner_world.offer()
    role = owner_world.managed_role()
    ManagedRole.objects.filter(pk=role.pk).update(
        locked_by="dead-worker", locked_until=timezone.now() - dt.timedelta(seconds=1)
    )
    messages = OutboxMessage.objects.filter(object_id=str(role.pk))
    before = messages.count()
    # The offer's message was published (and may have died with the worker): the sweep's
    # request gets a message of its own, published at once.
    messages.update(dispatched_at=timezone.now())

    counts = managed_roles_sweep_stuck()

    assert counts == {"leases_freed": 1, "reconcile_requested": 1}
    assert messages.count() == before + 1
    assert ManagedRole.objects.get(pk=role.pk).locked_by == ""
    owner_world.reconcile()
    assert owner_world.status(delegation) == Status.ACTIVE


def test_expiry_ends_access_as_expired_not_revoked(owner_world) -> None:
    ends_at = timezone.now() + dt.timedelta(minutes=10)
    keep = owner_world.offer()
    timed = owner_world.offer(ends_at=ends_at)
    owner_world.reconcile()
    assert owner_world.status(timed) == Status.ACTIVE

    from delegations.lifecycle.automatic import delegations_expire_due

    assert delegations_expire_due(now=ends_at + dt.timedelta(seconds=1)) == 1
    owner_world.reconcile()

    ended = Delegation.objects.get(pk=timed.pk)
    assert ended.status == Status.EXPIRED
    assert ended.end_cause == Delegation.EndCause.EXPIRED
    assert owner_world.trusted() == {_principal(keep)}
    assert (
        AuditEvent.objects.filter(target_id=str(timed.pk), action="delegation.expired").count() == 1
    )
