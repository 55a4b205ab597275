"""Celery tasks of the delegation worker: thin wrappers that take ids and call one service.

Every task is idempotent (acks_late is on: a task may run twice, even concurrently), carries
ids only (never a secret: the owner's key is decrypted inside the service), and never trusts
Celery's result store: the state lives in the database and the cloud.

Retrying: only `TransientCloudFailure` (a `CloudError` with `permanent=False` that outlasted
the service's short in-place retries) is retried, with exponential backoff and jitter, never
sooner than the cloud's `x-acs-retry-after`, at most `RECONCILE_MAX_RETRIES` times; the last
try gives up instead, in the same run and under its lease, and records the failure visibly
(`managed_role_reconcile` fails the pending delegations but for the revokes the run saw
through, `partner_user_policy_reconcile` shows the error on the partner's staff page): a
subject another worker holds is that worker's to settle. The subject is left pending, not
retried by this chain again: the periodic passes ask for it at their own pace until a
reconcile converges. Anything else (a bug, the database down) fails
the task; the outbox row stays undone and the dispatcher publishes it again later.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.conf import settings

from delegations.breakglass.services import break_glass_sweep
from delegations.lifecycle.automatic import delegations_expire_due, delegations_start_due
from delegations.models import OutboxMessage
from delegations.notices import delegations_remind_due
from delegations.outbox import outbox_held_for_this_task, outbox_republish_due
from delegations.partner.services import partner_user_policies_sync
from delegations.reviews.services import reviews_sweep
from delegations.worker.engine import (
    ReconcileOutcome,
    Report,
    TransientCloudFailure,
)
from delegations.worker.fleet_handover import fleet_advance_pending, fleets_advance_after
from delegations.worker.owner_role import managed_role_reconcile
from delegations.worker.partner_policy import partner_user_policy_reconcile
from delegations.worker.periodic import (
    managed_role_check_drift,
    managed_roles_periodic_pass,
    managed_roles_sweep_stuck,
)

logger = logging.getLogger(__name__)

RECONCILE_MAX_RETRIES = 6
# Countdowns stay far below the broker's visibility timeout (3600 s on Redis): a countdown
# longer than it would make Redis redeliver the task to a second worker while the first waits.
MAX_RETRY_COUNTDOWN_SECONDS = 300.0


def retry_countdown(retries: int, *, retry_after_ms: int | None = None) -> float:
    """Seconds before retry number `retries + 1`: 2, 4, 8... times a jitter in [0.5, 1.5), capped,
    and at least what the cloud asked for."""
    base = getattr(settings, "PORTAL_RECONCILE_RETRY_BASE_SECONDS", 2.0)
    countdown = min(MAX_RETRY_COUNTDOWN_SECONDS, base * (2**retries)) * (0.5 + random.random())
    if retry_after_ms:
        countdown = max(countdown, retry_after_ms / 1000.0)
    return min(countdown, MAX_RETRY_COUNTDOWN_SECONDS)


def _reconcile_with_retry(task: Any, *, subject: str, reconcile: Callable[[bool], Report]) -> str:
    """Run one reconcile (told whether this is the task's last try); retry a
    `TransientCloudFailure` with backoff. The last try gives up itself (unless another worker
    holds the subject: it settles it)."""
    last_try = task.request.retries >= task.max_retries
    try:
        report = reconcile(last_try)
    except TransientCloudFailure as failure:
        countdown = retry_countdown(task.request.retries, retry_after_ms=failure.retry_after_ms)
        raise task.retry(exc=failure, countdown=countdown) from None
    if last_try and report.outcome == ReconcileOutcome.BUSY:
        logger.warning("Last try on %s left to the worker holding it.", subject)
    return report.outcome.value


def _reconcile_role(task: Any, managed_role_id: str, *, force: bool = False) -> str:
    try:
        # The advance messages this reconcile's transitions write are this task's to do (just
        # below), not a second task's: published, each would take a worker slot and wait for
        # the fleet's row lock while the fleet's next accounts wait for slots.
        with outbox_held_for_this_task(OutboxMessage.Kind.ADVANCE_FLEET):
            return _reconcile_with_retry(
                task,
                subject=f"managed role {managed_role_id}",
                reconcile=lambda last_try: managed_role_reconcile(
                    managed_role_id=managed_role_id, force=force, last_try=last_try
                ),
            )
    finally:
        # A fleet's account on this role failed (or became active and the reconcile started
        # the fleet's next accounts already, `_RoleReconciler._finish`): start what is still
        # to start now, in this task, instead of one broker hand-over later (also when the
        # reconcile is retried later: a slot it freed is not kept waiting).
        fleets_advance_after(managed_role_id=managed_role_id)


def _reconcile_partner_user_policy(task: Any, policy_id: str) -> str:
    return _reconcile_with_retry(
        task,
        subject=f"partner policy {policy_id}",
        reconcile=lambda last_try: partner_user_policy_reconcile(
            policy_id=policy_id, last_try=last_try
        ),
    )


@shared_task(bind=True, name="delegations.reconcile_role", max_retries=RECONCILE_MAX_RETRIES)
def reconcile_role(self: Any, managed_role_id: str, force: bool = False) -> str:
    """Reconcile one managed role with every delegation on it."""
    return _reconcile_role(self, managed_role_id, force=force)


@shared_task(bind=True, name="delegations.run_outbox_message", max_retries=RECONCILE_MAX_RETRIES)
def run_outbox_message(self: Any, message_id: int) -> str:
    """Do the work an outbox row describes. The reconcile marks the role's messages done once
    the role converged; a message for a role another worker holds stays undone and is
    published again by the dispatcher if that worker dies."""
    message = OutboxMessage.objects.filter(pk=message_id).first()
    if message is None or message.done_at is not None:
        return "done"
    if message.kind == OutboxMessage.Kind.RECONCILE_ROLE:
        return _reconcile_role(self, message.object_id)
    if message.kind == OutboxMessage.Kind.RECONCILE_PARTNER_USER:
        return _reconcile_partner_user_policy(self, message.object_id)
    if message.kind == OutboxMessage.Kind.ADVANCE_FLEET:
        return fleet_advance_pending(fleet_id=message.object_id)
    logger.error("Outbox message %s has an unknown kind %r.", message_id, message.kind)
    return "unknown_kind"


@shared_task(name="delegations.dispatch_outbox")
def dispatch_outbox() -> int:
    """Publish outbox rows that were never published or whose task was lost (beat)."""
    return outbox_republish_due()


@shared_task(name="delegations.expire_delegations")
def expire_delegations() -> int:
    """Start ending every delegation whose end date passed (beat, every minute)."""
    return delegations_expire_due()


@shared_task(name="delegations.start_scheduled_delegations")
def start_scheduled_delegations() -> int:
    """Start applying every scheduled grant whose start is near (beat, every minute)."""
    return delegations_start_due()


@shared_task(name="delegations.reconcile_all_roles")
def reconcile_all_roles() -> dict[str, int]:
    """The periodic reconciler (beat): pending work gets a reconcile, settled roles a drift
    check."""
    return managed_roles_periodic_pass(check_drift=check_role_drift.delay)


@shared_task(name="delegations.check_role_drift")
def check_role_drift(managed_role_id: str) -> str:
    return managed_role_check_drift(managed_role_id=managed_role_id).outcome


@shared_task(name="delegations.sweep_stuck_work")
def sweep_stuck_work() -> dict[str, int]:
    """Free leases whose holder died and re-request roles stuck mid-change (beat)."""
    return managed_roles_sweep_stuck()


@shared_task(
    bind=True, name="delegations.reconcile_partner_user_policy", max_retries=RECONCILE_MAX_RETRIES
)
def reconcile_partner_user_policy(self: Any, policy_id: str) -> str:
    """Reconcile one RAM user's AssumeRole policy in a partner's account."""
    return _reconcile_partner_user_policy(self, policy_id)


@shared_task(name="delegations.sync_partner_user_policies")
def sync_partner_user_policies() -> int:
    """Ask for a reconcile of every partner RAM user whose policy should change (beat)."""
    return partner_user_policies_sync()


@shared_task(name="delegations.send_reminders")
def send_reminders() -> int:
    """Remind approvers of undecided requests; warn 24 h and 1 h before access ends (beat)."""
    return delegations_remind_due()


@shared_task(name="delegations.break_glass_sweep")
def break_glass_sweep_task() -> dict[str, int]:
    """Assign break-glass activators once their access is active; remind and escalate
    activations nobody reviewed."""
    return break_glass_sweep()


@shared_task(name="delegations.access_reviews_sweep")
def access_reviews_sweep_task() -> dict[str, int]:
    """Start access reviews that are due, remind daily, close them at their deadline."""
    return reviews_sweep()
