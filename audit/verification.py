"""Verifying the chain in the background: starting a run, running it, and noticing lost ones.

Walking a million events takes minutes, far beyond a web request, so the Verify page only
records an `AuditVerification` (and its audit event) and a Celery worker walks the chain with
the one verifier (`audit.verify.verify_chain_steps`), writing progress every
`PROGRESS_EVERY` events. Starting a run is single-flight: there is one chain for every
tenant, so while a run is queued or running, asking again shows that run.

Lost runs. A worker may die mid-walk, or a published task may never arrive. A run whose
heartbeat (set when queued, when claimed and at every progress write) is older than
`STALE_AFTER` is shown as stale, and the next start marks it failed and starts a new one. A
task delivered again (`acks_late`: the worker died) claims its run afresh with a new token
and walks from the start; the lost worker's writes carry the old token and change nothing,
so two workers never both report. After `MAX_ATTEMPTS` claims the run fails for good.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import TYPE_CHECKING, Any

from celery import current_app
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_noop

from audit.actions import AuditAction
from audit.checkpoints import (
    Checkpoint,
    InvalidCheckpoint,
    checkpoint_directory,
    checkpoint_key,
    checkpoints_load,
)
from audit.models import AuditVerification
from audit.services import AuditError, actor_display, audit_record
from audit.verify import DEFAULT_BATCH_SIZE, VerificationResult, verify_chain_steps
from core.i18n import stored_message, stored_text

if TYPE_CHECKING:
    from accounts.models import Organisation, User

logger = logging.getLogger(__name__)

# What a run that could not finish says (AuditVerification.detail): stored in English, read in
# the reader's language (core.i18n.read_stored).
STARTED_ANOTHER_TEXT = stored_message(gettext_noop("A new verification was started."))
PRESS_VERIFY_TEXT = stored_message(gettext_noop("Press Verify now to start another."))
NO_PROGRESS_TEXT = stored_message(
    gettext_noop(
        "No progress for %(minutes)d minutes: the worker running it was lost, or the task never "
        "reached one. %(then)s"
    )
)
GAVE_UP_TEXT = stored_message(
    gettext_noop("Gave up after %(attempts)d attempts: the worker was lost each time.")
)
COULD_NOT_FINISH_TEXT = stored_message(
    gettext_noop("The verification could not finish (%(error)s); see the logs.")
)

# One progress write per this many events: about one a second at the verifier's speed
# (~11,000 events/s), so the page moves and the heartbeat stays far younger than STALE_AFTER.
PROGRESS_EVERY = 10_000
# No heartbeat for this long: the worker is gone (or the task never arrived). Hundreds of
# times the interval between two progress writes, so a slow database does not trip it.
STALE_AFTER = dt.timedelta(minutes=10)
# Claims of one run (first delivery plus redeliveries after a lost worker) before giving up,
# so a run that kills its worker (out of memory, say) does not loop forever.
MAX_ATTEMPTS = 3
# The Celery task that walks the chain (`audit.tasks.audit_verify_chain`). Published by name
# because the tasks module imports this one to run the walk.
VERIFY_CHAIN_TASK = "audit.verify_chain"

Status = AuditVerification.Status


class VerificationOutcome:
    """What one task run did, for the task's return value and the logs."""

    INTACT = "intact"
    BROKEN = "broken"
    FAILED = "failed"
    NOT_CLAIMED = "not_claimed"  # finished, failed or gone already: nothing to do
    SUPERSEDED = "superseded"  # another claim (or a stale mark) took the run over midway


def stale_before(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) - STALE_AFTER


def is_stale(verification: AuditVerification, *, now: dt.datetime | None = None) -> bool:
    """In flight on paper, but nothing has moved for STALE_AFTER."""
    return verification.in_flight and verification.heartbeat_at < stale_before(now)


def _in_flight() -> AuditVerification | None:
    return AuditVerification.objects.filter(status__in=AuditVerification.IN_FLIGHT).first()


def _finished_event(verification: AuditVerification) -> None:
    """The result is an audit event too, in the transaction that stores it."""
    audit_record(
        action=AuditAction.AUDIT_VERIFICATION_FINISHED,
        organisation=verification.organisation,
        target=verification,
        target_label="Verification of the audit chain",
        outcome="success" if verification.status == Status.INTACT else "failure",
        metadata={
            "status": verification.status,
            "events_checked": verification.events_checked,
            "events_total": verification.events_total,
            "head_sequence": verification.head_sequence,
            "first_bad_sequence": verification.first_bad_sequence,
            "problem": verification.problem,
            "detail": verification.detail,
            "attempts": verification.attempts,
        },
    )


