"""The notification outbox: rows written with the event, published after the commit, sent by
the worker exactly once per recipient x channel, retried within limits, visible when failed,
and never lost when the broker is down or a worker dies mid-send."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.db import transaction
from django.utils import timezone

from accounts.models import Organisation, User
from notifications import outbox, sending, services, tasks
from notifications.events import NotificationEvent
from notifications.models import Channel, Delivery
from notifications.services import Notice, notify
from notifications.signing import SIGNATURE_HEADER, webhook_signature_valid
from portal.celery import app as celery_app
from tests.core.test_after_response import serving_a_request
from tests.notifications.conftest import Receiver

pytestmark = pytest.mark.django_db

SECRET = "SECwebhook-secret-1"


class FakeBroker:
    """Stands in for the broker: records what was published (or fails like a dead one)."""

    def __init__(self) -> None:
        self.fail = False
        self.sent: list[int] = []

    def send(self, delivery_ids: list[int]) -> None:
        if self.fail:
            raise ConnectionRefusedError("broker down")
        self.sent.extend(delivery_ids)


@pytest.fixture
def tasks_sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The tasks published by name, with the broker and eager mode out of the way."""

    sent: list[tuple[str, Any]] = []
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setattr(outbox, "publish_on_kept_connection", lambda app, publish: publish(None))
    monkeypatch.setattr(
        celery_app, "send_task", lambda name, args, **kwargs: sent.append((name, args))
    )
    return sent


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> FakeBroker:
    fake = FakeBroker()
    monkeypatch.setattr(outbox, "_send", fake.send)
    return fake


def notice(link: str = "/delegations/") -> Notice:
    return Notice(
        event=NotificationEvent.DELEGATION_REQUESTED,
        title="Company B requests ecs-admin",
        summary="Review it and decide.",
        link_path=link,
        facts=(("Role", "ecs-admin"),),
    )


@pytest.fixture
def channel(company_a: Organisation, owner_admin: User, receiver: Receiver) -> Channel:
    return services.channel_create(
        organisation=company_a,
        created_by=owner_admin,
        kind="webhook",
        name="Ops webhook",
        url=receiver.url,
        secret=SECRET,
        events=["delegation.requested"],
    )


def announce(company_a: Organisation, people: list[User], key: str = "evt:1") -> list[str]:
    with transaction.atomic():
        return notify(key=key, notice=notice(), organisation=company_a, people=people)


@pytest.mark.django_db(transaction=True)
def test_notify_needs_the_event_transaction(company_a: Organisation, owner_admin: User) -> None:
    with pytest.raises(RuntimeError):
        notify(key="k", notice=notice(), organisation=company_a, people=[owner_admin])


