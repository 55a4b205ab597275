"""Kill → converged: how long a revocation takes to reach the cloud when the worker applying it
is SIGKILLed mid-reconcile.

Real processes: cloudsim with a per-call latency, Celery workers (solo pool, one task at a time,
so a kill hits exactly the run in flight) and beat, on the configured database and broker
(DATABASE_URL, CELERY_BROKER_URL; default a fresh SQLite file and the embedded filesystem
broker). Two phases:

* **another worker alive**: two workers; the one holding the role's lease is killed; the other
  converges the role once the lease expires and the stuck-work sweep re-requests it. The kill
  lands while the lease is held (the run is between its claim and its release);
* **the only worker restarts**: one worker, killed and started again at once with the same
  node name; it frees its previous incarnation's lease and reconciles. The lease is long here,
  so only that release can make it in time.

For every kill it checks convergence: the delegation is revoked and the partner is gone from
the trust policy in cloudsim. It prints the median and p99 of kill → converged per phase, or
one JSON object with `--json` (the test in tests/delegations/test_worker_crash.py reads it).

    python benchmarks/worker_crash_recovery.py [--kills-alive 20] [--kills-restart 20]
        [--latency-ms 30] [--lease-seconds 3] [--restart-heartbeat-seconds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from portal_harness import ROOT, Portal, _owner, median

# The targets: a revoke in flight when its worker dies is in the cloud within
# 60 s while another worker is alive, within 30 s of a restart when the only worker restarts.
ALIVE_TARGET_SECONDS = 60.0
RESTART_TARGET_SECONDS = 30.0


def p99(values: list[float]) -> float:
    """Nearest-rank 99th percentile (the maximum below 100 samples)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


