"""Publishing to the broker without waiting on it: every outbox (the cloud's in
`delegations.outbox`, the notifications' in `notifications.outbox`) publishes after a commit,
with its row safe in the database, so a dead broker must cost one short timeout, not kombu's
retry schedule (about 6 s per publish). One request often publishes to both outboxes: once
the broker has failed to answer, the publishes that follow within one timeout give up at once
instead of waiting again (the rows stay for the dispatcher either way)."""

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from celery import Celery
from django.conf import settings
from kombu.connection import Connection

logger = logging.getLogger(__name__)


def publish_timeout() -> float:
    return float(getattr(settings, "PORTAL_BROKER_PUBLISH_TIMEOUT_SECONDS", 0.5))


class BrokerRecentlyUnreachable(ConnectionError):
    """The broker failed to answer a moment ago; this publish did not try again."""


_unreachable_until: dict[tuple[str, str, str], float] = {}
_unreachable_lock = threading.Lock()


def broker_key(app: Celery) -> tuple[str, str, str]:
    """Where `app` publishes now (the write URL wins, as in `connection_for_write`)."""
    return (
        str(app.conf.get("broker_write_url") or ""),
        str(app.conf.broker_url or ""),
        str(app.conf.get("broker_transport") or ""),
    )


def bounded_broker_connection(app: Celery, timeout: float) -> Connection:
    """A connection to the broker, established with one attempt: connecting and every socket
    read wait at most `timeout` (a broker that accepts but never answers would otherwise hold
    the caller forever). Its outcome is remembered for `publish_on_kept_connection` (a success,
    from a publish or the readiness probe, forgets an earlier failure)."""
    connection = app.connection_for_write(
        connect_timeout=timeout, transport_options={"socket_timeout": timeout}
    )
    broker = broker_key(app)
    try:
        connection.ensure_connection(max_retries=0, timeout=timeout)
    except BaseException:
        connection.release()
        with _unreachable_lock:
            _unreachable_until[broker] = time.monotonic() + timeout
        raise
    with _unreachable_lock:
        _unreachable_until.pop(broker, None)
    return connection


def _refuse_if_recently_unreachable(broker: tuple[str, str, str]) -> None:
    """Refuse at once while `broker` is known to have failed within the last publish timeout,
    so a request pays that timeout once, however many outboxes it publishes to."""
    with _unreachable_lock:
        if time.monotonic() < _unreachable_until.get(broker, 0.0):
            raise BrokerRecentlyUnreachable(broker[0] or broker[1])


# This thread's broker connection, kept open after a successful publish with the broker and
# timeout it was made for. Both outboxes publish on it, so a bulk approval's messages, and a
# worker's publish after each role, connect once per thread instead of once per publish (each
# new Redis connection costs a handshake, a PING and a queue declaration: several
# milliseconds on the path between one role's activation and the next role's start).
_kept = threading.local()


def publish_on_kept_connection(app: Celery, publish: Callable[[Connection], None]) -> None:
    """Run `publish` on this thread's kept broker connection, or on a fresh bounded one
    (`bounded_broker_connection`) that is kept once it has worked. A kept connection that fails is
    dropped and `publish` gets that one fresh attempt: what it had sent on the failed one may
    go twice, which the outboxes' tasks allow (each is idempotent). Raises what the fresh
    attempt raises, at once while the broker is known to be unreachable."""
    broker, timeout = broker_key(app), publish_timeout()
    _refuse_if_recently_unreachable(broker)
    made_for = (broker, timeout)
    kept: Connection | None = getattr(_kept, "connection", None)
    if kept is not None and getattr(_kept, "made_for", None) == made_for:
        try:
            publish(kept)
            return
        except Exception:
            logger.info("Kept broker connection failed; publishing on a fresh one.")
    _drop_kept_connection()
    connection = bounded_broker_connection(app, timeout)
    try:
        publish(connection)
    except BaseException:
        connection.release()
        raise
    _kept.connection, _kept.made_for = connection, made_for


def _drop_kept_connection() -> None:
    """Close this thread's kept broker connection, if any."""
    kept: Connection | None = getattr(_kept, "connection", None)
    _kept.connection = None
    if kept is not None:
        try:
            kept.release()
        except Exception:
            logger.debug("Releasing a broken broker connection failed.", exc_info=True)


# Publishers of work that must reach the broker before notification deliveries: a reconcile
# gives partners their access, an email about it can wait. A bulk approval of 1,000 partners
# writes thousands of deliveries and a few reconciles; the deliveries' commit callback comes
# first (each approval announces, then enqueues its reconcile) and would otherwise publish
# them all before the first reconcile (measured: seconds before any worker started).
# Each publisher sends what its thread's committed transaction left unpublished; registered
# by `delegations.outbox`, run by `notifications.services` before it publishes deliveries.
_urgent_publishers: list[Callable[[], None]] = []
Registered = TypeVar("Registered")


def _registered(registry: list[Registered], item: Registered) -> Registered:
    if item not in registry:
        registry.append(item)
    return item


def register_urgent_publisher(publisher: Callable[[], None]) -> Callable[[], None]:
    return _registered(_urgent_publishers, publisher)


def publish_urgent() -> None:
    for publisher in list(_urgent_publishers):
        publisher()


# Probes of work the notification deliveries make way for while it runs: the broker's queue
# order puts reconciles first, but a worker with nothing else to take sends emails on the same
# cores as the reconciles still running (measured: in the last wave of 1,000
# activations two workers sent the bulk approval's emails beside the last two roles and took
# a third of the machine's CPU). A probe answers "is such work running now"; registered by
# `delegations.worker.lease` (a lease held), asked by `notifications.outbox` before a batch.
_urgent_work_probes: list[Callable[[], bool]] = []


def register_urgent_work_probe(probe: Callable[[], bool]) -> Callable[[], bool]:
    return _registered(_urgent_work_probes, probe)


def urgent_work_running() -> bool:
    return any(probe() for probe in list(_urgent_work_probes))
