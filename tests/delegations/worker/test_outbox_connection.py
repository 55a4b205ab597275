"""Many publishes in a row share one broker connection (issue 19, many partners at scale: a
bulk approval's hundreds of outbox messages used to connect once each, and every publish of
notification deliveries, a worker's after each role too), against a real redis-server of the
test's own; a connection that went bad is replaced within the same bounded attempt."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
import redis

from delegations.models import OutboxMessage
from delegations.outbox import outbox_publish
from notifications.outbox import DELIVER_TASK, deliveries_publish
from tests.delegations.worker.test_broker_down import ThrowawayRedis, broker_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def server() -> Iterator[ThrowawayRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    throwaway = ThrowawayRedis()
    yield throwaway
    throwaway.stop()


def _connections_received(server: ThrowawayRedis) -> int:
    client = redis.Redis(port=server.port)
    try:
        return int(client.info("stats")["total_connections_received"])
    finally:
        client.close()


def _messages(count: int) -> list[int]:
    return [
        OutboxMessage.objects.create(kind=OutboxMessage.Kind.RECONCILE_ROLE, object_id="x").pk
        for _ in range(count)
    ]


def test_thirty_publishes_connect_once(server: ThrowawayRedis) -> None:
    server.start()
    ids = _messages(30)
    with broker_at(server.url):
        before = _connections_received(server)
        assert all(outbox_publish(message_id=message_id) for message_id in ids)
        after = _connections_received(server)

    # The sockets of one kombu connection and the count's own: a few, not thirty.
    assert after - before <= 3
    assert server.queued() == 30
    assert not OutboxMessage.objects.filter(pk__in=ids, dispatched_at__isnull=True).exists()


def test_a_kept_connection_to_a_restarted_broker_is_replaced(
    server: ThrowawayRedis,
) -> None:
    server.start()
    first, second = _messages(2)
    with broker_at(server.url):
        assert outbox_publish(message_id=first)
        server.stop()
        server.start()  # the same port, a new server: the kept socket is dead
        assert outbox_publish(message_id=second)

    assert server.queued() == 1  # the second, on the new server
    assert OutboxMessage.objects.get(pk=second).dispatched_at is not None


def test_reconciles_and_notification_deliveries_share_the_connection(
    server: ThrowawayRedis,
) -> None:
    server.start()
    ids = _messages(10)
    with broker_at(server.url):
        before = _connections_received(server)
        for index, message_id in enumerate(ids):
            assert outbox_publish(message_id=message_id)
            # No such delivery rows: only the publish is looked at here.
            assert deliveries_publish(delivery_ids=[10_000 + index])
        after = _connections_received(server)

    assert after - before <= 3
    assert server.queued() == 10
    deliveries = redis.Redis(port=server.port).lrange("notifications", 0, -1)
    assert sorted(json.loads(raw)["headers"]["task"] for raw in deliveries) == [DELIVER_TASK] * 10
