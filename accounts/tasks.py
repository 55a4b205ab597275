"""Celery beat's work for organisations and people."""

import logging

from celery import shared_task

from accounts.services import organisation_signups_expire

logger = logging.getLogger(__name__)


@shared_task(name="accounts.expire_unconfirmed_signups", ignore_result=True)
def expire_unconfirmed_signups() -> None:
    """Celery beat, hourly: sign-ups nobody confirmed in time give their account UID back."""
    removed = organisation_signups_expire()
    if removed:
        logger.info("Removed %d sign-ups nobody confirmed in time.", removed)
