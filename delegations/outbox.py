"""The transactional outbox: follow-up work recorded with the change that needs it.

`outbox_enqueue` runs inside the caller's transaction and publishes the message after the
commit. Publishing may fail (broker down); the row stays undone and `outbox_republish_due`,
run periodically, publishes it again. Messages carry ids only, never secrets.

A publish waits for the broker at most `PORTAL_BROKER_PUBLISH_TIMEOUT_SECONDS` and never
retries: it runs after the commit of a web request (an approval, a revocation), and the row is
safe in the database, so a dead broker costs the person one short timeout, not kombu's retry
schedule (about 6 s per publish). The connection is kept open for the thread's next publish
(hundreds of messages after a bulk approval connect once); when that kept connection has gone
bad, the publish makes its one fresh attempt, so a publish never waits more than twice the
timeout.

Contract with the worker: the task named `delegations.run_outbox_message` (in
`delegations.worker.tasks`) takes the message id, loads the row, does the work (idempotently),
and sets `done_at`. It is published by name, so the outbox, which every sub-area writes to,
does not depend on the worker.
"""

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from celery import Celery, current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone
from kombu.connection import Connection

from core.broker import publish_on_kept_connection, register_urgent_publisher
from delegations.models import ManagedRole, OutboxMessage

logger = logging.getLogger(__name__)

RUN_OUTBOX_MESSAGE = "delegations.run_outbox_message"


# Kinds of message the running task does itself before it ends (`outbox_held_for_this_task`).
_HELD_KINDS: ContextVar[frozenset[str]] = ContextVar("outbox_held_kinds", default=frozenset())


@contextmanager
def outbox_held_for_this_task(*kinds: str) -> Iterator[None]:
    """Within this block, messages of `kinds` are recorded but not published at the commit:
    the worker task running the block does that work itself right after it (a fleet's next
    accounts, once a reconcile freed a slot), so publishing them would only start a second task
    that waits for the same lock and takes a worker slot from the accounts being applied. If
    the task dies first, the rows are undone and never published: the dispatcher publishes them
    on its next pass."""
    token = _HELD_KINDS.set(_HELD_KINDS.get() | frozenset(kinds))
    try:
        yield
    finally:
        _HELD_KINDS.reset(token)


def outbox_enqueue(*, kind: str, object_id: object) -> OutboxMessage:
    """Record work to do; publish it once the surrounding transaction commits (unless the
    running task holds messages of its kind, `outbox_held_for_this_task`)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox_enqueue() must run inside the transaction of its change.")
    message = OutboxMessage.objects.create(kind=kind, object_id=str(object_id))
    message_id = message.pk
    if kind not in _HELD_KINDS.get():
        _enqueued_ids().append(message_id)
        transaction.on_commit(lambda: _publish_enqueued(message_id))
    return message


# Messages this thread enqueued and has not published yet: each is published by its own commit
# callback, unless `outbox_publish_enqueued` (run before a commit's notification deliveries are
# published, see `core.broker.publish_urgent`) sent it first. Ids of a rolled-back transaction
# may linger until the next such run: their rows do not exist, so its read drops them.
_unpublished = threading.local()


def _enqueued_ids() -> list[int]:
    ids: list[int] | None = getattr(_unpublished, "ids", None)
    if ids is None:
        ids = _unpublished.ids = []
    return ids


def _publish_enqueued(message_id: int) -> None:
    ids = _enqueued_ids()
    if message_id not in ids:
        return  # already published by outbox_publish_enqueued
    ids.remove(message_id)
    outbox_publish(message_id=message_id)


@register_urgent_publisher
def outbox_publish_enqueued() -> None:
    """Publish now, in order, every message this thread's committed transaction enqueued."""
    ids = list(_enqueued_ids())
    _unpublished.ids = []
    if not ids:
        return
    waiting = set(
        OutboxMessage.objects.filter(
            pk__in=ids, done_at__isnull=True, dispatched_at__isnull=True
        ).values_list("pk", flat=True)
    )
    for message_id in ids:
        if message_id in waiting:
            outbox_publish(message_id=message_id)


