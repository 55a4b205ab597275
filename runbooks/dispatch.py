"""Handing a run to the worker after the commit that records it: tasks are published by name
with the run's id only (never the command), so the services do not import the tasks module.

A publish that fails (broker down) is logged and left: the periodic sweep
(`runbooks.sweep_runs`) finds queued runs nobody submitted and running runs nobody follows.
"""

from __future__ import annotations

import logging
import uuid

from celery import current_app

logger = logging.getLogger(__name__)

SUBMIT_RUN = "runbooks.submit_run"
FOLLOW_RUN = "runbooks.follow_run"
CANCEL_RUN = "runbooks.cancel_run"
ENSURE_OOS_ROLE = "runbooks.ensure_oos_service_role"


def send(name: str, object_id: object, *, countdown: float | None = None) -> None:
    try:
        current_app.send_task(name, args=[str(object_id)], countdown=countdown, retry=False)
    except Exception:  # the row is safe; the sweep publishes again
        logger.warning("could not publish %s for %s; the sweep will retry", name, object_id)


def dispatch_submit(run_id: uuid.UUID) -> None:
    send(SUBMIT_RUN, run_id)


def dispatch_follow(run_id: uuid.UUID, *, countdown: float | None = None) -> None:
    send(FOLLOW_RUN, run_id, countdown=countdown)


def dispatch_cancel(run_id: uuid.UUID) -> None:
    send(CANCEL_RUN, run_id)


def dispatch_consent(consent_id: uuid.UUID) -> None:
    send(ENSURE_OOS_ROLE, consent_id)
