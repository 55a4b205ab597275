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

Errors: a transient `CloudError` is retried in place a few times when the wait is short
(honouring `retry_after_ms`), then surfaces as `TransientCloudFailure` for the task to retry
with backoff. A permanent one (or a role of the same name the portal did not create) fails the
pending delegations visibly. "Already exists" / "does not exist" answers are read as "done"
only on a role that carries the portal's marker, which the planner checked under the lease.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from cloud import policies
from cloud.client import CloudClient
from cloud.errors import CloudError
from delegations import role_plan as planner
from delegations.connection.services import cloud_account_credentials
from delegations.lifecycle.services import (
    DelegationConflict,
    delegation_mark_active,
    delegation_mark_applying,
    delegation_mark_failed,
    delegation_mark_revoked,
)
from delegations.models import (
    DESIRED_PRESENT_STATUSES,
    NEVER_APPLIED_STATUSES,
    CatalogRole,
    CloudCall,
    Delegation,
    LeasedModel,
    ManagedRole,
    OutboxMessage,
    RoleCutOff,
)
from delegations.outbox import outbox_enqueue_reconcile

logger = logging.getLogger(__name__)

Status = Delegation.Status


def _setting(name: str, default: float) -> float:
    return getattr(settings, name, default)


def lease_duration() -> dt.timedelta:
    """How long a claimed role stays locked without renewal. Renewed before every mutating
    call and while verifying, so it only has to outlast one call plus one wait."""
    return dt.timedelta(seconds=_setting("PORTAL_ROLE_LEASE_SECONDS", 120))


# --- outcomes and errors ---------------------------------------------------------------------


class ReconcileOutcome(StrEnum):
    CONVERGED = "converged"  # the cloud matches the ledger; transitions are done
    NOTHING_TO_DO = "nothing_to_do"  # no pending work on the role
    BUSY = "busy"  # another worker holds the lease and will pick up any change
    FAILED = "failed"  # a permanent error, recorded on the delegations
    LEASE_LOST = "lease_lost"  # our lease expired and another worker took over


@dataclass
class ReconcileReport:
    managed_role_id: str
    outcome: ReconcileOutcome
    rounds: int = 0
    mutating_calls: int = 0
    activated: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    error_code: str = ""


class LeaseLost(Exception):
    """Another worker claimed the role after our lease ran out; we must not touch it."""


class TransientCloudFailure(Exception):
    """A transient cloud error outlasted the retries made inside the run: retry the task
    later, not before `retry_after_ms`."""

    def __init__(self, error: CloudError) -> None:
        self.error = error
        self.retry_after_ms = error.retry_after_ms
        super().__init__(str(error))


@dataclass(frozen=True)
class FailureInfo:
    """What the owner sees on a failed delegation."""

    code: str
    message: str
    request_id: str = ""

    @classmethod
    def from_error(cls, error: CloudError) -> FailureInfo:
        return cls(
            code=error.code or error.category.value,
            message=error.message,
            request_id=error.request_id or "",
        )


class _PermanentFailure(Exception):
    def __init__(self, info: FailureInfo) -> None:
        self.info = info
        super().__init__(f"{info.code}: {info.message}")


class _Replan(Exception):
    """The cloud answered in a way that means our read is out of date: read and plan again."""


# --- the lease -------------------------------------------------------------------------------


class RoleLease:
    """The per-role lock, held by a random token until `locked_until`.

    `model` is the `LeasedModel` whose row carries the lease fields (`locked_by`,
    `locked_until`, `desired_version`, `applied_version`, `last_reconciled_at`): the partner
    side's `PartnerUserPolicy` reuses this class with its own model."""

    model: type[LeasedModel] = ManagedRole

    def __init__(self, managed_role_id: Any, *, duration: dt.timedelta | None = None) -> None:
        self.managed_role_id = managed_role_id
        self.token = uuid.uuid4().hex
        self.duration = duration or lease_duration()

    def _mine(self):
        return self.model._default_manager.filter(pk=self.managed_role_id, locked_by=self.token)

    def claim(self) -> bool:
        now = timezone.now()
        claimed = (
            self.model._default_manager.filter(pk=self.managed_role_id)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
            .update(locked_by=self.token, locked_until=now + self.duration)
        )
        return claimed == 1

    def renew(self, **role_changes: Any) -> None:
        """Extend the lease (and save `role_changes` on the role row in the same UPDATE)."""
        if not self._mine().update(locked_until=timezone.now() + self.duration, **role_changes):
            raise LeaseLost(f"Lost the lease on managed role {self.managed_role_id}.")

    def release_if_converged(self, *, version: int, **role_changes: Any) -> bool:
        """Release and record `version` as applied, unless the desired state moved on while
        we worked (then keep the lease and return False: the caller runs another round).
        One UPDATE on the row the services bump, so it cannot miss a concurrent change."""
        released = (
            self._mine()
            .filter(desired_version=version)
            .update(
                locked_by="",
                locked_until=None,
                applied_version=version,
                last_reconciled_at=timezone.now(),
                **role_changes,
            )
        )
        if released:
            return True
        if role_changes:
            self._mine().update(**role_changes)
        if not self._mine().exists():
            raise LeaseLost(f"Lost the lease on managed role {self.managed_role_id}.")
        return False

    def release(self, *, applied_version: int | None = None) -> None:
        changes: dict[str, Any] = {"locked_by": "", "locked_until": None}
        if applied_version is not None:
            changes["applied_version"] = applied_version
        self._mine().update(**changes)


