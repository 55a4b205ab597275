"""Activity from ActionTrail: ingestion throughput, and the Activity page at 1k vs 1M events.

    .venv/bin/python benchmarks/activity.py                     # 1,000,000 events, SQLite
    .venv/bin/python benchmarks/activity.py --events 50000      # a quicker run
    DATABASE_URL=postgres://... .venv/bin/python benchmarks/activity.py

One run, one cloudsim process of its own, one test database of its own (created and dropped
by Django's test machinery: never the portal's):

1. `--events` partner-session calls in the owner's account are written into cloudsim's call
   log before it starts (what it would have logged, one entry per call: generating them
   through the API would take hours), one delegation's role, three people;
2. bare: `cloud.actiontrail.ActionTrailClient` pages through them all (50 per page, pacing off:
   what ActionTrail's own paging costs here); ingestion: `activity_ingest_account` reads the
   same events into the database (parse, attribute, store once, daily counts). Printed: events
   per second of each and their ratio ingestion/bare (target ≥ 0.7);
3. the Activity page and its filters are requested through Django's test client with the
   database holding `--small` events, then again after the rest are ingested: p50 per page
   and size, the ratio large/small (target ≤ 3) and the SQL statements of each (constant).

Pacing is off in both loops: the real service allows 2 requests/s, which would measure the
limit, not the code. Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

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
    args = parser.parse_args(argv)
    if args.small < 1 or args.events <= args.small:
        parser.error("--events must be larger than --small, and --small at least 1")
    return args


def write_call_log(data_dir: Path, count: int) -> list[str]:
    """`count` calls by three people's role sessions, oldest first, over the last 80 days."""
    keys = [f"STS.bench-{person}" for person in PEOPLE]
    start = time.time() - 80 * 86400
    step = (80 * 86400 - 3600) / count
    with (data_dir / "calls.jsonl").open("w", encoding="utf-8") as log:
        for n in range(count):
            person = n % len(PEOPLE)
            action, mutating = ACTIONS[n % len(ACTIONS)]
            moment = dt.datetime.fromtimestamp(start + n * step, dt.UTC)
            entry = {
                "seq": n + 1,
                "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "request_id": str(uuid.UUID(int=n + 1)).upper(),
                "account": OWNER_UID,
                "caller_arn": f"acs:ram::{OWNER_UID}:assumed-role/{ROLE}/{PEOPLE[person]}",
                "identity": {
                    "kind": "AssumedRoleUser",
                    "access_key_id": keys[person],
                    "role_name": ROLE,
                    "role_id": ROLE_ID,
                    "session_name": PEOPLE[person],
                    "caller_arn": f"acs:ram::{PARTNER_UID}:user/{PEOPLE[person]}",
                },
                "product": "ecs",
                "action": action,
                "version": "2014-05-26",
                "parameters": {"RegionId": "cn-hangzhou", "InstanceId": f"i-{n % 50}"},
                "mutating": mutating,
                "source_ip": "203.0.113.7",
                "outcome": "error" if n % 97 == 0 else "success",
                "error_code": "Forbidden.RAM" if n % 97 == 0 else None,
                "status": 200,
            }
            log.write(json.dumps(entry, separators=(",", ":")) + "\n")
    return keys


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
    from cloud.actiontrail import ActionTrailClient, Pacer
    from delegations.connection.services import cloud_account_credentials

    client = ActionTrailClient(
        cloud_account_credentials(cloud_account=account), pacer=Pacer(per_second=0)
    )
    end = dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(days=89)
    began, seen, token = time.perf_counter(), 0, None
    while True:
        page = client.lookup_events(start=start, end=end, next_token=token)
        seen += len(page.events)
        token = page.next_token
        if token is None:
            return seen, time.perf_counter() - began


class UnpacedClient:
    def __new__(cls, account):
        from cloud.actiontrail import ActionTrailClient, Pacer
        from delegations.connection.services import cloud_account_credentials

        return ActionTrailClient(
            cloud_account_credentials(cloud_account=account), pacer=Pacer(per_second=0)
        )


def ingest(account, *, until: dt.datetime) -> tuple[int, float]:
    from activity.services import activity_ingest_account

    began = time.perf_counter()
    report = activity_ingest_account(
        cloud_account=account, client=UnpacedClient(account), now=until
    )
    assert report.status == "done", report.message
    return report.stored, time.perf_counter() - began


PAGES = {
    "newest": "",
    "writes": "?rw=Write",
    "denied": "?outcome=denied",
    "person": "?person=bob%40company-b.example",
    "action": "?action=StopInstance",
    "week": "?since={week}",
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


def main() -> None:
    args = parse_args()
    from tests.fixtures.cloudsim import CloudSim

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        with tempfile.TemporaryDirectory(prefix="activity-bench-") as directory:
            data_dir = Path(directory)
            print(f"writing {args.events:,} calls into cloudsim's call log ...", flush=True)
            keys = write_call_log(data_dir, args.events)
            sim = CloudSim(data_dir=data_dir).start()
            try:
                settings.ALIBABA_RAM_ENDPOINT = sim.endpoint
                settings.ALIBABA_STS_ENDPOINT = sim.endpoint
                settings.ALIBABA_ACTIONTRAIL_ENDPOINT = sim.endpoint
                settings.ALIBABA_CLOUD_PROTOCOL = "http"
                settings.PORTAL_REQUIRE_MFA = False
                settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
                admin, account, delegation = world(sim, keys)
                bare_paging(account)  # cloudsim indexes its log on the first lookup
                seen, bare_seconds = bare_paging(account)
                # The small database: the oldest --small events (the cursor ends there).
                first = args.small * (80 * 86400 - 3600) / args.events
                small_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=80 * 86400 - first)
                ingest(account, until=small_until)
                client = Client()
                client.force_login(admin)
                small = time_pages(client, delegation, args.requests)
                stored, ingest_seconds = ingest(account, until=dt.datetime.now(dt.UTC))
                large = time_pages(client, delegation, args.requests)
            finally:
                sim.stop()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    bare_rate = seen / bare_seconds
    ingest_rate = stored / ingest_seconds
    print(f"\nbare paging: {seen:,} events in {bare_seconds:.1f} s = {bare_rate:,.0f}/s")
    print(f"ingestion: {stored:,} events in {ingest_seconds:.1f} s = {ingest_rate:,.0f}/s")
    print(f"ratio ingestion/bare: {ingest_rate / bare_rate:.2f} (target >= 0.7)\n")
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
