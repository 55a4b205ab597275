"""The periodic reconciler: sweeps stuck work and detects drift between the cloud and the ledger.

Run by Celery beat (`delegations.worker.tasks`):

* `managed_roles_sweep_stuck` frees leases whose holder died and re-requests roles whose
  delegations have sat in approved/applying/revoking for too long, so a crash at any step
  converges without anyone noticing it first;
* `managed_roles_periodic_pass` sends every role with pending work to the reconciler and
  every settled role to `managed_role_check_drift`;
* `managed_role_check_drift` reads one settled role (under its lease, so it never sees a
  reconcile half-way) and compares it with the ledger: a managed principal missing, a revoked
  partner back in the trust policy, an unmanaged principal added, a policy detached, the role
  deleted, a time-bound grant's fail-safe end condition removed or altered. Each difference
  is reported once (`drift_record`: a row and an audit event) and cleared when it
  disappears; the owner then repairs or accepts it (`drift_resolve`), except a lost fail-safe
  end and a partner whose delegation failed before it was ever active, whose reconcile is
  requested at once. Drift checks change nothing in the cloud and are not recorded as cloud
  calls (they only read).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from cloud import policies
from cloud.errors import CloudError
from delegations import role_plan as planner
from delegations.lifecycle.drift import (
    NOT_KEPT_BY_WRITE,
    accepted_as_unmanaged,
    drift_clear,
    drift_record,
    unmanaged_principals,
)
from delegations.models import (
    DESIRED_PRESENT_STATUSES,
    NEVER_APPLIED_STATUSES,
    WORKER_PENDING_STATUSES,
    Delegation,
    DriftFinding,
    ManagedRole,
    OutboxMessage,
)
from delegations.outbox import outbox_work_waiting
from delegations.role_state import delegation_principals, desired_role_for
from delegations.worker.lease import Heartbeat
from delegations.worker.owner_role import (
    RoleLease,
    last_seen_fields,
    make_cloud_client,
    managed_role_request_reconcile,
    role_has_pending_work,
)
from delegations.worker.role_reads import read_role

logger = logging.getLogger(__name__)

Kind = DriftFinding.Kind


def _seconds(name: str, default: float) -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, name, default))


@dataclass(frozen=True)
class Difference:
    kind: str
    subject: str = ""
    details: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class DriftCheck:
    managed_role_id: str
    outcome: str  # checked | busy | reconcile_requested | recently_reconciled | cloud_error
    open_findings: list[tuple[str, str]] = field(default_factory=list)
    new_findings: int = 0
    cleared_findings: int = 0


def differences(
    managed_role: ManagedRole, delegations: list[Delegation], actual: planner.ActualRole | None
) -> list[Difference]:
    """How the cloud differs from the ledger, for a role with no pending work."""
    present = [d for d in delegations if d.status in DESIRED_PRESENT_STATUSES]
    wanted: set[str] = set().union(*(delegation_principals(d) for d in present))
    found: list[Difference] = []
    if actual is None:
        if wanted or managed_role.last_seen_exists:
            found.append(
                Difference(
                    Kind.ROLE_DELETED,
                    details={"partners_cut_off": sorted(wanted)},
                )
            )
        return found
    if not actual.created_by_portal:
        # Not (or no longer) the portal's role: the reconciler refuses to touch it and the
        # delegations say so; there is no ledger to compare with.
        return found
    trusted = policies.trust_policy_principals(actual.trust_document).ram
    parking = policies.account_root_arn(managed_role.cloud_account.account_uid)
    known = set(managed_role.known_principals or ())
    for principal in sorted(wanted - trusted):
        found.append(Difference(Kind.MANAGED_PRINCIPAL_MISSING, principal))
    for principal in sorted((known - wanted - {parking}) & trusted):
        found.append(Difference(Kind.REVOKED_PRINCIPAL_BACK, principal))
    accepted = accepted_as_unmanaged(managed_role)
    for principal in sorted(unmanaged_principals(managed_role, actual) - accepted):
        found.append(Difference(Kind.UNMANAGED_PRINCIPAL_ADDED, principal))
    if present:
        desired, _ = desired_role_for(managed_role, delegations)
        for policy_type, policy_name in sorted(desired.policies_wanted - actual.attached_policies):
            found.append(Difference(Kind.POLICY_DETACHED, f"{policy_type}:{policy_name}"))
        found += _fail_safe_end_differences(desired, actual, trusted)
    return found


def _fail_safe_end_differences(
    desired: planner.DesiredRole, actual: planner.ActualRole, trusted: set[str] | frozenset[str]
) -> list[Difference]:
    """Each time-bound principal whose `DateLessThan acs:CurrentTime` statement is gone or
    carries another date than its grants' end. A principal trusted under its ExternalId keeps
    its own statement without an end time (by design), and a principal missing altogether is
    reported as missing, not here."""
    in_cloud = policies.trust_policy_end_times(actual.trust_document)
    found = []
    for principal, wanted_end in desired.principal_end_times:
        if principal in desired.principal_conditions or principal not in trusted:
            continue
        if in_cloud.get(principal) != wanted_end:
            found.append(
                Difference(
                    Kind.FAIL_SAFE_END_CHANGED,
                    principal,
                    details={"wanted_end": wanted_end, "found_end": in_cloud.get(principal)},
                )
            )
    return found


def _never_granted(delegations: list[Delegation]) -> frozenset[str]:
    """Principals that only delegations which failed before they were ever active asked for.
    In the trust policy, such a principal is most likely an unconfirmed write of the portal's
    own (a reconcile that gave up before this version did not leave the role pending)."""
    failed: set[str] = set()
    granted: set[str] = set()
    for delegation in delegations:
        if delegation.activated_at is not None:
            granted |= delegation_principals(delegation)
        elif (
            delegation.status == Delegation.Status.FAILED
            and delegation.failed_phase == Delegation.Phase.APPLYING
        ):
            failed |= delegation_principals(delegation)
    return frozenset(failed - granted)


def _apply_findings(managed_role: ManagedRole, found: list[Difference]) -> tuple[int, int]:
    current = {(d.kind, d.subject) for d in found}
    open_before = {
        (f.kind, f.subject): f
        for f in DriftFinding.objects.filter(managed_role=managed_role, resolved_at__isnull=True)
    }
    new = 0
    for difference in found:
        if (difference.kind, difference.subject) in open_before:
            continue
        drift_record(
            managed_role=managed_role,
            kind=difference.kind,
            subject=difference.subject,
            details=difference.details,
        )
        new += 1
    cleared = 0
    for key, finding in open_before.items():
        if (finding.details or {}).get(NOT_KEPT_BY_WRITE):
            continue  # about a principal no longer there by definition: the owner decides
        if key not in current:
            drift_clear(finding=finding)
            cleared += 1
    return new, cleared


def managed_role_check_drift(*, managed_role_id: Any) -> DriftCheck:
    """Compare one settled role with the ledger and report the differences (read-only)."""
    check = DriftCheck(managed_role_id=str(managed_role_id), outcome="checked")
    managed_role = ManagedRole.objects.select_related(
        "cloud_account", "cloud_account__organisation"
    ).get(pk=managed_role_id)
    # Right after a write the cloud may still answer with the old document for a moment;
    # judging then would report the reconcile's own change as drift.
    quiet = _seconds("PORTAL_DRIFT_QUIET_AFTER_RECONCILE_SECONDS", 30)
    if managed_role.last_reconciled_at and managed_role.last_reconciled_at > timezone.now() - quiet:
        check.outcome = "recently_reconciled"
        return check
    lease = RoleLease(managed_role_id)
    if not lease.claim():
        check.outcome = "busy"
        return check
    # Asked for only once the lease is free (`_hand_over_pending_work`): asked for now, the
    # reconcile could start at once, find the lease held and leave the work to this check.
    reconcile_needed = False
    try:
        # Renewed like a reconcile's, so the lease never stands still while it is held (a
        # restarted worker of the same name takes a still lease for a dead one's).
        with Heartbeat(lease):
            managed_role.refresh_from_db()
            if role_has_pending_work(managed_role):
                reconcile_needed = True
                return check
            delegations = list(
                Delegation.objects.filter(managed_role=managed_role)
                .exclude(status__in=NEVER_APPLIED_STATUSES)
                .select_related("catalog_role")
            )
            if not delegations and not managed_role.created_by_portal:
                return check
            try:
                actual = read_role(make_cloud_client(managed_role), managed_role.role_name)
            except CloudError as error:
                logger.warning("Drift check of %s: %r", managed_role.role_name, error)
                check.outcome = "cloud_error"
                return check
            found = differences(managed_role, delegations, actual)
            check.new_findings, check.cleared_findings = _apply_findings(managed_role, found)
            never_granted = _never_granted(delegations)
            if any(
                d.kind == Kind.FAIL_SAFE_END_CHANGED
                or (d.kind == Kind.REVOKED_PRINCIPAL_BACK and d.subject in never_granted)
                for d in found
            ):
                # A lost fail-safe end lets a partner in after their access ends if the workers
                # stop, and a partner whose delegation failed before it was ever active holds an
                # access the portal never granted: nobody would accept either, so the role is
                # reconciled at once rather than waiting for the owner's "repair" (the finding
                # clears on the next check).
                reconcile_needed = True
            check.open_findings = [(d.kind, d.subject) for d in found]
            ManagedRole.objects.filter(pk=managed_role.pk).update(
                **last_seen_fields(actual),
                drift={"open": [{"kind": k, "subject": s} for k, s in check.open_findings]},
            )
            return check
    finally:
        lease.release()
        _hand_over_pending_work(managed_role, check, asked=reconcile_needed)


def _hand_over_pending_work(managed_role: ManagedRole, check: DriftCheck, *, asked: bool) -> None:
    """The one place a drift check asks for a reconcile, once it has released the lease:
    when it found a reason to (`asked`), or when work came in while it held the lease (a
    reconcile asked for meanwhile was told "busy", on the promise that the holder picks up
    any change before it releases, and a drift check reconciles nothing). Asked for before
    the release, the reconcile could be told "busy" too, and the work would wait for the
    outbox's republish."""
    try:
        managed_role.refresh_from_db(fields=["desired_version", "applied_version"])
        if asked or role_has_pending_work(managed_role):
            managed_role_request_reconcile(managed_role=managed_role)
            check.outcome = "reconcile_requested"
    except Exception:  # the check's own outcome (or error) is what its caller is owed
        logger.exception("Could not ask for the reconcile of a drift-checked role.")