# --- backoff ---------------------------------------------------------------------------------


def backoff_seconds(
    attempt: int,
    *,
    retry_after_ms: int | None = None,
    base: float = 0.2,
    cap: float = 60.0,
) -> float:
    """Exponential backoff with full jitter in [0.5, 1.5) x base*2^attempt, capped, and never
    shorter than the cloud's `x-acs-retry-after` (milliseconds, as the SDK reads it)."""
    delay = min(cap, base * (2**attempt)) * (0.5 + random.random())
    if retry_after_ms:
        delay = max(delay, retry_after_ms / 1000.0)
    return delay


# --- the owner's key -------------------------------------------------------------------------


def make_cloud_client(managed_role: ManagedRole) -> CloudClient:
    """The SDK client for the role's cloud account, with the owner's key decrypted here, inside
    the worker, for one run (never in a task payload). Tests may replace this to inject
    faults between calls (e.g. a crash after the n-th call)."""
    credentials = cloud_account_credentials(cloud_account=managed_role.cloud_account)
    return CloudClient(credentials, region_id=managed_role.cloud_account.region)


# --- recording cloud calls -------------------------------------------------------------------


def _error_fields(error: CloudError) -> dict[str, Any]:
    return {
        "request_id": (error.request_id or "")[:64],
        "http_status": error.http_status,
        "error_code": (error.code or error.category.value)[:128],
        "error_message": (error.message or "")[:2000],
    }


@dataclass(frozen=True)
class _Answer:
    value: Any = None
    error: CloudError | None = None
    request_id: str = ""


def _ask(client: CloudClient, call: Callable[[], Any]) -> _Answer:
    try:
        value = call()
    except CloudError as error:
        return _Answer(error=error, request_id=error.request_id or "")
    return _Answer(value=value, request_id=client.last_request_id or "")