class Workers:
    """Celery worker processes by node name, and beat; every one of them stopped at the end."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.beat: subprocess.Popen[bytes] | None = None

    def start(self, node: str, **env: str) -> None:
        self.processes[node] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--pool=solo",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=WARNING",
                "-n",
                node,
            ],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start_beat(self, schedule: Path) -> None:
        self.beat = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "beat",
                "--loglevel=WARNING",
                "-s",
                str(schedule),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self, node: str) -> None:
        process = self.processes.pop(node)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self, node: str) -> None:
        process = self.processes.pop(node)
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def stop_all(self) -> None:
        for node in list(self.processes):
            self.stop(node)
        if self.beat is not None:
            self.beat.terminate()
            with suppress(subprocess.TimeoutExpired):
                self.beat.wait(20)
            if self.beat.poll() is None:
                self.beat.kill()
                self.beat.wait(10)


class Scenario:
    """The owner's role with many active partners, revoked one at a time."""

    def __init__(self, portal: Portal, role_name: str, partners: int) -> None:
        self.portal = portal
        self.catalog_role = portal.catalog_role(role_name)
        self.role_name = role_name
        self.delegations: list[Any] = []
        for _ in range(partners):
            delegation = portal.request(portal.partner(), self.catalog_role)
            self.delegations.append(portal.approve(delegation))

    def wait_all_active(self) -> None:
        self.portal.wait_for([d.pk for d in self.delegations], "active", timeout=300)

    def managed_role(self) -> Any:
        from delegations.lifecycle.transitions import managed_role_for_catalog_role

        return managed_role_for_catalog_role(catalog_role=self.catalog_role)

    def holder(self) -> str:
        from delegations.models import ManagedRole

        return (
            ManagedRole.objects.filter(pk=self.managed_role().pk)
            .values_list("locked_by", flat=True)
            .get()
        )

    def revoke(self, delegation: Any) -> None:
        from delegations.lifecycle.services import delegation_revoke

        delegation_revoke(delegation=delegation, revoked_by=self.portal.admin, reason="Ended")

    def converged(self, delegation: Any) -> bool:
        from cloud import policies
        from delegations.models import Delegation

        status = Delegation.objects.filter(pk=delegation.pk).values_list("status", flat=True)
        if status.get() != Delegation.Status.REVOKED:
            return False
        role = self.portal.client().get_role(self.role_name)
        principal = policies.account_root_arn(delegation.partner_account_uid)
        return (
            role is None
            or principal not in policies.trust_policy_principals(role.trust_document).ram
        )

    def wait_converged(self, delegation: Any, *, timeout: float) -> float | None:
        """Monotonic time convergence was first seen, or None after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.converged(delegation):
                return time.monotonic()
            time.sleep(0.02)
        return None

    def wait_claimed(self, *, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            token = self.holder()
            if token:
                return token
            time.sleep(0.002)
        raise RuntimeError("No worker claimed the role after the revocation.")


def _kill_holder(
    scenario: Scenario, workers: Workers, nodes: dict[str, str], jitter: float
) -> tuple[str, float, bool]:
    """Kill the worker holding the role's lease, a random moment into its run. Returns the
    node killed, the time, and whether the run was still in flight (its lease still held by
    the dead worker's token) rather than already finished."""
    token = scenario.wait_claimed()
    time.sleep(random.uniform(0, jitter))
    node = nodes.get(token.split(".", 1)[0])
    if node is None and len(workers.processes) == 1:
        node = next(iter(workers.processes))  # a token that names no worker: the only one
    if node is None or node not in workers.processes:
        raise RuntimeError(f"The lease holder {token!r} is not one of this run's workers.")
    workers.kill(node)
    killed_at = time.monotonic()
    return node, killed_at, scenario.holder() == token


def _node_key(node: str) -> str:
    try:
        from delegations.worker.incarnation import node_key
    except ImportError:  # a portal whose lease tokens do not name the worker
        return node
    return node_key(node)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    from tests.fixtures.cloudsim import CloudSim

    with tempfile.TemporaryDirectory(prefix="portal-crash-") as directory:
        base = Path(directory)
        sim = CloudSim(data_dir=base / "cloudsim", demo=False).start()
        env = dict(os.environ)
        env.setdefault("DATABASE_URL", f"sqlite:///{base / 'portal.sqlite3'}")
        env.update(
            DEBUG="1",
            DJANGO_SETTINGS_MODULE="portal.settings",
            PORTAL_DATA_DIR=str(base),
            PORTAL_ENCRYPTION_KEYS=Fernet.generate_key().decode("ascii"),
            ALIBABA_RAM_ENDPOINT=sim.endpoint,
            ALIBABA_STS_ENDPOINT=sim.endpoint,
            ALIBABA_CLOUD_PROTOCOL="http",
            LOG_LEVEL="WARNING",
            PORTAL_RAM_READ_SETTLE_SECONDS="0",
            PORTAL_SWEEP_INTERVAL_SECONDS=str(args.sweep_seconds),
            PORTAL_RECONCILER_INTERVAL_SECONDS="3600",
        )
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        workers = Workers(env)
        results: dict[str, Any] = {"phases": {}}
        try:
            portal = _owner(sim, args.latency_ms)
            short = {
                "PORTAL_ROLE_LEASE_SECONDS": f"{args.lease_seconds:g}",
                "PORTAL_LEASE_HEARTBEAT_SECONDS": str(args.lease_seconds / 3),
            }
            alive_nodes = ["crash-a@bench", "crash-b@bench"]
            nodes = {_node_key(node): node for node in [*alive_nodes, "crash-solo@bench"]}
            for node in alive_nodes:
                workers.start(node, **short)
            workers.start_beat(base / "celerybeat-schedule")
            # Spares for runs that finish before their kill lands (they do not count); a quick
            # reconcile misses more often, so keep two spares per kill.
            partners = 3 * (args.kills_alive + args.kills_restart) + 2
            scenario = Scenario(portal, "crash-recovery", partners)
            scenario.wait_all_active()
            sim.set_faults(latency_ms=args.latency_ms)
            queue = list(scenario.delegations)

            long_lease = {
                "PORTAL_ROLE_LEASE_SECONDS": f"{args.restart_lease_seconds:g}",
                "PORTAL_LEASE_HEARTBEAT_SECONDS": f"{args.restart_heartbeat_seconds:g}",
            }

            def phase(kills: int, target: float, restart: bool) -> dict[str, Any]:
                latencies: list[float] = []
                failures = 0
                missed = 0
                while len(latencies) + failures < kills and queue:
                    delegation = queue.pop()
                    scenario.revoke(delegation)
                    node, killed_at, in_flight = _kill_holder(scenario, workers, nodes, args.jitter)
                    if restart:
                        workers.start(node, **long_lease)
                    done = scenario.wait_converged(delegation, timeout=target)
                    if not in_flight:
                        missed += 1
                        failures += done is None
                    elif done is None:
                        failures += 1
                    else:
                        latencies.append(done - killed_at)
                    if not restart:
                        workers.start(node, **short)
                return {
                    "kills": len(latencies) + failures,
                    "converged": len(latencies),
                    "not_converged": failures,
                    "runs_finished_before_the_kill": missed,
                    "median_seconds": round(median(latencies), 2) if latencies else None,
                    "p99_seconds": round(p99(latencies), 2) if latencies else None,
                    "target_seconds": target,
                }

            results["phases"]["another_worker_alive"] = phase(
                args.kills_alive, ALIVE_TARGET_SECONDS, restart=False
            )
            for node in alive_nodes:
                workers.stop(node)
            workers.start("crash-solo@bench", **long_lease)
            results["phases"]["only_worker_restarts"] = phase(
                args.kills_restart, RESTART_TARGET_SECONDS, restart=True
            )
            from delegations.models import CloudCall

            results["pending_cloud_calls_left"] = CloudCall.objects.filter(
                managed_role=scenario.managed_role(), outcome=CloudCall.Outcome.PENDING
            ).count()
            results["settings"] = {
                "latency_ms": args.latency_ms,
                "lease_seconds_alive_phase": args.lease_seconds,
                "lease_seconds_restart_phase": args.restart_lease_seconds,
                "sweep_seconds": args.sweep_seconds,
                "database": env["DATABASE_URL"].split(":", 1)[0],
                "broker": env.get("CELERY_BROKER_URL", "filesystem").split(":", 1)[0],
            }
        finally:
            workers.stop_all()
            sim.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills-alive", type=int, default=20)
    parser.add_argument("--kills-restart", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--lease-seconds", type=float, default=30.0)
    parser.add_argument("--restart-lease-seconds", type=float, default=120.0)
    # A restarted worker frees its previous run's leases once they have gone two heartbeats
    # unrenewed (a live namesake renews its own), so this sets how long that takes.
    parser.add_argument("--restart-heartbeat-seconds", type=float, default=5.0)
    parser.add_argument("--sweep-seconds", type=float, default=15.0)
    parser.add_argument("--jitter", type=float, default=0.3, help="seconds into the run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps(results))
        return
    for name, figures in results["phases"].items():
        print(
            f"{name}: {figures['converged']}/{figures['kills']} kills converged; "
            f"kill→converged median {figures['median_seconds']} s, "
            f"p99 {figures['p99_seconds']} s (target {figures['target_seconds']:.0f} s); "
            f"{figures['runs_finished_before_the_kill']} runs finished before the kill"
        )
    print(f"pending cloud calls left: {results['pending_cloud_calls_left']}")
    print(f"settings: {results['settings']}")


if __name__ == "__main__":
    main()
