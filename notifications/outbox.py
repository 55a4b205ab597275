"""The notification outbox: deliveries are rows written with the event; after the commit each
is published to the worker by name (`notifications.deliver`), and `deliveries_republish_due`
(beat) publishes again what a dead broker or worker lost. A publish never raises and waits for
the broker at most PORTAL_BROKER_PUBLISH_TIMEOUT_SECONDS (see `core.broker`)."""

import datetime as dt
import logging
from collections.abc import Iterable

from celery import current_app
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.broker import publish_connection
from notifications.models import Delivery

logger = logging.getLogger(__name__)

DELIVER_TASK = "notifications.deliver"


def republish_after() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "PORTAL_OUTBOX_REPUBLISH_AFTER_SECONDS", 60))


def _send(delivery_ids: list[int]) -> None:
    app = current_app
    task = app.tasks.get(DELIVER_TASK)
    if task is not None and app.conf.task_always_eager:
        for delivery_id in delivery_ids:
            task.apply_async(args=[delivery_id], retry=False)
        return
    with publish_connection(app) as connection:
        for delivery_id in delivery_ids:
            if task is None:
                app.send_task(DELIVER_TASK, args=[delivery_id], retry=False, connection=connection)
            else:
                task.apply_async(args=[delivery_id], retry=False, connection=connection)


def deliveries_publish(*, delivery_ids: Iterable[int]) -> bool:
    """Hand deliveries to the broker; False (rows left for the dispatcher) when it cannot."""
    ids = list(delivery_ids)
    if not ids:
        return True
    try:
        _send(ids)
    except Exception:
        logger.warning("Notification deliveries %s not published; the dispatcher will.", ids)
        return False
    Delivery.objects.filter(pk__in=ids, status=Delivery.Status.PENDING).update(
        dispatched_at=timezone.now()
    )
    return True


def deliveries_republish_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Publish pending deliveries never published or published long ago, and sends a killed
    worker left claimed. Returns how many were published."""
    now = now or timezone.now()
    Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_until__lt=now).update(
        status=Delivery.Status.PENDING, claimed_until=None, dispatched_at=None
    )
    due = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, available_at__lte=now)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=now - republish_after()))
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return len(due) if deliveries_publish(delivery_ids=due) else 0
