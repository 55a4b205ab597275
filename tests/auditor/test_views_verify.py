"""The verify page: "Verify now" starts a background run, its page shows progress and then
intact or the first bad sequence number; the signed checkpoints; the last runs.

The verifier itself (every kind of tampering, batches, checkpoints) is tested in
`test_verify.py` and the background run in `test_verification.py`; here the pages must report
exactly what the run finds, with the same tamper helpers (`tampering.py`) playing the
attacker. The worker is Celery's `.apply()` on the published task."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from audit.checkpoints import checkpoint_write
from audit.models import AuditEvent, AuditVerification
from audit.tasks import audit_verify_chain
from audit.verification import STALE_AFTER
from audit.verify import verify_chain
from tests.audit import tampering
from tests.audit.history import History, history_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

URL = "/audit/verify/"
START = "/audit/verify/start/"
KEY = "k" * 40
Status = AuditVerification.Status


def verdict(response) -> tuple[str, str | None]:
    body = response.content.decode()
    match = re.search(r'data-testid="verdict" data-ok="(\w+)"(?: data-first-bad="(\d*)")?', body)
    assert match, body[:2000]
    return match.group(1), match.group(2)


def start(client) -> AuditVerification:
    """Press "Verify now"; lands on the run's page."""
    response = client.post(START)
    assert response.status_code == 302, response.status_code
    run = AuditVerification.objects.get(pk=response["Location"].rstrip("/").split("/")[-1])
    assert response["Location"] == f"{URL}{run.pk}/"
    return run


def work(run: AuditVerification) -> None:
    """The worker picks the published task up."""
    audit_verify_chain.apply(args=[str(run.pk)], throw=True)


def verify_now(client):
    run = start(client)
    work(run)
    return client.get(f"{URL}{run.pk}/")


def test_the_page_shows_the_head_and_verifies_in_the_background(history: History):
    client = history.client(history.auditor)
    page = client.get(URL)
    assert page.status_code == 200
    head = AuditEvent.objects.order_by("-sequence").first()
    body = page.content.decode()
    assert f'data-testid="head-sequence">{head.sequence}<' in body
    assert 'data-testid="verdict"' not in body
    assert "No verification has run yet" in body
    assert f'action="{START}"' in body and 'method="post"' in body

    run = start(client)
    waiting = client.get(f"{URL}{run.pk}/")
    body = waiting.content.decode()
    assert 'data-testid="verification-progress" data-status="queued"' in body
    assert '<meta http-equiv="refresh" content="2">' in body
    assert 'data-testid="verdict"' not in body

    work(run)
    checked = client.get(f"{URL}{run.pk}/")
    assert verdict(checked) == ("true", None)
    body = checked.content.decode()
    run.refresh_from_db()
    assert f"{run.events_checked} events verified" in body
    assert run.head_hash in body
    assert "http-equiv" not in body  # done: the page stops refreshing itself
    assert 'data-testid="verification-run" data-status="intact"' in body
    listed = client.get(URL).content.decode()
    assert 'data-testid="verification-run" data-status="intact"' in listed


def test_the_progress_page_shows_how_far_the_worker_got(history: History):
    client = history.client(history.auditor)
    run = start(client)
    AuditVerification.objects.filter(pk=run.pk).update(
        status=Status.RUNNING, events_checked=250, events_total=1000, heartbeat_at=timezone.now()
    )
    body = client.get(f"{URL}{run.pk}/").content.decode()
    assert 'data-status="running" data-checked="250" data-total="1000"' in body
    assert "Verifying: 25%" in body and "250 of 1000 events checked" in body
    assert '<meta http-equiv="refresh"' in body
    main = client.get(URL).content.decode()
    assert 'data-testid="current-run"' in main and "250 of 1000 events checked" in main


def test_verify_now_while_a_run_is_in_flight_shows_that_run(history: History):
    first = start(history.client(history.auditor))
    # Another reader (here the owner's admin) asks too: the same run, no second one.
    client = history.client(history.owner_admin)
    response = client.post(START, follow=True)
    assert response.redirect_chain == [(f"{URL}{first.pk}/", 302)]
    assert "already running" in response.content.decode()
    assert AuditVerification.objects.count() == 1
    assert AuditEvent.objects.filter(action="audit.verification_started").count() == 1


def test_starting_and_finishing_are_audit_events(history: History):
    client = history.client(history.auditor)
    run = start(client)
    work(run)
    started = AuditEvent.objects.get(action="audit.verification_started")
    finished = AuditEvent.objects.get(action="audit.verification_finished")
    assert started.actor_id == history.auditor.pk
    assert started.organisation_id == history.owner.pk
    assert started.source == "web"
    assert finished.target_id == started.target_id == str(run.pk)
    assert finished.metadata["status"] == "intact"
    # Both show in the auditor's own event list.
    events = client.get("/audit/").content.decode()
    assert "audit.verification_started" in events and "audit.verification_finished" in events


def test_a_log_that_refuses_new_events_is_reported_not_a_crash(history: History):
    """A forged row inserted without moving the chain head blocks every append, including
    the event that records a start: the page says so and points to the shell command."""
    client = history.client(history.auditor)
    run = start(client)
    tampering.insert_row(4, proper_hash=True)
    work(run)
    page = client.get(f"{URL}{run.pk}/").content.decode()
    assert verdict(client.get(f"{URL}{run.pk}/")) == ("false", "4")
    assert 'data-testid="not-audited"' in page
    refused = client.post(START, follow=True)
    assert refused.redirect_chain == [(URL, 302)]
    assert "refuses new events" in refused.content.decode()
    assert AuditVerification.objects.count() == 1


