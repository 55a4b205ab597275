"""The verify page: intact or the first bad sequence number, and the signed checkpoints.

The verifier itself (every kind of tampering, batches, checkpoints) is tested in
`test_verify.py`; here the page must report exactly what it finds, with the same tamper
helpers (`tampering.py`) playing the attacker."""

import re

import pytest
from django.core.cache import cache

from audit import views
from audit.checkpoints import checkpoint_write
from audit.models import AuditEvent
from audit.verify import verify_chain
from tests.audit import tampering
from tests.audit.history import History, history_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

URL = "/audit/verify/"
KEY = "k" * 40


def verdict(response) -> tuple[str, str | None]:
    body = response.content.decode()
    match = re.search(r'data-testid="verdict" data-ok="(\w+)"(?: data-first-bad="(\d*)")?', body)
    assert match, body[:2000]
    return match.group(1), match.group(2)


def test_the_page_shows_the_head_and_verifies_on_request(history: History):
    client = history.client(history.auditor)
    page = client.get(URL)
    assert page.status_code == 200
    head = AuditEvent.objects.order_by("-sequence").first()
    assert f'data-testid="head-sequence">{head.sequence}<' in page.content.decode()
    assert 'data-testid="verdict"' not in page.content.decode()
    checked = client.get(URL, {"run": "1"})
    assert verdict(checked) == ("true", None)
    body = checked.content.decode()
    assert f"{AuditEvent.objects.count()} events verified" in body
    assert head.hash in body


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
    tamper()
    expected = verify_chain()
    assert not expected.ok
    response = history.client(history.auditor).get(URL, {"run": "1"})
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
    response = client.get(URL, {"run": "1"})
    assert verdict(response) == ("true", None)
    assert "1 signed checkpoint matched" in response.content.decode()
    (settings.AUDIT_CHECKPOINT_DIR / "checkpoint-forged.json").write_text('{"sequence": 3}')
    forged = client.get(URL, {"run": "1"})
    assert verdict(forged)[0] == "false"
    assert "checkpoint-forged.json" in forged.content.decode()


def test_a_history_rewritten_and_rehashed_is_caught_by_the_checkpoint(
    history: History, settings, tmp_path
):
    settings.AUDIT_CHECKPOINT_KEY = KEY
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    checkpoint_write(directory=settings.AUDIT_CHECKPOINT_DIR, key=KEY.encode())
    tampering.rewrite_history_from(3)
    response = history.client(history.auditor).get(URL, {"run": "1"})
    assert verdict(response) == ("false", "1")
    assert "checkpoint_mismatch" in response.content.decode()


def test_without_a_key_the_page_says_checkpoints_are_off(history: History, settings):
    settings.AUDIT_CHECKPOINT_KEY = ""
    body = history.client(history.auditor).get(URL).content.decode()
    assert "Not configured" in body and "AUDIT_CHECKPOINT_KEY" in body


def test_a_short_key_is_reported_not_a_crash(history: History, settings):
    settings.AUDIT_CHECKPOINT_KEY = "short"
    response = history.client(history.auditor).get(URL, {"run": "1"})
    assert response.status_code == 200
    assert "at least 32 characters" in response.content.decode()


def test_one_verification_runs_at_a_time(history: History):
    cache.add(views.VERIFY_LOCK, True, 60)
    try:
        response = history.client(history.auditor).get(URL, {"run": "1"})
    finally:
        cache.delete(views.VERIFY_LOCK)
    assert "Another verification is running" in response.content.decode()
    assert 'data-testid="verdict"' not in response.content.decode()


def test_the_lock_is_released_after_a_run(history: History):
    client = history.client(history.auditor)
    client.get(URL, {"run": "1"})
    assert verdict(client.get(URL, {"run": "1"})) == ("true", None)


def test_who_may_verify(history: History):
    assert history.client(history.owner_admin).get(URL).status_code == 200
    assert history.client(history.partner_admin).get(URL).status_code == 403
    assert history.client(history.partner_staff).get(URL).status_code == 403
    assert history.client(history.auditor).post(URL, {"run": "1"}).status_code == 403
    assert history.client(history.owner_admin).post(URL).status_code == 405
