"""Issue 19, item 4: with the broker down, approving and revoking answer without waiting on it.

The outbox row commits with the decision; the publish after the commit makes one connection
attempt bounded by `PORTAL_BROKER_PUBLISH_TIMEOUT_SECONDS` and gives up (kombu's defaults retried
for seconds, and forever against a broker that accepts and never answers); the dispatcher
publishes the row once the broker is back; `/readyz` says the broker is down meanwhile.

Brokers here are a port where nothing listens, a socket that accepts and never answers, and a
throwaway `redis-server` of the test's own that it stops and starts (never the machine's)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from delegations.lifecycle.automatic import delegation_mark_active, delegation_mark_applying
from delegations.lifecycle.services import delegation_approve
from delegations.models import Delegation, OutboxMessage
from delegations.outbox import RUN_OUTBOX_MESSAGE, outbox_republish_due
from portal.celery import app
from tests.delegations.factories import CatalogRoleFactory
from tests.delegations.lifecycle.test_views import with_mfa

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Point this process's publishing (and the readiness probe) at `url`. Celery prefers the
    CELERY_BROKER_URL environment variable over conf.broker_url; the write URL wins over both."""
    original = app.conf.get("broker_write_url"), app.conf.get("broker_transport")
    app.conf.broker_write_url = url
    app.conf.broker_transport = None  # the embedded transport would override the URL's
    try:
        yield
    finally:
        app.conf.broker_write_url, app.conf.broker_transport = original


class SilentBroker:
    """Accepts connections and never answers; each is dropped after `hold` seconds (a broker
    that hangs, then resets). Counts the connection attempts."""

    def __init__(self, hold: float = 3.0) -> None:
        self.hold = hold
        self.accepted = 0
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Timer(self.hold, connection.close).start()

    def close(self) -> None:
        self._server.close()
        self._thread.join(5)


class ThrowawayRedis:
    """A redis-server of the test's own on a free port, without persistence."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the throwaway redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def queued(self, task: str = RUN_OUTBOX_MESSAGE) -> int:
        """Messages waiting for `task` (the notification deliveries a decision also queues are
        counted apart)."""
        messages = redis.Redis(port=self.port).lrange("celery", 0, -1)
        return sum(1 for raw in messages if json.loads(raw)["headers"]["task"] == task)


@pytest.fixture
def silent_broker() -> Iterator[SilentBroker]:
    broker = SilentBroker()
    yield broker
    broker.close()


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = ThrowawayRedis()
    yield server
    server.stop()


@pytest.fixture
def owner_client(login: Callable[..., Client], owner_admin: User) -> Client:
    return with_mfa(login(owner_admin), owner_admin)


def _approve(client: Client, delegation: Delegation, capture: Callable) -> None:
    with capture(execute=True):
        response = client.post(
            reverse("delegations:approve", args=[delegation.pk]), {"version": 1, "note": "ok"}
        )
    assert response.status_code == 302, response.content[:500]


def _revoke(client: Client, delegation: Delegation, capture: Callable) -> None:
    with capture(execute=True):
        response = client.post(
            reverse("delegations:revoke", args=[delegation.pk]), {"reason": "Contract ended"}
        )
    assert response.status_code == 302, response.content[:500]


def _active(delegation: Delegation, approved_by: User) -> Delegation:
    if delegation.status == Delegation.Status.REQUESTED:
        delegation_approve(delegation=delegation, approved_by=approved_by, with_mfa=True)
    delegation_mark_applying(delegation=delegation)
    return delegation_mark_active(delegation=delegation)


def _unpublished() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(done_at__isnull=True, dispatched_at__isnull=True))


def test_an_approval_makes_one_bounded_attempt_at_a_broker_that_never_answers(
    owner_client: Client,
    requested: Delegation,
    silent_broker: SilentBroker,
    settings,
    django_capture_on_commit_callbacks,
) -> None:
    settings.PORTAL_BROKER_PUBLISH_TIMEOUT_SECONDS = 0.2
    with broker_at(f"redis://127.0.0.1:{silent_broker.port}/0"):
        _approve(owner_client, requested, django_capture_on_commit_callbacks)
        ready = owner_client.get("/readyz")

    assert Delegation.objects.get(pk=requested.pk).status == Delegation.Status.APPROVED
    (message,) = _unpublished()
    assert message.last_error == "publish failed"
    # One connection for the publishes (the notification outbox, after the cloud outbox found
    # the broker silent, gives up at once), one for the probe: no retry schedule behind either.
    assert silent_broker.accepted == 2
    assert ready.status_code == 503
    assert "broker unreachable" in ready.json()["reasons"][0]


def test_decisions_with_nothing_listening_are_published_once_the_broker_is_up(
    owner_client: Client,
    requested: Delegation,
    make_request: Callable[..., Delegation],
    throwaway_redis: ThrowawayRedis,
    django_capture_on_commit_callbacks,
    owner_admin: User,
) -> None:
    active = _active(requested, owner_admin)
    other_role = CatalogRoleFactory(cloud_account=requested.catalog_role.cloud_account)
    second = make_request(catalog_role=other_role)
    OutboxMessage.objects.update(done_at=timezone.now())  # the set-up's own work, done
    with broker_at(throwaway_redis.url):
        _revoke(owner_client, active, django_capture_on_commit_callbacks)
        _approve(owner_client, second, django_capture_on_commit_callbacks)
        assert owner_client.get("/readyz").status_code == 503
        assert outbox_republish_due() == 0  # still down: nothing published, nothing lost

        throwaway_redis.start()
        assert owner_client.get("/readyz").status_code == 200
        assert outbox_republish_due() == 2

    assert Delegation.objects.get(pk=active.pk).status == Delegation.Status.REVOKING
    assert Delegation.objects.get(pk=second.pk).status == Delegation.Status.APPROVED
    assert _unpublished() == []
    assert throwaway_redis.queued() == 2


def test_a_broker_stopped_and_started_again_loses_nothing(
    owner_client: Client,
    requested: Delegation,
    throwaway_redis: ThrowawayRedis,
    django_capture_on_commit_callbacks,
    owner_admin: User,
) -> None:
    throwaway_redis.start()
    with broker_at(throwaway_redis.url):
        _approve(owner_client, requested, django_capture_on_commit_callbacks)
        assert throwaway_redis.queued() == 1
        active = _active(Delegation.objects.get(pk=requested.pk), owner_admin)

        throwaway_redis.stop()
        _revoke(owner_client, active, django_capture_on_commit_callbacks)
        down = owner_client.get("/readyz")
        (waiting,) = _unpublished()

        throwaway_redis.start()  # the same port, empty (no persistence)
        up = owner_client.get("/readyz")
        assert outbox_republish_due() == 1

    assert down.status_code == 503 and up.status_code == 200
    assert throwaway_redis.queued() == 1
    waiting.refresh_from_db()
    assert waiting.dispatched_at is not None and waiting.done_at is None