def test_one_row_per_recipient_and_channel_published_after_the_commit(
    company_a: Organisation,
    owner_admin: User,
    channel: Channel,
    published: FakeBroker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        keys = announce(company_a, [owner_admin, owner_admin])
        assert published.sent == []  # nothing before the commit
    rows = Delivery.objects.filter(idempotency_key__in=keys)
    assert rows.count() == 2
    assert {(r.recipient_id, r.channel_id) for r in rows} == {
        (owner_admin.pk, None),
        (None, channel.pk),
    }
    assert sorted(published.sent) == sorted(r.pk for r in rows)


def test_in_a_web_request_they_are_published_once_the_response_is_sent(
    company_a: Organisation,
    owner_admin: User,
    published: FakeBroker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with serving_a_request():
        with django_capture_on_commit_callbacks(execute=True):
            keys = announce(company_a, [owner_admin])
        # Committed: the person's page goes first, the broker after it.
        assert published.sent == []
    (row,) = Delivery.objects.filter(idempotency_key__in=keys)
    assert published.sent == [row.pk] and row.dispatched_at is not None


def test_the_same_event_twice_writes_nothing_more(
    company_a: Organisation,
    owner_admin: User,
    channel: Channel,
    published: FakeBroker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        announce(company_a, [owner_admin])
    with django_capture_on_commit_callbacks(execute=True):
        announce(company_a, [owner_admin])
    assert Delivery.objects.count() == 2
    assert len(published.sent) == 2  # the repeat published nothing new


def test_a_rolled_back_event_sends_nothing(
    company_a: Organisation, owner_admin: User, channel: Channel
) -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        notify(key="k", notice=notice(), organisation=company_a, people=[owner_admin])
        1 / 0  # noqa: B018
    assert Delivery.objects.count() == 0


def test_broker_down_leaves_the_rows_for_the_dispatcher_which_sends_once_later(
    company_a: Organisation,
    owner_admin: User,
    channel: Channel,
    published: FakeBroker,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    published.fail = True
    with django_capture_on_commit_callbacks(execute=True):
        announce(company_a, [owner_admin])  # the decision itself succeeds
    assert set(Delivery.objects.values_list("dispatched_at", flat=True)) == {None}
    published.fail = False
    assert outbox.deliveries_republish_due() == 2
    assert outbox.deliveries_republish_due() == 0  # published recently: not again
    for delivery_id in list(published.sent) * 2:  # the broker delivers each twice
        sending.delivery_attempt(delivery_id=delivery_id, retry_countdown=None)
    assert len(mail.outbox) == 1
    assert len(receiver.received) == 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_the_generic_webhook_arrives_signed_and_a_receiver_can_verify_it(
    company_a: Organisation, channel: Channel, receiver: Receiver
) -> None:
    announce(company_a, [])
    delivery = Delivery.objects.get(channel=channel)
    assert sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None).outcome == "sent"
    (got,) = receiver.received
    assert webhook_signature_valid(
        secret=SECRET, body=got.body, header=got.headers[SIGNATURE_HEADER]
    )
    body = json.loads(got.body)
    assert body["event"] == "delegation.requested" and body["organisation"] == "Company A"
    assert body["url"].endswith("/delegations/")


def test_a_worker_killed_mid_send_is_sent_again_after_its_claim_lapses(
    company_a: Organisation, channel: Channel, receiver: Receiver, published: FakeBroker
) -> None:
    announce(company_a, [])
    delivery = Delivery.objects.get(channel=channel)
    # The worker claimed it, then died before posting.
    Delivery.objects.filter(pk=delivery.pk).update(
        status="sending", claimed_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert (
        sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None).outcome == "skipped"
    )
    assert outbox.deliveries_republish_due() == 1
    assert sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None).outcome == "sent"
    assert len(receiver.received) == 1


def test_a_500_is_retried_with_backoff_then_sent_and_never_sent_again(
    company_a: Organisation, channel: Channel, receiver: Receiver
) -> None:
    receiver.answer((500, "boom", {}, 0.0), (200, "{}", {}, 0.0))
    announce(company_a, [])
    delivery = Delivery.objects.get(channel=channel)
    first = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=lambda ra: 12.0)
    assert first.outcome == "retry" and first.retry_after == 12.0
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.last_error == "HTTP 500"
    assert sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None).outcome == "sent"
    assert (
        sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None).outcome == "skipped"
    )
    assert len(receiver.received) == 2


def test_429_retry_after_is_honoured(
    company_a: Organisation, channel: Channel, receiver: Receiver
) -> None:
    receiver.answer((429, "", {"Retry-After": "90"}, 0.0))
    announce(company_a, [])
    delivery = Delivery.objects.get(channel=channel)
    waits: list[float | None] = []

    def countdown(retry_after: float | None) -> float:
        waits.append(retry_after)
        return tasks.delivery_countdown(0, retry_after)

    attempt = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=countdown)
    assert waits == [90.0] and attempt.retry_after is not None and attempt.retry_after >= 90.0


def test_a_hanging_receiver_times_out_and_is_retried(
    settings: Any, company_a: Organisation, channel: Channel, receiver: Receiver
) -> None:
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.answer((200, "{}", {}, 1.0))
    announce(company_a, [])
    delivery = Delivery.objects.get(channel=channel)
    attempt = sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=lambda ra: 5.0)
    assert attempt.outcome == "retry"
    delivery.refresh_from_db()
    assert "timeout" in delivery.last_error


