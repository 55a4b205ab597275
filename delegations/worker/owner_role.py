"""Applying delegations: the worker reconciles one RAM role with everything the portal wants.

`managed_role_reconcile(managed_role_id=...)` is the one entry point (the Celery tasks in
`delegations.worker.tasks` are thin wrappers). A run:

1. claims the role's lease (a conditional UPDATE on `ManagedRole.locked_by/locked_until`; no
   database transaction stays open during cloud calls). A role already held is left to its
   holder: the holder releases the lease only if `desired_version` did not move during its
   run (the release is a conditional UPDATE on the same row the services bump), otherwise it
   runs another round, so a change made while a run is in progress is never lost, and queued
   reconciles of one role coalesce into the holder's next round;
2. moves `approved` delegations to `applying`, reads the role (GetRole, ListPoliciesForRole)
   with the owner's key, decrypted here and nowhere else, and computes the desired state from
   *all* the portal's delegations on the role;
3. plans with `delegations.role_plan` and makes only the needed calls: every pending
   principal of the role goes into one UpdateRole (or CreateRole). Before each mutating call
   a `CloudCall` intent row and its audit event are committed, in the same transaction as a
   lease renewal (a worker that lost its lease makes no further call); the row is completed
   with the answer and its own audit event;
4. re-reads until the cloud shows the expected state (RAM reads may be stale for a moment
   after a write: verification polls within a bounded time, it never trusts the write), then
   moves `applying` → `active` and `revoking` → `revoked`/`expired` through the lifecycle
   services, records what it saw, and releases the lease.

Database work is kept off the cloud's critical path: answers are written with the next
transaction the round needs anyway, and a round's transitions share one transaction. Lock
order everywhere: delegation rows, then the audit chain head, then the role row (the order the
lifecycle services use), so a reconcile never deadlocks with an approval or a revocation.

The mechanism (lease, recorder, retries, mutate → verify, rounds, outbox marking) is the
engine's (`delegations.worker.engine`); this module is its owner-role subject: how a role is
planned, and what a verified round does to the delegations on it (how it is read:
`delegations.worker.role_reads`; how each call is sent: `delegations.worker.role_ops`).

Errors: a transient `CloudError` is retried in place a few times when the wait is short
(honouring `retry_after_ms`), then surfaces as `TransientCloudFailure` for the task to retry
with backoff. A permanent one (or a role of the same name the portal did not create), or a
transient one on the task's last try, fails the pending delegations visibly, except the revokes
the round already carried through (their principals gone from what it last read or wrote):
those end as revoked. "Already exists" /
"does not exist" answers are read as "done" only on a role that carries the portal's marker,
which the planner checked under the lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from cloud import policies
from cloud.client import CloudClient
from delegations import role_plan as planner
from delegations.connection.services import cloud_account_credentials
from delegations.lifecycle.automatic import (
    delegation_mark_active,
    delegation_mark_applying,
    delegation_mark_failed,
    delegation_mark_revoked,
    delegations_mark_many,
    delegations_mark_many_prepare,
)
from delegations.lifecycle.drift import (
    record_principals_not_kept,
    record_unmanaged_principals,
    unmanaged_principals,
)
from delegations.lifecycle.transitions import DelegationConflict, delegations_lock_for_worker
from delegations.models import (
    ALLOWED_TRANSITIONS,
    NEVER_APPLIED_STATUSES,
    CloudCall,
    Delegation,
    ManagedRole,
    OutboxMessage,
)
from delegations.notices import PreparedNotices
from delegations.outbox import outbox_enqueue_reconcile
from delegations.role_state import (
    WAITING_FOR_ROOM,
    delegation_principals,
    desired_role_for,
    trust_policy_max_chars,
    waiting_for_room_message,
)
from delegations.worker.engine import (
    NOT_READ_YET,
    FailureInfo,
    PermanentFailure,
    Plan,
    Reconciler,
    Report,
    Subject,
    converge,
    reconcile_under_lease,
)
from delegations.worker.fleet_handover import fleets_advance_after
from delegations.worker.lease import Lease
from delegations.worker.recorder import Answer, Recorder
from delegations.worker.role_ops import role_op
from delegations.worker.role_reads import ask_role, read_role, role_from_answers, roles_match
from delegations.worker.trust_writes import (
    TrustWrite,
    last_trust_write,
    read_lags_write,
    trusted_after,
    trusted_principals,
)

logger = logging.getLogger(__name__)

Status = Delegation.Status
PENDING_STATUSES = (Status.APPROVED, Status.APPLYING, Status.REVOKING)


@dataclass(kw_only=True)
class ReconcileReport(Report):
    managed_role_id: str
    activated: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


class RoleLease(Lease):
    """The engine's lease on a `ManagedRole` row."""

    model = ManagedRole


