"""Benchmark: a person getting STS credentials from the portal, against a direct SDK AssumeRole.

    .venv/bin/python benchmarks/credential_issue.py [--latency-ms 50] [--runs 60]

One run, one cloudsim process (seeded with the demo accounts, `--latency-ms` added to every
call to stand for the cloud's own latency), one portal database (a fresh SQLite file, or
DATABASE_URL), the portal served over HTTP by gunicorn (one sync worker) with production
settings (DEBUG off):

- direct: `CloudClient.assume_role` with the partner's connected key (the same key, role and
  duration the portal uses), i.e. what the cloud alone costs;
- portal: Alice's signed-in browser session POSTs "Get credentials" and reads the whole page
  that shows them (request → shown): middleware, tenancy checks, the intent event, the
  delegation row lock, AssumeRole, the issuance row, its audit event and the security
  notice's delivery row, the page.

The two alternate, call by call, so they see the same machine. Printed: p50 and p95 of each and
the ratios portal/direct. Targets: <= 1.5 at p50, <= 2 at p95. Not a test.

Then (`--sql-runs`, default 5; 0 skips it) the same POST is made in this process through
Django's test client, signed in the same way, and its SQL statements are counted by where they
come from (`sql_profile.py`: audit_record, locks, reads, writes, savepoints, commits, and
after_response), per issuance. Its time includes the work done after the response.

What the portal adds before the response, on PostgreSQL, is 12 SQL statements and two durable
commits. Reads: the session, the person, their memberships, the assignment (with its
delegation, role and owner account), whether the person has an authenticator (a password-only
sign-in), the partner's memberships and its account. Then the intent event committed before
AssumeRole (AU-06), and the rows it stands on (delegation, membership, assignment) locked in
one statement and held across AssumeRole with the issuance, its event and the security
notice's delivery row (CC-07); each audit event is one statement there (`audit_append()`: the
chain lock, the hashes and the writes in one call). The notice's publish (a read, the broker,
an update) waits until the response has been sent (`core.after_response`), and the page does
not read the navigation's inbox count. PostgreSQL pays a network round trip for each
statement that SQLite does not, so its ratio runs higher on the same machine.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(_proxy, None)

OWNER_UID, PARTNER_UID, BROKER = "11223344", "12345678", "portal-broker"
# The benchmark's own throwaway users, in a temporary database.
PASSWORD = secrets.token_urlsafe(16)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def drain() -> None:
    from delegations.models import OutboxMessage
    from delegations.worker.tasks import run_outbox_message

    for _ in range(50):
        pending = list(
            OutboxMessage.objects.filter(done_at__isnull=True).values_list("id", flat=True)
        )
        if not pending:
            return
        for message_id in pending:
            run_outbox_message.apply(args=[message_id], throw=True)
    raise RuntimeError("the outbox did not drain")


def build_world(sim):
    """Company A grants a role to company B; Alice (staff of B) is assigned to it."""
    from accounts.models import Membership, Organisation, User
    from delegations.catalog.services import catalog_role_create
    from delegations.connection.services import cloud_account_connect
    from delegations.lifecycle.starting import delegation_offer
    from delegations.models import PartnerAllowance
    from delegations.partner.services import staff_assign

    # cloudsim's demo gives company-b this RAM user, with AliyunRAMFullAccess.
    broker_id, broker_secret = sim.user_key("company-b", BROKER)
    broker = {"access_key_id": broker_id, "access_key_secret": broker_secret}
    owner = Organisation.objects.create(
        name="Company A", slug="company-a", kind="owner", account_uid=OWNER_UID
    )
    partner = Organisation.objects.create(
        name="Company B", slug="company-b", kind="partner", account_uid=PARTNER_UID
    )

    def member(organisation, role, email):
        user = User.objects.create_user(email, PASSWORD)
        Membership.objects.create(user=user, organisation=organisation, role=role)
        from allauth.account.models import EmailAddress

        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return user

    owner_admin = member(owner, "admin", "admin@company-a.example")
    partner_admin = member(partner, "admin", "admin@company-b.example")
    alice = member(partner, "staff", "alice@company-b.example")
    cloud_account_connect(
        organisation=owner,
        connected_by=owner_admin,
        account_uid=OWNER_UID,
        alias="company-a",
        region="cn-hangzhou",
        access_key_id=sim.root_key("company-a")[0],
        access_key_secret=sim.root_key("company-a")[1],
    )
    cloud_account_connect(
        organisation=partner,
        connected_by=partner_admin,
        account_uid=PARTNER_UID,
        alias="company-b",
        region="cn-hangzhou",
        access_key_id=broker["access_key_id"],
        access_key_secret=broker["access_key_secret"],
    )
    role = catalog_role_create(
        owner=owner,
        created_by=owner_admin,
        role_name=f"bench-{secrets.token_hex(3)}",
        description="Benchmark role",
        policy_keys=[("System", "AliyunECSFullAccess")],
        max_session_duration=3600,
    )
    PartnerAllowance.objects.create(organisation=owner, partner_account_uid=PARTNER_UID)
    delegation = delegation_offer(
        owner=owner,
        offered_by=owner_admin,
        partner=partner,
        catalog_role=role,
        reason="Benchmark",
        ends_at=None,
        with_mfa=True,
    )
    drain()
    delegation.refresh_from_db()
    if delegation.status != "active":
        raise RuntimeError(f"the delegation did not become active: {delegation.status}")
    staff_assign(delegation=delegation, user=alice, assigned_by=partner_admin)
    drain()
    return delegation, (broker["access_key_id"], broker["access_key_secret"])


def serve() -> tuple[subprocess.Popen, str]:
    """The portal as production runs it: gunicorn (one sync worker) in its own process, on a
    free loopback port, with this run's database and cloudsim."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--no-control-socket",
            "--log-level",
            "info",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    for line in process.stderr:  # type: ignore[union-attr]
        found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line)
        if found:
            threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
            return process, found.group(1)
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError(
        "gunicorn did not start: " + (process.stderr.read() if process.stderr else "")
    )


