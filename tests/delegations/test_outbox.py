"""The outbox: rows written with their change, published after the commit, re-published
when lost, and a broker outage never breaks the caller."""

import datetime as dt

import pytest
from celery import current_app
from django.db import transaction
from django.utils import timezone

from delegations import outbox
from delegations.models import ManagedRole, OutboxMessage
from delegations.worker import tasks as worker_tasks
from tests.delegations.factories import ManagedRoleFactory

pytestmark = pytest.mark.django_db


class FakeTask:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[list[object]] = []

    def apply_async(self, *, args: list[object], retry: bool, connection: object = None) -> None:
        assert retry is False  # never hang a web request on a dead broker
        if self.fail:
            raise ConnectionRefusedError("broker down")
        self.sent.append(args)


@pytest.fixture
def task(monkeypatch: pytest.MonkeyPatch) -> FakeTask:
    fake = FakeTask()
    monkeypatch.setitem(current_app.tasks, outbox.RUN_OUTBOX_MESSAGE, fake)
    return fake


@pytest.mark.django_db(transaction=True)
def test_enqueue_needs_the_change_transaction() -> None:
    with pytest.raises(RuntimeError):
        outbox.outbox_enqueue(kind="reconcile_role", object_id="x")


def test_enqueue_publishes_after_commit_with_ids_only(
    task: FakeTask, django_capture_on_commit_callbacks
) -> None:
    role = ManagedRoleFactory()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        message = outbox.outbox_enqueue_reconcile(managed_role=role)
        assert task.sent == []  # nothing before the commit
    assert task.sent == [[message.pk]]
    message.refresh_from_db()
    assert message.object_id == str(role.pk) and message.kind == "reconcile_role"
    assert message.dispatched_at is not None and message.attempts == 1
    assert ManagedRole.objects.get(pk=role.pk).desired_version == 1


def test_publish_failure_is_logged_and_left_for_the_dispatcher(
    task: FakeTask, caplog: pytest.LogCaptureFixture
) -> None:
    task.fail = True
    message = OutboxMessage.objects.create(kind="reconcile_role", object_id="1")
    assert outbox.outbox_publish(message_id=message.pk) is False
    message.refresh_from_db()
    assert message.dispatched_at is None and message.done_at is None
    assert message.last_error == "publish failed"
    assert "dispatcher will retry" in caplog.text


def test_republish_due_picks_unpublished_and_stale_rows_only(task: FakeTask) -> None:
    now = timezone.now()
    earlier = now - dt.timedelta(minutes=20)
    never = OutboxMessage.objects.create(kind="reconcile_role", object_id="a", available_at=earlier)
    stale = OutboxMessage.objects.create(
        kind="reconcile_role",
        object_id="b",
        available_at=earlier,
        dispatched_at=now - dt.timedelta(minutes=10),
    )
    OutboxMessage.objects.create(
        kind="reconcile_role", object_id="c", available_at=earlier, dispatched_at=now
    )
    OutboxMessage.objects.create(
        kind="reconcile_role",
        object_id="d",
        available_at=earlier,
        done_at=now - dt.timedelta(minutes=10),
    )
    OutboxMessage.objects.create(
        kind="reconcile_role", object_id="e", available_at=now + dt.timedelta(minutes=5)
    )
    assert outbox.outbox_republish_due(now=now) == 2
    assert sorted(args[0] for args in task.sent) == sorted([never.pk, stale.pk])


def test_a_process_without_the_worker_tasks_publishes_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A web process need not import the worker: the message goes to the broker by task name,
    still failing fast when the broker is down."""
    monkeypatch.delitem(current_app.tasks, outbox.RUN_OUTBOX_MESSAGE, raising=False)
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, **options: sent.append((name, options))
    )
    message = OutboxMessage.objects.create(kind="reconcile_role", object_id="1")
    assert outbox.outbox_publish(message_id=message.pk) is True
    ((name, options),) = sent
    assert name == "delegations.run_outbox_message"
    assert options["args"] == [message.pk] and options["retry"] is False
    assert options["connection"] is not None  # the bounded one, not kombu's retrying pool


def test_the_worker_registers_the_task_the_outbox_names() -> None:
    assert worker_tasks.run_outbox_message.name == outbox.RUN_OUTBOX_MESSAGE
    assert outbox.RUN_OUTBOX_MESSAGE in current_app.tasks


def test_reconcile_requests_for_a_role_coalesce_until_one_is_published(
    task: FakeTask, django_capture_on_commit_callbacks
) -> None:
    """A bulk approval of many partners on one role asks for one reconcile, not one each; every
    request still moves the role's desired version."""
    role = ManagedRoleFactory()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        first = outbox.outbox_enqueue_reconcile(managed_role=role)
        again = [outbox.outbox_enqueue_reconcile(managed_role=role) for _ in range(3)]
    assert {m.pk for m in again} == {first.pk}
    assert task.sent == [[first.pk]]
    assert ManagedRole.objects.get(pk=role.pk).desired_version == 4
    # Published (it may have started, or be lost with a dead worker): the next request gets a
    # message of its own, published at once.
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        later = outbox.outbox_enqueue_reconcile(managed_role=role)
    assert later.pk != first.pk and task.sent == [[first.pk], [later.pk]]


def test_a_done_or_delayed_message_is_not_reused(task: FakeTask) -> None:
    role = ManagedRoleFactory()
    OutboxMessage.objects.create(
        kind="reconcile_role", object_id=str(role.pk), done_at=timezone.now()
    )
    OutboxMessage.objects.create(
        kind="reconcile_role",
        object_id=str(role.pk),
        available_at=timezone.now() + dt.timedelta(minutes=5),
    )
    with transaction.atomic():
        message = outbox.outbox_enqueue_reconcile(managed_role=role)
    assert OutboxMessage.objects.filter(object_id=str(role.pk)).count() == 3
    assert message.done_at is None and message.available_at <= timezone.now()
