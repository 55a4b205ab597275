"""Benchmark: many partners approved at once over a few roles, applied by real worker processes.

    .venv/bin/python benchmarks/many_partners_one_role.py [--partners 100] [--roles 1]
        [--workers 1] [--pool solo|prefork] [--concurrency 1] [--latency-ms 100]
        [--database-url URL] [--broker-url URL] [--profile]

The production-sized run:

    .venv/bin/python benchmarks/many_partners_one_role.py --partners 1000 --roles 10 \\
        --workers 4 --database-url postgres://... --broker-url redis://...

cloudsim adds L ms to every call. `--roles` fresh catalogue roles (none exists in the cloud
yet) and `--partners` partner organisations; partner i requests role i mod R. All the requests
are approved together, in request order (one transaction, as a bulk approval would; each
approval commits its outbox message and publishes it after the commit), and `--workers` real
Celery worker processes (`celery worker`, each its own process, `--pool` with `--concurrency`
slots; solo has one) apply them against `--database-url` and `--broker-url` (defaults: a fresh
SQLite file and the embedded filesystem broker, or DATABASE_URL / CELERY_BROKER_URL). Printed:
whether all are `active`, whether every role's trust policy holds exactly its own partners,
and

    ratio = (commit -> all active) / floor

The floor is what batching cannot go below. One role, whatever its number of partners, strictly
needs five cloud calls: GetRole (the role is absent: the portal never writes blind), CreateRole
with every one of its partners in the trust policy, AttachPolicyToRole (the catalogue role has
one policy), and the verifying GetRole and ListPoliciesForRole (the same five the
approve_to_active benchmark counts for a new role). A worker slot works on one role at a
time, so with S = workers x slots-per-worker the roles go in ceil(R / S) waves:

    floor = ceil(R / S) x 5 x L

It counts calls, not round trips: the worker sends the two verifying reads side by side, so a
wave could take 4 L, and all database work (the approvals' outbox, the transitions, the audit
events, the cloud-call rows) counts as overhead. Target: ratio <= 1.5.

It also prints how busy the machine's CPUs were from the commit to the last activation (Linux
/proc/stat), whose work it was (the workers, PostgreSQL's processes, cloudsim, this process;
the rest is the kernel's threads and interrupts, which no process is charged with), and what
that much CPU work alone allows: spread perfectly over the machine's cores it still takes busy /
cores seconds, so where that bound is near the measured time the run was CPU-bound rather than
waiting.

With `--profile` it then explains the figure: per role, when its first and last cloud calls
arrived and when its last partner became active (seconds after the commit), its cloud calls,
and how many worker runs called the cloud for it; the workers' task outcomes (runs that found
the role busy or already done cost a little each); and, with the workers stopped, one more
role with the same number of partners reconciled in this process with its SQL statements
counted by origin (see sql_profile.py).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import secrets
import threading
import time
from collections import Counter

from cpu import CpuWindow, process_tree, processes_named
from portal_harness import running_portal, stop_workers, task_outcomes
from sql_profile import sql_statements

CALLS_PER_ROLE = ["GetRole", "CreateRole", "AttachPolicyToRole", "GetRole", "ListPoliciesForRole"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partners", type=int, default=100)
    parser.add_argument("--roles", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--pool", choices=["solo", "prefork"], default="solo")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="slots per prefork worker (solo: 1)"
    )
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL or SQLite")
    parser.add_argument("--broker-url", default=None, help="default: CELERY_BROKER_URL or files")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for active")
    parser.add_argument("--profile", action="store_true", help="explain where the time goes")
    args = parser.parse_args(argv)
    if args.partners < 1 or args.roles < 1 or args.workers < 1 or args.concurrency < 1:
        parser.error("--partners, --roles, --workers and --concurrency must be at least 1")
    if args.roles > args.partners:
        parser.error("--roles must not exceed --partners (every role gets a partner)")
    if args.pool == "solo":
        args.concurrency = 1
    return args


def floor_seconds(*, roles: int, slots: int, latency_ms: float) -> float:
    """ceil(R / S) waves of the five calls one role strictly needs, L each."""
    return math.ceil(roles / slots) * len(CALLS_PER_ROLE) * latency_ms / 1000.0


def assign(partners: list, roles: list) -> list[tuple]:
    """Partner i requests role i mod R: (partner, role) in request order."""
    return [(partner, roles[i % len(roles)]) for i, partner in enumerate(partners)]


def trust_policies_exact(portal, roles: list, delegation_ids: list) -> dict[str, bool]:
    """Role name -> whether its trust policy names exactly the partners of its delegations."""
    from cloud import policies
    from delegations.models import Delegation

    wanted: dict[str, set[str]] = {role.role_name: set() for role in roles}
    for name, uid in Delegation.objects.filter(pk__in=delegation_ids).values_list(
        "managed_role__role_name", "partner_account_uid"
    ):
        wanted[name].add(policies.account_root_arn(uid))
    client = portal.client()
    return {
        name: set(policies.trust_policy_principals(client.get_role(name).trust_document).ram)
        == principals
        for name, principals in wanted.items()
    }


def cpu_report(window: CpuWindow, *, floor: float) -> str:
    """How busy the machine was over `window`, whose processes did the work, and what that CPU
    work alone allows: however well it is spread, it takes at least busy / cores seconds."""
    if window.busy is None or window.available is None:
        return "machine CPU: not measured (no /proc/stat)"
    cores = os.cpu_count() or 1
    return (
        f"machine CPU over commit -> all active: {window.breakdown()} busy of "
        f"{window.available:.1f} available ({window.busy / max(window.available, 1e-9):.0%}) "
        f"on {cores} cores; that work alone takes at least {window.busy / cores:.2f} s here "
        f"(ratio >= {window.busy / cores / floor:.2f})"
    )


def wait_all(role_ids: list, count: int, *, timeout: float) -> float:
    """Poll until `count` delegations of the roles are active (every 10 ms: small next to L,
    light on a shared machine); the monotonic time it was first seen."""
    from delegations.models import Delegation

    deadline = time.monotonic() + timeout
    while True:
        done = Delegation.objects.filter(catalog_role__in=role_ids, status="active").count()
        now = time.monotonic()
        if done >= count:
            return now
        if now > deadline:
            statuses = Counter(
                Delegation.objects.filter(catalog_role__in=role_ids).values_list(
                    "status", flat=True
                )
            )
            raise RuntimeError(f"Timed out waiting for active: {dict(statuses)}")
        time.sleep(0.01)


def role_timeline(roles: list, committed_at: dt.datetime) -> list[str]:
    """Per role: seconds after the commit of its first and last cloud answers and of its
    last activation; its cloud calls; the worker runs that called the cloud for it."""
    from django.db.models import Max, Min

    from delegations.models import CloudCall, Delegation

    def since(moment) -> str:
        return f"{(moment - committed_at).total_seconds():6.2f}" if moment else "     -"

    lines = []
    for role in roles:
        calls = CloudCall.objects.filter(managed_role__role_name=role.role_name)
        span = calls.aggregate(first=Min("intent_at"), last=Max("finished_at"))
        active = Delegation.objects.filter(catalog_role=role).aggregate(
            first=Min("activated_at"), last=Max("activated_at")
        )
        actions = Counter(calls.values_list("action", flat=True))
        runs = calls.values("worker").distinct().count()
        lines.append(
            f"  {role.role_name:22s} cloud {since(span['first'])} .. {since(span['last'])} s, "
            f"active {since(active['first'])} .. {since(active['last'])} s; "
            f"{sum(actions.values())} calls in {runs} run(s): "
            + ", ".join(f"{a} {n}" for a, n in sorted(actions.items()))
        )
    return lines


class PostgresSampler:
    """Samples what the other connections to the database are doing, every 20 ms, from a
    connection of its own (PostgreSQL only): running, waiting for a lock (and on which
    statement), or idle inside an open transaction."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.samples = 0
        self.states: Counter = Counter()
        self.waiting_on: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PostgresSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.database_url.replace("postgres://", "postgresql://", 1)) as db:
            db.autocommit = True
            while not self._stop.wait(0.02):
                rows = db.execute(
                    "SELECT state, wait_event_type, query FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'"
                ).fetchall()
                self.samples += 1
                for state, wait, query in rows:
                    if state == "active" and wait == "Lock":
                        self.states["waiting for a lock"] += 1
                        self.waiting_on[" ".join(query.split())[:90]] += 1
                    elif state == "active":
                        self.states["running a statement"] += 1
                    elif state and state.startswith("idle in transaction"):
                        self.states["idle in an open transaction"] += 1

    def report(self) -> list[str]:
        per = max(self.samples, 1)
        lines = [
            f"  {what}: {count / per:.2f} connections on average"
            for what, count in self.states.most_common()
        ]
        lines += [
            f"    waiting {count / per:.2f} on: {query}"
            for query, count in self.waiting_on.most_common(4)
        ]
        return [f"database connections over {self.samples} samples:", *lines]


