"""Verification in the background: starting one (single-flight, audited), the Celery task
walking the chain with progress, the verdict at the right sequence, and lost workers.

The tamper helpers (`tampering.py`) play the attacker, as in `test_verify.py`; the task runs
through Celery's `.apply()`, in this process."""

import datetime as dt
import io
import threading

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from audit import verification as verification_module
from audit.checkpoints import checkpoint_write
from audit.models import AuditEvent, AuditVerification
from audit.tasks import audit_verify_chain
from audit.verification import (
    MAX_ATTEMPTS,
    STALE_AFTER,
    VerificationOutcome,
    audit_verification_run,
    audit_verification_start,
    audit_verification_sweep_stale,
    is_stale,
    verification_publish,
)
from audit.verify import Problem, verify_chain, verify_chain_steps
from portal.celery import app as celery_app
from tests.audit import tampering
from tests.audit.conftest import make_organisation, make_user, requires_postgresql, write_events

pytestmark = pytest.mark.django_db

CHAIN_LENGTH = 12
THREADS = 6
Status = AuditVerification.Status


@pytest.fixture
def chain(owner_org, partner_org):
    return write_events(CHAIN_LENGTH, organisation=owner_org, related_organisations=[partner_org])


@pytest.fixture
def auditor(db):
    return make_user("audrey@example.com", first_name="Audrey", last_name="Auditor")


def start(user, organisation) -> AuditVerification:
    run, started = audit_verification_start(user=user, organisation=organisation)
    assert started
    return run


def run_task(run: AuditVerification) -> str:
    outcome = audit_verify_chain.apply(args=[str(run.pk)], throw=True).get()
    run.refresh_from_db()
    return outcome


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


# --- starting: single-flight and audited -------------------------------------------------------


def test_starting_records_a_queued_run_and_an_audit_event(chain, owner_org, auditor):
    run = start(auditor, owner_org)
    assert run.status == Status.QUEUED
    assert run.organisation == owner_org and run.requested_by == auditor
    assert run.requested_by_label == "Audrey Auditor <audrey@example.com>"
    [started] = events("audit.verification_started")
    assert started.actor_id == auditor.pk
    assert started.organisation_id == owner_org.pk
    assert started.target_id == str(run.pk)


def test_a_second_start_shows_the_run_in_flight_for_every_tenant(chain, owner_org, auditor):
    first = start(auditor, owner_org)
    again, started = audit_verification_start(user=auditor, organisation=owner_org)
    assert (again.pk, started) == (first.pk, False)
    # One chain for all tenants: another owner organisation gets the same run.
    foreign = make_organisation(name="Other Owner")
    theirs, started = audit_verification_start(user=make_user(), organisation=foreign)
    assert (theirs.pk, started) == (first.pk, False)
    AuditVerification.objects.filter(pk=first.pk).update(status=Status.RUNNING)
    assert audit_verification_start(user=auditor, organisation=owner_org) == (first, False)
    assert AuditVerification.objects.count() == 1
    assert len(events("audit.verification_started")) == 1


def test_the_database_refuses_a_second_run_in_flight(chain, owner_org, auditor):
    """The constraint, not only the service's check, keeps verification single-flight (two
    web workers starting at the same instant both pass the check)."""
    start(auditor, owner_org)
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditVerification.objects.create(
            organisation=owner_org, status=Status.RUNNING, heartbeat_at=timezone.now()
        )


def test_a_new_run_may_start_once_the_last_one_finished(chain, owner_org, auditor):
    first = start(auditor, owner_org)
    assert run_task(first) == VerificationOutcome.INTACT
    second = start(auditor, owner_org)
    assert second.pk != first.pk


