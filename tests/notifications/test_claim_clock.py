"""A delivery's claim is timed by the database's clock, not by the worker's: a sending worker
whose clock runs behind does not shorten its claim (nor its renewals), and a dispatcher whose
clock runs ahead does not free a claim that still holds. Either would hand an email being sent
to a second worker, which would send it again.

As in the lease's test, one worker's clock (`timezone.now`, what its Python code reads) is set
off by more than a claim lasts, while the database keeps the real time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import transaction
from django.utils import timezone

from accounts.models import Organisation, User
from notifications import outbox, sending, services
from notifications.models import Delivery
from notifications.services import notify
from tests.notifications.test_outbox import notice

pytestmark = pytest.mark.django_db

# Beyond a whole claim: a clock this far off sees every claim it sets or compares with lapse.
SKEW = dt.timedelta(seconds=sending.claim_seconds() + 15)

Clock = Callable[[dt.timedelta], AbstractContextManager[None]]


@pytest.fixture
def clock_off_by(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """`with clock_off_by(offset):` this worker's clock reads the real time plus `offset`."""
    real_now = timezone.now

    @contextmanager
    def off_by(offset: dt.timedelta) -> Iterator[None]:
        with monkeypatch.context() as patch:
            patch.setattr(timezone, "now", lambda: real_now() + offset)
            yield

    return off_by


class MailServer(EmailBackend):
    """Runs `while_sending` as each email goes out: the dispatcher's turn, mid-send."""

    while_sending: ClassVar[Callable[[], None]] = staticmethod(lambda: None)

    def send_messages(self, messages: Any) -> int:
        for _ in messages:
            MailServer.while_sending()
        return super().send_messages(messages)


@pytest.fixture
def two_emails(
    company_a: Organisation, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    settings.EMAIL_BACKEND = f"{__name__}.MailServer"
    mail.outbox = []
    # A delivery the dispatcher frees is published again: that is the second worker's send.
    monkeypatch.setattr(services, "deliveries_publish", lambda **kwargs: True)
    monkeypatch.setattr(outbox, "_send", lambda delivery_ids: None)
    with transaction.atomic():
        for n in range(2):
            person = User.objects.create_user(email=f"clock{n}@company-a.example", password="x")
            notify(key=f"clock:{n}", notice=notice(), organisation=company_a, people=[person])
    return sorted(Delivery.objects.values_list("id", flat=True))


def _dispatcher_during_each_send(
    monkeypatch: pytest.MonkeyPatch, clock_off_by: Clock, offset: dt.timedelta
) -> list[int]:
    """While each email goes out, the dispatcher, its clock off by `offset`, frees the claims it
    thinks lapsed; how many it freed, per email."""
    freed: list[int] = []

    def dispatch() -> None:
        before = Delivery.objects.filter(status=Delivery.Status.SENDING).count()
        with clock_off_by(offset):
            outbox.deliveries_republish_due()
        freed.append(before - Delivery.objects.filter(status=Delivery.Status.SENDING).count())

    monkeypatch.setattr(MailServer, "while_sending", staticmethod(dispatch))
    return freed


def _sent_once(ids: list[int]) -> None:
    rows = Delivery.objects.filter(pk__in=ids)
    assert {(row.status, row.attempts) for row in rows} == {(Delivery.Status.SENT, 1)}
    assert len(mail.outbox) == len(ids)


def test_a_worker_whose_clock_runs_behind_keeps_its_claim_while_it_sends(
    two_emails: list[int], clock_off_by: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sending worker's clock is behind by more than a claim when it claims the batch and
    # when it renews the claim for the second email; the dispatcher reads the real time.
    freed = _dispatcher_during_each_send(monkeypatch, clock_off_by, dt.timedelta(0))

    with clock_off_by(-SKEW):
        outcomes = sending.deliveries_attempt_many(delivery_ids=two_emails, retry_countdown=None)

    assert freed == [0, 0]
    assert {attempt.outcome for attempt in outcomes.values()} == {"sent"}
    _sent_once(two_emails)


def test_a_dispatcher_whose_clock_runs_ahead_leaves_a_claim_that_holds(
    two_emails: list[int], clock_off_by: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    freed = _dispatcher_during_each_send(monkeypatch, clock_off_by, SKEW)

    outcomes = sending.deliveries_attempt_many(delivery_ids=two_emails, retry_countdown=None)

    assert freed == [0, 0]
    assert {attempt.outcome for attempt in outcomes.values()} == {"sent"}
    _sent_once(two_emails)