# --- the owner's key -------------------------------------------------------------------------


def make_cloud_client(managed_role: ManagedRole) -> CloudClient:
    """The SDK client for the role's cloud account, with the owner's key decrypted here, inside
    the worker, for one run (never in a task payload). Tests may replace this to inject
    faults between calls (e.g. a crash after the n-th call)."""
    credentials = cloud_account_credentials(cloud_account=managed_role.cloud_account)
    return CloudClient(credentials, region_id=managed_role.cloud_account.region)


def role_recorder(
    managed_role: ManagedRole, *, lease: Lease, delegation_ids: list[Any] | None = None
) -> Recorder:
    """The engine's recorder for calls about `managed_role`, audited to its owner."""
    return Recorder(
        lease=lease,
        organisation=managed_role.cloud_account.organisation,
        subject={"managed_role": managed_role},
        # The account, too: a fleet's role has one name in each of the owner's accounts.
        audit_subject={
            "managed_role": str(managed_role.pk),
            "account_uid": managed_role.cloud_account.account_uid,
        },
        delegation_ids=delegation_ids or (),
    )


# --- transitions -----------------------------------------------------------------------------


def _mark_failed_with(info: FailureInfo) -> Callable[..., Delegation]:
    def mark(*, delegation: Delegation, already_locked: bool = False) -> Delegation:
        return delegation_mark_failed(
            delegation=delegation,
            error_code=info.code,
            error_message=info.message,
            request_id=info.request_id,
            already_locked=already_locked,
        )

    return mark


Move = tuple[Delegation, Callable[..., Delegation], str]
# Moves the lifecycle makes for many rows in one go (`delegations_mark_many`).
_BULK_MOVES: dict[Callable[..., Delegation], str] = {
    delegation_mark_applying: Status.APPLYING,
    delegation_mark_active: Status.ACTIVE,
}


def _transition_all(
    moves: list[Move],
    *,
    recorder: Recorder | None = None,
    prepared: PreparedNotices | None = None,
) -> list[Delegation]:
    """Apply worker transitions (each through its lifecycle service, one audit event each) in
    one transaction, skipping delegations that are no longer where the round saw them (an
    owner revoked one meanwhile: the next round handles it).

    Lock order: every delegation row first (by primary key), then the audit chain head (the
    services' and the recorder's audit events). The lifecycle services lock one delegation,
    then the chain head, then the role row; taking all delegation rows up front means this
    transaction never waits for a delegation while holding the chain head, so it cannot
    deadlock with an owner's approval or revocation.

    In bulk: the rows are locked and loaded in one statement and handed to the services
    as locked (`already_locked`), so each move costs its update, its audit event and its
    follow-up work, not another lock and read of its row (a round of many partners on one
    role moves them all in this one transaction). Each service runs in its own savepoint, so
    a move it refuses leaves the others standing. `prepared`: the notices of a bulk
    activation, rendered while the round's verifying reads were out."""
    if not moves and (recorder is None or not recorder.has_unwritten):
        return []
    moved: list[Delegation] = []
    unflushed = [recorder] if recorder is not None else []

    def flush() -> None:
        # The round's cloud answers, with their audit events: the first audit event of this
        # transaction, taken as late as possible, because it locks the audit chain until the
        # commit (the bulk moves' notices are written before it, not under the lock).
        while unflushed:
            unflushed.pop().flush()

    with transaction.atomic():
        current = delegations_lock_for_worker(
            delegation_ids={delegation.pk for delegation, _, _ in moves}
        )
        in_bulk: dict[str, list[tuple[Delegation, Delegation]]] = {}
        for delegation, service, expect in moves:
            row = current.get(delegation.pk)
            if row is None or row.status != expect:
                continue
            to = _BULK_MOVES.get(service)
            if to is not None and to in ALLOWED_TRANSITIONS[row.status]:
                in_bulk.setdefault(to, []).append((delegation, row))
                continue
            flush()
            try:
                result = service(delegation=row, already_locked=True)
            except DelegationConflict:
                continue
            if result.changed:
                moved.append(delegation)
        for to, pairs in in_bulk.items():
            delegations_mark_many(
                delegations=[row for _, row in pairs],
                to=to,
                before_audit=flush,
                prepared=prepared if to == Status.ACTIVE else None,
            )
            moved += [delegation for delegation, row in pairs if row.changed]
        flush()
    return moved


