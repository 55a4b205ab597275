"""Beat's ActionTrail ingestion: one task per connected owner account, fanned out by one
periodic task. Tasks take ids only; the service does the work (see activity.services)."""

from __future__ import annotations

import logging

from celery import shared_task

from activity.services import (
    activity_ingest_account,
    activity_purge_expired,
    owner_accounts_to_ingest,
)
from delegations.models import CloudAccount

logger = logging.getLogger(__name__)


@shared_task(name="activity.ingest_account")
def ingest_account(cloud_account_id: str) -> str:
    cloud_account = (
        CloudAccount.objects.select_related("organisation").filter(pk=cloud_account_id).first()
    )
    if cloud_account is None:
        return "gone"
    report = activity_ingest_account(cloud_account=cloud_account)
    logger.info(
        "activity ingestion of %s: %s, %d pages, %d events, %d new",
        cloud_account.account_uid,
        report.status,
        report.pages,
        report.seen,
        report.stored,
    )
    return report.status


@shared_task(name="activity.ingest_all_accounts")
def ingest_all_accounts() -> int:
    """Queue one ingestion per connected owner account and drop activity past retention."""
    activity_purge_expired()
    accounts = owner_accounts_to_ingest()
    for cloud_account_id in accounts:
        ingest_account.delay(str(cloud_account_id))
    return len(accounts)
