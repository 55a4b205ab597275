"""Benchmark: approving one fleet grant over N owner accounts, applied C accounts at a time.

    .venv/bin/python benchmarks/fleet_apply.py [--accounts 20] [--concurrency 5]
        [--latency-ms 100] [--runs 3] [--database-url URL] [--broker-url URL] [--profile]

--profile runs every worker task under cProfile and prints where the tasks' time went (the
reconciles' and the fleet advances', by cumulative time), added up over the measured runs.

cloudsim adds L ms to every call. The owner has N connected accounts; a partner requests one
catalogue role in all of them (one fleet grant), an owner admin approves it once (the service
the web view calls), and the script polls the database until the real Celery worker has made
every account active. The ratio is

    (time from approve returning to every account active) / floor
    floor = ceil(N / C) x (the calls one account strictly needs x L)

where one account needs GetRole, CreateRole, AttachPolicyToRole and the verifying GetRole and
ListPoliciesForRole (the role is new in every account). Target: <= 1.3. The worker runs with
C + 2 slots (the rate control, not the pool, must be what bounds concurrency). The topology
comes from the options or DATABASE_URL and CELERY_BROKER_URL (defaults: a fresh SQLite file
and the embedded filesystem broker, whose polling adds to every hand-over between accounts).
"""

from __future__ import annotations

import argparse
import math
import os
import pstats
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from portal_harness import median, random_uid, running_portal, task_outcomes

PER_ACCOUNT = ["GetRole", "CreateRole", "AttachPolicyToRole", "GetRole", "ListPoliciesForRole"]


def connect_accounts(portal, count: int) -> list:
    """`count` more cloudsim accounts connected to the owner (the first is the primary)."""
    from delegations.connection.services import cloud_account_connect

    accounts = [portal.cloud_account]
    for index in range(count - 1):
        uid = random_uid()
        created = portal.sim.create_account(uid=uid, alias=f"fleet-{uid}")
        accounts.append(
            cloud_account_connect(
                organisation=portal.owner,
                connected_by=portal.admin,
                account_uid=uid,
                alias="",
                name=f"account-{index + 2}",
                region="cn-hangzhou",
                access_key_id=created["root"]["access_key_id"],
                access_key_secret=created["root"]["access_key_secret"],
            )
        )
    return accounts


def measure(portal, accounts: list, concurrency: int) -> tuple[float, int, int]:
    from delegations.catalog.services import catalog_role_set_accounts
    from delegations.fleet.services import fleet_approve, fleet_request
    from delegations.models import Delegation

    role = portal.catalog_role(f"fleet-{secrets.token_hex(3)}")
    role = catalog_role_set_accounts(catalog_role=role, changed_by=portal.admin, all_accounts=True)
    partner = portal.partner()
    fleet = fleet_request(
        partner=partner,
        requested_by=portal.partner_admins[str(partner.pk)],
        partner_link=portal.link,
        catalog_role=role,
        accounts=accounts,
        regions=["cn-shanghai", "cn-beijing"],
        reason="Benchmark",
        ends_at=None,
        concurrency=concurrency,
        max_errors=0,
    )
    ids = list(Delegation.objects.filter(fleet=fleet).values_list("pk", flat=True))
    seq = portal.sim.last_call_seq()
    fleet_approve(fleet=fleet, approved_by=portal.approver, with_mfa=True)
    returned = time.monotonic()
    active = portal.wait_for(ids, "active", timeout=600)
    calls = portal.sim.calls(seq)
    mutating = sum(1 for c in calls if c.get("mutating"))
    return active - returned, len(calls), mutating


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url")
    parser.add_argument("--broker-url")
    parser.add_argument("--profile", action="store_true", help="profile the worker's tasks")
    args = parser.parse_args()
    profile_dir = Path(tempfile.mkdtemp(prefix="fleet-apply-profile-")) if args.profile else None
    if profile_dir is not None:
        os.environ["PORTAL_BENCH_PROFILE_DIR"] = str(profile_dir)
    latency = args.latency_ms / 1000.0
    floor = math.ceil(args.accounts / args.concurrency) * len(PER_ACCOUNT) * latency

    with running_portal(
        latency_ms=args.latency_ms,
        worker_concurrency=args.concurrency + 2,
        database_url=args.database_url,
        broker_url=args.broker_url,
    ) as portal:
        # Connecting the accounts is set-up, not measured: without the latency.
        portal.sim.set_faults(latency_ms=0)
        accounts = connect_accounts(portal, args.accounts)
        portal.sim.set_faults(latency_ms=args.latency_ms)
        print(
            f"{args.accounts} accounts, concurrency {args.concurrency}, cloudsim latency "
            f"L = {args.latency_ms:.0f} ms per call; database "
            f"{os.environ['DATABASE_URL'].split(':', 1)[0]}; broker "
            f"{os.environ.get('CELERY_BROKER_URL', 'filesystem://').split(':', 1)[0]}"
        )
        print(
            f"floor: ceil({args.accounts}/{args.concurrency}) x {len(PER_ACCOUNT)} calls x "
            f"{args.latency_ms:.0f} ms = {floor * 1000:.0f} ms"
        )
        ratios = []
        if profile_dir is not None:  # the warm-up's tasks are not measured
            for stale in profile_dir.glob("*.prof"):
                stale.unlink()
        for run in range(args.runs):
            elapsed, calls, mutating = measure(portal, accounts, args.concurrency)
            ratio = elapsed / floor
            ratios.append(ratio)
            print(
                f"run {run + 1}: approve -> {args.accounts} accounts active in "
                f"{elapsed * 1000:.0f} ms ({calls} cloud calls, {mutating} mutating; "
                f"{args.accounts * len(PER_ACCOUNT)} needed) -> ratio {ratio:.2f}"
            )
        print(f"median ratio {median(ratios):.2f}, worst {max(ratios):.2f} (target <= 1.3)")
        # Where the worker's time went: tasks by outcome, with their total seconds.
        for outcome, (count, seconds) in sorted(task_outcomes(portal.workers).items()):
            print(f"  worker: {count:4d} x {outcome} ({seconds:.1f} s in all)")
    if profile_dir is not None:
        files = sorted(str(path) for path in profile_dir.glob("*.prof"))
        if files:
            print(f"profile of {len(files)} worker tasks (cumulative seconds over all tasks):")
            stats = pstats.Stats(*files)
            stats.sort_stats("cumulative").print_stats(40)
        shutil.rmtree(profile_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
