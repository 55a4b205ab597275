"""benchmarks/activity.py at a small size: it seeds cloudsim in bulk, ingests every event,
and prints the ratios and a constant SQL count per page (behaviour only: nothing is timed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# A process of its own: Django set up, a test database migrated, cloudsim started, 42 pages.
@pytest.mark.timeout(600)
@pytest.mark.slow
def test_the_activity_benchmark_runs_at_a_small_size():
    # On SQLite: on PostgreSQL the benchmark's test database would have this run's name.
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DEBUG"] = "1"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "activity.py"),
            "--events",
            "300",
            "--small",
            "100",
            "--requests",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=580,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "seeding cloudsim: 300 calls" in out
    # Twice, before and after the ingestion; the ratio is against the faster of the two.
    for when in ("before", "after"):
        assert re.search(rf"bare paging {when} the ingestion: 30\d events in [\d.]+ s", out)
    # The small run stored the oldest 100; the large one the other 200.
    assert re.search(r"ingestion: 200 events in [\d.]+ s", out)
    ratio = re.search(
        r"ratio ingestion/bare: ([\d.]+) against the faster bare run \(target >= 0\.7\); "
        r"against each: ([\d.]+) and ([\d.]+)",
        out,
    )
    assert ratio, out
    assert float(ratio[1]) == min(float(ratio[2]), float(ratio[3]))
    # Where each loop's CPU went: this process and cloudsim by name, then everything else.
    for loop in ("bare paging", "ingestion"):
        assert re.search(
            rf"CPU, {loop}: [\d.]+ core-s \(this process [\d.]+, cloudsim [\d.]+, "
            r"the rest [\d.]+\) in [\d.]+ s",
            out,
        ), out
    pages = re.findall(r"^(\w+)\s+[\d.]+ms\s+[\d.]+ms\s+[\d.]+\s+(\d+)\s+(\d+)$", out, re.M)
    assert {name for name, _, _ in pages} == {
        "newest",
        "writes",
        "denied",
        "person",
        "action",
        "week",
        "text",
    }
    assert all(small == large for _, small, large in pages), pages
