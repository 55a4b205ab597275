"""The embedded setup: several processes (web, worker, beat) share one SQLite file. Their
IMMEDIATE transactions queue on the database lock, so the chain stays linear; the command
line `audit_verify` then passes, and fails naming the row once it is edited by hand."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.database import run_portal_process, sqlite_copy

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 3
EVENTS_EACH = 15

WRITER = """
import sys
import django
django.setup()
from django.db import transaction
from audit.actions import AuditAction
from audit.services import audit_record
for index in range(int(sys.argv[2])):
    with transaction.atomic():
        audit_record(action=AuditAction.MEMBER_ADDED, target_type="test.writer",
                     target_id=sys.argv[1], metadata={"index": index})
"""


@pytest.fixture
def sqlite_env(tmp_path, migrated_sqlite):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        PORTAL_DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="portal.settings",
    )
    # Migrated from nothing once per run (`migrated_sqlite`), copied here.
    return env, sqlite_copy(migrated_sqlite, tmp_path / "portal.sqlite3")


def audit_verify(env: dict) -> subprocess.CompletedProcess:
    return run_portal_process(["manage.py", "audit_verify"], env=env, timeout=120)


@pytest.mark.slow
def test_processes_share_one_chain_and_a_hand_edit_is_named(sqlite_env):
    env, database = sqlite_env
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(number), str(EVENTS_EACH)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(PROCESSES)
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr

    total = PROCESSES * EVENTS_EACH
    ok = audit_verify(env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"OK: {total} events verified, head sequence {total}")

    with sqlite3.connect(database) as connection:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("UPDATE audit_auditevent SET target_label = 'x' WHERE sequence = 1")
        # Someone with the database file drops the trigger and edits a row by hand.
        connection.execute("DROP TRIGGER audit_auditevent_no_update")
        connection.execute(
            "UPDATE audit_auditevent SET target_label = 'edited by hand' WHERE sequence = 29"
        )
    failed = audit_verify(env)
    assert failed.returncode == 1
    assert "FAILED at sequence 29: hash_mismatch" in failed.stderr
