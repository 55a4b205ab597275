"""Issue 19 item 6 with a real worker: a batch of notification emails waits while another
worker holds a lease (it is applying access on the same cores), and goes within about a
second of its release. The scenario runs in a process of its own on a SQLite file
(`batches_step_aside.py`), with the embedded filesystem broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.database import run_portal_process, sqlite_copy, sqlite_process_env


@pytest.mark.slow
def test_a_real_workers_batch_waits_for_a_held_lease_then_goes(
    tmp_path: Path, migrated_sqlite: Path
) -> None:
    database = sqlite_copy(migrated_sqlite, tmp_path / "portal.sqlite3")
    env = sqlite_process_env(database=database, data_dir=tmp_path)
    scenario = ["-m", "tests.notifications.batches_step_aside"]
    done = run_portal_process(scenario, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["written"] > 8, result  # enough to travel as one fanned-out message
    # Nothing was sent while the lease was held ...
    assert result["pending_while_held"] == result["written"], result["log"]
    assert "yielded" in result["log"]
    # ... and everything soon after it was released (the batch looks again every second).
    assert (result["pending_at_end"], result["sent"]) == (0, result["written"]), result["log"]
    assert result["seconds_after_release"] < 10, result