@dataclass
class _Round:
    applying: list[Delegation]
    leaving: list[Delegation]
    verified: planner.ActualRole | None = None
    waiting: tuple[str, ...] = ()


# --- one run ---------------------------------------------------------------------------------


class _Clients:
    """The run's SDK clients, made on first use: a second one lets the two reads of a role
    go out side by side (each client keeps its own last request id)."""

    def __init__(self, managed_role: ManagedRole) -> None:
        self.managed_role = managed_role
        self._main: CloudClient | None = None
        self._side: CloudClient | None = None

    def main(self) -> CloudClient:
        if self._main is None:
            self._main = make_cloud_client(self.managed_role)
        return self._main

    def side(self) -> CloudClient:
        if self._side is None:
            self._side = make_cloud_client(self.managed_role)
        return self._side


def role_has_pending_work(managed_role: ManagedRole) -> bool:
    """Whether the role has something for the worker: a version not applied yet, a delegation
    to apply or to remove, or a cloud call whose outcome is not known."""
    if managed_role.desired_version != managed_role.applied_version:
        return True
    if Delegation.objects.filter(managed_role=managed_role, status__in=PENDING_STATUSES).exists():
        return True
    return CloudCall.objects.filter(
        managed_role=managed_role, outcome=CloudCall.Outcome.PENDING
    ).exists()


def last_seen_fields(actual: planner.ActualRole | None) -> dict[str, Any]:
    """What a read of the role showed, as the ManagedRole's `last_seen_*` columns (a round
    and a drift check both keep them)."""
    return {
        "last_seen_at": timezone.now(),
        "last_seen_exists": actual is not None,
        "last_seen_trust_policy": (
            policies.canonical_policy(actual.trust_document, trust=True) if actual else None
        ),
        "last_seen_policies": (
            [{"type": t, "name": n} for t, n in sorted(actual.attached_policies)] if actual else []
        ),
    }


@dataclass(kw_only=True, eq=False)
class RoleSubject(Subject):
    """The engine's subject for one round on a role: its trust policy and attachments."""

    managed_role: ManagedRole
    desired: planner.DesiredRole
    clients: _Clients
    # Principals not managed here that a read before a write showed and the write did
    # not keep (removed outside the portal meanwhile, or a read that lagged): reported.
    not_kept: set[str] = field(default_factory=set)
    wrote_this_round: bool = False
    last_write: TrustWrite | None = None
    # Wanted principals the last plan left out: the trust policy has no room for them.
    waiting: tuple[str, ...] = ()
    # The round's first read, sent before the round moved its delegations (`ask_role`).
    first_answers: Future[list[Answer]] | None = None
    # Run once, while the first read after this round's writes (the verifying one) is out.
    while_verifying: Callable[[], None] | None = None
    # The principals the role trusts as far as this round knows: its last read, or the last
    # of its writes that took effect since (None before the first read). A permanent failure
    # ends the revokes this shows through (`_fail_pending`).
    trusted_known: frozenset[str] | None = None

    def read(self, *, expected: Any) -> planner.ActualRole | None:
        actual = self._read(expected)
        self.trusted_known = trusted_principals(actual)
        return actual

    def _landed(self, op: planner.Operation) -> None:
        trusted = trusted_after(op)
        if trusted is not None:
            self.trusted_known = trusted

    def _read(self, expected: Any) -> planner.ActualRole | None:
        """Both reads side by side when the role should exist."""
        if expected is NOT_READ_YET and self.first_answers is not None:
            # Taken once: a retry after a transient error reads again.
            answers, self.first_answers = self.first_answers.result(), None
            return role_from_answers(answers, self.managed_role.role_name, self.recorder)
        if expected is NOT_READ_YET:
            expect_exists = bool(self.managed_role.last_seen_exists)
        else:
            expect_exists = expected is not None
        side = self.clients.side() if expect_exists else None
        meanwhile = None
        if self.wrote_this_round:
            meanwhile, self.while_verifying = self.while_verifying, None
        return read_role(
            self.clients.main(),
            self.managed_role.role_name,
            self.recorder,
            side_client=side,
            meanwhile=meanwhile,
        )

    def plan(self, actual: planner.ActualRole | None) -> Plan:
        plan = planner.plan_role_reconciliation(actual=actual, desired=self.desired)
        if isinstance(plan, planner.Refusal):
            raise PermanentFailure(FailureInfo(code=plan.code, message=plan.reason))
        self.waiting = plan.waiting
        if plan.is_empty:
            return Plan(ops=[], expected=actual)
        return Plan(
            ops=[
                replace(
                    role_op(op, before=actual, account=self.managed_role.cloud_account),
                    landed=partial(self._landed, op),
                )
                for op in plan.operations
            ],
            expected=planner.expected_state_after(actual, plan),
        )

    def matches(self, current: Any, expected: Any) -> bool:
        return roles_match(current, expected)

    def describe(self) -> str:
        return f"The role {self.managed_role.role_name}"

    def behind_own_write(self, actual: Any) -> bool:
        if self.wrote_this_round:
            # This round's writes are not recorded yet; the round verified them itself.
            return read_lags_write(self.last_write, actual)
        return read_lags_write(last_trust_write(self.managed_role), actual)

    def wrote(self, *, seen: list[Any], written: Any) -> None:
        kept = trusted_principals(written)
        for read in seen:
            self.not_kept |= unmanaged_principals(self.managed_role, read) - kept
        self.wrote_this_round = True
        self.last_write = (
            TrustWrite(
                before=trusted_principals(seen[-1]) if seen else frozenset(),
                after=kept,
                finished_at=timezone.now(),
            )
            if written is not None
            else None
        )


