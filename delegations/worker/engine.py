"""The reconcile engine: what the worker does the same way for every desired state it keeps.

The worker keeps two kinds of desired state in line with the cloud: an owner's RAM role (trust
policy and attached policies, `delegations.worker.owner_role`) and a partner RAM user's
`portal-assume-<user>` policy (`delegations.worker.partner_policy`). Both are *subjects* of
this engine, which owns the mechanism:

* the lease (`delegations.worker.lease`): a conditional UPDATE on the subject's row,
  renewed before every mutating call and from a heartbeat, released only when the desired
  version did not move during the run, so no database transaction stays open during a cloud
  call and a change made meanwhile is never lost;
* the recorder (`delegations.worker.recorder`): one `CloudCall` row and audit events per
  cloud request, the intent of a mutating call committed (with a lease renewal) before the
  request is sent;
* in-place retries of transient errors with backoff (`with_retries`), then
  `TransientCloudFailure` for the task to retry later, never sooner than `retry_after_ms`;
* read → plan → mutate → verify, and again when the cloud surprised us (`converge`): a
  definite "already exists / does not exist" answer means "done" (a lost response) or "read
  and plan again" (`Replan`); RAM reads may lag a write, so verification polls;
* the rounds of one run (`Reconciler.run`): the outbox messages a round covered are marked
  done with the lease release, a permanent failure is recorded by the subject; a transient
  one on the task's last try gives up (`Reconciler.give_up`) in that same run, so the subject
  records it knowing what the run learnt of the cloud, like a permanent failure, but leaves its
  version unapplied for the periodic passes to ask for again.

A subject says only what differs: how to read its actual state and plan the calls
(`Subject`), what a round does with the verified state, and how a failure shows.
"""

from __future__ import annotations

import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext_noop

from cloud.client import CloudClient
from cloud.errors import CloudError
from core.i18n import stored_message, stored_text
from delegations.outbox import outbox_enqueue, outbox_mark_done, outbox_watermark
from delegations.worker.lease import Heartbeat, Lease, LeaseLost, setting
from delegations.worker.recorder import Recorder

logger = logging.getLogger(__name__)

# The portal's own words around a cloud error, stored as a delegation's last error (in
# English) and read in the reader's language; the cloud's message inside stays as it wrote it.
GAVE_UP_TEXT = stored_message(gettext_noop("%(message)s (gave up after repeated retries)"))
DID_NOT_SETTLE_TEXT = stored_message(
    gettext_noop("%(subject)s kept changing while the portal updated it; it will try again.")
)

# How a definite error answer to a mutating call is read (see `CloudOp.answer`).
DONE = "done"  # the effect is already there: our earlier request succeeded, its answer was lost
REPLAN = "replan"  # the cloud changed under us: read and plan again


# --- outcomes and errors ---------------------------------------------------------------------


class ReconcileOutcome(StrEnum):
    CONVERGED = "converged"  # the cloud matches the ledger; transitions are done
    NOTHING_TO_DO = "nothing_to_do"  # no pending work on the subject
    BUSY = "busy"  # another worker holds the lease and will pick up any change
    FAILED = "failed"  # a permanent error, recorded for the people concerned
    LEASE_LOST = "lease_lost"  # our lease expired and another worker took over


@dataclass(kw_only=True)
class Report:
    """What one run did; each subject's report adds its own details."""

    outcome: ReconcileOutcome = ReconcileOutcome.CONVERGED
    rounds: int = 0
    mutating_calls: int = 0
    error_code: str = ""


class TransientCloudFailure(Exception):
    """A transient cloud error outlasted the retries made inside the run: retry the task
    later, not before `retry_after_ms`."""

    def __init__(self, error: CloudError) -> None:
        self.error = error
        self.retry_after_ms = error.retry_after_ms
        super().__init__(str(error))


