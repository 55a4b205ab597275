"""Celery tasks of the partner-side worker: ids in, one service call, the owner side's retry
rules (only `TransientCloudFailure`, backoff with jitter, never sooner than the cloud's
retry-after, a visible failure after the last retry).

`delegations.worker.tasks.run_outbox_message` hands `reconcile_partner_user` messages to
`partner_user_policy_reconcile_with_retry`; beat runs `sync_partner_user_policies`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from delegations.partner.services import partner_user_policies_sync
from delegations.worker.owner_role import TransientCloudFailure
from delegations.worker.partner_policy import (
    PartnerReconcileOutcome,
    partner_user_policy_reconcile,
    partner_user_policy_record_failure,
)

logger = logging.getLogger(__name__)


def partner_user_policy_reconcile_with_retry(task: Any, policy_id: str) -> str:
    # Imported here: delegations.worker.tasks imports this module while it is being imported.
    from delegations.worker.tasks import retry_countdown

    try:
        report = partner_user_policy_reconcile(policy_id=policy_id)
    except TransientCloudFailure as failure:
        if task.request.retries >= task.max_retries:
            partner_user_policy_record_failure(policy_id=policy_id, error=failure.error)
            logger.warning(
                "Gave up on partner policy %s after %s retries (%s).",
                policy_id,
                task.request.retries,
                failure.error.code,
            )
            return PartnerReconcileOutcome.FAILED.value
        countdown = retry_countdown(task.request.retries, retry_after_ms=failure.retry_after_ms)
        raise task.retry(exc=failure, countdown=countdown) from None
    return report.outcome.value


@shared_task(bind=True, name="delegations.reconcile_partner_user_policy", max_retries=6)
def reconcile_partner_user_policy(self: Any, policy_id: str) -> str:
    """Reconcile one RAM user's AssumeRole policy in a partner's account."""
    return partner_user_policy_reconcile_with_retry(self, policy_id)


@shared_task(name="delegations.sync_partner_user_policies")
def sync_partner_user_policies() -> int:
    """Ask for a reconcile of every partner RAM user whose policy should change (beat)."""
    return partner_user_policies_sync()
