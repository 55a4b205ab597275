"""One email's send cannot outlast the claim it is sent under: the mail server is given up on
after EMAIL_TIMEOUT, which the settings keep well within the claim (and refuse otherwise), so
the dispatcher never hands an email still being sent to a second worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction

from accounts.models import Organisation, User
from notifications import sending
from notifications.models import Delivery
from notifications.services import notify
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


@pytest.fixture
def silent_mail_server() -> Iterator[int]:
    """A mail server that accepts the connection and never says a word; its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


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
