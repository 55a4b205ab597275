"""Celery tasks of the notification outbox: thin wrappers that take ids and call a service.

`deliver` retries with exponential backoff and jitter, never sooner than the service's
`Retry-After`, at most `DELIVERY_MAX_RETRIES` times; the last try gives up visibly (the
delivery shows as failed, an admin may retry it).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from celery import shared_task
from django.conf import settings

from notifications.outbox import (
    DELIVER_MANY_TASK,
    FAN_OUT_TASK,
    deliveries_fan_out,
    deliveries_make_way,
    deliveries_publish_retry,
    deliveries_republish_due,
)
from notifications.sending import deliveries_attempt_many, delivery_attempt

DELIVERY_MAX_RETRIES = 5
MAX_COUNTDOWN_SECONDS = 600.0


def delivery_countdown(retries: int, retry_after: float | None) -> float:
    base = float(getattr(settings, "PORTAL_NOTIFICATION_RETRY_BASE_SECONDS", 5.0))
    countdown = base * (2**retries) * (0.5 + random.random())
    if retry_after:
        countdown = max(countdown, retry_after)
    return min(countdown, MAX_COUNTDOWN_SECONDS)


@shared_task(bind=True, name="notifications.deliver", max_retries=DELIVERY_MAX_RETRIES)
def deliver(self: Any, delivery_id: int) -> str:
    """Send one delivery (an email, or one chat channel's message)."""
    retries = self.request.retries or 0
    last_try = retries >= self.max_retries
    attempt = delivery_attempt(
        delivery_id=delivery_id,
        retry_countdown=None
        if last_try
        else (lambda retry_after: delivery_countdown(retries, retry_after)),
    )
    if attempt.outcome == "retry":
        raise self.retry(countdown=attempt.retry_after)
    return attempt.outcome


@shared_task(name=DELIVER_MANY_TASK)
def deliver_many(delivery_ids: list[int], yield_until: float | None = None) -> dict[str, int]:
    """Send a batch of a fanned-out publish (after the access being applied now, within
    limits: `deliveries_make_way`); one that may be tried again goes on as its own `deliver`
    task (`deliveries_publish_retry`)."""
    if deliveries_make_way(
        task=DELIVER_MANY_TASK, delivery_ids=delivery_ids, yield_until=yield_until
    ):
        return {"yielded": len(delivery_ids)}
    outcomes = deliveries_attempt_many(
        delivery_ids=delivery_ids,
        retry_countdown=lambda retry_after: delivery_countdown(0, retry_after),
    )
    for delivery_id, attempt in outcomes.items():
        if attempt.outcome == "retry" and attempt.retry_after is not None:
            deliveries_publish_retry(delivery_id=delivery_id, countdown=attempt.retry_after)
    return dict(Counter(attempt.outcome for attempt in outcomes.values()))


@shared_task(name="notifications.dispatch_deliveries")
def dispatch_deliveries() -> int:
    """Publish deliveries the broker or a dead worker lost (beat)."""
    return deliveries_republish_due()


@shared_task(name=FAN_OUT_TASK)
def publish_deliveries(delivery_ids: list[int], yield_until: float | None = None) -> bool | str:
    """Publish the deliveries of a batch sent as one message, in `deliver_many` batches (after
    the access being applied now, within limits: `deliveries_make_way`)."""
    if deliveries_make_way(task=FAN_OUT_TASK, delivery_ids=delivery_ids, yield_until=yield_until):
        return "yielded"
    return deliveries_fan_out(delivery_ids=delivery_ids, yield_until=yield_until)