@dataclass(frozen=True)
class FailureInfo:
    """What the people concerned see about a failure."""

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

    @classmethod
    def gave_up(cls, error: CloudError) -> FailureInfo:
        """The task's retries are exhausted on `error`."""
        info = cls.from_error(error)
        return cls(
            code=info.code,
            message=stored_text(GAVE_UP_TEXT, message=info.message),
            request_id=info.request_id,
        )


class PermanentFailure(Exception):
    """Nothing the worker can do will converge the subject: its pending work fails visibly."""

    def __init__(self, info: FailureInfo) -> None:
        self.info = info
        super().__init__(f"{info.code}: {info.message}")


class Replan(Exception):
    """The cloud answered in a way that means our read is out of date: read and plan again."""


# --- backoff and in-place retries ------------------------------------------------------------


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


def with_retries(call: Callable[[], Any], *, lease: Lease) -> Any:
    """Retry a transient error in place while the wait is short; otherwise hand it to the
    task's retry (which releases the subject to other work meanwhile). A permanent
    `CloudError` is raised as it is."""
    attempts = int(setting("PORTAL_RECONCILE_INLINE_ATTEMPTS", 4))
    max_wait = setting("PORTAL_RECONCILE_INLINE_MAX_WAIT_SECONDS", 3.0)
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
            lease.renew()
    raise AssertionError("unreachable")  # pragma: no cover


# --- one mutating call -----------------------------------------------------------------------


@dataclass(frozen=True)
class CloudOp:
    """One mutating call a subject's plan asks for."""

    action: str
    target: str
    summary: dict[str, Any]
    send: Callable[[CloudClient], Any]
    # How to read a definite (permanent) error: DONE, REPLAN, or None (a real failure).
    answer: Callable[[CloudError], str | None]
    # Told once the call took effect (answered, or DONE): what the subject knows of the cloud
    # then, should a later call of the plan fail for good.
    landed: Callable[[], None] | None = None
    # What the people concerned read when the cloud refused for good, when the subject can
    # say it better than the cloud's own message (None: the cloud's answer as it is).
    explain: Callable[[CloudError], FailureInfo | None] | None = None


def mutate(*, client: CloudClient, recorder: Recorder, op: CloudOp) -> None:
    """Send `op` with its intent committed first, retrying transient errors in place. Raises
    `Replan` when the answer says the read is out of date, `PermanentFailure` when the cloud
    refused for good."""

    def landed() -> None:
        if op.landed is not None:
            op.landed()

    def attempt() -> None:
        call = recorder.intent(op.action, op.target, op.summary)
        try:
            op.send(client)
        except CloudError as error:
            answer = op.answer(error) if error.permanent else None
            recorder.finish(
                call,
                error=error,
                note=f"already {'done' if answer == DONE else 'changed'}" if answer else "",
            )
            if answer == DONE:
                landed()
                return
            if answer == REPLAN:
                raise Replan() from None
            raise
        recorder.finish(call, request_id=client.last_request_id or "")
        landed()

    try:
        with_retries(attempt, lease=recorder.lease)
    except CloudError as error:
        explained = op.explain(error) if op.explain is not None else None
        raise PermanentFailure(explained or FailureInfo.from_error(error)) from None


# --- read, plan, act, verify -----------------------------------------------------------------


class _NotReadYet:
    def __repr__(self) -> str:
        return "NOT_READ_YET"


# What `Subject.read` is told before the run's first read of the subject.
NOT_READ_YET: Any = _NotReadYet()


@dataclass(frozen=True)
class Plan:
    """The calls that make the cloud match, and the state to verify afterwards (what
    `Subject.matches` compares a read with)."""

    ops: list[CloudOp]
    expected: Any


