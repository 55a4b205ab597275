"""Activity from ActionTrail: ingestion throughput, and the Activity page at 1k vs 1M events.

    .venv/bin/python benchmarks/activity.py                     # 1,000,000 events, SQLite
    .venv/bin/python benchmarks/activity.py --events 50000      # a quicker run
    DATABASE_URL=postgres://... .venv/bin/python benchmarks/activity.py

One run, one cloudsim process of its own, one test database of its own (created and dropped
by Django's test machinery: never the portal's):

1. `--events` partner-session calls in the owner's account are seeded into cloudsim's
   ActionTrail with one operator request (`POST /_sim/actiontrail/events`, which writes them
   into its call log at their own times: making them through the API would take hours), one
   delegation's role, three people;
2. bare: `cloud.actiontrail.ActionTrailClient` pages through them all (50 per page, pacing off:
   what ActionTrail's own paging costs here); ingestion: `activity_ingest_account` reads the
   same events into the database (parse, attribute, store once, daily counts), then the bare
   loop again: the machine's pace drifts over minutes. Printed: events per second of each and
   the ratio ingestion/bare against the faster bare run (target ≥ 0.7);
3. the Activity page and its filters are requested through Django's test client with the
   database holding `--small` events, then again after the rest are ingested: p50 per page
   and size, the ratio large/small (target ≤ 3) and the SQL statements of each (constant).

Pacing is off in both loops: the real service allows 2 requests/s, which would measure the
limit, not the code. Not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from cpu import CpuWindow  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

OWNER_UID = "11223344"
PARTNER_UID = "12345678"
ROLE = "ecs-ops"
ROLE_ID = "300000000000000001"
PEOPLE = ("alice", "bob", "carol")
ACTIONS = (("DescribeInstances", False), ("StopInstance", True), ("StartInstance", True))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="large size")
    parser.add_argument("--small", type=int, default=1_000, help="small size")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument(
        "--profile", action="store_true", help="print where the large ingestion spends its time"
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="leave the test database in place (its name is printed), to EXPLAIN its pages",
    )
    args = parser.parse_args(argv)
    if args.small < 1 or args.events <= args.small:
        parser.error("--events must be larger than --small, and --small at least 1")
    return args


SPAN = dt.timedelta(days=80)


def seed_trail(sim, count: int) -> tuple[list[str], dt.datetime, dt.timedelta]:
    """`count` calls by three people's role sessions over the last 80 days, through cloudsim's
    bulk seeding (one operator request: a million API calls would take hours). Returns the
    people's STS keys, the first call's time and the gap between calls."""
    keys = [f"STS.bench-{person}" for person in PEOPLE]
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    start = end - SPAN
    iso = "%Y-%m-%dT%H:%M:%SZ"
    sim.request(
        "POST",
        "/_sim/actiontrail/events",
        {
            "account": OWNER_UID,
            "generate": {
                "count": count,
                "start": start.strftime(iso),
                "end": end.strftime(iso),
                "region": "cn-hangzhou",
                "identities": [
                    {
                        "kind": "AssumedRoleUser",
                        "access_key_id": key,
                        "role_name": ROLE,
                        "role_id": ROLE_ID,
                        "session_name": person,
                        "caller_arn": f"acs:ram::{PARTNER_UID}:user/{person}",
                    }
                    for person, key in zip(PEOPLE, keys, strict=True)
                ],
                "calls": [
                    {
                        "product": "ecs",
                        "action": action,
                        "mutating": mutating,
                        "parameters": {"InstanceId": f"i-bench{n}"},
                        "source_ip": "203.0.113.7",
                    }
                    for n, (action, mutating) in enumerate(ACTIONS)
                ],
                "error_every": 97,
                "error_code": "Forbidden.RAM",
            },
        },
        timeout=3600,
    )
    return keys, start, SPAN / max(count - 1, 1)


def world(sim, keys: list[str]):
    """The portal's side: company A's connected root key, the delegation, issued keys."""
    from accounts.models import Organisation
    from delegations.connection.services import cloud_account_connect
    from delegations.models import CredentialIssuance, Delegation, StaffAssignment
    from tests.delegations.factories import CatalogRoleFactory, DelegationFactory
    from tests.factories import OrganisationFactory
    from tests.personas import make_member

    owner = OrganisationFactory(kind=Organisation.Kind.OWNER, account_uid=OWNER_UID)
    partner = OrganisationFactory(kind=Organisation.Kind.PARTNER, account_uid=PARTNER_UID)
    admin = make_member(owner, "admin", mfa=False)
    partner_admin = make_member(partner, "admin", mfa=False)
    account = cloud_account_connect(
        organisation=owner,
        connected_by=admin,
        account_uid=OWNER_UID,
        alias="company-a",
        region="cn-hangzhou",
        access_key_id=sim.root_key("company-a")[0],
        access_key_secret=sim.root_key("company-a")[1],
    )
    role = CatalogRoleFactory(cloud_account=account, organisation=owner, role_name=ROLE)
    delegation = DelegationFactory(
        catalog_role=role,
        partner=partner,
        status=Delegation.Status.ACTIVE,
        starts_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=85),
    )
    for person, key in zip(PEOPLE, keys, strict=True):
        staff = make_member(partner, "staff", email=f"{person}@company-b.example")
        assignment = StaffAssignment.objects.create(
            delegation=delegation, partner=partner, user=staff, assigned_by=partner_admin
        )
        CredentialIssuance.objects.create(
            delegation=delegation,
            assignment=assignment,
            user=staff,
            partner=partner,
            session_name=person,
            access_key_id=key,
            expiration=dt.datetime.now(dt.UTC),
            duration_seconds=3600,
        )
    return admin, account, delegation


def bare_paging(account) -> tuple[int, float]:
    client = UnpacedClient(account)
    end = dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(days=89)
    began, seen, token = time.perf_counter(), 0, None
    while True:
        page = client.lookup_events(start=start, end=end, next_token=token)
        seen += len(page.events)
        token = page.next_token
        if token is None:
            return seen, time.perf_counter() - began


def timed_bare_paging(account, pids: dict[str, int]) -> tuple[int, float, CpuWindow]:
    with CpuWindow(**pids) as cpu:
        seen, seconds = bare_paging(account)
    return seen, seconds, cpu


class UnpacedClient:
    def __new__(cls, account):
        from cloud.actiontrail import ActionTrailClient, Pacer
        from delegations.connection.services import cloud_account_credentials

        return ActionTrailClient(
            cloud_account_credentials(cloud_account=account), pacer=Pacer(per_second=0)
        )


def ingest(account, *, until: dt.datetime, profile: bool = False) -> tuple[int, float]:
    from activity.services import activity_ingest_account

    profiler = cProfile.Profile() if profile else None
    began = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    report = activity_ingest_account(
        cloud_account=account, client=UnpacedClient(account), now=until
    )
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    assert report.status == "done", report.message
    return report.stored, time.perf_counter() - began


PAGES = {
    "newest": "",
    "writes": "?rw=Write",
    "denied": "?outcome=denied",
    "person": "?person=bob%40company-b.example",
    "action": "?action=StopInstance",
    "week": "?since={week}",
    "text": "?q=Forbidden.RAM",
}


def time_pages(client: Client, delegation, requests: int) -> dict[str, tuple[float, int]]:
    week = (dt.date.today() - dt.timedelta(days=7)).isoformat()
    results = {}
    for name, query in PAGES.items():
        url = f"/audit/delegations/{delegation.pk}/activity/" + query.format(week=week)
        client.get(url)  # warm-up
        connection.force_debug_cursor = True
        reset_queries()
        assert client.get(url).status_code == 200
        statements = len(connection.queries)
        connection.force_debug_cursor = False
        timings = []
        for _ in range(requests):
            began = time.perf_counter()
            client.get(url)
            timings.append(time.perf_counter() - began)
        results[name] = (statistics.median(timings), statements)
    return results


def measured_processes(sim) -> dict[str, int]:
    """The processes whose CPU each loop reports: this one, cloudsim, and on PostgreSQL the
    database's backend serving this process's connection."""
    pids = {"this process": os.getpid(), "cloudsim": sim.process.pid}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids["PostgreSQL backend"] = cursor.fetchone()[0]
    return pids


def cpu_lines(
    bare: CpuWindow,
    bare_seconds: float,
    ingestion: CpuWindow,
    ingest_seconds: float,
    stored: int,
    bare_rate: float,
) -> str:
    """Where each loop's CPU went, and the best ratio the ingestion's CPU work allows on this
    machine's cores: this process, cloudsim and PostgreSQL share them."""
    lines = [
        f"CPU, bare paging: {bare.breakdown()} in {bare_seconds:.1f} s",
        f"CPU, ingestion: {ingestion.breakdown()} in {ingest_seconds:.1f} s",
    ]
    if ingestion.busy:  # None without /proc/stat; 0 for a run shorter than a clock tick
        cores = os.cpu_count() or 1
        least = ingestion.busy / cores
        lines.append(
            f"on {cores} cores the ingestion's CPU work alone takes at least {least:.1f} s "
            f"(ratio <= {stored / least / bare_rate:.2f}); this process runs Python on one core "
            "at a time (the GIL)"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    # One INFO line per cloud call would measure the terminal, in both loops alike.
    logging.disable(logging.INFO)
    from tests.fixtures.cloudsim import CloudSim

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        with tempfile.TemporaryDirectory(prefix="activity-bench-") as directory:
            sim = CloudSim(data_dir=Path(directory)).start()
            try:
                print(f"seeding {args.events:,} calls into cloudsim's ActionTrail ...", flush=True)
                began = time.perf_counter()
                keys, first_call, gap = seed_trail(sim, args.events)
                seed_seconds = time.perf_counter() - began
                settings.ALIBABA_RAM_ENDPOINT = sim.endpoint
                settings.ALIBABA_STS_ENDPOINT = sim.endpoint
                settings.ALIBABA_ACTIONTRAIL_ENDPOINT = sim.endpoint
                settings.ALIBABA_CLOUD_PROTOCOL = "http"
                settings.PORTAL_REQUIRE_MFA = False
                settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
                admin, account, delegation = world(sim, keys)
                pids = measured_processes(sim)
                bare_runs = [timed_bare_paging(account, pids)]
                # The small database: the oldest --small events (the cursor ends there).
                ingest(account, until=first_call + gap * (args.small - 0.5))
                client = Client()
                client.force_login(admin)
                small = time_pages(client, delegation, args.requests)
                with CpuWindow(**pids) as ingest_cpu:
                    stored, ingest_seconds = ingest(
                        account, until=dt.datetime.now(dt.UTC), profile=args.profile
                    )
                # Again after the ingestion: the machine's pace drifts over minutes, and the
                # ratio is taken against the faster of the two, so drift never flatters it.
                bare_runs.append(timed_bare_paging(account, pids))
                large = time_pages(client, delegation, args.requests)
            finally:
                sim.stop()
    finally:
        if args.keep_database:
            print(f"kept the database {connection.settings_dict['NAME']}")
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)

    seen, bare_seconds, bare_cpu = min(bare_runs, key=lambda run: run[1] / run[0])
    bare_rate = seen / bare_seconds
    ingest_rate = stored / ingest_seconds
    print(f"\nseeding cloudsim: {args.events:,} calls in {seed_seconds:.1f} s")
    for when, (run_seen, run_seconds, _cpu) in zip(("before", "after"), bare_runs, strict=True):
        print(
            f"bare paging {when} the ingestion: {run_seen:,} events in {run_seconds:.1f} s "
            f"= {run_seen / run_seconds:,.0f}/s"
        )
    print(f"ingestion: {stored:,} events in {ingest_seconds:.1f} s = {ingest_rate:,.0f}/s")
    against = [ingest_rate * run_seconds / run_seen for run_seen, run_seconds, _ in bare_runs]
    print(
        f"ratio ingestion/bare: {ingest_rate / bare_rate:.2f} against the faster bare run "
        "(target >= 0.7); "
        f"against each: {' and '.join(f'{ratio:.2f}' for ratio in against)}"
    )
    print(cpu_lines(bare_cpu, bare_seconds, ingest_cpu, ingest_seconds, stored, bare_rate))
    header = ("page", "p50 small", "p50 large", "ratio", "SQL small", "SQL large")
    print(
        f"{header[0]:<10}{header[1]:>12}{header[2]:>12}{header[3]:>8}{header[4]:>11}{header[5]:>11}"
    )
    for name in PAGES:
        (s_time, s_sql), (l_time, l_sql) = small[name], large[name]
        print(
            f"{name:<10}{s_time * 1000:>10.1f}ms{l_time * 1000:>10.1f}ms"
            f"{l_time / s_time:>8.2f}{s_sql:>11}{l_sql:>11}"
        )
    print("\ntarget: ratio <= 3, the same SQL count at both sizes")


if __name__ == "__main__":
    main()