def test_dingtalk_errcode_is_retried_then_given_up_visibly_and_retryable_by_an_admin(
    company_a: Organisation, owner_admin: User, receiver: Receiver, published: FakeBroker
) -> None:
    receiver.answer((200, '{"errcode": 310000, "errmsg": "sign not match"}', {}, 0.0))
    channel = services.channel_create(
        organisation=company_a,
        created_by=owner_admin,
        kind="dingtalk",
        name="DingTalk",
        url=receiver.url,
        secret="SECding-secret-1",
        events=["delegation.requested"],
    )
    announce(company_a, [])
    delivery = Delivery.objects.get(channel=channel)
    assert (
        sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=lambda ra: 1.0).outcome
        == "retry"
    )
    assert (
        sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None).outcome == "failed"
    )
    delivery.refresh_from_db()
    assert delivery.status == "failed" and "310000" in delivery.last_error
    query = receiver.received[0].path
    assert "timestamp=" in query and "sign=" in query
    receiver.answer((200, '{"errcode": 0}', {}, 0.0))
    with transaction.atomic():
        services.delivery_retry(delivery=delivery, retried_by=owner_admin)
    assert sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None).outcome == "sent"


def test_the_deliver_task_retries_then_gives_up_on_its_last_try(
    company_a: Organisation, channel: Channel, receiver: Receiver
) -> None:
    receiver.answer((503, "", {}, 0.0))
    announce(company_a, [])
    delivery = Delivery.objects.get(channel=channel)
    with pytest.raises(Retry):
        tasks.deliver.apply(args=[delivery.pk], throw=True)
    Delivery.objects.filter(pk=delivery.pk).update(available_at=timezone.now())
    result = tasks.deliver.apply(args=[delivery.pk], retries=tasks.DELIVERY_MAX_RETRIES)
    assert result.get() == "failed"


def test_a_channel_that_keeps_failing_is_marked_unhealthy_and_its_admins_told_once(
    company_a: Organisation,
    owner_admin: User,
    channel: Channel,
    receiver: Receiver,
    published: FakeBroker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    receiver.answer((500, "", {}, 0.0))
    for number in range(sending.UNHEALTHY_AFTER_FAILURES + 2):
        announce(company_a, [], key=f"evt:{number}")
    for delivery in Delivery.objects.filter(channel=channel).order_by("id"):
        with django_capture_on_commit_callbacks(execute=True):
            sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None)
    channel.refresh_from_db()
    assert not channel.is_healthy
    warnings = Delivery.objects.filter(event="channel.unhealthy")
    assert [w.recipient_email for w in warnings] == [owner_admin.email]
    assert not warnings.filter(channel__isnull=False).exists()  # email only: no loop


def test_security_notices_ignore_preferences_and_others_honour_them(
    company_a: Organisation, owner_admin: User
) -> None:
    services.preferences_update(user=owner_admin, muted=["delegation.requested"])
    announce(company_a, [owner_admin])
    assert not Delivery.objects.filter(recipient=owner_admin).exists()
    with transaction.atomic():
        notify(
            key="sec",
            notice=Notice(
                event=NotificationEvent.CREDENTIALS_ISSUED, title="t", summary="s", link_path="/"
            ),
            organisation=company_a,
            people=[owner_admin],
        )
    assert Delivery.objects.filter(recipient=owner_admin, event="credentials.issued").exists()
    with pytest.raises(Exception, match="Security notices"):
        services.preferences_update(user=owner_admin, muted=["credentials.issued"])


def test_email_has_text_and_html_parts_a_deep_link_and_the_organisation(
    settings: Any, company_a: Organisation, owner_admin: User
) -> None:
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    announce(company_a, [owner_admin])
    delivery = Delivery.objects.get(recipient=owner_admin)
    sending.delivery_attempt(delivery_id=delivery.pk, retry_countdown=None)
    (message,) = mail.outbox
    assert message.to == [owner_admin.email]
    assert "Company A" in message.subject and "Company A" in message.body
    assert "https://portal.example.com/delegations/" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and 'href="https://portal.example.com/delegations/"' in html


