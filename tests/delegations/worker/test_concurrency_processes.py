"""The embedded topology for real: Celery worker processes (the filesystem broker, one SQLite
file, cloudsim) apply approvals and revocations published through the outbox. Three workers
race on one role: 20 approvals and 5 revocations end with exactly the wanted principals."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from cloud import policies
from cloud.client import CloudClient, CloudCredentials
from tests.fixtures.database import sqlite_copy, sqlite_process_env
from tests.fixtures.worker import random_uid

ROOT = Path(__file__).resolve().parents[3]
WORKERS = 3

DRIVER = r"""
import json, os, sys, time
import django
django.setup()
from django.db import transaction
from accounts.models import Membership, Organisation, User
from delegations.lifecycle.starting import delegation_offer
from delegations.lifecycle.services import delegation_revoke
from delegations.models import Delegation, PartnerAllowance
from delegations.catalog.services import catalog_role_create
from delegations.connection.services import cloud_account_connect

step, state_file = sys.argv[1], sys.argv[2]
if step == "setup":
    uid = os.environ["OWNER_UID"]
    owner = Organisation.objects.create(name="Owner", slug="owner", kind="owner", account_uid=uid)
    admin = User.objects.create_user("admin@owner.test", "x")
    Membership.objects.create(user=admin, organisation=owner, role=Membership.Role.ADMIN)
    cloud_account_connect(organisation=owner, connected_by=admin, account_uid=uid, alias="",
        region="cn-hangzhou", access_key_id=os.environ["OWNER_KEY_ID"],
        access_key_secret=os.environ["OWNER_KEY_SECRET"])
    catalog_role_create(owner=owner, created_by=admin, role_name="ecs-admin",
        description="Operate ECS", policy_keys=[("System", "AliyunECSFullAccess")],
        max_session_duration=3600)
    partners = []
    for index, partner_uid in enumerate(json.loads(os.environ["PARTNER_UIDS"])):
        partner = Organisation.objects.create(name=f"P{index}", slug=f"p{index}",
            kind="partner", account_uid=partner_uid)
        PartnerAllowance.objects.create(organisation=owner, partner_account_uid=partner_uid)
        partners.append(str(partner.pk))
    json.dump({"admin": str(admin.pk), "owner": str(owner.pk), "partners": partners},
              open(state_file, "w"))
    sys.exit(0)

state = json.load(open(state_file))
admin = User.objects.get(pk=state["admin"])
owner = Organisation.objects.get(pk=state["owner"])
role = owner.catalog_roles.get()
partners = [Organisation.objects.get(pk=p) for p in state["partners"]]
def offer(partner):
    return delegation_offer(owner=owner, offered_by=admin, partner=partner,
        catalog_role=role, reason="Operate", ends_at=None, with_mfa=True)
if step == "first":
    state["first"] = [str(offer(p).pk) for p in partners[:5]]
elif step == "race":
    state["second"] = []
    for index, partner in enumerate(partners[5:]):
        state["second"].append(str(offer(partner).pk))
        if index % 4 == 3:
            first = Delegation.objects.get(pk=state["first"][index // 4])
            delegation_revoke(delegation=first, revoked_by=admin, reason="Ended")
json.dump(state, open(state_file, "w"))
"""


def _statuses(database: Path, ids: list[str]) -> list[str]:
    with sqlite3.connect(database, timeout=30) as db:
        found = dict(
            db.execute("SELECT replace(id, '-', ''), status FROM delegations_delegation").fetchall()
        )
    return [found.get(i.replace("-", ""), "missing") for i in ids]


def _wait_for(database: Path, ids: list[str], status: str, timeout: float = 90.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        seen = _statuses(database, ids)
        if set(seen) == {status} or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


@pytest.fixture
def embedded(tmp_path, cloudsim, migrated_sqlite):
    uid = random_uid()
    account = cloudsim.create_account(uid=uid, alias=f"owner-{uid}")
    key = (account["root"]["access_key_id"], account["root"]["access_key_secret"])
    partners = [random_uid() for _ in range(25)]
    env = sqlite_process_env(database=tmp_path / "portal.sqlite3", data_dir=tmp_path)
    env.update(
        PORTAL_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALIBABA_RAM_ENDPOINT=cloudsim.endpoint,
        ALIBABA_STS_ENDPOINT=cloudsim.endpoint,
        OWNER_UID=uid,
        OWNER_KEY_ID=key[0],
        OWNER_KEY_SECRET=key[1],
        PARTNER_UIDS=json.dumps(partners),
    )
    # Migrated from nothing once per run (`migrated_sqlite`), copied here.
    sqlite_copy(migrated_sqlite, tmp_path / "portal.sqlite3")
    state = tmp_path / "state.json"

    def drive(step: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, step, str(state)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(state.read_text())

    drive("setup")
    workers = [
        subprocess.Popen(
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
                f"w{number}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(WORKERS)
    ]
    client = CloudClient(
        CloudCredentials(*key), ram_endpoint=cloudsim.endpoint, sts_endpoint=cloudsim.endpoint
    )
    try:
        yield drive, tmp_path / "portal.sqlite3", client, workers
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(10)


@pytest.mark.slow
def test_worker_processes_apply_and_revoke_through_the_outbox(embedded) -> None:
    drive, database, client, workers = embedded

    state = drive("first")
    assert _wait_for(database, state["first"], "active") == ["active"] * 5

    state = drive("race")
    second = _wait_for(database, state["second"], "active")
    revoked_ids = state["first"][:5]
    ended = _wait_for(database, revoked_ids, "revoked")

    assert second == ["active"] * 20, [w.poll() for w in workers]
    assert ended == ["revoked"] * 5
    with sqlite3.connect(database) as db:
        wanted = {
            f"acs:ram::{uid}:root"
            for (uid,) in db.execute(
                "SELECT partner_account_uid FROM delegations_delegation WHERE status='active'"
            )
        }
        pending = db.execute(
            "SELECT count(*) FROM delegations_cloudcall WHERE outcome='pending'"
        ).fetchone()[0]
    role = client.get_role("ecs-admin")
    assert set(policies.trust_policy_principals(role.trust_document).ram) == wanted
    assert len(wanted) == 20
    assert pending == 0