@dataclass(kw_only=True, eq=False)
class Subject(ABC):
    """One desired state the engine converges: how to read the cloud's side of it, plan the
    calls, and compare. `lease` and `recorder` are the run's; reads go through the recorder.
    Subclasses are dataclasses too: each adds what it converges (`desired`) and its client."""

    lease: Lease
    recorder: Recorder

    @abstractmethod
    def read(self, *, expected: Any) -> Any:
        """The actual state. `expected` is what the engine believes the cloud holds (the last
        read, or a plan's expected state; `NOT_READ_YET` at first): a hint for how to read.
        May raise `PermanentFailure`; a transient `CloudError` is retried in place."""

    @abstractmethod
    def plan(self, actual: Any) -> Plan:
        """The calls from `actual` to the desired state (none: converged). Raises
        `PermanentFailure` when the portal must not or cannot get there."""

    @abstractmethod
    def matches(self, current: Any, expected: Any) -> bool:
        """Whether a read shows a plan's expected state."""

    @abstractmethod
    def describe(self) -> str:
        """The subject in a sentence shown to people ("The role X", "The policy Y")."""

    def behind_own_write(self, actual: Any) -> bool:
        """Whether a read still shows the state before the portal's own last write (a lagging
        read): planning from it would undo that write or miss what changed since."""
        return False

    def wrote(self, *, seen: list[Any], written: Any) -> None:
        """A write succeeded. `seen` are the reads since the previous write (the one the plan
        came from and any re-read before it), `written` the state the write asked for: what
        the reads showed and the write did not keep is the subject's to report. By default
        there is nothing to report."""
        return None


def settle_seconds() -> float:
    """How long to wait after a read before trusting it enough to write (RAM reads may show
    a document from before someone's write for a few seconds)."""
    return float(setting("PORTAL_RAM_READ_SETTLE_SECONDS", 0.0))


def read_after_own_write(subject: Subject, read: Callable[[Any], Any], expected: Any) -> Any:
    """Read, and read again with backoff while the read still shows the state before the
    portal's last write (RAM offers no conditional update: a plan from such a read would write
    the old state back). The subject stops calling a read lagging once its write is older than
    RAM's lag could be, so this ends: a state that outlasts it is someone's real change."""
    actual = read(expected)
    delay = setting("PORTAL_RECONCILE_VERIFY_FIRST_DELAY_SECONDS", 0.05)
    while subject.behind_own_write(actual):
        logger.info("%s reads as before the portal's last write; reading again.", subject)
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
        subject.lease.renew()
        actual = read(expected)
    return actual


def wait_renewing(seconds: float, *, lease: Lease) -> None:
    """Sleep `seconds`, renewing the lease often enough that it never runs out meanwhile."""
    step = max(0.05, lease.duration.total_seconds() / 3)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(step, left))
        lease.renew()


def converge(subject: Subject, *, client: CloudClient) -> Any:
    """Read, plan, act, verify; again while the cloud keeps surprising us (bounded). Returns
    the verified state."""
    lease, recorder = subject.lease, subject.recorder

    def read(expected: Any) -> Any:
        return with_retries(lambda: subject.read(expected=expected), lease=lease)

    def fresh_read(expected: Any) -> Any:
        actual = read_after_own_write(subject, read, expected)
        seen.append(actual)
        return actual

    settle = settle_seconds()
    seen: list[Any] = []  # the reads since the last write, for `Subject.wrote`
    actual = fresh_read(NOT_READ_YET)
    settled = False
    for _ in range(int(setting("PORTAL_RECONCILE_MAX_REPLANS", 4))):
        plan = subject.plan(actual)
        if not plan.ops:
            return actual
        if settle > 0 and not settled:
            # The read may show the document from before someone's write of a moment ago: a
            # write planned from it would drop what they added or bring back what they
            # removed. Read again once any such lag has passed, and plan from that.
            wait_renewing(settle, lease=lease)
            actual = fresh_read(actual)
            settled = True
            plan = subject.plan(actual)
            if not plan.ops:
                return actual
        try:
            for op in plan.ops:
                mutate(client=client, recorder=recorder, op=op)
        except Replan:
            actual = fresh_read(actual)
            settled = False
            continue
        subject.wrote(seen=seen, written=plan.expected)
        seen = []
        verified = verify(subject, expected=plan.expected, read=read)
        if verified is not None:
            return verified
        # Not what we wrote after waiting out any stale window (or a state the engine cannot
        # tell from "never matched": the next plan finds nothing left to do): someone else
        # changed the subject meanwhile. Plan again from what is there now.
        actual = fresh_read(plan.expected)
        settled = False
    raise TransientCloudFailure(
        CloudError(
            code="ReconcileDidNotSettle",
            message=stored_text(DID_NOT_SETTLE_TEXT, subject=subject.describe()),
            action="Reconcile",
            category=None,
            transport=True,
        )
    )


