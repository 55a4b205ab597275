"""The Celery tasks: ids only, retries only for transient cloud errors (with backoff that honours
retry-after, bounded), a visible failure after the last retry, and the beat schedule."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from delegations.models import Delegation, OutboxMessage
from delegations.worker import engine
from delegations.worker.engine import ReconcileOutcome
from delegations.worker.owner_role import managed_role_reconcile, role_has_pending_work
from delegations.worker.tasks import (
    MAX_RETRY_COUNTDOWN_SECONDS,
    RECONCILE_MAX_RETRIES,
    dispatch_outbox,
    reconcile_role,
    retry_countdown,
    run_outbox_message,
)
from portal.celery import app

Status = Delegation.Status


def test_backoff_grows_with_jitter_and_honours_retry_after(settings) -> None:
    settings.PORTAL_RECONCILE_RETRY_BASE_SECONDS = 2.0
    for retries in range(6):
        samples = [retry_countdown(retries) for _ in range(200)]
        nominal = min(MAX_RETRY_COUNTDOWN_SECONDS, 2.0 * 2**retries)
        assert min(samples) >= 0.5 * nominal
        assert max(samples) <= min(MAX_RETRY_COUNTDOWN_SECONDS, 1.5 * nominal)
        assert len(set(samples)) > 100  # jittered
    assert all(retry_countdown(0, retry_after_ms=7_000) >= 7.0 for _ in range(50))
    assert retry_countdown(30, retry_after_ms=10**9) == MAX_RETRY_COUNTDOWN_SECONDS


def test_no_countdown_reaches_the_brokers_visibility_timeout() -> None:
    visibility = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    assert visibility > MAX_RETRY_COUNTDOWN_SECONDS
    lease = django_settings.PORTAL_ROLE_LEASE_SECONDS
    assert lease < visibility


def test_beat_schedule_names_registered_tasks() -> None:
    app.loader.import_default_modules()
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    for name in (
        "dispatch-outbox",
        "expire-delegations",
        "reconcile-all-roles",
        "sweep-stuck-work",
    ):
        entry = schedule[name]
        assert entry["task"] in app.tasks, entry
        assert not entry.get("args") and not entry.get("kwargs")
    assert schedule["expire-delegations"]["schedule"] <= 60
    assert schedule["dispatch-outbox"]["schedule"] <= 30


def test_reconcile_tasks_retry_only_what_they_should() -> None:
    for task in (reconcile_role, run_outbox_message):
        assert task.max_retries == RECONCILE_MAX_RETRIES
        assert not getattr(task, "autoretry_for", ())
    assert django_settings.CELERY_TASK_ACKS_LATE


def test_a_published_message_carries_only_its_id(owner_world, monkeypatch) -> None:
    owner_world.offer()
    message = OutboxMessage.objects.get()
    sent: list[dict] = []
    monkeypatch.setattr(run_outbox_message, "apply_async", lambda **kwargs: sent.append(kwargs))

    assert owner_world.publish_for_real(message_id=message.pk)

    (kwargs,) = sent
    assert kwargs["args"] == [message.pk]
    serialised = json.dumps(kwargs["args"])
    assert owner_world.key[1] not in serialised
    assert OutboxMessage.objects.get(pk=message.pk).dispatched_at is not None


def test_the_dispatcher_republishes_lost_messages(owner_world) -> None:
    owner_world.offer()
    message = OutboxMessage.objects.get()
    OutboxMessage.objects.filter(pk=message.pk).update(
        dispatched_at=timezone.now() - dt.timedelta(minutes=10)
    )
    owner_world.published.clear()

    assert dispatch_outbox.apply().get() == 1
    assert owner_world.published == [message.pk]

    run_outbox_message.apply(args=[message.pk])
    assert OutboxMessage.objects.get(pk=message.pk).done_at is not None
    owner_world.published.clear()
    assert dispatch_outbox.apply().get() == 0


def test_transient_errors_retry_then_fail_visibly_after_the_last_attempt(
    owner_world, settings
) -> None:
    settings.PORTAL_RECONCILE_INLINE_ATTEMPTS = 1
    settings.PORTAL_RECONCILE_RETRY_BASE_SECONDS = 0.001
    owner_world.sim.set_faults("GetRole:internal")
    delegation = owner_world.offer()
    message = OutboxMessage.objects.get()
    seq = owner_world.last_seq()

    outcome = run_outbox_message.apply(args=[message.pk]).get()

    assert outcome == "failed"
    attempts = [c for c in owner_world.cloud_calls(seq) if c["action"] == "GetRole"]
    assert len(attempts) == RECONCILE_MAX_RETRIES + 1
    failed = Delegation.objects.get(pk=delegation.pk)
    assert failed.status == Status.FAILED
    assert failed.last_error_code == "InternalError"
    assert "gave up after repeated retries" in failed.last_error_message
    assert failed.last_error_request_id
    assert OutboxMessage.objects.get(pk=message.pk).done_at is not None


def test_a_give_up_leaves_a_role_whose_lease_is_held_to_its_holder(
    owner_world, monkeypatch
) -> None:
    # Two task chains for one role during a sustained transient fault (the dispatcher
    # republishes a message after a minute, acks_late redelivers): chain A gives up after its
    # last retry while chain B holds the lease, mid-run, with its write landed. Failing the
    # delegation then would leave the partner trusted in the cloud by a "failed" delegation.
    world = owner_world
    delegation = world.offer()
    real_verify = engine.verify
    gave_up: list = []

    def verify_while_the_other_chain_gives_up(subject, **kwargs):
        if not gave_up:
            gave_up.append(
                managed_role_reconcile(managed_role_id=world.managed_role().pk, last_try=True)
            )
        return real_verify(subject, **kwargs)

    monkeypatch.setattr(engine, "verify", verify_while_the_other_chain_gives_up)

    assert world.reconcile().outcome == ReconcileOutcome.CONVERGED  # chain B

    assert [report.outcome for report in gave_up] == [ReconcileOutcome.BUSY]
    assert world.status(delegation) == Status.ACTIVE
    assert delegation.principal_arn in world.trusted()
    assert not role_has_pending_work(world.managed_role())
    assert not OutboxMessage.objects.filter(done_at__isnull=True).exists()


def test_a_permanent_error_is_not_retried(owner_world, settings) -> None:
    delegation = owner_world.offer()
    # A Custom policy the account does not have (deleted after the offer checked it).
    owner_world.catalog_role.policies = [{"type": "Custom", "name": "NoSuchPolicy"}]
    owner_world.catalog_role.save()
    seq = owner_world.last_seq()

    assert reconcile_role.apply(args=[str(owner_world.managed_role().pk)]).get() == "failed"

    attaches = [c for c in owner_world.cloud_calls(seq) if c["action"] == "AttachPolicyToRole"]
    assert len(attaches) == 1
    assert owner_world.status(delegation) == Status.FAILED
    # No storm later either: the periodic pass sees nothing pending.
    seq = owner_world.last_seq()
    assert reconcile_role.apply(args=[str(owner_world.managed_role().pk)]).get() == (
        "nothing_to_do"
    )
    assert owner_world.cloud_calls(seq) == []


def test_a_transient_error_that_clears_is_retried_to_success(owner_world, settings) -> None:
    settings.PORTAL_RECONCILE_INLINE_ATTEMPTS = 1
    settings.PORTAL_RECONCILE_RETRY_BASE_SECONDS = 0.001
    owner_world.sim.set_faults({"action": "UpdateRole", "kind": "throttle", "count": 3})
    owner_world.offer()
    owner_world.reconcile()
    delegation = owner_world.offer()

    outcome = reconcile_role.apply(args=[str(owner_world.managed_role().pk)]).get()

    assert outcome == "converged"
    assert owner_world.status(delegation) == Status.ACTIVE


@pytest.mark.parametrize("missing", ["message", "done"])
def test_outbox_task_is_harmless_for_missing_or_done_messages(owner_world, missing) -> None:
    owner_world.offer()
    message = OutboxMessage.objects.get()
    if missing == "done":
        OutboxMessage.objects.filter(pk=message.pk).update(done_at=timezone.now())
        message_id = message.pk
    else:
        message_id = message.pk + 1000
    seq = owner_world.last_seq()

    assert run_outbox_message.apply(args=[message_id]).get() == "done"
    assert owner_world.cloud_calls(seq) == []
