"""The runbook worker's tasks: ids in, one worker function each, nothing else.

Transient cloud errors (`CloudError.permanent is False`) are retried with backoff; the follow
task re-queues itself every `PORTAL_RUNBOOK_POLL_SECONDS` until OOS says the execution ended,
and beat's sweep picks up what a lost worker or a failed publish left behind.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from cloud.client import CloudClient
from cloud.errors import CloudError
from cloud.oos import OosClient
from delegations.connection.services import cloud_account_credentials
from delegations.models import CloudAccount
from runbooks import dispatch, worker
from runbooks.models import FOLLOWED_RUN_STATUSES, OosConsent, RunbookRun

logger = logging.getLogger(__name__)
MAX_RETRIES = 5
S = RunbookRun.Status


def _partner_account(partner_id: Any) -> CloudAccount:
    return CloudAccount.objects.get(organisation_id=partner_id, is_active=True)


def oos_client_for(partner_id: Any) -> OosClient:
    """The OOS door with the partner's connected key: OOS executes in the partner's account."""
    account = _partner_account(partner_id)
    credentials = cloud_account_credentials(cloud_account=account)
    return OosClient(
        access_key_id=credentials.access_key_id,
        access_key_secret=credentials.access_key_secret,
        region_id=account.region,
    )


def _backoff(retries: int) -> float:
    return float(min(60, 2 ** (retries + 1)))


@shared_task(bind=True, name=dispatch.SUBMIT_RUN, max_retries=MAX_RETRIES)
def submit_run(self: Any, run_id: str) -> str:
    run = RunbookRun.objects.filter(pk=run_id).first()
    if run is None:
        return "gone"
    try:
        result = worker.run_submit(run_id=run.pk, client=oos_client_for(run.partner_id))
    except CloudError as error:
        if self.request.retries >= MAX_RETRIES:
            worker.run_failed(run_id=run.pk, error=error)
            return "failed"
        raise self.retry(countdown=_backoff(self.request.retries)) from error
    return result.status if result is not None else "not claimed"


def _claim_follow(run_id: Any) -> bool:
    """One follower per run: a duplicate chain (a sweep racing a slow poll) finds the run
    looked at moments ago and stops."""
    now = timezone.now()
    recently = now - dt.timedelta(seconds=settings.PORTAL_RUNBOOK_POLL_SECONDS / 2)
    return bool(
        RunbookRun.objects.filter(pk=run_id, status__in=FOLLOWED_RUN_STATUSES)
        .filter(Q(last_polled_at__isnull=True) | Q(last_polled_at__lte=recently))
        .update(last_polled_at=now)
    )


@shared_task(name=dispatch.FOLLOW_RUN)
def follow_run(run_id: str) -> str:
    run = RunbookRun.objects.filter(pk=run_id).first()
    if run is None:
        return "gone"
    read_results = worker.results_due(run)  # judged on the previous poll, before the claim
    if not _claim_follow(run.pk):
        return "not followed"
    try:
        report = worker.run_follow(
            run_id=run.pk, client=oos_client_for(run.partner_id), read_results=read_results
        )
    except CloudError as error:
        if error.permanent:
            worker.run_failed(run_id=run.pk, error=error)
            return "failed"
        logger.info("runbook %s: OOS did not answer (%s); looking again", run.pk, error.code)
        dispatch.dispatch_follow(run.pk, countdown=settings.PORTAL_RUNBOOK_POLL_SECONDS * 2)
        return "retrying"
    if report.more:
        dispatch.dispatch_follow(run.pk, countdown=settings.PORTAL_RUNBOOK_POLL_SECONDS)
    return report.status


@shared_task(bind=True, name=dispatch.CANCEL_RUN, max_retries=MAX_RETRIES)
def cancel_run(self: Any, run_id: str) -> str:
    run = RunbookRun.objects.filter(pk=run_id).first()
    if run is None:
        return "gone"
    try:
        worker.run_cancel_in_cloud(run_id=run.pk, client=oos_client_for(run.partner_id))
    except CloudError as error:
        if error.permanent or self.request.retries >= MAX_RETRIES:
            logger.warning("runbook %s: CancelExecution refused (%s)", run.pk, error.code)
            return "refused"
        raise self.retry(countdown=_backoff(self.request.retries)) from error
    return "cancelling"


@shared_task(bind=True, name=dispatch.ENSURE_OOS_ROLE, max_retries=MAX_RETRIES)
def ensure_oos_service_role(self: Any, consent_id: str) -> str:
    consent = OosConsent.objects.filter(pk=consent_id).first()
    if consent is None:
        return "gone"
    account = _partner_account(consent.partner_id)
    client = CloudClient(cloud_account_credentials(cloud_account=account), region_id=account.region)
    try:
        result = worker.oos_service_role_ensure(consent_id=consent.pk, client=client)
    except CloudError as error:
        raise self.retry(countdown=_backoff(self.request.retries)) from error
    return result.status if result is not None else "gone"


@shared_task(name="runbooks.sweep_runs")
def sweep_runs() -> int:
    """Publish again what nobody picked up: queued runs never submitted, runs nobody follows,
    consents never set up (a lost publish or a worker lost mid-task)."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=60)
    quiet = now - dt.timedelta(seconds=max(30.0, settings.PORTAL_RUNBOOK_POLL_SECONDS * 5))
    count = 0
    for run_id in RunbookRun.objects.filter(
        status__in=[S.QUEUED, S.SUBMITTING], execution_id="", created_at__lte=stale
    ).values_list("pk", flat=True):
        dispatch.dispatch_submit(run_id)
        count += 1
    for run_id in (
        RunbookRun.objects.filter(status__in=FOLLOWED_RUN_STATUSES)
        .filter(Q(last_polled_at__isnull=True) | Q(last_polled_at__lte=quiet))
        .values_list("pk", flat=True)
    ):
        dispatch.dispatch_follow(run_id)
        count += 1
    for consent_id in OosConsent.objects.filter(
        status=OosConsent.Status.PENDING, given_at__lte=stale
    ).values_list("pk", flat=True):
        dispatch.dispatch_consent(consent_id)
        count += 1
    return count