def verify(subject: Subject, *, expected: Any, read: Callable[[Any], Any]) -> Any:
    """Re-read until the cloud shows `expected`, within a bounded time (RAM reads may lag a
    write: verification polls, it never trusts the write). Returns what was read, or None
    when it never matched."""
    deadline = time.monotonic() + setting("PORTAL_RECONCILE_VERIFY_TIMEOUT_SECONDS", 20.0)
    delay = setting("PORTAL_RECONCILE_VERIFY_FIRST_DELAY_SECONDS", 0.05)
    while True:
        current = read(expected)
        if subject.matches(current, expected):
            return current
        if time.monotonic() + delay > deadline:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
        subject.lease.renew()


# --- one run ---------------------------------------------------------------------------------


class Reconciler(ABC):
    """The rounds of one run on one subject, under its lease. A round reads, converges and
    settles; the lease is released (and the outbox messages the round covered are marked done,
    in the same transaction) only when the desired version did not move meanwhile, otherwise
    another round runs (a run that ends otherwise releases through `release`)."""

    kind: ClassVar[str]  # the subject's outbox message kind

    def __init__(self, object_id: Any, *, lease: Lease, report: Report) -> None:
        self.object_id = object_id
        self.lease = lease
        self.report = report
        self.recorder: Recorder | None = None
        # Saved on the subject's row when the lease is released (what the last round saw).
        self.seen: dict[str, Any] = {}

    @abstractmethod
    def load(self) -> int:
        """Load the subject for a round; returns its desired version."""

    def has_work(self) -> bool:
        """Whether a round is needed; without one the lease is simply released."""
        return True

    @abstractmethod
    def round(self) -> None:
        """Converge the subject once (raises `PermanentFailure` when it cannot)."""

    @abstractmethod
    def fail(self, info: FailureInfo) -> bool:
        """Record a permanent failure visibly. Returns whether a cleanup round is needed."""

    def failure_note(self, info: FailureInfo) -> str:
        """What the outbox rows of a failed run keep as their last error."""
        return ""

    def flush_quietly(self) -> None:
        """Write the answers of a round that ends in an error (best effort)."""
        if self.recorder is None:
            return
        try:
            self.recorder.flush()
        except Exception:  # the error being handled matters more than these rows
            logger.exception("Could not record the cloud answers of an interrupted round.")

    def release(self, *, applied_version: int | None = None) -> None:
        """Release without settling, and hand over the change left (desired version beyond
        the applied one), which a reconcile told "busy" meanwhile left to this holder. (A settle
        releases at the desired version; a worker that claimed the lease since has read it.)"""
        self.lease.release(applied_version=applied_version)
        self._hand_over(beyond=F("applied_version"))

    def _hand_over(self, *, beyond: Any) -> None:
        row = self.lease.model._default_manager.filter(pk=self.object_id, locked_by="")
        if row.filter(desired_version__gt=beyond).exists():
            with transaction.atomic():
                outbox_enqueue(kind=self.kind, object_id=self.object_id)

    def give_up(self, info: FailureInfo) -> Report:
        """On the task's last try, a run that failed transiently: the failure recorded (by
        `fail`, which sees what the run learnt of the cloud, as for a permanent failure) and
        the messages done, so no task retries it in a loop; but the version stays unapplied.
        The cloud never confirmed it, and an attempt of the chain may have written part of it
        before the cloud failed (a partner the failure leaves unwanted may be trusted): the
        periodic pass asks for it again, at its own pace, until a round converges on what the
        portal wants now."""
        logger.warning("Gave up on %s after the task's last retry (%s).", self.lease, info.code)
        watermark = outbox_watermark(kind=self.kind, object_id=self.object_id)
        version = self.load()
        self.fail(info)
        self.report.outcome, self.report.error_code = ReconcileOutcome.FAILED, info.code
        note = f"gave up: {info.code}"
        outbox_mark_done(kind=self.kind, object_id=self.object_id, watermark=watermark, note=note)
        left_at = version + self.lease.release_unapplied()
        # Only a change made meanwhile is handed over now; the version given up on waits.
        self._hand_over(beyond=left_at)
        return self.report

    def close_failed(self, *, version: int, watermark: int, note: str) -> None:
        """A recorded failure: not hammered, its version counts as handled."""
        outbox_mark_done(kind=self.kind, object_id=self.object_id, watermark=watermark, note=note)
        self.release(applied_version=version)

    def settle(self, *, version: int, watermark: int) -> bool:
        """Mark the messages this round covered as done and release the lease, unless the
        desired state moved on meanwhile (one transaction: outbox rows, then the subject's
        row)."""
        with transaction.atomic():
            outbox_mark_done(kind=self.kind, object_id=self.object_id, watermark=watermark)
            seen, self.seen = self.seen, {}
            return self.lease.release_if_converged(version=version, **seen)

    def run(self) -> Report:
        max_rounds = int(setting("PORTAL_RECONCILE_MAX_ROUNDS", 20))
        cleanup_pending = False
        for _ in range(max_rounds):
            # The watermark first: every message up to it was committed with its version bump
            # before we read the version, so this round covers it.
            watermark = outbox_watermark(kind=self.kind, object_id=self.object_id)
            version = self.load()
            if not cleanup_pending and not self.has_work():
                if self.settle(version=version, watermark=watermark):
                    if self.report.rounds == 0:
                        self.report.outcome = ReconcileOutcome.NOTHING_TO_DO
                    return self.report
                continue
            self.report.rounds += 1
            try:
                self.round()
            except PermanentFailure as failure:
                self.flush_quietly()
                cleanup_pending = self.fail(failure.info)
                self.report.outcome = ReconcileOutcome.FAILED
                self.report.error_code = failure.info.code
                if cleanup_pending:
                    continue
                # Nothing left to clean up: the failure is recorded; do not hammer it.
                note = self.failure_note(failure.info)
                self.close_failed(version=version, watermark=watermark, note=note)
                return self.report
            cleanup_pending = False
            if self.settle(version=version, watermark=watermark):
                return self.report
        # The desired state kept moving for many rounds: hand over to a later run.
        self.release()
        return self.report