def test_a_stale_run_reads_as_stopped_and_a_new_one_may_start(history: History):
    client = history.client(history.auditor)
    lost = start(client)
    AuditVerification.objects.filter(pk=lost.pk).update(
        status=Status.RUNNING,
        events_checked=10,
        events_total=40,
        heartbeat_at=timezone.now() - STALE_AFTER - dt.timedelta(minutes=1),
    )
    page = client.get(f"{URL}{lost.pk}/").content.decode()
    assert 'data-testid="verification-failed" data-status="stale"' in page
    assert "http-equiv" not in page
    assert 'data-testid="verification-run" data-status="stale"' in client.get(URL).content.decode()
    fresh = start(client)
    assert fresh.pk != lost.pk
    lost.refresh_from_db()
    assert lost.status == Status.FAILED
    failed = client.get(f"{URL}{lost.pk}/").content.decode()
    assert 'data-testid="verification-failed" data-status="failed"' in failed
    assert "No progress for 10 minutes" in failed


@pytest.mark.parametrize(
    "tamper",
    [
        lambda: tampering.edit_column(5, "target_label", "quietly changed"),
        lambda: tampering.edit_column(7, "actor_label", "Someone else"),
        lambda: tampering.delete_row(6),
        lambda: tampering.insert_row(4, proper_hash=True),
        lambda: tampering.swap_rows(8, 9),
        lambda: tampering.truncate_tail(2),
    ],
    ids=["edit-label", "edit-actor", "delete", "insert", "reorder", "truncate"],
)
def test_the_page_names_the_first_bad_sequence_number(history: History, tamper):
    client = history.client(history.auditor)
    run = start(client)
    tamper()  # after the start: an inserted row moves the rows up but not the chain head
    expected = verify_chain()
    assert not expected.ok
    work(run)
    response = client.get(f"{URL}{run.pk}/")
    assert response.status_code == 200
    assert verdict(response) == ("false", str(expected.first_bad_sequence))
    body = response.content.decode()
    assert f"The record was altered at sequence {expected.first_bad_sequence}" in body
    assert expected.problem in body


def test_signed_checkpoints_are_listed_and_checked(history: History, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_KEY = KEY
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    client = history.client(history.auditor)
    assert "no checkpoint has been written yet" in client.get(URL).content.decode()
    checkpoint_write(directory=settings.AUDIT_CHECKPOINT_DIR, key=KEY.encode())
    response = verify_now(client)
    assert verdict(response) == ("true", None)
    assert "1 signed checkpoint matched" in response.content.decode()
    (settings.AUDIT_CHECKPOINT_DIR / "checkpoint-forged.json").write_text('{"sequence": 3}')
    forged = verify_now(client)
    assert verdict(forged)[0] == "false"
    assert "checkpoint-forged.json" in forged.content.decode()


def test_a_history_rewritten_and_rehashed_is_caught_by_the_checkpoint(
    history: History, settings, tmp_path
):
    settings.AUDIT_CHECKPOINT_KEY = KEY
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    checkpoint_write(directory=settings.AUDIT_CHECKPOINT_DIR, key=KEY.encode())
    tampering.rewrite_history_from(3)
    response = verify_now(history.client(history.auditor))
    assert verdict(response) == ("false", "1")
    assert "checkpoint_mismatch" in response.content.decode()


def test_without_a_key_the_page_says_checkpoints_are_off(history: History, settings):
    settings.AUDIT_CHECKPOINT_KEY = ""
    body = history.client(history.auditor).get(URL).content.decode()
    assert "Not configured" in body and "AUDIT_CHECKPOINT_KEY" in body


def test_a_short_key_is_reported_not_a_crash(history: History, settings):
    settings.AUDIT_CHECKPOINT_KEY = "short"
    client = history.client(history.auditor)
    assert "at least 32 characters" in client.get(URL).content.decode()
    response = verify_now(client)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="verification-failed" data-status="failed"' in body
    assert "at least 32 characters" in body


def test_who_asked_is_shown_only_to_their_own_organisation(history: History):
    start(history.client(history.foreign_admin))
    own = history.client(history.auditor).get(URL).content.decode()
    assert "someone in another owner organisation" in own
    assert "admin@cobalt-foreign.example" not in own
    theirs = history.client(history.foreign_admin).get(URL).content.decode()
    assert "admin@cobalt-foreign.example" in theirs


def test_who_may_verify(history: History):
    assert history.client(history.owner_admin).get(URL).status_code == 200
    for outsider in (history.partner_admin, history.partner_staff):
        client = history.client(outsider)
        assert client.get(URL).status_code == 403
        assert client.post(START).status_code == 403
    assert AuditVerification.objects.count() == 0
    # Auditors may press "Verify now" (and nothing else unsafe, even here).
    auditor = history.client(history.auditor)
    assert auditor.post(START).status_code == 302
    for method in ("put", "patch", "delete"):
        assert getattr(auditor, method)(START).status_code == 403
    assert auditor.post(URL).status_code == 403
    assert history.client(history.owner_admin).post(URL).status_code == 405
    assert history.client(history.owner_admin).get(START).status_code == 405


def test_an_unknown_run_is_404(history: History):
    client = history.client(history.auditor)
    assert client.get(f"{URL}{history.delegation.pk}/").status_code == 404
    assert client.get(f"{URL}not-a-uuid/").status_code == 404
