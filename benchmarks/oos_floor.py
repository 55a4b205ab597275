"""cloudsim's side of the fleet-run benchmark: what one target costs in cloudsim's OOS engine,
and the floor a run cannot beat. `benchmarks/fleet_run.py` (the runbook work) calls these; run
alone it measures the engine without the portal:

    .venv/bin/python benchmarks/oos_floor.py                        # 2 accounts x 2 regions x 5
    .venv/bin/python benchmarks/oos_floor.py --accounts 5 --regions 2 --instances 20 \\
        --latency-ms 20 --concurrency 10

What one target costs. Every call OOS makes is in cloudsim's call log with `via: "oos"`. For
one instance of an `ACS::ECS::RunCommand` loop the engine walks the role chain again (the
service's AssumeRole of the source role, then the source session's AssumeRole of the target
role), calls `RunCommand` and polls `DescribeInvocationResults` until the result is in (once
for a command that takes no simulated time): `ENGINE_CALLS_PER_TARGET` = 4 calls of latency L.
Each child execution (one per account and region) first runs `getInstance`: the chain again
and `DescribeInstances`, `ENGINE_CALLS_PER_CHILD` = 3. The floor of a run over T targets with
concurrency C is ceil(T / C) x the per-target critical path; `calls_per_target` counts what a
measured run really made, per instance, from the call log.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cloudsim.oos_scenario import REGIONS, Scenario  # noqa: E402
from tests.fixtures.cloudsim import CloudSim  # noqa: E402

ENGINE_CALLS_PER_TARGET = 4
ENGINE_CALLS_PER_CHILD = 3
TERMINAL = ("Success", "Failed", "Cancelled")


def engine_calls(sim: CloudSim, *, since: int = 0) -> list[dict]:
    """The calls cloudsim's OOS engine made (call-log entries with `via: "oos"`)."""
    return [call for call in sim.calls(since) if call.get("via") == "oos"]


def calls_per_target(calls: list[dict]) -> dict[str, int]:
    """instance id → the engine calls made for it: its RunCommand and DescribeInvocationResults
    calls (named by their InstanceId parameters) and the two role-chain hops before each
    RunCommand."""
    counts: Counter[str] = Counter()
    for call in calls:
        parameters = call.get("parameters") or {}
        if call.get("action") == "RunCommand":
            counts[parameters.get("InstanceId.1", "")] += 1 + 2
        elif call.get("action") == "DescribeInvocationResults" and parameters.get("InstanceId"):
            counts[parameters["InstanceId"]] += 1
    counts.pop("", None)
    return dict(counts)


def floor_seconds(
    *,
    targets: int,
    concurrency: int,
    latency_seconds: float,
    calls_per_target: float = ENGINE_CALLS_PER_TARGET,
    child_calls: float = 0,
) -> float:
    """ceil(targets / concurrency) x (latency x the calls one target needs), plus
    `child_calls` x latency when the floor should include the child's target selection
    (`ENGINE_CALLS_PER_CHILD`), which precedes its first target."""
    if targets <= 0 or concurrency <= 0:
        raise ValueError("targets and concurrency must be positive")
    rounds = math.ceil(targets / concurrency)
    return (rounds * calls_per_target + child_calls) * latency_seconds


def measure(
    *, accounts: int, regions: int, instances: int, latency_ms: int, concurrency: int
) -> dict:
    """One MultiAccount run through the official OOS SDK on a cloudsim of its own."""
    with tempfile.TemporaryDirectory(prefix="oos-floor-") as directory:
        sim = CloudSim(
            data_dir=Path(directory), env={"CLOUDSIM_TIME_SCALE": "0"}, demo=False
        ).start()
        try:
            scenario = Scenario(sim, owners=accounts, running=instances)
            scenario.put_template()
            sim.set_faults(latency_ms=str(latency_ms))
            parameters = scenario.parameters(concurrency=concurrency, child_concurrency=concurrency)
            parameters["accountRoleAndRegions"] = [
                item
                for item in parameters["accountRoleAndRegions"]
                if item["RegionId"] in REGIONS[:regions]
            ]
            mark = sim.last_call_seq()
            started = time.monotonic()
            execution = scenario.start(parameters, token=str(uuid.uuid4()))
            while scenario.execution(execution.execution_id).status not in TERMINAL:
                time.sleep(0.01)
            wall = time.monotonic() - started
            finished = scenario.execution(execution.execution_id)
            sim.clear_faults()
            calls = engine_calls(sim, since=mark)
        finally:
            sim.stop()
    per_target = calls_per_target(calls)
    targets = accounts * regions * instances
    floor = floor_seconds(
        targets=targets,
        concurrency=concurrency,
        latency_seconds=latency_ms / 1000,
        child_calls=ENGINE_CALLS_PER_CHILD,
    )
    return {
        "status": finished.status,
        "targets": targets,
        "wall_seconds": round(wall, 3),
        "floor_seconds": round(floor, 3),
        "ratio": round(wall / floor, 2) if floor else None,
        "engine_calls": len(calls),
        "calls_per_target_max": max(per_target.values(), default=0),
        "calls_per_target_min": min(per_target.values(), default=0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2)
    parser.add_argument("--regions", type=int, default=2, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args(argv)
    result = measure(
        accounts=args.accounts,
        regions=args.regions,
        instances=args.instances,
        latency_ms=args.latency_ms,
        concurrency=args.concurrency,
    )
    for key, value in result.items():
        print(f"{key}: {value}")
    return 0 if result["status"] == "Success" else 1


if __name__ == "__main__":
    sys.exit(main())
