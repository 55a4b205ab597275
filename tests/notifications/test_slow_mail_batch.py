"""A batch of emails on a slow mail server: the batch keeps its claim as it goes, so while it
still works through its emails no other worker takes any of them, and no email goes twice.

The clock is a fake the slow server moves on with each email (and the claims' ends with it, as
they are timed by the database's clock); the test asserts nothing about real time."""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organisation, User
from notifications import outbox, sending, services
from notifications.models import Delivery
from notifications.outbox import DELIVER_MANY_SIZE
from notifications.services import notify
from tests.notifications.test_outbox import notice

pytestmark = pytest.mark.django_db

# Each email takes this long on the slow server: a batch of 20 outlasts one claim many times.
SEND_SECONDS = 30


class FakeClock:
    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)
        # Claims are timed by the database's clock, which the test cannot move: the time
        # passing brings the end of every claim that much closer instead.
        Delivery.objects.exclude(claimed_until=None).update(
            claimed_until=F("claimed_until") - dt.timedelta(seconds=seconds)
        )


class SlowMailServer(EmailBackend):
    """The test's mail server: every email takes `SEND_SECONDS` of the fake clock, and
    `while_sending` runs during the send (another worker's turn)."""

    clock: ClassVar[FakeClock | None] = None
    while_sending: ClassVar[Callable[[int], None]] = staticmethod(lambda sent: None)
    sent: ClassVar[int] = 0

    def send_messages(self, messages: Any) -> int:
        for _ in messages:
            assert SlowMailServer.clock is not None
            SlowMailServer.clock.advance(SEND_SECONDS)
            SlowMailServer.sent += 1
            SlowMailServer.while_sending(SlowMailServer.sent)
        return super().send_messages(messages)


@pytest.fixture
def slow_mail(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FakeClock:
    clock = FakeClock()
    fake_timezone = types.SimpleNamespace(now=clock)
    monkeypatch.setattr(sending, "timezone", fake_timezone)
    monkeypatch.setattr(outbox, "timezone", fake_timezone)
    monkeypatch.setattr(SlowMailServer, "clock", clock)
    monkeypatch.setattr(SlowMailServer, "sent", 0)
    settings.EMAIL_BACKEND = f"{__name__}.SlowMailServer"
    mail.outbox = []
    return clock


def _announce_to(company_a: Organisation, people: list[User]) -> list[int]:
    with transaction.atomic():
        for index, person in enumerate(people):
            notify(key=f"slow:{index}", notice=notice(), organisation=company_a, people=[person])
    return sorted(Delivery.objects.values_list("id", flat=True))


def _deliver(ids: list[int]) -> dict[int, sending.Attempt]:
    """One worker's `deliver_many` of the batch."""
    return sending.deliveries_attempt_many(delivery_ids=ids, retry_countdown=lambda wait: 5.0)


def _while_sending(monkeypatch: pytest.MonkeyPatch, turn: Callable[[int], None]) -> None:
    monkeypatch.setattr(SlowMailServer, "while_sending", staticmethod(turn))


def test_a_slow_batch_keeps_its_claim_and_no_email_goes_twice(
    company_a: Organisation, slow_mail: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "deliveries_publish", lambda **kwargs: True)
    republished: list[int] = []
    monkeypatch.setattr(outbox, "_send", republished.extend)
    people = [
        User.objects.create_user(email=f"person{n}@company-a.example", password="x")
        for n in range(DELIVER_MANY_SIZE)
    ]
    ids = _announce_to(company_a, people)
    assert len(ids) == DELIVER_MANY_SIZE
    second_worker: list[dict[int, sending.Attempt]] = []

    def another_worker_takes_its_turn(sent: int) -> None:
        # Well past one claim into the batch: the dispatcher looks for claims that lapsed, and
        # a second delivery of the same batch (the broker gave it to another worker) runs.
        if sent == 6 and not second_worker:
            second_worker.append({})
            outbox.deliveries_republish_due()
            second_worker[0] = _deliver(ids)

    _while_sending(monkeypatch, another_worker_takes_its_turn)

    first_worker = _deliver(ids)

    assert second_worker == [{}]
    assert republished == []
    assert {attempt.outcome for attempt in first_worker.values()} == {"sent"}
    assert sorted(first_worker) == ids
    recipients = sorted(message.to[0] for message in mail.outbox)
    assert recipients == sorted(person.email for person in people)
    rows = Delivery.objects.filter(pk__in=ids)
    assert {(row.status, row.attempts) for row in rows} == {(Delivery.Status.SENT, 1)}
    assert all(row.claimed_until is None for row in rows)


def test_a_batch_sends_nothing_another_worker_took_over_after_its_claim_lapsed(
    company_a: Organisation, slow_mail: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single email slower than a whole claim (the batch cannot renew while it waits; with
    SMTP the send's deadline cuts it off first, this fake mail server has no connection to
    cut): the dispatcher frees the rest of the batch, another worker sends them, and the first
    worker skips every one it no longer holds."""
    monkeypatch.setattr(services, "deliveries_publish", lambda **kwargs: True)
    monkeypatch.setattr(outbox, "_send", lambda delivery_ids: None)
    people = [
        User.objects.create_user(email=f"person{n}@company-a.example", password="x")
        for n in range(4)
    ]
    ids = _announce_to(company_a, people)
    second_worker: list[dict[int, sending.Attempt]] = []

    def hangs_then_another_worker_takes_over(sent: int) -> None:
        if sent == 1:
            slow_mail.advance(sending.claim_seconds())
            second_worker.append({})
            assert outbox.deliveries_republish_due() == len(ids)
            second_worker[0] = _deliver(ids)

    _while_sending(monkeypatch, hangs_then_another_worker_takes_over)

    first_worker = _deliver(ids)

    # The first email was on its way when the claim lapsed: both workers sent it (the claim
    # bounds a single send; the others went once, by the second worker).
    assert sorted(first_worker) == [ids[0]]
    assert sorted(second_worker[0]) == ids
    recipients = sorted(message.to[0] for message in mail.outbox)
    assert recipients == sorted([people[0].email] + [person.email for person in people])
    assert set(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        Delivery.Status.SENT
    }