class _RoleReconciler(Reconciler):
    kind = OutboxMessage.Kind.RECONCILE_ROLE

    def __init__(self, managed_role_id: Any, *, lease: RoleLease, force: bool) -> None:
        super().__init__(
            managed_role_id,
            lease=lease,
            report=ReconcileReport(managed_role_id=str(managed_role_id)),
        )
        self.report: ReconcileReport
        self.force = force
        self.managed_role: ManagedRole | None = None
        self._clients: _Clients | None = None
        # The round's subject, once it has one: what the round knows the role trusts.
        self.subject: RoleSubject | None = None
        # The round's activation notices, rendered while its verifying reads were out.
        self.prepared: PreparedNotices | None = None

    def load(self) -> int:
        self.managed_role = ManagedRole.objects.select_related(
            "cloud_account", "cloud_account__organisation"
        ).get(pk=self.object_id)
        if self._clients is None:
            self._clients = _Clients(self.managed_role)
        return self.managed_role.desired_version

    def has_work(self) -> bool:
        assert self.managed_role is not None
        return self.force or role_has_pending_work(self.managed_role)

    def round(self) -> None:
        managed_role, clients = self.managed_role, self._clients
        assert managed_role is not None and clients is not None
        self.force = False
        # The round's first read goes out now and is answered while the delegations move into
        # applying (a bulk move of a role's hundred partners takes as long as a call): the
        # read changes nothing in the cloud, so its order against the move does not matter.
        main = clients.main()
        side = clients.side() if managed_role.last_seen_exists else None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="first-read") as reader:
            first_answers = reader.submit(ask_role, main, managed_role.role_name, side_client=side)
            self._round(managed_role, clients, first_answers)

    def _round(
        self,
        managed_role: ManagedRole,
        clients: _Clients,
        first_answers: Future[list[Answer]],
    ) -> None:
        self.subject = None
        role_recorder(managed_role, lease=self.lease).close_dangling_intents()
        approved = list(
            Delegation.objects.filter(managed_role=managed_role, status=Status.APPROVED)
        )
        _transition_all([(d, delegation_mark_applying, Status.APPROVED) for d in approved])

        delegations = list(
            Delegation.objects.filter(managed_role=managed_role)
            .exclude(status__in=NEVER_APPLIED_STATUSES)
            .select_related("catalog_role", "partner")
        )
        applying = [d for d in delegations if d.status == Status.APPLYING]
        leaving = [
            d
            for d in delegations
            if d.status == Status.REVOKING
            or (d.status == Status.FAILED and d.failed_phase == Delegation.Phase.REVOKING)
        ]
        desired, wanted = desired_role_for(managed_role, delegations)
        self.recorder = recorder = role_recorder(
            managed_role, lease=self.lease, delegation_ids=[d.pk for d in applying + leaving]
        )
        # Every principal we are about to manage is remembered *before* any call (with the
        # first intent), so a crash after the call still knows it is ours to remove later.
        known = set(managed_role.known_principals or ())
        if not wanted <= known:
            managed_role.known_principals = sorted(known | wanted)
            recorder.row_changes["known_principals"] = managed_role.known_principals
            self.seen["known_principals"] = managed_role.known_principals
            desired, wanted = desired_role_for(managed_role, delegations)

        subject = RoleSubject(
            managed_role=managed_role,
            desired=desired,
            lease=self.lease,
            recorder=recorder,
            clients=clients,
            first_answers=first_answers,
        )
        subject.while_verifying = partial(self._prepare_activation, subject, applying)
        self.subject = subject
        try:
            actual = converge(subject, client=clients.main())
        finally:
            self.report.mutating_calls += recorder.mutations_sent
        self._finish(
            managed_role,
            recorder,
            _Round(applying, leaving, verified=actual, waiting=subject.waiting),
        )
        record_principals_not_kept(
            managed_role, sorted(subject.not_kept - trusted_principals(actual))
        )

    def _prepare_activation(self, subject: RoleSubject, applying: list[Delegation]) -> None:
        """While the verifying reads are out (the worker would only wait): render the notices
        of the delegations the write let in, for the activation that follows if the reads
        show it. A failure here costs only the head start."""
        written = subject.last_write.after if subject.last_write is not None else frozenset()
        try:
            self.prepared = delegations_mark_many_prepare(
                delegations=[d for d in applying if delegation_principals(d) <= written],
                to=Status.ACTIVE,
            )
        except Exception:
            logger.exception("Could not prepare the activation notices; rendering them later.")

    def _finish(self, managed_role: ManagedRole, recorder: Recorder, round_: _Round) -> None:
        """Move the delegations the verified state settles (with the round's cloud answers, in
        one transaction), and keep what the cloud showed for the lease release."""
        actual = round_.verified
        present = trusted_principals(actual)
        # A delegation's principals: the partner's root, or its named people (trust scope).
        principals = {d.pk: delegation_principals(d) for d in round_.applying + round_.leaving}
        moves: list[Move] = []
        if actual is not None:
            moves += [
                (d, delegation_mark_active, Status.APPLYING)
                for d in round_.applying
                if principals[d.pk] <= present
            ]
        moves += [
            (d, delegation_mark_revoked, d.status)
            for d in round_.leaving
            if not principals[d.pk] & present
        ]
        prepared, self.prepared = self.prepared, None
        moved = {d.pk for d in _transition_all(moves, recorder=recorder, prepared=prepared)}
        self.report.activated += [str(d.pk) for d in round_.applying if d.pk in moved]
        if any(d.fleet_id is not None for d in round_.applying + round_.leaving if d.pk in moved):
            # A fleet's account left the worker: its slot is free now, so the fleet's next
            # account starts before this run's own bookkeeping (the lease's release), not
            # after it: that wait would be on every hand-over between a fleet's accounts.
            fleets_advance_after(managed_role_id=managed_role.pk)
        waiting = set(round_.waiting) - present
        waiting_delegations = [d for d in round_.applying if principals[d.pk] & waiting]
        self.report.waiting = [str(d.pk) for d in waiting_delegations]
        _note_waiting(managed_role, waiting_delegations, actual)
        self.report.ended += [str(d.pk) for d in round_.leaving if d.pk in moved]
        self.seen.update(
            **last_seen_fields(actual),
            last_seen_description=(actual.description or "")[:1024] if actual else "",
            created_by_portal=actual is not None and actual.created_by_portal,
        )
        # Principals someone added outside the portal stay; the owner hears of them once.
        record_unmanaged_principals(managed_role, actual)

    def fail(self, info: FailureInfo) -> bool:
        """Fail every delegation this run was working on, visibly, but for the revokes the
        round saw through (`_fail_pending`). Returns whether a cleanup round is needed (a
        delegation that failed while applying may have left its principal in the trust
        policy, and a failed delegation is not wanted there)."""
        managed_role = self.managed_role
        assert managed_role is not None
        trusted = self.subject.trusted_known if self.subject is not None else None
        failed, ended = _fail_pending(managed_role, info, trusted=trusted)
        self.report.failed += [str(d.pk) for d in failed]
        self.report.ended += [str(d.pk) for d in ended]
        logger.warning(
            "Reconcile of %s failed permanently: %s %s (request id %s)",
            managed_role.role_name,
            info.code,
            info.message,
            info.request_id,
        )
        failed_applying = any(d.status != Status.REVOKING for d in failed)
        # Only worth another round if this run may have changed the role before failing.
        return failed_applying and self.report.mutating_calls > 0