def managed_roles_periodic_pass(*, check_drift: Callable[[str], Any]) -> dict[str, int]:
    """Send roles with pending work to the reconciler and the others to a drift check."""
    counts = {"reconcile_requested": 0, "drift_checks": 0}
    roles = ManagedRole.objects.filter(
        Q(delegations__isnull=False) | Q(created_by_portal=True) | Q(last_seen_exists=True)
    ).distinct()
    for managed_role in roles:
        if role_has_pending_work(managed_role):
            if not _has_fresh_outbox_message(managed_role):
                managed_role_request_reconcile(managed_role=managed_role)
                counts["reconcile_requested"] += 1
        else:
            check_drift(str(managed_role.pk))
            counts["drift_checks"] += 1
    return counts


def _has_fresh_outbox_message(managed_role: ManagedRole) -> bool:
    """An undone reconcile message the dispatcher will (re)publish anyway."""
    return outbox_work_waiting(kind=OutboxMessage.Kind.RECONCILE_ROLE, object_id=managed_role.pk)


def managed_roles_sweep_stuck(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Free dead workers' leases and re-request roles stuck mid-change. A lease ran out by the
    database's clock, as the lease itself is timed (`now`: a moment instead, for tests)."""
    lease_now = Now() if now is None else now
    now = now or timezone.now()
    counts = {"leases_freed": 0, "reconcile_requested": 0}
    for managed_role in ManagedRole.objects.filter(locked_until__lt=lease_now).exclude(
        locked_by=""
    ):
        freed = ManagedRole.objects.filter(
            pk=managed_role.pk, locked_by=managed_role.locked_by, locked_until__lt=lease_now
        ).update(locked_by="", locked_until=None)
        counts["leases_freed"] += freed
        if freed and role_has_pending_work(managed_role):
            managed_role_request_reconcile(managed_role=managed_role)
            counts["reconcile_requested"] += 1
    stuck_after = _seconds("PORTAL_STUCK_AFTER_SECONDS", 600)
    stuck_roles = (
        Delegation.objects.filter(
            status__in=WORKER_PENDING_STATUSES, updated_at__lt=now - stuck_after
        )
        .values_list("managed_role_id", flat=True)
        .distinct()
    )
    for managed_role in ManagedRole.objects.filter(pk__in=list(stuck_roles)).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lt=lease_now)
    ):
        if not _has_fresh_outbox_message(managed_role):
            managed_role_request_reconcile(managed_role=managed_role)
            counts["reconcile_requested"] += 1
    return counts
