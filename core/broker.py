"""Publishing to the broker without waiting on it: every outbox (the cloud's in
`delegations.outbox`, the notifications' in `notifications.outbox`) publishes after a commit,
with its row safe in the database, so a dead broker must cost one short timeout, not kombu's
retry schedule (about 6 s per publish)."""

from celery import Celery
from django.conf import settings
from kombu.connection import Connection


def publish_timeout() -> float:
    return float(getattr(settings, "PORTAL_BROKER_PUBLISH_TIMEOUT_SECONDS", 0.5))


def bounded_broker_connection(app: Celery, timeout: float) -> Connection:
    """A connection to the broker, established with one attempt: connecting and every socket
    read wait at most `timeout` (a broker that accepts but never answers would otherwise hold
    the caller forever)."""
    connection = app.connection_for_write(
        connect_timeout=timeout, transport_options={"socket_timeout": timeout}
    )
    try:
        connection.ensure_connection(max_retries=0, timeout=timeout)
    except BaseException:
        connection.release()
        raise
    return connection