def profile_one_role(portal, partners: int) -> None:
    """One more role with `partners` partners, reconciled in this process (the workers are
    stopped), its SQL statements counted by origin."""
    from django.db import transaction

    from delegations.models import ManagedRole
    from delegations.worker.owner_role import managed_role_reconcile

    role = portal.catalog_role(f"profiled-{secrets.token_hex(3)}")
    requests = [portal.request(portal.partner(), role) for _ in range(partners)]
    with sql_statements() as approving, transaction.atomic():
        for delegation in requests:
            portal.approve(delegation)
    managed_role_id = ManagedRole.objects.get(role_name=role.role_name).pk
    started = time.monotonic()
    with sql_statements() as reconciling:
        report = managed_role_reconcile(managed_role_id=managed_role_id)
    elapsed = time.monotonic() - started
    print(
        f"one role with {partners} partners reconciled in this process: {elapsed * 1000:.0f} ms, "
        f"{report.rounds} round(s), {report.mutating_calls} mutating calls, "
        f"{len(report.activated)} activated ({report.outcome})"
    )
    print("  its SQL: " + reconciling.table(top=14).replace("\n", "\n  "))
    print(
        f"  approving them (one transaction, publishing not counted): "
        f"{approving.statements / partners:.1f} statements per approval"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    slots = args.workers * args.concurrency
    floor = floor_seconds(roles=args.roles, slots=slots, latency_ms=args.latency_ms)

    with running_portal(
        latency_ms=args.latency_ms,
        workers=args.workers,
        worker_concurrency=args.concurrency,
        pool=args.pool,
        database_url=args.database_url,
        broker_url=args.broker_url,
        warm_up_roles=slots,
    ) as portal:
        from django.db import transaction
        from django.utils import timezone

        from audit.models import AuditEvent

        print(
            f"cloudsim latency L = {args.latency_ms:.0f} ms per call; "
            f"database {os.environ['DATABASE_URL'].split(':', 1)[0]}; "
            f"broker {os.environ.get('CELERY_BROKER_URL', 'filesystem://').split(':', 1)[0]}; "
            f"{args.partners} partners over {args.roles} roles; {args.workers} worker "
            f"process(es), pool {args.pool} x {args.concurrency} = {slots} slot(s)"
        )
        prepared = time.monotonic()
        roles = [portal.catalog_role(f"many-{r}-{secrets.token_hex(3)}") for r in range(args.roles)]
        partners = [portal.partner() for _ in range(args.partners)]
        requests = [portal.request(partner, role) for partner, role in assign(partners, roles)]
        ids = [d.pk for d in requests]
        print(f"set up {args.partners} requests in {time.monotonic() - prepared:.1f} s")
        events_before = AuditEvent.objects.count()

        database_url = os.environ["DATABASE_URL"]
        sampler = (
            PostgresSampler(database_url)
            if args.profile and database_url.startswith(("postgres", "pgsql"))
            else contextlib.nullcontext()
        )
        committed: list[tuple[float, dt.datetime]] = []
        # The kernel's own threads and interrupts are part of "the rest".
        cpu = CpuWindow(
            workers=process_tree(*(worker.process.pid for worker in portal.workers)),
            PostgreSQL=processes_named("postgres"),
            cloudsim=portal.sim.process.pid,
            **{"this process": os.getpid()},
        )
        started = time.monotonic()

        def on_commit() -> None:
            committed.append((time.monotonic(), timezone.now()))
            cpu.start()

        with transaction.atomic():
            # Registered first, so it runs first after the commit (before the publications).
            transaction.on_commit(on_commit)
            for delegation in requests:
                portal.approve(delegation)
        published = time.monotonic()
        commit, committed_at = committed[0]
        with sampler:
            active = wait_all([r.pk for r in roles], len(ids), timeout=args.timeout)
            cpu.stop()
        total = active - commit

        from delegations.models import Delegation

        statuses = set(Delegation.objects.filter(pk__in=ids).values_list("status", flat=True))
        exact = trust_policies_exact(portal, roles, ids)
        calls = portal.calls_since(0)
        worker_calls = Counter(c["action"] for c in calls if c["action"] != "AssumeRole")

        print(f"all {args.partners} active: {statuses == {'active'}}")
        print(
            f"every trust policy holds exactly its partners: {all(exact.values())} "
            f"({sum(exact.values())} of {len(exact)} roles)"
        )
        print(
            f"approving {args.partners}: {(commit - started) * 1000:.0f} ms to commit, "
            f"then {(published - commit) * 1000:.0f} ms to publish their outbox messages"
        )
        print(f"commit -> all active: {total * 1000:.0f} ms")
        print(
            f"floor: ceil({args.roles} roles / {slots} slots) x {len(CALLS_PER_ROLE)} calls x "
            f"{args.latency_ms:.0f} ms = {floor * 1000:.0f} ms"
        )
        print(f"ratio: {total / floor:.2f} (target <= 1.5)")
        print(cpu_report(cpu, floor=floor))
        print(
            f"cloud calls of the whole run incl. warm-up: {sum(worker_calls.values())} "
            f"({', '.join(f'{a} {n}' for a, n in sorted(worker_calls.items()))}); "
            f"audit events since the approvals began: {AuditEvent.objects.count() - events_before}"
        )
        if args.profile:
            print("per role (seconds after the commit):")
            print("\n".join(role_timeline(roles, committed_at)))
            if isinstance(sampler, PostgresSampler):
                print("\n".join(sampler.report()))
            print("worker tasks (including the warm-up): outcome, count, seconds spent")
            for outcome, (count, seconds) in sorted(task_outcomes(portal.workers).items()):
                print(f"  {outcome:40s} {count:6d} {seconds:8.2f} s")
            stop_workers(portal.workers)
            profile_one_role(portal, math.ceil(args.partners / args.roles))


if __name__ == "__main__":
    main()
