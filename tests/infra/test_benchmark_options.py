"""The many-partners benchmark's options, floor and bookkeeping (no portal is started: the
benchmark itself is run by hand and prints ratios; nothing here times anything)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import many_partners_one_role as bench
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
