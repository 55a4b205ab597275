"""A chat delivery whose host the resolver does not answer for a moment is retried like a
timeout; a name that does not exist is given up."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from accounts.models import Organisation, User
from notifications import sending, services
from notifications.events import NotificationEvent
from notifications.models import Channel, Delivery
from notifications.services import Notice, notify

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
