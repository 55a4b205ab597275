"""A chat or webhook post cannot outlast the claim it is sent under either: each wait on the
receiver is given up on after PORTAL_WEBHOOK_TIMEOUT_SECONDS, which the settings keep well
within the claim (and refuse otherwise), and the whole post is cut off when it takes longer
than its budget, half the claim (`requests` times each read, so a receiver that trickles its
answer, each byte within the timeout, would otherwise hold it for as long as it likes)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction

from accounts.models import Organisation, User
from notifications import sending, services
from notifications.models import Delivery
from notifications.services import notify
from notifications.signing import DELIVERY_HEADER
from tests.notifications.conftest import loopback_server
from tests.notifications.test_mail_timeout import first_try_cut_off, settings_with
from tests.notifications.test_outbox import notice


@pytest.mark.parametrize("webhook_timeout", ["31", "0", "-1"])
def test_settings_refuse_a_webhook_timeout_a_post_could_outlast_a_claim_with(
    webhook_timeout: str,
) -> None:
    refused = settings_with("PORTAL_WEBHOOK_TIMEOUT_SECONDS", webhook_timeout)
    assert refused.returncode != 0
    assert "ImproperlyConfigured: PORTAL_WEBHOOK_TIMEOUT_SECONDS must be" in refused.stderr


def test_settings_take_a_webhook_timeout_well_within_the_claim() -> None:
    taken = settings_with("PORTAL_WEBHOOK_TIMEOUT_SECONDS", "20")
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.strip() == "20.0"


def test_the_receiver_is_given_up_on_well_within_a_claim() -> None:
    timeout = settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS
    assert 0 < timeout * 4 <= settings.PORTAL_NOTIFICATION_CLAIM_SECONDS


@dataclass
class TricklingReceiver:
    """A webhook receiver on loopback that answers 200 to every post, one line of its answer's
    head and then one byte of its body `pauses[n]` seconds after the other on its n-th
    connection (the last pause goes on for later ones)."""

    pauses: list[float]
    url: str = ""
    # The delivery id of every post whose whole body it read.
    posts: list[str] = field(default_factory=list)
    # A client hung up before the whole answer was sent.
    hung_up: threading.Event = field(default_factory=threading.Event)

    def converse(self, conversation: socket.socket) -> None:
        pause = self.pauses[min(len(self.posts), len(self.pauses) - 1)]
        request = conversation.makefile("rb")
        try:
            head = {}
            while (line := request.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                head[name.strip().lower()] = value.strip()
            request.read(int(head.get("content-length", 0)))
            self.posts.append(head.get(DELIVERY_HEADER.lower(), ""))
            body = b"{}" + b" " * 10
            answer = [b"HTTP/1.1 200 OK\r\n", b"Content-Length: %d\r\n" % len(body), b"\r\n"]
            for piece in answer + [bytes([byte]) for byte in body]:
                time.sleep(pause)
                conversation.sendall(piece)
        except OSError:
            self.hung_up.set()
        finally:
            request.close()
            conversation.close()


@pytest.fixture
def trickling_receiver(settings: Any) -> Iterator[TricklingReceiver]:
    """A `TricklingReceiver` taking half a second per piece of its answer on its first
    connection and none on later ones, with a claim of 4 s (a send's budget of 2 s) and a
    webhook timeout of 1 s: the first post waits 15 times half a second, each wait within the
    timeout, the whole longer than the claim."""
    # A loopback receiver is allowed only where the portal runs embedded or in DEBUG.
    settings.PORTAL_EMBEDDED = True
    settings.PORTAL_NOTIFICATION_CLAIM_SECONDS = 4
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 1.0
    receiver = TricklingReceiver(pauses=[0.5, 0.0])
    with loopback_server(receiver.converse) as port:
        receiver.url = f"http://127.0.0.1:{port}/hook"
        yield receiver


@pytest.mark.django_db
def test_a_receiver_trickling_its_answer_is_cut_off_within_the_claim_and_retried(
    company_a: Organisation,
    owner_admin: User,
    trickling_receiver: TricklingReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "deliveries_publish", lambda **kwargs: True)
    channel = services.channel_create(
        organisation=company_a,
        created_by=owner_admin,
        kind="webhook",
        name="Slow hook",
        url=trickling_receiver.url,
        events=["delegation.requested"],
    )
    with transaction.atomic():
        notify(key="trickle", notice=notice(), organisation=company_a, people=[])
    delivery = Delivery.objects.get(channel=channel)

    # Unbounded, the post would take 7.5 s, past the claim: cut off mid-answer.
    first_try_cut_off(delivery)
    assert trickling_receiver.hung_up.wait(5)

    retried = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=lambda wait: 5.0)

    # The receiver read the first post before its answer was cut off; the retry carries the
    # same delivery id, so it can tell the second for the same message.
    assert retried.outcome == "sent"
    assert trickling_receiver.posts == [f"delivery-{delivery.pk}"] * 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 2)