def signed_in_session(base_url: str):
    """Alice's browser: signed in with her password (a recent sign-in, as the reveal needs)."""
    import requests

    session = requests.Session()
    session.trust_env = False
    page = session.get(f"{base_url}/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed = session.post(
        f"{base_url}/accounts/login/",
        data={
            "csrfmiddlewaretoken": token,
            "login": "alice@company-b.example",
            "password": PASSWORD,
        },
        headers={"Referer": f"{base_url}/accounts/login/"},
    )
    if "/accounts/login/" in signed.url:
        raise RuntimeError("Alice could not sign in")
    return session


def count_statements(path: str, runs: int, *, cprofile: str = ""):
    """The SQL of `runs` credential POSTs by a signed-in Alice, through Django's test client,
    and their mean wall time in this process (with `cprofile`, a cProfile of them is saved
    there, for `python -m pstats`)."""
    import cProfile

    from django.test import Client
    from sql_profile import sql_statements

    client = Client(SERVER_NAME="127.0.0.1")
    login = "/accounts/login/"
    client.post(login, {"login": "alice@company-b.example", "password": PASSWORD})
    client.get(path)
    profiler = cProfile.Profile() if cprofile else None
    with sql_statements() as profile:
        started = time.perf_counter()
        for _ in range(runs):
            if profiler:
                profiler.enable()
            response = client.post(path, {"duration_seconds": "3600"})
            if profiler:
                profiler.disable()
            if response.status_code != 200 or b"shown-once" not in response.content:
                raise RuntimeError(f"the portal did not show credentials: {response.status_code}")
        elapsed = (time.perf_counter() - started) / runs
    if profiler:
        profiler.dump_stats(cprofile)
    return profile, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--warm-up", type=int, default=5)
    parser.add_argument("--sql-runs", type=int, default=5, help="issuances counted (0: none)")
    parser.add_argument("--cprofile", default="", help="save a cProfile of the counted runs")
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    from tests.fixtures.cloudsim import CloudSim

    with tempfile.TemporaryDirectory(prefix="credential-bench-") as directory:
        base = Path(directory)
        sim = CloudSim(data_dir=base / "cloudsim").start()
        try:
            os.environ.setdefault("DATABASE_URL", f"sqlite:///{base / 'portal.sqlite3'}")
            os.environ.update(
                # Production settings (DEBUG off, hashed static files), but plain HTTP on
                # loopback: no HTTPS redirect and cookies allowed over HTTP.
                DEBUG="0",
                SECRET_KEY=secrets.token_urlsafe(50),
                STATIC_ROOT=str(base / "static"),
                SECURE_SSL_REDIRECT="false",
                SESSION_COOKIE_SECURE="false",
                CSRF_COOKIE_SECURE="false",
                DJANGO_SETTINGS_MODULE="portal.settings",
                PORTAL_DATA_DIR=str(base),
                PORTAL_ENCRYPTION_KEYS=Fernet.generate_key().decode("ascii"),
                PORTAL_REQUIRE_MFA="false",
                PORTAL_CREDENTIALS_PAGE_RATE="1000000/60",
                ALIBABA_RAM_ENDPOINT=sim.endpoint,
                ALIBABA_STS_ENDPOINT=sim.endpoint,
                ALIBABA_CLOUD_PROTOCOL="http",
                ALLOWED_HOSTS="127.0.0.1,localhost",
                CELERY_TASK_ALWAYS_EAGER="true",
                LOG_LEVEL="WARNING",
            )
            import django

            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            call_command("collectstatic", "--noinput", verbosity=0)
            from cloud.client import CloudClient, CloudCredentials

            delegation, broker_key = build_world(sim)
            role_arn = delegation.managed_role.role_arn
            server, base_url = serve()
            browser = signed_in_session(base_url)
            url = f"{base_url}/delegations/my-access/{delegation.pk}/credentials/"
            form = browser.get(url)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
            direct_client = CloudClient(
                CloudCredentials(*broker_key),
                ram_endpoint=sim.endpoint,
                sts_endpoint=sim.endpoint,
                protocol="http",
            )

            def direct() -> float:
                started = time.perf_counter()
                direct_client.assume_role(
                    role_arn=role_arn, session_name="alice@company-b", duration_seconds=3600
                )
                return time.perf_counter() - started

            def portal() -> float:
                started = time.perf_counter()
                response = browser.post(
                    url,
                    data={"csrfmiddlewaretoken": token, "duration_seconds": "3600"},
                    headers={"Referer": url},
                )
                elapsed = time.perf_counter() - started
                if response.status_code != 200 or "shown-once" not in response.text:
                    raise RuntimeError(
                        f"the portal did not show credentials: {response.status_code}"
                    )
                return elapsed

            sim.set_faults(latency_ms=args.latency_ms)
            for _ in range(args.warm_up):
                direct()
                portal()
            times: dict[str, list[float]] = {"direct": [], "portal": []}
            for _ in range(args.runs):
                times["direct"].append(direct())
                times["portal"].append(portal())
            server.terminate()
            server.wait(20)

            database = os.environ["DATABASE_URL"].split(":", 1)[0]
            print(
                f"cloudsim latency {args.latency_ms:.0f} ms per call; {args.runs} runs each; "
                f"database {database}; portal over HTTP "
                "(gunicorn, one sync worker, its own process)"
            )
            for name, values in times.items():
                print(
                    f"  {name:6s}: p50 {percentile(values, 0.5) * 1000:7.1f} ms   "
                    f"p95 {percentile(values, 0.95) * 1000:7.1f} ms   "
                    f"mean {statistics.mean(values) * 1000:7.1f} ms"
                )
            p50 = percentile(times["portal"], 0.5) / percentile(times["direct"], 0.5)
            p95 = percentile(times["portal"], 0.95) / percentile(times["direct"], 0.95)
            print(
                f"ratio portal/direct: p50 {p50:.2f} (target <= 1.5), p95 {p95:.2f} (target <= 2)"
            )
            overhead = percentile(times["portal"], 0.5) - percentile(times["direct"], 0.5)
            print(f"portal overhead at p50: {overhead * 1000:.1f} ms")
            if args.sql_runs:
                profile, elapsed = count_statements(
                    url.removeprefix(base_url), args.sql_runs, cprofile=args.cprofile
                )
                print(
                    f"in this process (Django's test client, mean of {args.sql_runs}): "
                    f"{elapsed * 1000:.1f} ms per issuance; its SQL: ",
                    end="",
                )
                print(profile.table(per=args.sql_runs, top=40))
        finally:
            sim.stop()


if __name__ == "__main__":
    main()