def reconcile_under_lease(reconciler: Reconciler, *, last_try: bool = False) -> Report:
    """Claim the subject's lease and run. A subject already held is left to its holder, which
    picks up any change before it releases; on the task's last try too: the holder is another
    delivery of the same work, mid-run, and its write may stand while the ledger says
    "failed". Raises `TransientCloudFailure` when the cloud keeps failing transiently: the
    lease is released first (other work goes on); on the `last_try` the run gives up instead,
    still under its lease."""
    lease = reconciler.lease
    if not lease.claim():
        reconciler.report.outcome = ReconcileOutcome.BUSY
        return reconciler.report
    try:
        with Heartbeat(lease):
            try:
                return reconciler.run()
            except TransientCloudFailure as failure:
                if not last_try:
                    raise
                reconciler.flush_quietly()
                return reconciler.give_up(FailureInfo.gave_up(failure.error))
    except LeaseLost:
        logger.warning("Lease on %s lost mid-run; the new holder goes on.", lease)
        reconciler.report.outcome = ReconcileOutcome.LEASE_LOST
        return reconciler.report
    except Exception:
        # Transient failures, database errors, bugs: record the cloud's answers, free the subject
        # for the task's retry (no hand-over: that would skip its backoff) or the sweeper.
        reconciler.flush_quietly()
        lease.release()
        raise
    except BaseException:
        # The process is going away (a kill, an interrupt): do as little as possible.
        lease.release()
        raise