class _Recorder:
    """Writes one `CloudCall` row (and its audit events) per cloud request of a round.

    The intent of a mutating call is committed before the request (write-ahead). Answers
    (reads, and results of mutations) are kept and written in the next transaction the round
    makes anyway (the next intent, or the transitions at the end), each with the time it
    arrived: a worker that dies in between leaves an intent without a result, which the next
    run closes as "resolved by reconcile", exactly as if it had died just after the call.
    """

    def __init__(
        self,
        *,
        managed_role: ManagedRole,
        lease: RoleLease,
        delegation_ids: Iterable[Any] = (),
    ) -> None:
        self.role = managed_role
        self.lease = lease
        self.owner = managed_role.cloud_account.organisation
        self.delegation_ids = list(delegation_ids)
        # Saved on the role row with the first intent's lease renewal (before any change).
        self.role_changes: dict[str, Any] = {}
        self.mutations_sent = 0
        self.mutations_succeeded = 0
        self._unwritten: list[Callable[[], None]] = []

    def _subject(self) -> dict[str, Any]:
        """What the CloudCall rows of this run are about (the partner side overrides it)."""
        return {"managed_role": self.role}

    def _link(self, call: CloudCall) -> None:
        if self.delegation_ids:
            through = CloudCall.delegations.through
            through.objects.bulk_create(
                [through(cloudcall_id=call.pk, delegation_id=d) for d in self.delegation_ids]
            )

    def _audit(self, call: CloudCall, *, action: str, outcome: str) -> None:
        # Scoped to the cloud account's organisation only: one call can serve several partners
        # of a shared role, and its summary names every principal it changed, which no
        # partner may see of another. Partners follow their delegation's transitions instead.
        audit_record(
            action=action,
            organisation=self.owner,
            target=call,
            target_label=f"{call.action} {call.target}",
            after={
                "outcome": call.outcome,
                "request_id": call.request_id,
                "error_code": call.error_code,
            },
            metadata={
                "cloud_action": call.action,
                "target": call.target,
                "mutating": call.mutating,
                "request": call.request_summary,
                "http_status": call.http_status,
                "worker": call.worker,
                **self._audit_subject(),
            },
            outcome=outcome,
        )

    def _audit_subject(self) -> dict[str, str]:
        """Which desired state the call served, named in its audit event."""
        return {"managed_role": str(self.role.pk)}

    def flush(self) -> None:
        """Write the answers kept so far; runs inside the caller's transaction."""
        unwritten, self._unwritten = self._unwritten, []
        with transaction.atomic():
            for write in unwritten:
                write()

    def record_read(self, action: str, target: str, answer: _Answer) -> None:
        """A read needs no intent (it changes nothing): one row once it answered."""
        arrived = timezone.now()
        # "Not found" is an answer to a read, not a failure.
        ok = answer.error is None or answer.error.is_not_found
        fields = (
            _error_fields(answer.error)
            if answer.error is not None
            else {"request_id": answer.request_id[:64]}
        )

        def write() -> None:
            call = CloudCall.objects.create(
                **self._subject(),
                action=action,
                mutating=False,
                target=target,
                worker=self.lease.token,
                intent_at=arrived,
                finished_at=arrived,
                outcome=CloudCall.Outcome.OK if ok else CloudCall.Outcome.ERROR,
                **fields,
            )
            self._link(call)
            self._audit(
                call,
                action="cloud.call_read",
                outcome=AuditEvent.Outcome.SUCCESS if ok else AuditEvent.Outcome.FAILURE,
            )

        self._unwritten.append(write)

    def intent(self, action: str, target: str, summary: dict[str, Any]) -> CloudCall:
        """Write-ahead: committed before the request is sent. Renewing the lease in the same
        transaction fences off a worker whose lease ran out: it raises instead of calling."""
        with transaction.atomic():
            self.flush()
            call = CloudCall.objects.create(
                **self._subject(),
                action=action,
                mutating=True,
                target=target,
                request_summary=summary,
                worker=self.lease.token,
            )
            self._link(call)
            self._audit(call, action="cloud.call_intent", outcome=AuditEvent.Outcome.SUCCESS)
            # Last, so this transaction takes its locks in the lifecycle services' order (audit
            # chain head, then the role row) and cannot deadlock with an approval.
            self.lease.renew(**self.role_changes)
        self.mutations_sent += 1
        return call

    def finish(
        self,
        call: CloudCall,
        *,
        error: CloudError | None = None,
        request_id: str = "",
        note: str = "",
    ) -> None:
        arrived = timezone.now()
        fields: dict[str, Any] = (
            _error_fields(error) if error is not None else {"request_id": request_id[:64]}
        )
        outcome = CloudCall.Outcome.OK if error is None or note else CloudCall.Outcome.ERROR
        if outcome == CloudCall.Outcome.OK:
            self.mutations_succeeded += 1

        def write() -> None:
            # Only a row still pending: another worker may have closed it as "unknown" after
            # our lease ran out.
            updated = CloudCall.objects.filter(
                pk=call.pk, outcome=CloudCall.Outcome.PENDING
            ).update(outcome=outcome, finished_at=arrived, note=note[:255], **fields)
            if not updated:
                return
            call.refresh_from_db()
            self._audit(
                call,
                action="cloud.call_result",
                outcome=(
                    AuditEvent.Outcome.SUCCESS
                    if outcome == CloudCall.Outcome.OK
                    else AuditEvent.Outcome.FAILURE
                ),
            )

        self._unwritten.append(write)


def _close_dangling_intents(*, managed_role: ManagedRole, lease: RoleLease) -> int:
    """Intents of workers that died before recording the answer. We hold the lease, so
    nobody else can still be waiting for them; the read that follows tells what they did."""
    dangling = list(
        CloudCall.objects.filter(managed_role=managed_role, outcome=CloudCall.Outcome.PENDING)
        .exclude(worker=lease.token)
        .order_by("id")
    )
    owner = managed_role.cloud_account.organisation
    for call in dangling:
        with transaction.atomic():
            if not CloudCall.objects.filter(pk=call.pk, outcome=CloudCall.Outcome.PENDING).update(
                outcome=CloudCall.Outcome.UNKNOWN,
                finished_at=timezone.now(),
                note="resolved by reconcile",
            ):
                continue
            call.refresh_from_db()
            audit_record(
                action="cloud.call_result",
                organisation=owner,
                target=call,
                target_label=f"{call.action} {call.target}",
                after={"outcome": call.outcome, "request_id": "", "error_code": ""},
                metadata={
                    "cloud_action": call.action,
                    "target": call.target,
                    "mutating": True,
                    "note": call.note,
                    "worker": call.worker,
                    "resolved_by": lease.token,
                    "managed_role": str(managed_role.pk),
                },
                outcome=AuditEvent.Outcome.FAILURE,
            )
    return len(dangling)


# --- desired state ---------------------------------------------------------------------------


def _catalog_role_for(managed_role: ManagedRole, delegations: list[Delegation]) -> CatalogRole:
    for delegation in delegations:
        if delegation.catalog_role.is_active:
            return delegation.catalog_role
    found = (
        CatalogRole.objects.filter(
            cloud_account=managed_role.cloud_account, role_name__iexact=managed_role.role_name
        )
        .order_by("-is_active", "-updated_at")
        .first()
    )
    if found is not None:
        return found
    if delegations:
        return delegations[0].catalog_role
    raise CatalogRole.DoesNotExist(f"No catalogue role names {managed_role.role_name}.")


