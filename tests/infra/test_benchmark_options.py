"""The many-partners benchmark's options, floor and bookkeeping (no portal is started: the
benchmark itself is run by hand and prints ratios; nothing here times anything)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import many_partners_one_role as bench
from cpu import CpuWindow, process_tree, processes_named
from portal_harness import Worker, task_outcomes
from sql_profile import _bucket


def test_options_default_to_todays_single_role_run():
    args = bench.parse_args([])
    assert (args.partners, args.roles, args.workers, args.pool, args.concurrency) == (
        100,
        1,
        1,
        "solo",
        1,
    )
    assert args.database_url is None and args.broker_url is None


def test_options_for_the_production_sized_run():
    args = bench.parse_args(
        [
            "--partners",
            "1000",
            "--roles",
            "10",
            "--workers",
            "4",
            "--database-url",
            "postgres://db/x",
            "--broker-url",
            "redis://r:6379/1",
        ]
    )
    assert (args.partners, args.roles, args.workers) == (1000, 10, 4)
    assert args.database_url == "postgres://db/x"
    assert args.broker_url == "redis://r:6379/1"


def test_solo_workers_have_one_slot_and_prefork_keeps_its_concurrency():
    assert bench.parse_args(["--pool", "solo", "--concurrency", "3"]).concurrency == 1
    assert bench.parse_args(["--pool", "prefork", "--concurrency", "3"]).concurrency == 3


@pytest.mark.parametrize(
    "argv", [["--roles", "0"], ["--workers", "0"], ["--partners", "2", "--roles", "3"]]
)
def test_impossible_sizes_are_refused(argv):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)


def test_the_floor_is_waves_of_five_calls():
    # 10 roles over 4 slots: 3 waves of the five calls one new role needs.
    assert bench.floor_seconds(roles=10, slots=4, latency_ms=100) == pytest.approx(1.5)
    assert bench.floor_seconds(roles=1, slots=4, latency_ms=100) == pytest.approx(0.5)
    assert bench.floor_seconds(roles=8, slots=4, latency_ms=50) == pytest.approx(0.5)


def test_partners_are_spread_round_robin_over_the_roles():
    pairs = bench.assign(list(range(7)), ["a", "b", "c"])
    assert [role for _, role in pairs] == ["a", "b", "c", "a", "b", "c", "a"]


def test_task_outcomes_are_read_from_the_worker_logs(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text(
        "[2026-01-01 00:00:00,000: INFO/MainProcess] Task delegations.run_outbox_message"
        "[1f] succeeded in 0.5s: 'converged'\n"
        "[2026-01-01 00:00:00,000: INFO/MainProcess] Task delegations.run_outbox_message"
        "[2f] succeeded in 0.25s: 'busy'\n"
        "[2026-01-01 00:00:00,000: INFO/MainProcess] Task delegations.run_outbox_message"
        "[3f] succeeded in 0.25s: 'busy'\n"
    )
    worker = Worker(process=None, log=log, ready=tmp_path / "ready")  # type: ignore[arg-type]
    assert task_outcomes([worker]) == {
        "run_outbox_message: converged": (1, 0.5),
        "run_outbox_message: busy": (2, 0.5),
    }


def test_sql_statements_are_bucketed_by_kind_and_origin():
    assert _bucket("SAVEPOINT s1", "x", "") == ("savepoints", "")
    assert _bucket('SELECT 1 FROM "d" FOR UPDATE', "svc._lock", "") == ("locks", "svc._lock")
    assert _bucket('SELECT 1 FROM "h" FOR UPDATE', "audit._lock", "svc._audit") == (
        "audit_record",
        "lock in audit._lock for svc._audit",
    )
    assert _bucket('INSERT INTO "e"', "audit.save", "svc._audit")[0] == "audit_record"
    assert _bucket('SELECT 1 FROM "d"', "sel.one", "") == ("reads", "sel.one")
    assert _bucket('UPDATE "d" SET', "svc.t", "") == ("writes", "UPDATE svc.t")
    # Work a request deferred until its response was sent is counted apart.
    assert _bucket('UPDATE "d" SET', "svc.t", "", True) == ("after_response", "UPDATE svc.t")


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="Linux /proc accounting")
def test_a_cpu_window_adds_up_each_group_of_processes():
    # A group is the sum of its processes; one that starts inside the window counts from zero.
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    started: list[subprocess.Popen] = []
    try:
        window = CpuWindow(
            this=os.getpid(),
            spinner=spinner.pid,
            both=[os.getpid(), spinner.pid],
            later=lambda: [child.pid for child in started],
        ).start()
        _spin(0.3)
        started.append(
            subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.01)"])
        )
        time.sleep(0.2)
        window.stop()
    finally:
        for process in (spinner, *started):
            process.kill()
            process.wait()
    assert window.processes["this"] >= 0.25
    assert window.processes["spinner"] >= 0.1
    assert window.processes["both"] == pytest.approx(
        window.processes["this"] + window.processes["spinner"], abs=0.03
    )
    assert 0.0 <= window.processes["later"] < 0.2
    assert window.busy is not None and window.available is not None
    assert window.busy >= window.processes["this"] - 0.02
    assert window.available >= window.busy - 0.02  # two readings of the same ticks
    assert "this " in window.breakdown() and "the rest " in window.breakdown()
    report = bench.cpu_report(window, floor=0.5)
    assert report.startswith("machine CPU over commit -> all active: ")
    assert f"at least {window.busy / (os.cpu_count() or 1):.2f} s" in report


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="Linux /proc accounting")
def test_processes_are_found_by_their_command():
    command = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert os.getpid() in processes_named(command)()
    assert processes_named("no-such-command-here")() == []


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="Linux /proc accounting")
def test_a_process_tree_is_a_process_and_its_descendants():
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child = int(parent.stdout.readline())
        assert sorted(process_tree(parent.pid)()) == sorted([parent.pid, child])
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)], check=False)
        parent.kill()
        parent.wait()