def outbox_enqueue_reconcile(*, managed_role: ManagedRole) -> OutboxMessage:
    """The desired state of `managed_role` changed: bump its version and ask for a reconcile,
    unless one is already waiting for the role (then that one is returned).

    Coalescing: a bulk approval of 1,000 partners over one role asked for 1,000 reconciles,
    each published, picked up and found busy or done. One pending message per role is enough,
    because no reconcile misses a bump made while a message waits:
    - a message never published (its commit's publish is still to come, or the broker was
      down and the dispatcher will publish it) has not started: its reconcile reads the
      version after this transaction commits;
    - a reconcile already running holds the role's lease and releases it only with a
      conditional UPDATE on `desired_version`, which waits for this transaction's bump (the
      bump comes first, and it locks the role row) and then sees the version moved: it runs
      another round;
    - a reconcile that settled first marked its messages done in the transaction that
      released the lease; this transaction's bump waited for that commit, and the read below
      (a statement of its own, after the bump) sees them done and enqueues a new message.
    A published message is never reused: it may be lost with a dead worker, and a fresh
    message is what gets the role moving again without waiting for the dispatcher.
    """
    ManagedRole.objects.filter(pk=managed_role.pk).update(desired_version=F("desired_version") + 1)
    waiting = (
        OutboxMessage.objects.filter(
            kind=OutboxMessage.Kind.RECONCILE_ROLE,
            object_id=str(managed_role.pk),
            done_at__isnull=True,
            dispatched_at__isnull=True,
            available_at__lte=timezone.now(),
        )
        .order_by("id")
        .first()
    )
    if waiting is not None:
        return waiting
    return outbox_enqueue(kind=OutboxMessage.Kind.RECONCILE_ROLE, object_id=managed_role.pk)


def outbox_publish(*, message_id: int) -> bool:
    """Hand one message to the broker. Returns False (and leaves the row for the dispatcher)
    when the broker cannot take it; it never raises, because it runs after a commit and the
    web response must not fail for work that is safely recorded."""
    try:
        _send(message_id)
    except Exception:
        logger.warning("Outbox message %s not published; the dispatcher will retry.", message_id)
        OutboxMessage.objects.filter(pk=message_id).update(last_error="publish failed")
        return False
    OutboxMessage.objects.filter(pk=message_id, done_at__isnull=True).update(
        dispatched_at=timezone.now(), attempts=F("attempts") + 1
    )
    return True


def republish_after() -> dt.timedelta:
    """A published message not done after this long is published again (the worker may have
    died or the broker lost it). Reconciling is idempotent, so a duplicate costs only reads."""
    return dt.timedelta(seconds=getattr(settings, "PORTAL_OUTBOX_REPUBLISH_AFTER_SECONDS", 60))


def outbox_republish_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Publish every undone message that was never published or was published long ago.
    Returns how many were published; stops at the first failure (the broker is down: the
    next pass tries again, and nothing waits once per row)."""
    now = now or timezone.now()
    due = (
        OutboxMessage.objects.filter(done_at__isnull=True, available_at__lte=now)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=now - republish_after()))
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    published = 0
    for message_id in list(due):
        if not outbox_publish(message_id=message_id):
            break
        published += 1
    return published


def _send(message_id: int) -> None:
    app = current_app
    task = app.tasks.get(RUN_OUTBOX_MESSAGE)
    if task is not None and app.conf.task_always_eager:
        # CELERY_TASK_ALWAYS_EAGER (the benchmarks) runs it in place; no broker involved.
        task.apply_async(args=[message_id], retry=False)
        return
    publish_on_kept_connection(
        app, lambda connection: _publish_on(app, task, connection, message_id)
    )


def _publish_on(app: Celery, task: Any, connection: Connection, message_id: int) -> None:
    if task is None:
        # This process never imported the worker's tasks (a web process): by name.
        app.send_task(RUN_OUTBOX_MESSAGE, args=[message_id], retry=False, connection=connection)
    else:
        task.apply_async(args=[message_id], retry=False, connection=connection)


# --- what a run has covered ---------------------------------------------------------------


def outbox_watermark(*, kind: str, object_id: Any) -> int:
    """The newest outbox message for the subject, read before its desired version: every
    message up to it was committed with its version bump, so a round from that version
    covers it."""
    return (
        OutboxMessage.objects.filter(kind=kind, object_id=str(object_id)).aggregate(top=Max("id"))[
            "top"
        ]
        or 0
    )


def outbox_work_waiting(*, kind: str, object_id: Any) -> bool:
    """Whether an undone message asks for work on the subject: the dispatcher (re)publishes
    it, so a periodic pass need not ask again."""
    return OutboxMessage.objects.filter(
        kind=kind, object_id=str(object_id), done_at__isnull=True
    ).exists()


def outbox_mark_done(*, kind: str, object_id: Any, watermark: int, note: str = "") -> None:
    if watermark:
        OutboxMessage.objects.filter(
            kind=kind, object_id=str(object_id), id__lte=watermark, done_at__isnull=True
        ).update(done_at=timezone.now(), last_error=note[:255])