def _note_waiting(
    managed_role: ManagedRole, waiting: list[Delegation], actual: planner.ActualRole | None
) -> None:
    """Delegations the role's full trust policy keeps out stay `applying`, with the reason
    where the owner and the partner see errors; one audit event when each starts waiting.
    They get in on a later round, once a revoke frees room (activation clears the note)."""
    if not waiting:
        return
    limit = trust_policy_max_chars()
    used = planner.trust_policy_chars(actual.trust_document) if actual is not None else 0
    message = waiting_for_room_message(managed_role.role_name, used=used, limit=limit)
    with transaction.atomic():
        rows = list(
            Delegation.objects.select_for_update()
            .filter(pk__in=[d.pk for d in waiting], status=Status.APPLYING)
            .select_related("partner")
            .order_by("pk")
        )
        for row in rows:
            first = row.last_error_code != WAITING_FOR_ROOM
            row.last_error_code = WAITING_FOR_ROOM
            row.last_error_message = message
            row.last_error_request_id = ""
            if first:
                row.last_error_at = timezone.now()
            row.save(
                update_fields=[
                    "last_error_code",
                    "last_error_message",
                    "last_error_request_id",
                    "last_error_at",
                    "updated_at",
                ]
            )
            if first:
                audit_record(
                    action=AuditAction.DELEGATION_WAITING_FOR_ROOM,
                    organisation=managed_role.cloud_account.organisation,
                    related_organisations=[row.partner],
                    target=row,
                    metadata={
                        "role_name": managed_role.role_name,
                        "trust_policy_chars": used,
                        "trust_policy_max_chars": limit,
                    },
                )


