"""What the portal benchmarks share: a real cloudsim process with a per-call latency, a migrated
portal database, real Celery worker processes on the configured broker, and an owner
organisation connected to a fresh cloudsim account.

The topology comes from the arguments of `running_portal` or else the environment:
DATABASE_URL (default: a fresh SQLite file) and CELERY_BROKER_URL (default: the embedded
filesystem broker). A given PostgreSQL database is migrated and reused (every run makes its own
owner, partners and roles); a given Redis broker has its task queue purged before the workers
start, so tasks of an earlier run (about a cloudsim that is gone) do not get in the way. Files
live in a temporary directory removed at the end. Not a test: the scripts print ratios measured
in one run.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(_proxy, None)


def random_uid() -> str:
    return str(10**15 + secrets.randbelow(9 * 10**15))


@dataclass
class Portal:
    """The running pieces and the owner organisation the benchmark acts as."""

    sim: Any
    latency_ms: float
    owner: Any = None
    admin: Any = None
    approver: Any = None
    cloud_account: Any = None
    key: tuple[str, str] = ("", "")
    link: Any = None
    partner_admins: dict[str, Any] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    # --- portal actions -------------------------------------------------------------------
    def catalog_role(self, name: str) -> Any:
        from delegations.catalog.services import catalog_role_create

        return catalog_role_create(
            owner=self.owner,
            created_by=self.admin,
            role_name=name,
            description="Benchmark role",
            policy_keys=[("System", "AliyunECSFullAccess")],
            max_session_duration=3600,
        )

    def partner(self) -> Any:
        from accounts.models import Membership, Organisation, User
        from delegations.models import PartnerAllowance

        uid = random_uid()
        partner = Organisation.objects.create(
            name=f"Partner {uid}", slug=f"partner-{uid}", kind="partner", account_uid=uid
        )
        admin = User.objects.create_user(f"admin@{uid}.partner.test", None)
        Membership.objects.create(user=admin, organisation=partner, role=Membership.Role.ADMIN)
        PartnerAllowance.objects.create(organisation=self.owner, partner_account_uid=uid)
        self.partner_admins[str(partner.pk)] = admin
        return partner

    def request(self, partner: Any, catalog_role: Any) -> Any:
        from delegations.lifecycle.starting import delegation_request

        return delegation_request(
            partner=partner,
            requested_by=self.partner_admins[str(partner.pk)],
            partner_link=self.link,
            catalog_role=catalog_role,
            reason="Benchmark",
            ends_at=None,
        )

    def approve(self, delegation: Any) -> Any:
        from delegations.lifecycle.services import delegation_approve

        return delegation_approve(delegation=delegation, approved_by=self.approver, with_mfa=True)

    def wait_for(self, delegation_ids: list[Any], status: str, *, timeout: float = 120.0) -> float:
        """Poll the database until every delegation has `status`; returns the monotonic time
        it was first seen (polling every 2 ms, so the error is tiny next to L)."""
        from delegations.models import Delegation

        deadline = time.monotonic() + timeout
        wanted = len(delegation_ids)
        while True:
            done = Delegation.objects.filter(pk__in=delegation_ids, status=status).count()
            now = time.monotonic()
            if done == wanted:
                return now
            if now > deadline:
                statuses = list(
                    Delegation.objects.filter(pk__in=delegation_ids).values_list(
                        "status", "last_error_code"
                    )
                )
                raise RuntimeError(f"Timed out waiting for {status}: {statuses[:5]}")
            time.sleep(0.002)

    # --- the cloud side ------------------------------------------------------------------
    def client(self) -> Any:
        from cloud.client import CloudClient, CloudCredentials

        return CloudClient(
            CloudCredentials(*self.key),
            ram_endpoint=self.sim.endpoint,
            sts_endpoint=self.sim.endpoint,
            protocol="http",
        )

    def calls_since(self, seq: int) -> list[dict]:
        uid = self.cloud_account.account_uid
        return [c for c in self.sim.calls(seq) if c.get("account") == uid]


@dataclass
class Worker:
    """One Celery worker process; its log (INFO: one line per task and its result) is kept
    for `task_outcomes`."""

    process: subprocess.Popen
    log: Path
    ready: Path


def _start_worker(
    env: dict[str, str], *, index: int, pool: str, concurrency: int, base: Path
) -> Worker:
    log, ready = base / f"worker-{index}.log", base / f"worker-{index}.ready"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("bench_worker.py")),
                str(ready),
                "-A",
                "portal",
                "worker",
                f"--hostname=bench{index}@%h",
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return Worker(process=process, log=log, ready=ready)


def _wait_ready(workers: list[Worker], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(w.ready.exists() for w in workers):
        dead = [w for w in workers if w.process.poll() is not None]
        if dead or time.monotonic() > deadline:
            tail = dead[0].log.read_text()[-2000:] if dead else ""
            raise RuntimeError(f"A worker did not start.\n{tail}")
        time.sleep(0.05)


def stop_workers(workers: list[Worker]) -> None:
    for worker in workers:
        worker.process.terminate()
    for worker in workers:
        try:
            worker.process.wait(20)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(5)


def task_outcomes(workers: list[Worker]) -> dict[str, tuple[int, float]]:
    """What the workers' tasks returned, from their logs: outcome -> (tasks, seconds spent)."""
    found: dict[str, tuple[int, float]] = {}
    pattern = re.compile(
        r"Task (\S+)\[[^\]]+\] (succeeded in ([0-9.]+)s: '?([^'\n]*)'?|retry|raised)"
    )
    for worker in workers:
        for match in pattern.finditer(worker.log.read_text()):
            name = match.group(1).rsplit(".", 1)[-1]
            what = match.group(4) if match.group(3) else match.group(2).split()[0]
            key = f"{name}: {what}"
            count, seconds = found.get(key, (0, 0.0))
            found[key] = (count + 1, seconds + float(match.group(3) or 0.0))
    return found