def test_the_task_is_published_after_the_commit(
    chain, owner_org, auditor, monkeypatch, django_capture_on_commit_callbacks
):
    # The broker's door: whether the task is loaded in this process or only named.
    published = []
    monkeypatch.setattr(
        celery_app,
        "send_task",
        lambda name, args=None, kwargs=None, **options: published.append((name, list(args))),
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = start(auditor, owner_org)
    assert published == []
    for callback in callbacks:
        callback()
    assert published == [(audit_verify_chain.name, [str(run.pk)])]


def test_a_broker_outage_leaves_the_run_queued_not_an_error(chain, owner_org, auditor, monkeypatch):
    run = start(auditor, owner_org)

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(celery_app, "send_task", broker_down)
    assert verification_publish(verification_id=str(run.pk)) is False
    run.refresh_from_db()
    assert run.status == Status.QUEUED


# --- the task: progress and verdicts -----------------------------------------------------------


def test_the_task_verifies_an_intact_chain_and_audits_the_result(chain, owner_org, auditor):
    run = start(auditor, owner_org)
    expected = verify_chain()
    assert run_task(run) == VerificationOutcome.INTACT
    assert run.status == Status.INTACT
    # The walk covers the start event too: it was committed before the task ran.
    assert run.events_checked == run.events_total == CHAIN_LENGTH + 1 == expected.count
    assert (run.head_sequence, run.head_hash) == (expected.head_sequence, expected.head_hash)
    assert run.first_bad_sequence is None and run.problem == ""
    assert run.started_at <= run.finished_at and run.attempts == 1 and run.result_audited
    [finished] = events("audit.verification_finished")
    assert finished.outcome == AuditEvent.Outcome.SUCCESS
    assert finished.target_id == str(run.pk) and finished.organisation_id == owner_org.pk
    assert finished.metadata["status"] == "intact"
    assert finished.source == "task:audit.verify_chain"
    assert verify_chain().ok  # the result event extends the chain properly


def test_the_task_writes_progress_as_it_walks(chain, owner_org, auditor, monkeypatch):
    run = start(auditor, owner_org)
    seen: list[tuple[str, int, int]] = []

    def observed(**kwargs):
        for step in verify_chain_steps(**kwargs):
            yield step
            # What the page would read right now, after the worker wrote this step.
            row = AuditVerification.objects.get(pk=run.pk)
            seen.append((row.status, row.events_checked, row.events_total))

    monkeypatch.setattr(verification_module, "verify_chain_steps", observed)
    audit_verification_run(verification_id=str(run.pk), batch_size=3, progress_every=5)
    total = CHAIN_LENGTH + 1
    # (The last step carries the verdict; the run stores it and stops asking for more.)
    assert seen == [("running", 0, total), ("running", 5, total), ("running", 10, total)]
    run.refresh_from_db()
    assert (run.status, run.events_checked, run.events_total) == ("intact", total, total)


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        (lambda: tampering.edit_column(5, "target_label", "quietly changed"), 5),
        (lambda: tampering.delete_row(6), 6),
        (lambda: tampering.truncate_tail(2), CHAIN_LENGTH),
        (lambda: tampering.swap_rows(8, 9), 8),
        (lambda: tampering.edit_column(7, "prev_hash", "b" * 64), 7),
    ],
    ids=["edit", "delete", "truncate", "reorder", "relink"],
)
def test_a_broken_chain_is_reported_at_the_first_bad_sequence(
    chain, owner_org, auditor, tamper, first_bad
):
    run = start(auditor, owner_org)
    tamper()  # after the start: an inserted row moves the rows up but not the chain head
    expected = verify_chain()
    assert not expected.ok
    assert run_task(run) == VerificationOutcome.BROKEN
    assert run.status == Status.BROKEN
    assert run.first_bad_sequence == expected.first_bad_sequence == first_bad
    assert run.problem == expected.problem and run.detail == expected.detail
    assert run.events_checked == expected.count
    [finished] = events("audit.verification_finished")
    assert finished.outcome == AuditEvent.Outcome.FAILURE
    assert finished.metadata["first_bad_sequence"] == expected.first_bad_sequence


