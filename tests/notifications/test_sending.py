"""A chat delivery connects only to an address the SSRF guard checked (a name that answers
differently the second time, DNS rebinding, cannot steer it to an internal service), follows
no redirect, and a resolver that does not answer for a moment is retried like a timeout."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import transaction

from accounts.models import Organisation, User
from notifications import sending, services, webhook_urls
from notifications.events import NotificationEvent
from notifications.models import Channel, Delivery
from notifications.services import Notice, notify
from tests.notifications.conftest import Receiver

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"
REAL_GETADDRINFO = socket.getaddrinfo


def _info(address: str, port: int) -> list[Any]:
    return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]


@pytest.fixture
def production(settings: Any) -> None:
    settings.DEBUG = False
    settings.PORTAL_EMBEDDED = False
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 2.0


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "deliveries_publish", lambda **kwargs: True)


def _resolver(monkeypatch: pytest.MonkeyPatch, host: str, answer: Callable[[int], str]) -> None:
    """`host` resolves to `answer(port)` (which may raise); other names as usual."""

    def getaddrinfo(name: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if name == host:
            return _info(answer(int(port or 443)), int(port or 443))
        return REAL_GETADDRINFO(name, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _channel(company_a: Organisation, owner_admin: User, url: str) -> Channel:
    return services.channel_create(
        organisation=company_a,
        created_by=owner_admin,
        kind="webhook",
        name="Partner hook",
        url=url,
        events=["delegation.requested"],
    )


def _announce(company_a: Organisation) -> Delivery:
    with transaction.atomic():
        notify(
            key="evt:sending",
            notice=Notice(
                event=NotificationEvent.DELEGATION_REQUESTED,
                title="Company B requests ecs-admin",
                summary="Review it and decide.",
                link_path="/delegations/",
            ),
            organisation=company_a,
            people=[],
        )
    return Delivery.objects.get(event="delegation.requested", channel__isnull=False)


class Listener:
    """A TCP listener that records each connection (by the address it reached) and hangs up."""

    def __init__(self, address: str, port: int = 0) -> None:
        self.socket = socket.socket()
        self.socket.bind((address, port))
        self.socket.listen(5)
        self.port = int(self.socket.getsockname()[1])
        self.accepted: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _peer = self.socket.accept()
            except OSError:
                return
            self.accepted.append(connection.getsockname()[0])
            connection.close()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def listeners() -> Iterator[tuple[Listener, Listener]]:
    """One listener standing for the public address the guard approves (127.0.0.2) and one for
    the internal service a rebinding name points at afterwards (127.0.0.1), on the same port."""
    internal = Listener("127.0.0.1")
    checked = Listener("127.0.0.2", internal.port)
    try:
        yield checked, internal
    finally:
        checked.close()
        internal.close()


def test_a_rebinding_name_is_connected_to_at_the_address_the_guard_checked(
    production: None,
    monkeypatch: pytest.MonkeyPatch,
    company_a: Organisation,
    owner_admin: User,
    listeners: tuple[Listener, Listener],
) -> None:
    """The name answers an approved address to the check and 127.0.0.1 to any later lookup
    (TTL 0): the worker still connects to the approved one."""
    checked, internal = listeners
    # 127.0.0.2 stands for a public address, so the test needs no outside network.
    monkeypatch.setattr(webhook_urls, "_public", lambda address: address == "127.0.0.2")
    lookups = {"n": 0}

    def rebinding(port: int) -> str:
        lookups["n"] += 1
        # 1: channel_create's check; 2: the send's check; any more: a second lookup.
        return "127.0.0.2" if lookups["n"] <= 2 else "127.0.0.1"

    _resolver(monkeypatch, "rebind.attacker.example", rebinding)
    _channel(company_a, owner_admin, f"https://rebind.attacker.example:{checked.port}/hook")
    delivery = _announce(company_a)

    attempt = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=lambda ra: 30.0)

    assert internal.accepted == []
    assert checked.accepted == ["127.0.0.2"]
    assert lookups["n"] == 2  # the send looked the name up once
    assert attempt.outcome == "retry"  # the listener hung up before TLS: a transient failure


def test_the_next_address_is_tried_when_the_first_refuses_the_connection(
    monkeypatch: pytest.MonkeyPatch, company_a: Organisation, owner_admin: User, receiver: Receiver
) -> None:
    """Like a connection to the name would: nothing was sent to the first, so nothing twice.
    The request still names the host, not the address it went to."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    refusing = socket.socket()
    refusing.bind(("127.0.0.3", port))  # bound, not listening: the connection is refused

    def two_addresses(name: str, p: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if name == "hooks.example.com":
            return _info("127.0.0.3", int(p)) + _info("127.0.0.1", int(p))
        return REAL_GETADDRINFO(name, p, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    try:
        _channel(company_a, owner_admin, f"http://hooks.example.com:{port}/hook?key=k1")
        delivery = _announce(company_a)
        attempt = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None)
    finally:
        refusing.close()
    assert attempt.outcome == "sent"
    assert [r.path for r in receiver.received] == ["/hook?key=k1"]
    assert receiver.received[0].headers["Host"] == f"hooks.example.com:{port}"


def test_a_redirect_is_not_followed(
    company_a: Organisation, owner_admin: User, receiver: Receiver
) -> None:
    receiver.answer((307, "", {"Location": "/elsewhere"}, 0.0), (200, "ok", {}, 0.0))
    _channel(company_a, owner_admin, receiver.url)
    delivery = _announce(company_a)
    attempt = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None)
    assert [r.path for r in receiver.received] == ["/hook?key=k1"]
    assert attempt.outcome == "failed"


def test_a_resolver_that_does_not_answer_for_a_moment_is_retried_and_counted_only_when_given_up(
    production: None, monkeypatch: pytest.MonkeyPatch, company_a: Organisation, owner_admin: User
) -> None:
    """EAI_AGAIN is the resolver's "try again": the delivery waits for its retry, like after a
    timeout or a 500, and only a give-up after the last retry counts against the channel."""
    dns_down = {"now": False}

    def blip(port: int) -> str:
        if dns_down["now"]:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return PUBLIC

    _resolver(monkeypatch, "hooks.example.com", blip)
    channel = _channel(company_a, owner_admin, "https://hooks.example.com/services/T0/B0/xyz")
    delivery = _announce(company_a)
    dns_down["now"] = True

    attempt = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=lambda ra: 30.0)

    delivery.refresh_from_db()
    channel.refresh_from_db()
    assert attempt.outcome == "retry"
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.last_error == sending.DNS_UNANSWERED_TEXT
    assert channel.consecutive_failures == 0
    last = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None)
    channel.refresh_from_db()
    assert last.outcome == "failed"
    assert channel.consecutive_failures == 1


def test_a_name_that_does_not_exist_any_more_is_given_up_at_once(
    production: None, monkeypatch: pytest.MonkeyPatch, company_a: Organisation, owner_admin: User
) -> None:
    """NXDOMAIN is the name's authoritative answer, not a resolver failing: retrying for the
    next half hour would not make the hook exist again, and an admin may retry the delivery."""
    gone = {"now": False}

    def removed(port: int) -> str:
        if gone["now"]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return PUBLIC

    _resolver(monkeypatch, "hooks.example.com", removed)
    _channel(company_a, owner_admin, "https://hooks.example.com/services/T0/B0/xyz")
    delivery = _announce(company_a)
    gone["now"] = True
    attempt = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=lambda ra: 30.0)
    assert attempt.outcome == "failed"
