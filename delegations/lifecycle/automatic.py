"""The transitions nobody clicks: the worker's as it applies and revokes
(`delegation_mark_applying`, `delegation_mark_active`, `delegation_mark_failed`,
`delegation_mark_revoked`, and the same in bulk for a role's many partners) and the
scheduler's (`delegation_expire`, `delegations_expire_due`, `delegation_start`,
`delegations_start_due` for scheduled access). Same rules as people's: lock, allowed
transition, audit in the same transaction (`transitions`).
"""

import copy
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import F, Q, prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from audit.actions import AuditAction
from audit.services import audit_record_many
from delegations.lifecycle.transitions import (
    START_LEAD,
    IllegalTransition,
    Status,
    audit_arguments,
    check_allowed,
    delegation_snapshot,
    fleet_follow_up,
    lock_delegation,
    lock_unless,
    transition,
)
from delegations.models import (
    ALLOWED_TRANSITIONS,
    DESIRED_PRESENT_STATUSES,
    EXPIRABLE_STATUSES,
    Delegation,
    FleetGrant,
    ManagedRole,
)
from delegations.notices import (
    PreparedNotices,
    delegations_announce_many,
    delegations_announce_prepare,
    fleet_digest,
    fleet_expired_announce,
)
from delegations.outbox import outbox_enqueue_reconcile
from delegations.partner_access import (
    partner_access_delegations_changed,
)

# --- the worker's transitions ----------------------------------------------------------------

# A delegation that reaches where it was going forgets the error of an earlier failed try.
_NO_ERROR = {
    "last_error_code": "",
    "last_error_message": "",
    "last_error_request_id": "",
    "last_error_at": None,
}


def _bulk_move(to: str) -> tuple[AuditAction, dict[str, Any]]:
    """The audit action of a bulk move to `to` and the columns it sets on every row (each row
    also counts one more version: `_move_row`)."""
    now = timezone.now()
    if to == Status.APPLYING:
        action, extra = AuditAction.DELEGATION_APPLYING, {}
    elif to == Status.ACTIVE:
        action, extra = AuditAction.DELEGATION_ACTIVATED, {"activated_at": now, **_NO_ERROR}
    else:
        raise ValueError(f"Only moves to applying or active go in bulk, not {to!r}.")
    return action, {**extra, "status": to, "failed_phase": Delegation.Phase.NONE, "updated_at": now}


def _move_row(row: Delegation, changes: Mapping[str, Any]) -> None:
    """`row` as a bulk move with `changes` (`_bulk_move`) leaves it."""
    for name, value in changes.items():
        setattr(row, name, value)
    row.version += 1


def delegations_mark_many_prepare(*, delegations: list[Delegation], to: str) -> PreparedNotices:
    """What `delegations_mark_many(..., to=to)` can do before its transaction: render the
    notices of the rows that would move, as the move would leave them (reads only; the
    worker does this while its verifying reads are out). Pass the result as `prepared`; a row
    that changed meanwhile gets its notice rendered again there."""
    action, changes = _bulk_move(to)
    after = []
    for row in delegations:
        if row.status == to or to not in ALLOWED_TRANSITIONS.get(row.status, ()):
            continue
        moved = copy.copy(row)
        _move_row(moved, changes)
        after.append(moved)
    prefetch_related_objects(
        after, "owner", "catalog_role", "partner", "managed_role__cloud_account"
    )
    return delegations_announce_prepare(delegations=after, action=action)


