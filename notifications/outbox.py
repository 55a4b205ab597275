"""The notification outbox: deliveries are rows written with the event; after the commit each
is published to the worker by name (`notifications.deliver`), and `deliveries_republish_due`
(beat) publishes again what a dead broker or worker lost. A publish never raises and waits for
the broker at most PORTAL_BROKER_PUBLISH_TIMEOUT_SECONDS (see `core.broker`)."""

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone
from kombu.connection import Connection

from core.broker import publish_on_kept_connection, urgent_work_running
from notifications.models import Delivery

logger = logging.getLogger(__name__)

DELIVER_TASK = "notifications.deliver"
DELIVER_MANY_TASK = "notifications.deliver_many"
FAN_OUT_TASK = "notifications.publish_deliveries"
# A fanned-out publish's emails are sent in batches of this many (`deliver_many`): one task,
# claim, read, mail connection and "sent" update each, rather than one of each per email, and
# still short enough that a worker taking one is soon free for the next reconcile.
DELIVER_MANY_SIZE = 20
# More deliveries than this published at once go to the broker as one message, which a worker
# taking the notification queue turns into one `deliver` task each (`deliveries_fan_out`): a
# worker activating a role's hundred partners then spends one publish on their emails, not a
# hundred (each a broker round trip) before it can take the next role.
FAN_OUT_ABOVE = 8
# While a worker applies access (`core.broker.urgent_work_running`), a batch of deliveries that
# comes up steps aside and looks again this many seconds later, for at most
# PORTAL_NOTIFICATIONS_YIELD_SECONDS after it first came up (`deliveries_make_way`).
YIELD_CHECK_SECONDS = 1.0


def republish_after() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "PORTAL_OUTBOX_REPUBLISH_AFTER_SECONDS", 60))


def yield_limit_seconds() -> float:
    return float(getattr(settings, "PORTAL_NOTIFICATIONS_YIELD_SECONDS", 30.0))


def _send(delivery_ids: list[int]) -> None:
    """Publish the deliveries: one `deliver` task each, or one fan-out message for many."""
    _publish(delivery_ids, fan_out=True)


def _send_each(delivery_ids: list[int]) -> None:
    _publish(delivery_ids, fan_out=False)


def _publish(delivery_ids: list[int], *, fan_out: bool) -> None:
    # Run eagerly (tests), each delivery is sent at once: a fan-out would only add a hop.
    if fan_out and len(delivery_ids) > FAN_OUT_ABOVE and not _runs_eagerly(DELIVER_TASK):
        _send_tasks(FAN_OUT_TASK, [[delivery_ids]])
    else:
        _send_tasks(DELIVER_TASK, [[delivery_id] for delivery_id in delivery_ids])


def _runs_eagerly(name: str) -> bool:
    app = current_app
    return bool(app.conf.task_always_eager) and app.tasks.get(name) is not None


def _send_tasks(name: str, each_args: list[list[Any]], **options: Any) -> None:
    """Publish task `name` once per arguments, by name over one broker connection (or run it
    at once where tasks run eagerly). `options` go with each message (`countdown`, ...)."""
    app = current_app
    if _runs_eagerly(name):
        for args in each_args:
            app.tasks[name].apply_async(args=args, retry=False, **options)
        return

    def publish(connection: Connection) -> None:
        for args in each_args:
            app.send_task(name, args=args, retry=False, connection=connection, **options)

    publish_on_kept_connection(app, publish)


def deliveries_publish(*, delivery_ids: Iterable[int]) -> bool:
    """Hand deliveries to the broker; False (rows left for the dispatcher) when it cannot.
    Many at once travel as one message that a worker fans out (`deliveries_fan_out`)."""
    return _published(list(delivery_ids), _send)


def _published(ids: list[int], send: Callable[[list[int]], None]) -> bool:
    if not ids:
        return True
    try:
        send(ids)
    except Exception:
        logger.warning("Notification deliveries %s not published; the dispatcher will.", ids)
        return False
    Delivery.objects.filter(pk__in=ids, status=Delivery.Status.PENDING).update(
        dispatched_at=timezone.now()
    )
    return True


