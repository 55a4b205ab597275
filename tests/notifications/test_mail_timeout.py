"""One email's send cannot outlast the claim it is sent under, so the dispatcher never hands an
email still being sent to a second worker: each wait on the mail server is given up on after
EMAIL_TIMEOUT, which the settings keep well within the claim (and refuse otherwise), and the
whole send is cut off when it takes longer than its budget, half the claim (a server that
answers every command just within the timeout would otherwise hold it for as long as it likes).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction

from accounts.models import Organisation, User
from notifications import sending, services
from notifications.models import Delivery
from notifications.services import notify
from tests.notifications.conftest import loopback_server
from tests.notifications.test_outbox import notice

ROOT = Path(__file__).resolve().parents[2]


def test_the_mail_server_is_given_up_on_well_within_a_claim() -> None:
    assert settings.EMAIL_TIMEOUT is not None
    assert 0 < settings.EMAIL_TIMEOUT * 4 <= settings.PORTAL_NOTIFICATION_CLAIM_SECONDS
    smtp = mail.get_connection("django.core.mail.backends.smtp.EmailBackend")
    assert smtp.timeout == settings.EMAIL_TIMEOUT


def settings_with(name: str, value: str, *, show: str = "") -> subprocess.CompletedProcess[str]:
    """The settings loaded in a fresh process with the variable `name` set to `value`; prints
    the setting `show` (by default `name`)."""
    env = {**os.environ, name: value, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"from django.conf import settings; print(settings.{show or name})",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("email_timeout", ["120", "31", "0"])
def test_settings_refuse_a_mail_timeout_a_send_could_outlast_a_claim_with(
    email_timeout: str,
) -> None:
    refused = settings_with("EMAIL_TIMEOUT", email_timeout)
    assert refused.returncode != 0
    assert "ImproperlyConfigured: EMAIL_TIMEOUT must be" in refused.stderr


def test_settings_take_a_mail_timeout_well_within_the_claim() -> None:
    taken = settings_with("EMAIL_TIMEOUT", "20")
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.strip() == "20.0"


def test_a_mail_server_from_the_environment_is_reached_through_connections_a_send_can_cut() -> None:
    configured = settings_with(
        "EMAIL_URL", "smtp+tls://user:pw@smtp.example.com:587", show="EMAIL_BACKEND"
    )
    assert configured.returncode == 0, configured.stderr
    assert configured.stdout.strip() == "core.mail.EmailBackend"


@pytest.fixture
def silent_mail_server() -> Iterator[int]:
    """A mail server that accepts the connection and never says a word; its port."""
    done = threading.Event()

    def say_nothing(conversation: socket.socket) -> None:
        done.wait(30)
        conversation.close()

    with loopback_server(say_nothing) as port:
        try:
            yield port
        finally:
            done.set()


@pytest.mark.django_db
def test_a_mail_server_that_stops_answering_costs_one_timeout_and_the_email_waits_for_its_retry(
    company_a: Organisation, silent_mail_server: int, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", silent_mail_server
    settings.EMAIL_TIMEOUT = 0.5
    person = User.objects.create_user(email="quiet@company-a.example", password="x")
    with transaction.atomic():
        notify(key="quiet", notice=notice(), organisation=company_a, people=[person])
    delivery = Delivery.objects.get()

    started = time.monotonic()
    attempt = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=lambda wait: 5.0)

    assert time.monotonic() - started < 5
    assert attempt.outcome == "retry"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.last_error in {"TimeoutError", "SMTPServerDisconnected"}


@dataclass
class SlowMailServer:
    """A mail server on loopback that answers every command, each line of each answer
    `pauses[n]` seconds after the one before on its n-th connection (the last pause goes on
    for later ones): every wait well within EMAIL_TIMEOUT, a whole send far longer."""

    pauses: list[float]
    connections: int = 0
    # The messages whose every line it received, in order (the 250 that accepts one follows).
    received: list[bytes] = field(default_factory=list)
    # A client hung up in the middle of a conversation (not after QUIT).
    hung_up: threading.Event = field(default_factory=threading.Event)

    def converse(self, conversation: socket.socket) -> None:
        pause = self.pauses[min(self.connections, len(self.pauses) - 1)]
        self.connections += 1
        commands = conversation.makefile("rb")

        def answer(*lines: bytes) -> None:
            for line in lines:
                time.sleep(pause)
                conversation.sendall(line + b"\r\n")

        try:
            answer(b"220 slow.example ESMTP")
            while command := commands.readline():
                verb = command[:4].upper()
                if verb == b"EHLO":
                    answer(b"250-slow.example", b"250-8BITMIME", b"250-SMTPUTF8", b"250 HELP")
                elif verb == b"DATA":
                    answer(b"354 End data with <CR><LF>.<CR><LF>")
                    lines = []
                    while (line := commands.readline()) not in (b".\r\n", b""):
                        lines.append(line)
                    if not line:
                        break
                    self.received.append(b"".join(lines))
                    answer(b"250 Queued")
                elif verb == b"QUIT":
                    answer(b"221 Bye")
                    return
                else:
                    answer(b"250 OK")
            self.hung_up.set()
        except OSError:
            self.hung_up.set()
        finally:
            commands.close()
            conversation.close()


@pytest.fixture
def slow_mail_server(settings: Any) -> Iterator[SlowMailServer]:
    """A `SlowMailServer` taking half a second per line of every answer on its first
    connection and none on later ones, with a claim of 4 s (a send's budget of 2 s) and
    EMAIL_TIMEOUT of 1 s: a send on the first connection waits ten times half a second, each
    wait within the timeout, the whole longer than the claim."""
    server = SlowMailServer(pauses=[0.5, 0.0])
    with loopback_server(server.converse) as port:
        settings.EMAIL_BACKEND = "core.mail.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.PORTAL_NOTIFICATION_CLAIM_SECONDS = 4
        settings.EMAIL_TIMEOUT = 1.0
        yield server


def _emails_to(company_a: Organisation, count: int) -> list[tuple[User, Delivery]]:
    people = [
        User.objects.create_user(email=f"slow{n}@company-a.example", password="x")
        for n in range(count)
    ]
    with transaction.atomic():
        for person in people:
            notify(
                key=f"slow:{person.pk}", notice=notice(), organisation=company_a, people=[person]
            )
    return [(person, Delivery.objects.get(recipient=person)) for person in people]


# What a send cut off after its budget, half the fixtures' claim of 4 s, leaves as its error.
CUT_OFF_AFTER_2_SECONDS = sending.CUT_OFF_TEXT % {"seconds": 2}


def first_try_cut_off(delivery: Delivery) -> None:
    """Try `delivery` on a server too slow for its budget: cut off before its claim runs out
    (unbounded, the send would outlast it), and left pending for a retry with its one try."""
    started = time.monotonic()
    attempt = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=lambda wait: 5.0)
    assert time.monotonic() - started < settings.PORTAL_NOTIFICATION_CLAIM_SECONDS
    assert attempt.outcome == "retry"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.PENDING, 1)
    assert delivery.last_error == CUT_OFF_AFTER_2_SECONDS


@pytest.mark.django_db
def test_a_mail_server_answering_every_command_slowly_is_cut_off_within_the_claim_and_retried(
    company_a: Organisation, slow_mail_server: SlowMailServer
) -> None:
    [(person, delivery)] = _emails_to(company_a, 1)

    # Unbounded, the send would take 5 s, past the claim: cut off mid-conversation, the
    # server left with no message.
    first_try_cut_off(delivery)
    assert slow_mail_server.hung_up.wait(5)
    assert slow_mail_server.received == []

    # The retry (the server answers at once now) sends it, once.
    retried = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=lambda wait: 5.0)

    assert retried.outcome == "sent"
    assert len(slow_mail_server.received) == 1
    assert person.email.encode() in slow_mail_server.received[0]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 2)


@pytest.mark.django_db
def test_a_batch_cut_off_mid_email_sends_the_rest_over_a_connection_of_their_own(
    company_a: Organisation, slow_mail_server: SlowMailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's shared connection is the slow one: the email it was sending is cut off, the
    connection dropped, and the next email is sent over a new connection within its own budget
    (not failed on the dead one)."""
    monkeypatch.setattr(services, "deliveries_publish", lambda **kwargs: True)
    [(first, slowed), (second, after)] = _emails_to(company_a, 2)

    outcomes = sending.deliveries_attempt_many(
        delivery_ids=[slowed.pk, after.pk], retry_countdown=lambda wait: 5.0
    )

    assert {pk: attempt.outcome for pk, attempt in outcomes.items()} == {
        slowed.pk: "retry",
        after.pk: "sent",
    }
    assert slow_mail_server.hung_up.wait(5)
    assert len(slow_mail_server.received) == 1
    assert second.email.encode() in slow_mail_server.received[0]
    slowed.refresh_from_db()
    assert slowed.status == Delivery.Status.PENDING
    assert slowed.last_error == CUT_OFF_AFTER_2_SECONDS

    assert sending.delivery_attempt(delivery_id=slowed.pk, retry_countdown=None).outcome == "sent"
    # Each person's email went once.
    assert [
        (first.email.encode() in message, second.email.encode() in message)
        for message in slow_mail_server.received
    ] == [(False, True), (True, False)]