def delegations_mark_many(
    *,
    delegations: list[Delegation],
    to: str,
    before_audit: Callable[[], None] | None = None,
    prepared: PreparedNotices | None = None,
) -> list[Delegation]:
    """The worker's `delegation_mark_applying` / `delegation_mark_active` for many rows at once,
    with the same outcome row by row: rows already there are left (`changed` False), every
    other row moves with one audit event each and, into active, its partner's follow-up work.

    The rows are the caller's, locked and loaded in this transaction
    (`delegations_lock_for_worker`); they are written with one UPDATE and no savepoint per
    row. A row the lifecycle does not let move to `to` raises IllegalTransition before
    anything is written. `before_audit` runs just before the audit events are written (the
    worker's own events for the round go there, after the notices and before the chain lock).
    `prepared` (`delegations_mark_many_prepare`) holds notices already rendered.
    """
    action, changes = _bulk_move(to)
    moving: list[tuple[Delegation, dict[str, Any]]] = []
    for row in delegations:
        row.changed = False
        if row.status == to:
            continue
        check_allowed(row, to=to)
        moving.append((row, delegation_snapshot(row)))
    if not moving:
        return []
    for row, _before in moving:
        _move_row(row, changes)
        row.changed = True
    # Every row gets the same values and its own version + 1 (the rows are locked and loaded
    # in this transaction, so the database's version is the one just incremented here): one
    # plain UPDATE, not bulk_update's CASE per row and field, which cost seconds of CPU for a
    # role's hundred partners.
    Delegation.objects.filter(pk__in=[row.pk for row, _ in moving]).update(
        **changes, version=F("version") + 1
    )
    # The notices first: they only read and insert deliveries (no lock in the project's lock
    # order), and written after the audit events they would hold the one audit-chain lock,
    # serialising every other worker's audit behind a bulk move. All of them at once: the
    # statements do not grow with the rows.
    delegations_announce_many(
        delegations=[row for row, _ in moving], action=action, prepared=prepared
    )
    if before_audit is not None:
        before_audit()
    # One event per row as `transition` writes it, all written with one lock of the chain.
    audit_record_many(
        [
            audit_arguments(
                delegation=row, action=action, actor=None, actor_organisation=None, before=before
            )
            for row, before in moving
        ]
    )
    partner_access_delegations_changed(
        delegations=[row for row, before in moving if Status.ACTIVE in (before["status"], to)]
    )
    fleets = set()
    for row, before in moving:
        if row.fleet_id is not None and row.fleet_id not in fleets:
            fleets.add(row.fleet_id)
            fleet_follow_up(row, before=before["status"], to=to)
    return [row for row, _ in moving]


@transaction.atomic
def delegation_mark_applying(*, delegation: Delegation, already_locked: bool = False) -> Delegation:
    """The worker has started putting this delegation into the cloud."""
    locked = lock_unless(delegation, already_locked=already_locked)
    if locked.status == Status.APPLYING:
        return locked.unchanged()
    return transition(
        locked,
        to=Status.APPLYING,
        action=AuditAction.DELEGATION_APPLYING,
        actor=None,
        actor_organisation=None,
    )


@transaction.atomic
def delegation_mark_active(
    *, delegation: Delegation, request_id: str = "", already_locked: bool = False
) -> Delegation:
    """The worker verified the partner's principal and the role's policies in the cloud."""
    locked = lock_unless(delegation, already_locked=already_locked)
    if locked.status == Status.ACTIVE:
        return locked.unchanged()
    return transition(
        locked,
        to=Status.ACTIVE,
        action=AuditAction.DELEGATION_ACTIVATED,
        actor=None,
        actor_organisation=None,
        changes={
            "activated_at": timezone.now(),
            **_NO_ERROR,
        },
        metadata={"request_id": request_id} if request_id else None,
    )