def _fail_pending(
    managed_role: ManagedRole, info: FailureInfo, *, trusted: frozenset[str] | None
) -> tuple[list[Delegation], list[Delegation]]:
    """Fail the role's pending delegations with `info` (the first list), but end as revoked
    (the second) a revoke that is through: none of its principals in `trusted`, what the round
    last read or wrote with effect (also when the run gives up on the task's last try).
    Without that (no read yet) every pending delegation fails."""
    pending = list(
        Delegation.objects.filter(managed_role=managed_role, status__in=PENDING_STATUSES)
        .select_related("catalog_role", "partner")
        .order_by("pk")
    )
    through = {
        d.pk
        for d in pending
        if trusted is not None
        and d.status == Status.REVOKING
        and not delegation_principals(d) & trusted
    }
    mark = _mark_failed_with(info)
    moved = _transition_all(
        [(d, delegation_mark_revoked if d.pk in through else mark, d.status) for d in pending]
    )
    return [d for d in moved if d.pk not in through], [d for d in moved if d.pk in through]


# --- public entry points ---------------------------------------------------------------------


def managed_role_reconcile(
    *, managed_role_id: Any, force: bool = False, last_try: bool = False
) -> ReconcileReport:
    """Bring one RAM role in line with every delegation on it (see the module docstring).

    `force` runs a round even when nothing is pending (a repair asked by the owner).
    Raises `TransientCloudFailure` when the cloud keeps failing transiently: the caller
    retries later; the lease is released first so other work on the role is not blocked.
    On the task's `last_try` it gives up instead: the pending delegations fail with the last
    error, so the owner sees it and can retry, but for the revokes the run saw through, as on
    a permanent failure. The role stays pending (`Reconciler.give_up`): the periodic pass
    reconciles it again, so a partner an earlier attempt trusted before the cloud failed loses
    that trust once the cloud answers. A role whose lease is held is left to its holder
    ("busy"), which settles it.
    """
    reconciler = _RoleReconciler(managed_role_id, lease=RoleLease(managed_role_id), force=force)
    reconcile_under_lease(reconciler, last_try=last_try)
    return reconciler.report


def managed_role_request_reconcile(*, managed_role: ManagedRole) -> OutboxMessage:
    """Ask for a reconcile of `managed_role` (repairs, sweeps): through the outbox, so the
    request survives a broker outage."""
    with transaction.atomic():
        return outbox_enqueue_reconcile(managed_role=managed_role)