@contextmanager
def running_portal(
    *,
    latency_ms: float,
    workers: int = 1,
    worker_concurrency: int = 2,
    pool: str = "prefork",
    database_url: str | None = None,
    broker_url: str | None = None,
    warm_up_roles: int = 1,
) -> Iterator[Portal]:
    """A portal with `workers` Celery worker processes (each `pool`, `worker_concurrency`
    slots; the solo pool has one), warmed up with `warm_up_roles` roles approved at once."""
    from cryptography.fernet import Fernet

    from tests.fixtures.cloudsim import CloudSim

    with tempfile.TemporaryDirectory(prefix="portal-bench-") as directory:
        base = Path(directory)
        sim = CloudSim(data_dir=base / "cloudsim", demo=False).start()
        started: list[Worker] = []
        try:
            env = dict(os.environ)
            if database_url:
                env["DATABASE_URL"] = database_url
            if broker_url:
                env["CELERY_BROKER_URL"] = broker_url
            env.setdefault("DATABASE_URL", f"sqlite:///{base / 'portal.sqlite3'}")
            env.update(
                # The workers run as in production: with DEBUG on, Django would also log every
                # SQL statement it sends (formatting each bulk insert's parameters). cloudsim
                # answers a read with the last write at once, so no read settle delay either.
                DEBUG="0",
                SECRET_KEY="benchmark-" + os.urandom(16).hex(),
                PORTAL_RAM_READ_SETTLE_SECONDS="0",
                DJANGO_SETTINGS_MODULE="portal.settings",
                PORTAL_DATA_DIR=str(base),
                PORTAL_ENCRYPTION_KEYS=Fernet.generate_key().decode("ascii"),
                ALIBABA_RAM_ENDPOINT=sim.endpoint,
                ALIBABA_STS_ENDPOINT=sim.endpoint,
                ALIBABA_CLOUD_PROTOCOL="http",
                LOG_LEVEL="WARNING",
            )
            os.environ.update(env)
            import django

            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            if not env.get("CELERY_BROKER_URL", "filesystem://").startswith("filesystem://"):
                from portal.celery import app

                app.control.purge()
            for index in range(workers):
                started.append(
                    _start_worker(
                        env, index=index, pool=pool, concurrency=worker_concurrency, base=base
                    )
                )
            _wait_ready(started)
            portal = _owner(sim, latency_ms)
            portal.workers = started
            _warm_up(portal, roles=warm_up_roles)
            sim.set_faults(latency_ms=latency_ms)
            yield portal
        finally:
            stop_workers(started)
            sim.stop()


def _owner(sim: Any, latency_ms: float) -> Portal:
    from accounts.models import Membership, Organisation, User
    from delegations.catalog.partner_links import partner_link_create
    from delegations.connection.services import cloud_account_connect

    uid = random_uid()
    account = sim.create_account(uid=uid, alias=f"owner-{uid}")
    key = (account["root"]["access_key_id"], account["root"]["access_key_secret"])
    owner = Organisation.objects.create(
        name=f"Owner {uid}", slug=f"owner-{uid}", kind="owner", account_uid=uid
    )
    admin = User.objects.create_user(f"admin@{uid}.owner.test", None)
    approver = User.objects.create_user(f"approver@{uid}.owner.test", None)
    for user in (admin, approver):
        Membership.objects.create(user=user, organisation=owner, role=Membership.Role.ADMIN)
    cloud_account = cloud_account_connect(
        organisation=owner,
        connected_by=admin,
        account_uid=uid,
        alias="",
        region="cn-hangzhou",
        access_key_id=key[0],
        access_key_secret=key[1],
    )
    link, _code = partner_link_create(owner=owner, created_by=admin, label="Benchmark")
    return Portal(
        sim=sim,
        latency_ms=latency_ms,
        owner=owner,
        admin=admin,
        approver=approver,
        cloud_account=cloud_account,
        key=key,
        link=link,
    )


def _warm_up(portal: Portal, *, roles: int = 1) -> None:
    """A delegation on each of `roles` roles end to end before measuring, approved at once so
    that every worker slot likely takes one: the workers are up, their imports are done."""
    from django.db import transaction

    requests = [
        portal.request(portal.partner(), portal.catalog_role(f"warm-up-{secrets.token_hex(3)}"))
        for _ in range(roles)
    ]
    with transaction.atomic():
        for delegation in requests:
            portal.approve(delegation)
    portal.wait_for([d.pk for d in requests], "active", timeout=120)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