@transaction.atomic
def delegation_mark_failed(
    *,
    delegation: Delegation,
    error_code: str,
    error_message: str,
    request_id: str = "",
    already_locked: bool = False,
) -> Delegation:
    """The worker gave up: a permanent cloud error, or retries exhausted. The owner sees the
    cloud's code, message and request id, and can retry."""
    locked = lock_unless(delegation, already_locked=already_locked)
    if locked.status == Status.FAILED:
        return locked.unchanged()
    phase = (
        Delegation.Phase.REVOKING if locked.status == Status.REVOKING else Delegation.Phase.APPLYING
    )
    error_code = (error_code or "")[:128]
    error_message = (error_message or "")[:2000]
    request_id = (request_id or "")[:64]
    return transition(
        locked,
        to=Status.FAILED,
        action=AuditAction.DELEGATION_FAILED,
        actor=None,
        actor_organisation=None,
        changes={
            "failed_phase": phase,
            "last_error_code": error_code,
            "last_error_message": error_message,
            "last_error_request_id": request_id,
            "last_error_at": timezone.now(),
        },
        metadata={
            "failed_phase": phase,
            "error_code": error_code,
            "error_message": error_message,
            "request_id": request_id,
        },
    )


@transaction.atomic
def delegation_mark_revoked(*, delegation: Delegation, already_locked: bool = False) -> Delegation:
    """The worker verified the partner's principal is gone: the delegation ends as revoked,
    or as expired when the scheduler ended it."""
    locked = lock_unless(delegation, already_locked=already_locked)
    if locked.status in (Status.REVOKED, Status.EXPIRED):
        return locked.unchanged()
    if locked.status == Status.FAILED and locked.failed_phase != Delegation.Phase.REVOKING:
        raise IllegalTransition(
            gettext("A delegation that failed while applying was never revoked.")
        )
    expired = locked.end_cause == Delegation.EndCause.EXPIRED
    return transition(
        locked,
        to=Status.EXPIRED if expired else Status.REVOKED,
        action=AuditAction.DELEGATION_EXPIRED if expired else AuditAction.DELEGATION_REVOKED,
        actor=None,
        actor_organisation=None,
        changes={
            "ended_at": timezone.now(),
            **_NO_ERROR,
        },
    )


# --- the scheduler's -------------------------------------------------------------------------


def _expiry_due(*, now: dt.datetime) -> Q:
    """The delegations the scheduler ends at `now`: past their end date and still expirable.
    A revoke that failed is already ending and waits for an owner's Retry, so it is not due:
    the expiry pass must not give it a place, or enough of them would hold up every later
    delegation. `delegation_expire` asks this same condition of its locked row."""
    return Q(status__in=EXPIRABLE_STATUSES, ends_at__lte=now) & ~Q(
        status=Status.FAILED, failed_phase=Delegation.Phase.REVOKING
    )


@transaction.atomic
def delegation_expire(*, delegation: Delegation, now: dt.datetime | None = None) -> Delegation:
    """End a delegation whose end date has passed. A request nobody decided simply expires;
    access that may be in the cloud goes through revoking first."""
    now = now or timezone.now()
    locked = lock_delegation(delegation)
    if not Delegation.objects.filter(_expiry_due(now=now), pk=locked.pk).exists():
        return locked.unchanged()
    if locked.status in (Status.REQUESTED, Status.SCHEDULED):
        return transition(
            locked,
            to=Status.EXPIRED,
            action=AuditAction.DELEGATION_EXPIRED,
            actor=None,
            actor_organisation=None,
            changes={"end_cause": Delegation.EndCause.EXPIRED, "ended_at": now},
        )
    transition(
        locked,
        to=Status.REVOKING,
        action=AuditAction.DELEGATION_EXPIRING,
        actor=None,
        actor_organisation=None,
        changes={"end_cause": Delegation.EndCause.EXPIRED, "revoke_requested_at": now},
        metadata={"ends_at": locked.ends_at},
    )
    outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked


def delegations_expire_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Expire every delegation whose end date has passed (run by the scheduler). Returns how
    many changed."""
    now = now or timezone.now()
    due = list(
        Delegation.objects.filter(_expiry_due(now=now))
        .order_by("ends_at")
        .values_list("pk", "fleet_id")[:limit]
    )
    changed = 0
    fleets: dict[Any, list[Any]] = {}
    for delegation_id, fleet_id in due:
        if fleet_id is not None:
            fleets.setdefault(fleet_id, []).append(delegation_id)
            continue
        before = Delegation.objects.only("version").get(pk=delegation_id).version
        after = delegation_expire(delegation=Delegation(pk=delegation_id), now=now)
        changed += int(after.version != before)
    for fleet_id, member_ids in fleets.items():
        changed += _fleet_members_expire(fleet_id=fleet_id, member_ids=member_ids, now=now)
    return changed


@transaction.atomic
def _fleet_members_expire(*, fleet_id: Any, member_ids: list[Any], now: dt.datetime) -> int:
    """Expire a fleet's due accounts together, told as one notice for the fleet rather than one
    per account. The fleet's row is locked first and its accounts in the fleet's own order,
    as a fleet revoke does, so the two never wait on each other crosswise."""
    fleet = FleetGrant.objects.locked_for_change().get(pk=fleet_id)
    before = dict(
        Delegation.objects.filter(pk__in=member_ids)
        .order_by("created_at", "pk")
        .values_list("pk", "version")
    )
    ended: list[Delegation] = []
    with fleet_digest():
        for delegation_id, version in before.items():
            after = delegation_expire(delegation=Delegation(pk=delegation_id), now=now)
            if after.version != version:
                ended.append(after)
    fleet_expired_announce(fleet=fleet, members=ended)
    return len(ended)


@transaction.atomic
def delegation_start(*, delegation: Delegation, now: dt.datetime | None = None) -> Delegation:
    """A scheduled grant's start is near (within `START_LEAD`): it becomes approved and the
    worker applies it, so the access works at the minute it starts."""
    now = now or timezone.now()
    locked = lock_delegation(delegation)
    if locked.status != Status.SCHEDULED or locked.starts_at > now + START_LEAD:
        return locked.unchanged()
    if locked.ends_at is not None and locked.ends_at <= now:
        return locked.unchanged()  # the expiry pass ends it instead
    transition(
        locked,
        to=Status.APPROVED,
        action=AuditAction.DELEGATION_SCHEDULED_START,
        actor=None,
        actor_organisation=None,
        metadata={"starts_at": locked.starts_at},
    )
    outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked


@transaction.atomic
def delegation_start_fleet_turn(
    *, delegation: Delegation, started_by: User | None = None
) -> Delegation:
    """A fleet's account gets its turn in the fleet's rate control: scheduled becomes approved
    and the worker applies it (`delegations.fleet` decides whose turn it is; `started_by`: an
    owner admin who started an account the fleet did not attempt)."""
    locked = lock_delegation(delegation)
    if locked.fleet_id is None or locked.status != Status.SCHEDULED:
        return locked.unchanged()
    if locked.ends_at is not None and locked.ends_at <= timezone.now():
        return locked.unchanged()  # the expiry pass ends it instead
    transition(
        locked,
        to=Status.APPROVED,
        action=AuditAction.DELEGATION_FLEET_TURN,
        actor=started_by,
        actor_organisation=locked.owner if started_by is not None else None,
    )
    outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked


def delegations_start_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Start every scheduled grant whose start is within `START_LEAD` (run by the
    scheduler). Returns how many changed."""
    now = now or timezone.now()
    due_ids = list(
        # A fleet's accounts wait as scheduled for their turn; the fleet starts them.
        Delegation.objects.filter(
            status=Status.SCHEDULED, starts_at__lte=now + START_LEAD, fleet__isnull=True
        )
        .order_by("starts_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(
        int(delegation_start(delegation=Delegation(pk=delegation_id), now=now).changed)
        for delegation_id in due_ids
    )


def delegations_desired_on_role(*, managed_role: ManagedRole) -> list[Delegation]:
    """The delegations whose partner principal should be in `managed_role`'s trust policy."""
    return list(
        Delegation.objects.filter(managed_role=managed_role, status__in=DESIRED_PRESENT_STATUSES)
    )