def _mark_stale(
    verification: AuditVerification,
    *,
    now: dt.datetime,
    then: str = STARTED_ANOTHER_TEXT,
) -> bool:
    """Fail a run whose heartbeat stopped; False if it moved meanwhile."""
    minutes = int(STALE_AFTER.total_seconds() // 60)
    marked = AuditVerification.objects.filter(
        pk=verification.pk,
        status__in=AuditVerification.IN_FLIGHT,
        heartbeat_at__lt=stale_before(now),
    ).update(
        status=Status.FAILED,
        finished_at=now,
        detail=stored_text(NO_PROGRESS_TEXT, minutes=minutes, then=then),
    )
    if marked:
        verification.refresh_from_db()
        _finished_event(verification)
    return bool(marked)


def audit_verification_sweep_stale(*, now: dt.datetime | None = None) -> bool:
    """Celery beat: fail the run in flight if its heartbeat stopped, so the Verify page stops
    showing it as running even when nobody presses Verify now. True if one was failed."""
    now = now or timezone.now()
    with transaction.atomic():
        current = _in_flight()
        if current is None or not is_stale(current, now=now):
            return False
        return _mark_stale(current, now=now, then=PRESS_VERIFY_TEXT)


def audit_verification_start(
    *, user: User, organisation: Organisation
) -> tuple[AuditVerification, bool]:
    """Ask a worker to verify the chain. Returns (the run, True) when this call started it,
    or (the run already queued or running, False): one run at a time for the whole chain.

    A stale run (see `is_stale`) is marked failed and replaced. The start is audited in the
    same transaction, and the task is published after the commit.
    """
    now = timezone.now()
    with transaction.atomic():
        current = _in_flight()
        # A live run is shown instead; a stale one is failed here (unless it moved meanwhile).
        replaced = current is not None and is_stale(current, now=now)
        if current is not None and not (replaced and _mark_stale(current, now=now)):
            return current, False
        try:
            # A savepoint, so a concurrent start's row (the constraint) leaves this
            # transaction usable to read it.
            with transaction.atomic():
                verification = AuditVerification.objects.create(
                    requested_by=user,
                    requested_by_label=actor_display(user),
                    organisation=organisation,
                    heartbeat_at=now,
                )
        except IntegrityError:
            current = _in_flight()
            if current is None:
                raise
            return current, False
        audit_record(
            action=AuditAction.AUDIT_VERIFICATION_STARTED,
            actor=user,
            organisation=organisation,
            target=verification,
            target_label="Verification of the audit chain",
        )
        verification_id = str(verification.pk)
        transaction.on_commit(lambda: verification_publish(verification_id=verification_id))
    return verification, True


def verification_publish(*, verification_id: str) -> bool:
    """Hand the run to the broker. Never raises: it runs after the commit, and a run that is
    never delivered turns stale and can be started again."""
    try:
        # A signature by name resolves to the registered task when it is loaded (so eager
        # mode and the task's options still apply) and sends by name otherwise.
        current_app.signature(VERIFY_CHAIN_TASK, args=[verification_id]).apply_async(retry=False)
    except Exception:
        logger.warning("Audit verification %s not published to the broker.", verification_id)
        return False
    return True


def _claim(verification_id: str, token: str, *, now: dt.datetime) -> bool:
    """Take the run: queued, or running under an earlier token (a redelivery after a lost
    worker, which starts the walk again)."""
    return bool(
        AuditVerification.objects.filter(
            pk=verification_id,
            status__in=AuditVerification.IN_FLIGHT,
            attempts__lt=MAX_ATTEMPTS,
        ).update(
            status=Status.RUNNING,
            run_token=token,
            attempts=F("attempts") + 1,
            started_at=now,
            heartbeat_at=now,
            events_checked=0,
        )
    )


def _mine(verification_id: str, token: str) -> Any:
    return AuditVerification.objects.filter(
        pk=verification_id, run_token=token, status=Status.RUNNING
    )


def _conclude(verification_id: str, token: str, **fields: Any) -> bool:
    """Store the outcome and its audit event, if the run is still this worker's.

    If the log refuses the event (a forged row sits where the next event goes, so every
    append fails), the outcome is stored anyway, marked as not audited: it is the evidence
    of that very tampering, and hiding it from the auditor would help the attacker."""
    now = timezone.now()
    try:
        with transaction.atomic():
            done = _mine(verification_id, token).update(
                finished_at=now, result_audited=True, **fields
            )
            if not done:
                return False
            _finished_event(AuditVerification.objects.get(pk=verification_id))
        return True
    except (DatabaseError, AuditError):
        logger.exception("Audit verification %s: the result event was refused.", verification_id)
    with transaction.atomic():
        return bool(
            _mine(verification_id, token).update(finished_at=now, result_audited=False, **fields)
        )


def _give_up_if_exhausted(verification_id: str) -> None:
    """A run claimed MAX_ATTEMPTS times that is still in flight: every worker died on it."""
    with transaction.atomic():
        given_up = AuditVerification.objects.filter(
            pk=verification_id,
            status__in=AuditVerification.IN_FLIGHT,
            attempts__gte=MAX_ATTEMPTS,
        ).update(
            status=Status.FAILED,
            finished_at=timezone.now(),
            detail=stored_text(GAVE_UP_TEXT, attempts=MAX_ATTEMPTS),
        )
        if given_up:
            _finished_event(AuditVerification.objects.get(pk=verification_id))


def _load_checkpoints() -> tuple[list[Checkpoint], list[InvalidCheckpoint]]:
    """The signed checkpoints the run checks against; none when they are not configured."""
    key = checkpoint_key()  # ImproperlyConfigured for a key too short: the run fails saying so
    if key is None:
        return [], []
    try:
        return checkpoints_load(directory=checkpoint_directory(), key=key)
    except FileNotFoundError:
        return [], []


def _result_fields(result: VerificationResult) -> dict[str, Any]:
    return {
        "status": Status.INTACT if result.ok else Status.BROKEN,
        "events_checked": result.count,
        "head_sequence": result.head_sequence,
        "head_hash": result.head_hash,
        "checkpoints_checked": result.checkpoints_checked,
        "first_bad_sequence": result.first_bad_sequence,
        "problem": result.problem or "",
        "detail": result.detail,
    }


def audit_verification_run(
    *,
    verification_id: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress_every: int | None = None,
) -> str:
    """The worker's side: claim the run, walk the chain writing progress, store the verdict
    (intact, or broken at the first bad sequence) or the failure. Returns a
    `VerificationOutcome`."""
    token = uuid.uuid4().hex
    if not _claim(verification_id, token, now=timezone.now()):
        _give_up_if_exhausted(verification_id)
        return VerificationOutcome.NOT_CLAIMED
    every = PROGRESS_EVERY if progress_every is None else progress_every
    try:
        checkpoints, invalid = _load_checkpoints()
        for step in verify_chain_steps(
            batch_size=batch_size,
            checkpoints=checkpoints,
            invalid_checkpoints=invalid,
            progress_every=every,
        ):
            if step.result is not None:
                if not _conclude(verification_id, token, **_result_fields(step.result)):
                    return VerificationOutcome.SUPERSEDED
                return VerificationOutcome.INTACT if step.result.ok else VerificationOutcome.BROKEN
            moved = _mine(verification_id, token).update(
                events_checked=step.checked,
                events_total=step.total,
                heartbeat_at=timezone.now(),
            )
            if not moved:
                logger.info("Audit verification %s was taken over; stopping.", verification_id)
                return VerificationOutcome.SUPERSEDED
        raise RuntimeError("The verification walk ended without a result.")
    except ImproperlyConfigured as error:
        reason = str(error)
    except Exception as error:  # the database, a time limit: the run must not stay "running"
        logger.exception("Audit verification %s failed.", verification_id)
        reason = stored_text(COULD_NOT_FINISH_TEXT, error=type(error).__name__)
    try:
        _conclude(verification_id, token, status=Status.FAILED, detail=reason)
    except Exception:
        # Not even the failure could be stored with its audit event (the log refuses
        # appends: a forged row where the next event goes). Fail-closed: no unaudited
        # verdict; the run turns stale and the page says it stopped.
        logger.exception(
            "Audit verification %s: the failure could not be recorded.", verification_id
        )
    return VerificationOutcome.FAILED