def deliveries_publish_retry(*, delivery_id: int, countdown: float) -> bool:
    """Publish a delivery's next try, after `countdown`, as its `deliver` task's first retry
    (so it gets the same tries in all as one sent alone); False when the broker cannot take
    it: the dispatcher publishes it once its wait is over."""
    try:
        _send_tasks(DELIVER_TASK, [[delivery_id]], countdown=countdown, retries=1)
    except Exception:
        logger.warning("Delivery %s: its retry not published; the dispatcher will.", delivery_id)
        return False
    return True


def deliveries_fan_out(*, delivery_ids: Iterable[int], yield_until: float | None = None) -> bool:
    """A worker's side of a fanned-out publish: the emails still pending in batches of
    `DELIVER_MANY_SIZE` for `deliver_many` (one that needs another try goes on as its own
    `deliver` task), the chat posts still pending one `deliver` task each (a receiver that
    hangs until the timeout holds up only its own). A failure leaves them for the dispatcher,
    which publishes what was not delivered after the republish delay."""
    pending = list(
        Delivery.objects.filter(pk__in=list(delivery_ids), status=Delivery.Status.PENDING)
        .order_by("id")
        .values_list("id", "channel_id")
    )
    emails = [delivery_id for delivery_id, channel_id in pending if channel_id is None]
    posts = [delivery_id for delivery_id, channel_id in pending if channel_id is not None]
    batches = partial(_send_in_batches, yield_until=yield_until)
    return _published(emails, batches) & _published(posts, _send_each)


def deliveries_make_way(*, task: str, delivery_ids: list[int], yield_until: float | None) -> bool:
    """Whether the batch task `task` was about to send steps aside because a worker is
    applying access right now (its emails would take the cores the reconcile needs; the
    broker's queue order already put the reconciles first). If so it is published again to
    run `YIELD_CHECK_SECONDS` later with the same deadline (`yield_until`, seconds since the
    epoch: set when it first came up, PORTAL_NOTIFICATIONS_YIELD_SECONDS later) and True is
    returned. It goes now past that deadline, when no such work runs, where tasks run eagerly,
    or when the broker cannot take it again."""
    if _runs_eagerly(task):
        return False
    now = time.time()
    deadline = now + yield_limit_seconds() if yield_until is None else yield_until
    if now >= deadline or not urgent_work_running():
        return False
    try:
        _send_tasks(
            task,
            [[delivery_ids]],
            kwargs={"yield_until": deadline},
            countdown=YIELD_CHECK_SECONDS,
        )
    except Exception:
        logger.warning("Deliveries %s could not step aside; sending them now.", delivery_ids)
        return False
    return True


def _send_in_batches(delivery_ids: list[int], *, yield_until: float | None = None) -> None:
    # A fan-out that stepped aside passes its deadline on: the batches wait no longer than it
    # had left, not a limit of their own on top.
    _send_tasks(
        DELIVER_MANY_TASK,
        [
            [delivery_ids[start : start + DELIVER_MANY_SIZE]]
            for start in range(0, len(delivery_ids), DELIVER_MANY_SIZE)
        ],
        **({} if yield_until is None else {"kwargs": {"yield_until": yield_until}}),
    )


def deliveries_republish_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Publish pending deliveries never published or published long ago, and sends a killed
    worker left claimed. Returns how many were published. A claim lapsed by the database's
    clock, as it is timed (`now`: a moment instead, for tests)."""
    claim_now = Now() if now is None else now
    now = now or timezone.now()
    Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_until__lt=claim_now).update(
        status=Delivery.Status.PENDING, claimed_until=None, dispatched_at=None
    )
    due = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, available_at__lte=now)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=now - republish_after()))
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    return len(due) if deliveries_publish(delivery_ids=due) else 0