def test_many_events_in_one_transaction_are_published_together_once(
    company_a: Organisation,
    owner_admin: User,
    channel: Channel,
    published: FakeBroker,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A worker activating a role's partners announces one event each: one publish for all."""
    batches: list[list[int]] = []
    monkeypatch.setattr(outbox, "_send", lambda ids: batches.append(list(ids)))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        keys = [
            key
            for index in range(3)
            for key in notify(
                key=f"evt:{index}", notice=notice(), organisation=company_a, people=[owner_admin]
            )
        ]
    rows = Delivery.objects.filter(idempotency_key__in=keys)
    assert rows.count() == 6
    assert len(batches) == 1 and sorted(batches[0]) == sorted(r.pk for r in rows)
    assert not rows.filter(dispatched_at__isnull=True).exists()


def test_deliveries_have_their_own_queue_which_every_worker_consumes() -> None:
    """Hundreds of deliveries never stand in front of a reconcile in one queue."""
    app = celery_app
    assert set(app.amqp.queues) == {"celery", "notifications"}
    route = app.amqp.router.route({}, tasks.deliver.name, (1,), {})
    assert route["queue"].name == "notifications"
    reconcile = app.amqp.router.route({}, "delegations.run_outbox_message", (1,), {})
    assert reconcile["queue"].name == "celery"


def test_many_deliveries_travel_as_one_message_that_a_worker_fans_out(
    company_a: Organisation,
    owner_admin: User,
    monkeypatch: pytest.MonkeyPatch,
    tasks_sent: list[tuple[str, Any]],
) -> None:
    """Issue 19 item 6: a worker activating a role's hundred partners published a hundred
    deliver tasks (a broker round trip each) before it could take the next role. Now one
    message, routed to the notification queue; the worker taking it publishes the deliveries
    still pending in `deliver_many` batches."""
    sent = tasks_sent
    with transaction.atomic():
        for index in range(outbox.FAN_OUT_ABOVE + 4):
            notify(
                key=f"many:{index}", notice=notice(), organisation=company_a, people=[owner_admin]
            )
    ids = sorted(Delivery.objects.values_list("id", flat=True))
    Delivery.objects.filter(pk=ids[0]).update(status=Delivery.Status.SENT)

    assert outbox.deliveries_publish(delivery_ids=ids)
    assert sent == [(outbox.FAN_OUT_TASK, [ids])]
    assert not Delivery.objects.filter(
        status=Delivery.Status.PENDING, dispatched_at__isnull=True
    ).exists()
    route = celery_app.amqp.router.route({}, outbox.FAN_OUT_TASK, (ids,), {})
    assert route["queue"].name == "notifications"

    sent.clear()
    assert tasks.publish_deliveries(ids)
    assert sent == [(outbox.DELIVER_MANY_TASK, [ids[1:]])]
    route = celery_app.amqp.router.route({}, outbox.DELIVER_MANY_TASK, (ids,), {})
    assert route["queue"].name == "notifications"
    sent.clear()
    monkeypatch.setattr(outbox, "DELIVER_MANY_SIZE", 5)
    assert tasks.publish_deliveries(ids)
    assert sent == [(outbox.DELIVER_MANY_TASK, [ids[i : i + 5]]) for i in range(1, len(ids), 5)]

    sent.clear()
    assert outbox.deliveries_publish(delivery_ids=ids[:3])
    assert sent == [(tasks.deliver.name, [delivery_id]) for delivery_id in ids[:3]]


def test_a_batch_steps_aside_while_a_worker_applies_access_within_limits(
    company_a: Organisation,
    owner_admin: User,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    """Issue 19 item 6: the queue order puts reconciles first, but a worker with nothing else
    to take sent a bulk approval's emails on the cores the last reconciles needed. While a
    worker applies access, a fan-out and a `deliver_many` batch are published again a second
    later with the same deadline, and go once nothing runs or the deadline has passed."""
    settings.PORTAL_NOTIFICATIONS_YIELD_SECONDS = 30.0
    published: list[tuple[str, Any, dict[str, Any]]] = []
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setattr(outbox, "publish_on_kept_connection", lambda app, publish: publish(None))
    monkeypatch.setattr(
        celery_app,
        "send_task",
        lambda name, args, **options: published.append((name, args, options)),
    )
    applying = [True]
    monkeypatch.setattr(outbox, "urgent_work_running", lambda: applying[0])
    with transaction.atomic():
        for index in range(3):
            notify(
                key=f"aside:{index}", notice=notice(), organisation=company_a, people=[owner_admin]
            )
    ids = sorted(Delivery.objects.values_list("id", flat=True))
    mail.outbox.clear()

    before = time.time()
    assert tasks.publish_deliveries(ids) == "yielded"
    [(name, args, options)] = published
    assert (name, args, options["countdown"]) == (outbox.FAN_OUT_TASK, [ids], 1.0)
    deadline = options["kwargs"]["yield_until"]
    assert before + 30.0 <= deadline <= time.time() + 30.0

    published.clear()
    assert tasks.deliver_many(ids, yield_until=deadline) == {"yielded": 3}
    assert [(n, a, o["kwargs"]) for n, a, o in published] == [
        (outbox.DELIVER_MANY_TASK, [ids], {"yield_until": deadline})
    ]
    assert mail.outbox == []
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.PENDING}

    # Past its deadline a batch goes although access is still being applied, and the batches
    # a fan-out publishes keep its deadline (they do not wait a limit of their own on top).
    published.clear()
    past = time.time() - 1
    assert tasks.publish_deliveries(ids, yield_until=past) is True
    assert [(n, a) for n, a, _o in published] == [(outbox.DELIVER_MANY_TASK, [ids])]
    assert published[0][2]["kwargs"] == {"yield_until": past}

    # Nothing being applied: it goes at once.
    applying[0] = False
    assert tasks.deliver_many(ids) == {"sent": 3}
    assert len(mail.outbox) == 3


def test_a_batch_run_eagerly_never_steps_aside(
    company_a: Organisation, owner_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where tasks run eagerly (tests, a broker-less setup) a publish again would run it again
    # at once, without the second's wait.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setattr(outbox, "urgent_work_running", lambda: True)
    with transaction.atomic():
        notify(key="eager", notice=notice(), organisation=company_a, people=[owner_admin])
    ids = list(Delivery.objects.values_list("id", flat=True))
    mail.outbox.clear()
    assert tasks.deliver_many(ids) == {"sent": 1}


def test_a_batch_is_sent_once_through_one_mail_connection_and_recorded_sent_together(
    company_a: Organisation, owner_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`deliver_many`: each pending delivery of the batch sent once, the emails through one
    connection to the mail server (one handshake, not one per email), all recorded sent; a
    duplicate of the batch, or one already sent, sends nothing."""
    people = [owner_admin] + [
        User.objects.create_user(email=f"p{n}@company-a.example", password="x") for n in range(3)
    ]
    with transaction.atomic():
        for index, person in enumerate(people):
            notify(key=f"batch:{index}", notice=notice(), organisation=company_a, people=[person])
    ids = sorted(Delivery.objects.values_list("id", flat=True))
    Delivery.objects.filter(pk=ids[0]).update(status=Delivery.Status.SENT)
    opened: list[object] = []
    real_get_connection = sending.mail.get_connection

    def get_connection(*args: Any, **kwargs: Any) -> Any:
        connection = real_get_connection(*args, **kwargs)
        opened.append(connection)
        return connection

    monkeypatch.setattr(sending.mail, "get_connection", get_connection)
    mail.outbox.clear()

    assert tasks.deliver_many(ids) == {"sent": 3}
    assert len(opened) == 1
    assert sorted(m.to[0] for m in mail.outbox) == sorted(p.email for p in people[1:])
    rows = Delivery.objects.filter(pk__in=ids[1:])
    assert {(d.status, d.attempts) for d in rows} == {("sent", 1)}
    assert all(d.sent_at is not None and d.claimed_until is None for d in rows)
    assert tasks.deliver_many(ids) == {}
    assert tasks.deliver_many([]) == {}
    assert len(mail.outbox) == 3


def test_in_a_batch_a_failure_is_judged_alone_and_retried_as_its_own_task(
    company_a: Organisation,
    owner_admin: User,
    channel: Channel,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The channel answers 500: its delivery goes back to pending with the first backoff and
    is published as its own `deliver` task, as that task's first retry (the same tries in all
    as one sent alone); the email of the same batch is sent."""
    receiver.answer((500, "boom", {}, 0.0))
    announce(company_a, [owner_admin])
    by_channel = Delivery.objects.get(channel=channel)
    by_email = Delivery.objects.get(channel__isnull=True)
    published: list[tuple[str, list[int], dict[str, Any]]] = []
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setattr(
        celery_app,
        "send_task",
        lambda name, args, **kwargs: published.append((name, args, kwargs)),
    )
    mail.outbox.clear()

    assert tasks.deliver_many([by_channel.pk, by_email.pk]) == {"retry": 1, "sent": 1}
    by_channel.refresh_from_db()
    by_email.refresh_from_db()
    assert by_email.status == "sent" and len(mail.outbox) == 1
    assert by_channel.status == "pending" and by_channel.last_error == "HTTP 500"
    assert by_channel.attempts == 1 and by_channel.available_at > timezone.now()
    [(name, args, options)] = published
    assert name == tasks.deliver.name and args == [by_channel.pk] and options["retries"] == 1
    assert options["countdown"] == pytest.approx(
        (by_channel.available_at - timezone.now()).total_seconds(), abs=2
    )


def test_a_fan_out_batches_its_emails_and_posts_each_chat_message_alone(
    company_a: Organisation,
    owner_admin: User,
    channel: Channel,
    tasks_sent: list[tuple[str, Any]],
) -> None:
    """A receiver that hangs until the timeout holds up only its own post, not a batch."""
    sent = tasks_sent
    with transaction.atomic():
        for index in range(3):
            notify(
                key=f"mixed:{index}", notice=notice(), organisation=company_a, people=[owner_admin]
            )
    emails = sorted(Delivery.objects.filter(channel=None).values_list("id", flat=True))
    posts = sorted(Delivery.objects.filter(channel=channel).values_list("id", flat=True))
    assert len(emails) == len(posts) == 3

    assert tasks.publish_deliveries(sorted(emails + posts))
    assert sent == [(outbox.DELIVER_MANY_TASK, [emails])] + [
        (tasks.deliver.name, [post]) for post in posts
    ]


def test_a_batch_whose_mail_server_is_unreachable_tries_each_email_on_its_own(
    company_a: Organisation, owner_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's shared connection cannot open: each email opens its own and is judged
    alone (here the server is back for them), instead of the batch failing as one."""
    with transaction.atomic():
        for index in range(3):
            notify(
                key=f"down:{index}", notice=notice(), organisation=company_a, people=[owner_admin]
            )
    ids = sorted(Delivery.objects.values_list("id", flat=True))
    real_get_connection = sending.mail.get_connection
    calls: list[str] = []

    class Refusing:
        def open(self) -> None:
            raise ConnectionRefusedError("mail server down")

    def get_connection(*args: Any, **kwargs: Any) -> Any:
        calls.append("batch" if not calls else "own")
        return Refusing() if len(calls) == 1 else real_get_connection(*args, **kwargs)

    monkeypatch.setattr(sending.mail, "get_connection", get_connection)
    mail.outbox.clear()

    assert tasks.deliver_many(ids) == {"sent": 3}
    assert calls == ["batch", "own", "own", "own"]
    assert len(mail.outbox) == 3