def _policy_keys(catalog_role: CatalogRole) -> frozenset[tuple[str, str]]:
    return frozenset(
        (str(p.get("type")), str(p.get("name"))) for p in catalog_role.policies or [] if p
    )


def desired_role_for(
    managed_role: ManagedRole, delegations: list[Delegation]
) -> tuple[planner.DesiredRole, frozenset[str]]:
    """The role the portal wants, from every delegation on it, and the wanted principals."""
    present = [d for d in delegations if d.status in DESIRED_PRESENT_STATUSES]
    wanted = frozenset(d.principal_arn for d in present)
    catalog_role = _catalog_role_for(managed_role, present or delegations)
    policy_keys = _policy_keys(catalog_role)
    # An owner's emergency cut-off keeps the role's permission policies detached until lifted.
    cut_off = RoleCutOff.objects.filter(managed_role=managed_role, lifted_at__isnull=True).exists()
    desired = planner.DesiredRole(
        role_name=managed_role.role_name,
        owner_account_uid=managed_role.cloud_account.account_uid,
        managed_principals_wanted=wanted,
        managed_principals_known=frozenset(managed_role.known_principals or ()),
        policies_wanted=frozenset() if cut_off else policy_keys,
        managed_policies_known=policy_keys
        | frozenset((str(kind), str(name)) for kind, name in managed_role.known_policies or ()),
        max_session_duration=catalog_role.max_session_duration,
        description=catalog_role.description,
        delete_when_empty=not catalog_role.keep_role_when_empty,
    )
    return desired, wanted


# --- reading and comparing -------------------------------------------------------------------


def read_role(
    client: CloudClient,
    role_name: str,
    recorder: _Recorder | None = None,
    *,
    side_client: CloudClient | None = None,
) -> planner.ActualRole | None:
    """GetRole and ListPoliciesForRole; None when the role does not exist.

    With `side_client` (a second client: each keeps its own last request id) the two reads go
    out side by side, which halves the wait when the role is expected to exist; otherwise
    ListPoliciesForRole is only sent once GetRole found the role."""
    target = f"role/{role_name}"
    if side_client is not None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            role_future = pool.submit(_ask, client, lambda: client.get_role(role_name))
            policies_future = pool.submit(
                _ask, side_client, lambda: side_client.list_policies_for_role(role_name)
            )
            answers = [role_future.result(), policies_future.result()]
    else:
        answers = [_ask(client, lambda: client.get_role(role_name))]
        if answers[0].error is None and answers[0].value is not None:
            answers.append(_ask(client, lambda: client.list_policies_for_role(role_name)))
    if recorder is not None:
        for action, answer in zip(("GetRole", "ListPoliciesForRole"), answers, strict=False):
            recorder.record_read(action, target, answer)
    for answer in answers:
        if answer.error is not None and not (answer.value is None and _role_gone(answer.error)):
            raise answer.error
    role = answers[0].value
    if role is None:
        return None
    if answers[1].error is not None:
        return None  # deleted between the two reads: the later answer is the truth
    return planner.ActualRole.from_cloud(role, answers[1].value)


def _role_gone(error: CloudError) -> bool:
    return error.code == "EntityNotExist.Role"