def test_a_log_that_refuses_appends_still_gets_its_verdict(chain, owner_org, auditor):
    """A forged row inserted without moving the chain head takes the place the next event
    needs, so the verdict's audit event is refused. The verdict is the evidence of exactly
    that: it is stored, marked as not audited."""
    run = start(auditor, owner_org)
    tampering.insert_row(4, proper_hash=True)
    expected = verify_chain()
    assert run_task(run) == VerificationOutcome.BROKEN
    assert run.status == Status.BROKEN and run.first_bad_sequence == expected.first_bad_sequence
    assert run.result_audited is False
    assert events("audit.verification_finished") == []


def test_the_task_checks_the_signed_checkpoints(chain, owner_org, auditor, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_KEY = "k" * 40
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    checkpoint_write()
    tampering.rewrite_history_from(3)
    run = start(auditor, owner_org)
    assert run_task(run) == VerificationOutcome.BROKEN
    assert (run.first_bad_sequence, run.problem) == (1, Problem.CHECKPOINT_MISMATCH)


def test_a_misconfigured_key_fails_the_run_saying_why(chain, owner_org, auditor, settings):
    settings.AUDIT_CHECKPOINT_KEY = "short"
    run = start(auditor, owner_org)
    assert run_task(run) == VerificationOutcome.FAILED
    assert run.status == Status.FAILED
    assert "at least 32 characters" in run.detail
    assert events("audit.verification_finished")[0].outcome == AuditEvent.Outcome.FAILURE


def test_an_error_midway_fails_the_run_instead_of_leaving_it_running(
    chain, owner_org, auditor, monkeypatch
):
    def breaks(**kwargs):
        steps = verify_chain_steps(**{**kwargs, "progress_every": 5})
        yield next(steps)
        yield next(steps)
        raise OSError("disk on fire")

    monkeypatch.setattr(verification_module, "verify_chain_steps", breaks)
    run = start(auditor, owner_org)
    assert run_task(run) == VerificationOutcome.FAILED
    assert run.status == Status.FAILED and run.finished_at is not None
    assert "OSError" in run.detail and "disk on fire" not in run.detail


# --- lost workers --------------------------------------------------------------------------


def test_a_run_without_heartbeat_is_stale_and_a_new_one_may_start(chain, owner_org, auditor):
    lost = start(auditor, owner_org)
    assert not is_stale(lost)
    long_ago = timezone.now() - STALE_AFTER - dt.timedelta(seconds=1)
    AuditVerification.objects.filter(pk=lost.pk).update(
        status=Status.RUNNING, run_token="lost-worker", attempts=1, heartbeat_at=long_ago
    )
    lost.refresh_from_db()
    assert is_stale(lost)
    fresh, started = audit_verification_start(user=auditor, organisation=owner_org)
    assert started and fresh.pk != lost.pk
    lost.refresh_from_db()
    assert lost.status == Status.FAILED and "No progress" in lost.detail
    [finished] = events("audit.verification_finished")
    assert finished.target_id == str(lost.pk) and finished.metadata["status"] == "failed"
    # The lost run's task, delivered late, does nothing; the new one runs.
    assert run_task(lost) == VerificationOutcome.NOT_CLAIMED
    assert lost.status == Status.FAILED
    assert run_task(fresh) == VerificationOutcome.INTACT


def test_beat_fails_a_stale_run_and_leaves_a_live_one_alone(chain, owner_org, auditor):
    run = start(auditor, owner_org)
    recent = timezone.now() - STALE_AFTER + dt.timedelta(minutes=1)
    AuditVerification.objects.filter(pk=run.pk).update(status=Status.RUNNING, heartbeat_at=recent)
    assert audit_verification_sweep_stale() is False
    run.refresh_from_db()
    assert run.status == Status.RUNNING and events("audit.verification_finished") == []

    long_ago = timezone.now() - STALE_AFTER - dt.timedelta(seconds=1)
    AuditVerification.objects.filter(pk=run.pk).update(heartbeat_at=long_ago)
    assert audit_verification_sweep_stale() is True
    run.refresh_from_db()
    assert run.status == Status.FAILED and "Press Verify now" in run.detail
    [finished] = events("audit.verification_finished")
    assert finished.target_id == str(run.pk) and finished.metadata["status"] == "failed"
    # Nothing in flight any more: a second sweep changes nothing, and a new run may start.
    assert audit_verification_sweep_stale() is False
    assert audit_verification_start(user=auditor, organisation=owner_org)[1] is True


def test_a_run_that_is_merely_slow_is_not_stale(chain, owner_org, auditor):
    run = start(auditor, owner_org)
    recent = timezone.now() - STALE_AFTER + dt.timedelta(minutes=1)
    AuditVerification.objects.filter(pk=run.pk).update(status=Status.RUNNING, heartbeat_at=recent)
    assert audit_verification_start(user=auditor, organisation=owner_org) == (run, False)


def test_a_redelivered_task_takes_the_run_over_and_the_lost_worker_stops(
    chain, owner_org, auditor, monkeypatch
):
    """acks_late: a worker dies mid-walk and the broker delivers the task again. The new
    delivery claims the run and walks from the start; the first walker, if it still lives,
    stops at its next progress write and reports nothing."""
    run = start(auditor, owner_org)
    real_steps = verify_chain_steps
    redelivered = []

    def first_walker(**kwargs):
        for step in real_steps(**kwargs):
            yield step
            if step.checked == 5 and not redelivered:
                monkeypatch.setattr(verification_module, "verify_chain_steps", real_steps)
                redelivered.append(audit_verification_run(verification_id=str(run.pk)))

    monkeypatch.setattr(verification_module, "verify_chain_steps", first_walker)
    first = audit_verification_run(verification_id=str(run.pk), progress_every=5)
    assert redelivered == [VerificationOutcome.INTACT]
    assert first == VerificationOutcome.SUPERSEDED
    run.refresh_from_db()
    assert run.status == Status.INTACT and run.attempts == 2
    assert len(events("audit.verification_finished")) == 1


def test_a_run_that_keeps_losing_its_worker_gives_up(chain, owner_org, auditor):
    run = start(auditor, owner_org)
    AuditVerification.objects.filter(pk=run.pk).update(
        status=Status.RUNNING, run_token="dead", attempts=MAX_ATTEMPTS
    )
    assert run_task(run) == VerificationOutcome.NOT_CLAIMED
    assert run.status == Status.FAILED and "Gave up" in run.detail
    assert len(events("audit.verification_finished")) == 1
    assert start(auditor, owner_org).pk != run.pk


# --- the command shares the walk ------------------------------------------------------------


def test_the_command_reports_progress_from_the_same_walk(chain, monkeypatch):
    monkeypatch.setattr("audit.management.commands.audit_verify.PROGRESS_EVERY", 5)
    out, err = io.StringIO(), io.StringIO()
    call_command("audit_verify", "--batch-size", "4", verbosity=2, stdout=out, stderr=err)
    assert out.getvalue().startswith(f"OK: {CHAIN_LENGTH} events verified")
    assert err.getvalue().splitlines() == [
        f"0 of {CHAIN_LENGTH} events verified",
        f"5 of {CHAIN_LENGTH} events verified",
        f"10 of {CHAIN_LENGTH} events verified",
    ]


# --- two web workers pressing "Verify now" at the same instant ---------------------------------


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_create_one_run(monkeypatch):
    organisation = make_organisation()
    users = [make_user() for _ in range(THREADS)]
    published: list[str] = []
    monkeypatch.setattr(
        verification_module,
        "verification_publish",
        lambda *, verification_id: published.append(verification_id) or True,
    )
    barrier = threading.Barrier(THREADS)
    outcomes: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def press(user) -> None:
        try:
            barrier.wait()
            run, started = audit_verification_start(user=user, organisation=organisation)
            outcomes.append((str(run.pk), started))
        except BaseException as error:  # collected and re-raised in the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=press, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(outcomes) == THREADS
    assert len({pk for pk, _ in outcomes}) == 1
    assert sum(started for _, started in outcomes) == 1
    assert AuditVerification.objects.count() == 1
    assert published == [outcomes[0][0]]
    assert AuditEvent.objects.filter(action="audit.verification_started").count() == 1