def roles_match(a: planner.ActualRole | None, b: planner.ActualRole | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        same_trust = policies.trust_policy_equal(a.trust_document, b.trust_document)
    except policies.PolicyError:
        return False
    return (
        same_trust
        and a.attached_policies == b.attached_policies
        and (a.description or "") == (b.description or "")
        and a.max_session_duration == b.max_session_duration
    )


def trusted_principals(actual: planner.ActualRole | None) -> frozenset[str]:
    """RAM principals an Allow statement names (the ones that can assume the role)."""
    if actual is None:
        return frozenset()
    return policies.trust_policy_principals(actual.trust_document).ram


# --- executing one operation -----------------------------------------------------------------


def _summary(op: planner.Operation, before: planner.ActualRole | None) -> dict[str, Any]:
    summary: dict[str, Any] = {"role_name": op.role_name}
    if isinstance(op, planner.AttachPolicy | planner.DetachPolicy):
        summary.update(policy_type=op.policy_type, policy_name=op.policy_name)
    document = getattr(op, "trust_document", None)
    if document is not None:
        after = policies.trust_policy_principals(document).ram
        previous = trusted_principals(before)
        summary.update(
            principals_added=sorted(after - previous),
            principals_removed=sorted(previous - after),
        )
    session = getattr(op, "max_session_duration", None)
    if session is not None:
        summary["max_session_duration"] = session
    return summary


def _target(op: planner.Operation) -> str:
    if isinstance(op, planner.AttachPolicy | planner.DetachPolicy):
        return f"role/{op.role_name} policy/{op.policy_type}/{op.policy_name}"
    return f"role/{op.role_name}"


def _send(client: CloudClient, op: planner.Operation) -> None:
    if isinstance(op, planner.CreateRole):
        client.create_role(
            op.role_name,
            trust_document=op.trust_document,
            description=op.description,
            max_session_duration=op.max_session_duration,
        )
    elif isinstance(op, planner.UpdateRole):
        client.update_role(
            op.role_name,
            trust_document=op.trust_document,
            description=op.description,
            max_session_duration=op.max_session_duration,
        )
    elif isinstance(op, planner.AttachPolicy):
        client.attach_policy_to_role(
            role_name=op.role_name, policy_type=op.policy_type, policy_name=op.policy_name
        )
    elif isinstance(op, planner.DetachPolicy):
        client.detach_policy_from_role(
            role_name=op.role_name, policy_type=op.policy_type, policy_name=op.policy_name
        )
    elif isinstance(op, planner.DeleteRole):
        client.delete_role(op.role_name)
    else:  # pragma: no cover - the planner has no other operations
        raise TypeError(f"Unknown operation {op!r}")


def _answer(op: planner.Operation, error: CloudError) -> str | None:
    """How to read a definite "exists / does not exist" answer (the role carries the portal's
    marker: the planner refuses any other). "done": the effect is already there (our earlier
    request succeeded but its response was lost); "replan": the role changed under us."""
    code = error.code or ""
    if isinstance(op, planner.AttachPolicy):
        if code == "EntityAlreadyExists.Role.Policy":
            return "done"
        if code == "EntityNotExist.Role":
            return "replan"
        return None
    if isinstance(op, planner.DetachPolicy):
        if code == "EntityNotExist.Role.Policy":
            return "done"
        if code == "EntityNotExist.Role":
            return "replan"
        return None
    if isinstance(op, planner.DeleteRole):
        if code == "EntityNotExist.Role":
            return "done"
        if error.is_delete_conflict:
            return "replan"  # a policy was attached meanwhile: detach it first
        return None
    if isinstance(op, planner.CreateRole) and error.is_already_exists:
        # Ours (lost response) or someone else's: the next read and the planner tell which.
        return "replan"
    if isinstance(op, planner.UpdateRole) and code == "EntityNotExist.Role":
        return "replan"
    return None


# --- transitions -----------------------------------------------------------------------------


def _mark_failed_with(info: FailureInfo) -> Callable[..., Delegation]:
    def mark(*, delegation: Delegation) -> Delegation:
        return delegation_mark_failed(
            delegation=delegation,
            error_code=info.code,
            error_message=info.message,
            request_id=info.request_id,
        )

    return mark


Move = tuple[Delegation, Callable[..., Delegation], str]


def _transition_all(moves: list[Move], *, recorder: _Recorder | None = None) -> list[Delegation]:
    """Apply worker transitions (each through its lifecycle service, one audit event each) in
    one transaction, skipping delegations that are no longer where the round saw them (an
    owner revoked one meanwhile: the next round handles it).

    Lock order: every delegation row first (by primary key), then the audit chain head (the
    services' and the recorder's audit events). The lifecycle services lock one delegation,
    then the chain head, then the role row; taking all delegation rows up front means this
    transaction never waits for a delegation while holding the chain head, so it cannot
    deadlock with an owner's approval or revocation."""
    if not moves and (recorder is None or not recorder._unwritten):
        return []
    moved: list[Delegation] = []
    with transaction.atomic():
        ids = sorted({delegation.pk for delegation, _, _ in moves})
        current = dict(
            Delegation.objects.select_for_update()
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", "status")
        )
        if recorder is not None:
            recorder.flush()
        for delegation, service, expect in moves:
            if current.get(delegation.pk) != expect:
                continue
            try:
                with transaction.atomic():
                    result = service(delegation=delegation)
            except DelegationConflict:
                continue
            current[delegation.pk] = result.status
            if result.changed:
                moved.append(delegation)
    return moved


# --- one run ---------------------------------------------------------------------------------


@dataclass
class _Round:
    applying: list[Delegation]
    leaving: list[Delegation]
    verified: planner.ActualRole | None = None


class _Reconciler:
    def __init__(self, managed_role_id: Any, *, lease: RoleLease, force: bool) -> None:
        self.managed_role_id = managed_role_id
        self.lease = lease
        self.force = force
        self.report = ReconcileReport(
            managed_role_id=str(managed_role_id), outcome=ReconcileOutcome.CONVERGED
        )
        self._client: CloudClient | None = None
        self._side_client: CloudClient | None = None
        self.recorder: _Recorder | None = None
        # What the last round saw, saved on the role row when the lease is released.
        self._seen: dict[str, Any] = {}

    # -- helpers --------------------------------------------------------------------------
    def _load_role(self) -> ManagedRole:
        return ManagedRole.objects.select_related(
            "cloud_account", "cloud_account__organisation"
        ).get(pk=self.managed_role_id)

    def _client_for(self, managed_role: ManagedRole) -> CloudClient:
        if self._client is None:
            self._client = make_cloud_client(managed_role)
        return self._client

    def _read(
        self, managed_role: ManagedRole, recorder: _Recorder, *, expect_exists: bool
    ) -> planner.ActualRole | None:
        """Read the role (with in-place retries); both reads side by side when it should
        exist."""
        client = self._client_for(managed_role)
        if expect_exists and self._side_client is None:
            self._side_client = make_cloud_client(managed_role)
        side = self._side_client if expect_exists else None
        return self._with_retries(
            lambda: read_role(client, managed_role.role_name, recorder, side_client=side)
        )

    def _has_work(self, managed_role: ManagedRole) -> bool:
        if self.force or managed_role.desired_version != managed_role.applied_version:
            return True
        if Delegation.objects.filter(
            managed_role=managed_role,
            status__in=(Status.APPROVED, Status.APPLYING, Status.REVOKING),
        ).exists():
            return True
        return CloudCall.objects.filter(
            managed_role=managed_role, outcome=CloudCall.Outcome.PENDING
        ).exists()

    @staticmethod
    def _outbox_watermark_for(managed_role_id: Any) -> int:
        return (
            OutboxMessage.objects.filter(
                kind=OutboxMessage.Kind.RECONCILE_ROLE, object_id=str(managed_role_id)
            ).aggregate(top=Max("id"))["top"]
            or 0
        )

    def _mark_outbox_done(self, managed_role: ManagedRole, watermark: int) -> None:
        if watermark:
            OutboxMessage.objects.filter(
                kind=OutboxMessage.Kind.RECONCILE_ROLE,
                object_id=str(managed_role.pk),
                id__lte=watermark,
                done_at__isnull=True,
            ).update(done_at=timezone.now())

    def _settle(self, managed_role: ManagedRole, *, version: int, watermark: int) -> bool:
        """Mark the messages this round covered as done and release the lease, unless the
        desired state moved on meanwhile (one transaction: outbox rows, then the role row)."""
        with transaction.atomic():
            self._mark_outbox_done(managed_role, watermark)
            seen, self._seen = self._seen, {}
            return self.lease.release_if_converged(version=version, **seen)

    def flush_quietly(self) -> None:
        """Write the answers of a round that ends in an error (best effort)."""
        if self.recorder is None:
            return
        try:
            self.recorder.flush()
        except Exception:  # the error being handled matters more than these rows
            logger.exception("Could not record the cloud answers of an interrupted round.")

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> ReconcileReport:
        max_rounds = int(_setting("PORTAL_RECONCILE_MAX_ROUNDS", 20))
        cleanup_pending = False
        for _ in range(max_rounds):
            # The watermark first: every message up to it was committed with its version bump
            # before we read the version, so this round covers it.
            watermark = self._outbox_watermark_for(self.managed_role_id)
            managed_role = self._load_role()
            version = managed_role.desired_version
            if not cleanup_pending and not self._has_work(managed_role):
                if self._settle(managed_role, version=version, watermark=watermark):
                    if self.report.rounds == 0:
                        self.report.outcome = ReconcileOutcome.NOTHING_TO_DO
                    return self.report
                continue
            self.force = False
            self.report.rounds += 1
            try:
                self._round(managed_role)
            except _PermanentFailure as failure:
                self.flush_quietly()
                cleanup_pending = self._fail_pending(managed_role, failure.info)
                self.report.outcome = ReconcileOutcome.FAILED
                self.report.error_code = failure.info.code
                if cleanup_pending:
                    continue
                # Nothing left to clean up: the failure is recorded; do not hammer it.
                self._mark_outbox_done(managed_role, watermark)
                self.lease.release(applied_version=version)
                return self.report
            cleanup_pending = False
            if self._settle(managed_role, version=version, watermark=watermark):
                return self.report
        # The desired state kept moving for many rounds: hand over to a later run.
        self.lease.release()
        return self.report

    def _round(self, managed_role: ManagedRole) -> None:
        _close_dangling_intents(managed_role=managed_role, lease=self.lease)
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
        self.recorder = recorder = _Recorder(
            managed_role=managed_role,
            lease=self.lease,
            delegation_ids=[d.pk for d in applying + leaving],
        )
        # Every principal we are about to manage is remembered *before* any call (with the
        # first intent), so a crash after the call still knows it is ours to remove later.
        known = set(managed_role.known_principals or ())
        if not wanted <= known:
            managed_role.known_principals = sorted(known | wanted)
            recorder.role_changes["known_principals"] = managed_role.known_principals
            self._seen["known_principals"] = managed_role.known_principals
            desired, wanted = desired_role_for(managed_role, delegations)

        client = self._client_for(managed_role)
        try:
            actual = self._converge(managed_role, client, recorder, desired)
        finally:
            self.report.mutating_calls += recorder.mutations_sent
        self._finish(managed_role, recorder, _Round(applying, leaving, verified=actual))

    def _converge(
        self,
        managed_role: ManagedRole,
        client: CloudClient,
        recorder: _Recorder,
        desired: planner.DesiredRole,
    ) -> planner.ActualRole | None:
        """Read, plan, act, verify; again while the cloud keeps surprising us (bounded)."""
        max_replans = int(_setting("PORTAL_RECONCILE_MAX_REPLANS", 4))
        actual = self._read(
            managed_role, recorder, expect_exists=bool(managed_role.last_seen_exists)
        )
        for _ in range(max_replans):
            plan = planner.plan_role_reconciliation(actual=actual, desired=desired)
            if isinstance(plan, planner.Refusal):
                raise _PermanentFailure(FailureInfo(code=plan.code, message=plan.reason))
            if plan.is_empty:
                return actual
            try:
                before = actual
                for op in plan.operations:
                    self._mutate(client, recorder, op, before)
                expected = planner.expected_state_after(actual, plan)
            except _Replan:
                actual = self._read(managed_role, recorder, expect_exists=actual is not None)
                continue
            verified = self._verify(managed_role, recorder, expected)
            if verified is not None:
                return verified
            # Not what we wrote after waiting out any stale window: someone else changed the
            # role meanwhile. Plan again from what is there now.
            actual = self._read(managed_role, recorder, expect_exists=expected is not None)
        raise TransientCloudFailure(
            CloudError(
                code="ReconcileDidNotSettle",
                message=(
                    f"The role {managed_role.role_name} kept changing while the portal "
                    "updated it; it will try again."
                ),
                action="Reconcile",
                category=None,
                transport=True,
            )
        )

    def _with_retries(self, call: Callable[[], Any]) -> Any:
        """Retry a transient error in place while the wait is short; otherwise hand it to the
        task's retry (which releases the role to other work meanwhile)."""
        attempts = int(_setting("PORTAL_RECONCILE_INLINE_ATTEMPTS", 4))
        max_wait = _setting("PORTAL_RECONCILE_INLINE_MAX_WAIT_SECONDS", 3.0)
        for attempt in range(attempts):
            try:
                return call()
            except CloudError as error:
                if error.permanent:
                    raise
                wait = backoff_seconds(attempt, retry_after_ms=error.retry_after_ms)
                if attempt + 1 >= attempts or wait > max_wait:
                    raise TransientCloudFailure(error) from None
                logger.info("Transient %s; retrying in %.2f s", error.code or error.category, wait)
                time.sleep(wait)
                self.lease.renew()
        raise AssertionError("unreachable")  # pragma: no cover

    def _mutate(
        self,
        client: CloudClient,
        recorder: _Recorder,
        op: planner.Operation,
        before: planner.ActualRole | None,
    ) -> None:
        summary = _summary(op, before)
        target = _target(op)

        def attempt() -> None:
            call = recorder.intent(op.action, target, summary)
            try:
                _send(client, op)
            except CloudError as error:
                answer = _answer(op, error) if error.permanent else None
                recorder.finish(
                    call,
                    error=error,
                    note=f"already {'done' if answer == 'done' else 'changed'}" if answer else "",
                )
                if answer == "done":
                    return
                if answer == "replan":
                    raise _Replan() from None
                raise
            recorder.finish(call, request_id=client.last_request_id or "")

        try:
            self._with_retries(attempt)
        except CloudError as error:
            raise _PermanentFailure(FailureInfo.from_error(error)) from None

    def _verify(
        self,
        managed_role: ManagedRole,
        recorder: _Recorder,
        expected: planner.ActualRole | None,
    ) -> planner.ActualRole | None:
        """Re-read until the cloud shows `expected`, within a bounded time. Returns what was
        read, or None when it never matched."""
        timeout = _setting("PORTAL_RECONCILE_VERIFY_TIMEOUT_SECONDS", 20.0)
        deadline = time.monotonic() + timeout
        delay = _setting("PORTAL_RECONCILE_VERIFY_FIRST_DELAY_SECONDS", 0.05)
        while True:
            current = self._read(managed_role, recorder, expect_exists=expected is not None)
            if roles_match(current, expected):
                return current
            if time.monotonic() + delay > deadline:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            self.lease.renew()

    def _finish(self, managed_role: ManagedRole, recorder: _Recorder, round_: _Round) -> None:
        """Move the delegations the verified state settles (with the round's cloud answers, in
        one transaction), and keep what the cloud showed for the lease release."""
        actual = round_.verified
        present = trusted_principals(actual)
        moves: list[Move] = []
        if actual is not None:
            moves += [
                (d, delegation_mark_active, Status.APPLYING)
                for d in round_.applying
                if d.principal_arn in present
            ]
        moves += [
            (d, delegation_mark_revoked, d.status)
            for d in round_.leaving
            if d.principal_arn not in present
        ]
        moved = {d.pk for d in _transition_all(moves, recorder=recorder)}
        self.report.activated += [str(d.pk) for d in round_.applying if d.pk in moved]
        self.report.ended += [str(d.pk) for d in round_.leaving if d.pk in moved]
        self._seen.update(
            last_seen_at=timezone.now(),
            last_seen_exists=actual is not None,
            last_seen_trust_policy=(
                policies.canonical_policy(actual.trust_document, trust=True) if actual else None
            ),
            last_seen_policies=(
                [{"type": t, "name": n} for t, n in sorted(actual.attached_policies)]
                if actual
                else []
            ),
            last_seen_description=(actual.description or "")[:1024] if actual else "",
            created_by_portal=actual is not None and actual.created_by_portal,
        )
        # Principals someone added outside the portal stay; the owner hears of them once.
        from delegations.worker.periodic import record_unmanaged_principals

        record_unmanaged_principals(managed_role, actual)

    def _fail_pending(self, managed_role: ManagedRole, info: FailureInfo) -> bool:
        """Fail every delegation this run was working on, visibly. Returns whether a cleanup
        round is needed (a delegation that failed while applying may have left its principal
        in the trust policy, and a failed delegation is not wanted there)."""
        pending = list(
            Delegation.objects.filter(
                managed_role=managed_role,
                status__in=(Status.APPROVED, Status.APPLYING, Status.REVOKING),
            )
        )
        mark = _mark_failed_with(info)
        failed = _transition_all([(d, mark, d.status) for d in pending])
        self.report.failed += [str(d.pk) for d in failed]
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


# --- public entry points ---------------------------------------------------------------------


def managed_role_reconcile(*, managed_role_id: Any, force: bool = False) -> ReconcileReport:
    """Bring one RAM role in line with every delegation on it (see the module docstring).

    `force` runs a round even when nothing is pending (a repair asked by the owner).
    Raises `TransientCloudFailure` when the cloud keeps failing transiently: the caller
    retries later; the lease is released first so other work on the role is not blocked.
    """
    lease = RoleLease(managed_role_id)
    if not lease.claim():
        return ReconcileReport(managed_role_id=str(managed_role_id), outcome=ReconcileOutcome.BUSY)
    reconciler = _Reconciler(managed_role_id, lease=lease, force=force)
    try:
        return reconciler.run()
    except LeaseLost:
        logger.warning("Lease on managed role %s lost mid-run; the new holder goes on.", lease)
        reconciler.report.outcome = ReconcileOutcome.LEASE_LOST
        return reconciler.report
    except Exception:
        # Transient failures, database errors, bugs: record what the cloud answered, free the
        # role for the retry (or the sweeper). Whoever comes next re-reads the cloud.
        reconciler.flush_quietly()
        lease.release()
        raise
    except BaseException:
        # The process is going away (a kill, an interrupt): do as little as possible.
        lease.release()
        raise


def managed_role_record_failure(*, managed_role_id: Any, error: CloudError) -> list[str]:
    """The task's retries are exhausted: fail the pending delegations with the last error,
    so the owner sees it and can retry; the role is not retried again on its own."""
    managed_role = ManagedRole.objects.select_related("cloud_account__organisation").get(
        pk=managed_role_id
    )
    info = FailureInfo(
        code=error.code or error.category.value,
        message=f"{error.message} (gave up after repeated retries)",
        request_id=error.request_id or "",
    )
    pending = list(
        Delegation.objects.filter(
            managed_role=managed_role,
            status__in=(Status.APPROVED, Status.APPLYING, Status.REVOKING),
        )
    )
    mark = _mark_failed_with(info)
    failed = [str(d.pk) for d in _transition_all([(d, mark, d.status) for d in pending])]
    version = managed_role.desired_version
    ManagedRole.objects.filter(pk=managed_role.pk, desired_version=version, locked_by="").update(
        applied_version=version
    )
    OutboxMessage.objects.filter(
        kind=OutboxMessage.Kind.RECONCILE_ROLE,
        object_id=str(managed_role.pk),
        done_at__isnull=True,
        created_at__lte=timezone.now(),
    ).update(done_at=timezone.now(), last_error=f"gave up: {info.code}"[:255])
    return failed


def managed_role_request_reconcile(*, managed_role: ManagedRole) -> OutboxMessage:
    """Ask for a reconcile of `managed_role` (repairs, sweeps): through the outbox, so the
    request survives a broker outage."""
    with transaction.atomic():
        return outbox_enqueue_reconcile(managed_role=managed_role)
