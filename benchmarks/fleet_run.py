"""A runbook over a fleet, through the portal and OOS: wall time against the floor.

    .venv/bin/python benchmarks/fleet_run.py                       # 5 x 2 x 20, L=20 ms, C=10
    .venv/bin/python benchmarks/fleet_run.py --accounts 2 --instances 5 --latency-ms 50

One run, one cloudsim process of its own (latency L on every API call, including the calls OOS
makes for the run: AssumeRole down the chain, DescribeInstances, RunCommand, the invocation
results), one test database of its own (created and dropped by Django's test machinery):

1. N owner accounts, each with a role trusting the partner account (AliyunECSFullAccess) and I
   running instances in each of R regions; a partner account with OOSServiceRole, set up
   through the portal's consent; N active grants;
2. one target alone (one account x one region x one instance, by its id): the cloud calls OOS
   makes for it (down the role chain, DescribeInstances, RunCommand, its results) are counted
   in cloudsim's call log, so the per-target critical path is L x those calls;
3. the fleet run: `run_start` (Concurrency C, MaxErrors 0 for both the account-region loop and
   the instances), the worker's `run_submit`, then `run_follow` every poll interval until OOS
   says it ended, as the Celery tasks do (in this process: the portal's code, not the broker's,
   is what is measured).

Printed: targets, calls per target, the floor ceil(targets / C) x L x calls, the wall time and
their ratio (target <= 1.3 at 5 x 2 x 20, C=10). Not a test.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from cryptography.fernet import Fernet  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

REGIONS = ("cn-shanghai", "cn-beijing", "cn-hangzhou", "cn-shenzhen", "cn-qingdao")
ROLE = "fleet-ops"
# What OOS calls for one target (the portal's own OOS calls are not on its critical path).
TARGET_ACTIONS = frozenset(
    {"AssumeRole", "DescribeInstances", "RunCommand", "DescribeInvocationResults",
     "DescribeInvocations"}
)  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--regions", type=int, default=2, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--poll-seconds", type=float, default=0.2)
    return parser.parse_args()


class Fleet:
    def __init__(self, sim: Any, *, accounts: int, regions: int, instances: int) -> None:
        from accounts.models import Membership, Organisation, User
        from cloud import policies
        from cloud.client import CloudClient
        from cloud.values import CloudCredentials
        from core.crypto import encrypt_secret
        from delegations.models import CatalogRole, CloudAccount, Delegation, ManagedRole

        self.sim = sim
        self.regions = REGIONS[:regions]

        def account(kind: str, name: str) -> tuple[Any, Any, CloudClient]:
            created = sim.create_account()
            uid, root = created["uid"], created["root"]
            organisation = Organisation.objects.create(
                name=f"{name} {uid}", slug=f"{kind}-{uid}", kind=kind, account_uid=uid
            )
            cloud_account = CloudAccount.objects.create(
                organisation=organisation,
                account_uid=uid,
                access_key_id=root["access_key_id"],
                secret_ciphertext=encrypt_secret(root["access_key_secret"]),
                secret_fingerprint="sha256:bench",  # noqa: S106 - a label, not a secret
            )
            ram = CloudClient(CloudCredentials(root["access_key_id"], root["access_key_secret"]))
            return organisation, cloud_account, ram

        self.partner, self.partner_account, self.partner_ram = account("partner", "Partner")
        # The portal's key for the partner is a RAM user's, as in production: a root key may
        # not assume the owner roles the run's instance-id check goes through.
        broker = sim.create_user(self.partner.account_uid, "portal-broker")
        for policy in ("AliyunOOSFullAccess", "AliyunSTSAssumeRoleAccess"):
            self.partner_ram.attach_policy_to_user(
                user_name="portal-broker", policy_type="System", policy_name=policy
            )
        self.partner_account.access_key_id = broker["access_key_id"]
        self.partner_account.secret_ciphertext = encrypt_secret(broker["access_key_secret"])
        self.partner_account.save()
        self.admin = User.objects.create_user(f"admin@{self.partner.account_uid}.test", None)
        Membership.objects.create(user=self.admin, organisation=self.partner, role="admin")
        self.grants: list[Any] = []
        self.owner_uids: list[str] = []
        self.first_instance: dict[tuple[str, str], str] = {}
        for _ in range(accounts):
            owner, cloud_account, ram = account("owner", "Owner")
            ram.create_role(
                ROLE,
                trust_document=policies.build_trust_policy(
                    [policies.account_root_arn(self.partner.account_uid)]
                ),
                description="benchmark",
                max_session_duration=3600,
            )
            ram.attach_policy_to_role(
                role_name=ROLE, policy_type="System", policy_name="AliyunECSFullAccess"
            )
            for region in self.regions:
                for number in range(instances):
                    created = sim.request(
                        "POST",
                        "/_sim/ecs/instances",
                        {
                            "uid": owner.account_uid,
                            "region_id": region,
                            "name": f"web-{number}",
                            "status": "Running",
                        },
                    )
                    self.first_instance.setdefault(
                        (owner.account_uid, region), created["instance_id"]
                    )
            catalog_role = CatalogRole.objects.create(
                organisation=owner,
                cloud_account=cloud_account,
                role_name=ROLE,
                description="benchmark",
                policies=[{"type": "System", "name": "AliyunECSFullAccess"}],
            )
            managed_role = ManagedRole.objects.create(cloud_account=cloud_account, role_name=ROLE)
            self.grants.append(
                Delegation.objects.create(
                    owner=owner,
                    partner=self.partner,
                    catalog_role=catalog_role,
                    managed_role=managed_role,
                    partner_account_uid=self.partner.account_uid,
                    requested_by=self.admin,
                    reason="benchmark",
                    status=Delegation.Status.ACTIVE,
                )
            )
            self.owner_uids.append(owner.account_uid)

    def consent(self) -> None:
        from runbooks import services, worker

        consent = services.oos_consent_give(partner=self.partner, given_by=self.admin)
        worker.oos_service_role_ensure(consent_id=consent.pk, client=self.partner_ram)

    def run(
        self, targets: list[tuple[Any, str]], *, concurrency: int, instance_ids: tuple = ()
    ) -> Any:
        from runbooks import services, worker
        from runbooks.models import RunbookRun
        from runbooks.services import RunChoice
        from runbooks.tasks import oos_client_for

        client = oos_client_for(self.partner.pk)
        run = services.run_start(
            partner=self.partner,
            started_by=self.admin,
            choice=RunChoice(
                targets=targets,
                command_type="RunShellScript",
                command_content="echo hello",
                timeout_seconds=600,
                target_type="ResourceIds" if instance_ids else "All",
                instance_ids=list(instance_ids),
                concurrency=concurrency,
                max_errors=0,
            ),
        )
        worker.run_submit(run_id=run.pk, client=client)
        while worker.run_follow(run_id=run.pk, client=client).more:
            time.sleep(settings.PORTAL_RUNBOOK_POLL_SECONDS)
        return RunbookRun.objects.get(pk=run.pk)


def main() -> None:
    args = parse_args()
    from runbooks import dispatch
    from tests.fixtures.cloudsim import CloudSim

    setup_test_environment()
    # The worker's re-queues are this script's loop: nothing goes to a broker.
    dispatch.send = lambda *a, **k: None  # type: ignore[assignment]
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        with tempfile.TemporaryDirectory(prefix="fleet-run-bench-") as directory:
            sim = CloudSim(data_dir=Path(directory), demo=False).start()
            try:
                for name in ("RAM", "STS", "OOS", "ECS"):
                    setattr(settings, f"ALIBABA_{name}_ENDPOINT", sim.endpoint)
                settings.ALIBABA_CLOUD_PROTOCOL = "http"
                settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
                settings.PORTAL_RUNBOOK_REGIONS = list(REGIONS)
                settings.PORTAL_RUNBOOK_POLL_SECONDS = args.poll_seconds
                print(
                    f"fleet: {args.accounts} accounts x {args.regions} regions x "
                    f"{args.instances} instances ...",
                    flush=True,
                )
                fleet = Fleet(
                    sim, accounts=args.accounts, regions=args.regions, instances=args.instances
                )
                fleet.consent()
                sim.set_faults(latency_ms=int(args.latency_ms))
                latency = args.latency_ms / 1000

                # One target alone: the calls OOS makes for it, under the same latency.
                first = fleet.grants[0]
                region = fleet.regions[0]
                seq = sim.last_call_seq()
                one = fleet.first_instance[(first.owner.account_uid, region)]
                single = fleet.run([(first, region)], concurrency=1, instance_ids=(one,))
                # OOS's own calls (not the portal's instance check before the run starts).
                calls = [
                    c
                    for c in sim.calls(seq)
                    if c.get("via") == "oos" and c.get("action") in TARGET_ACTIONS
                ]
                calls_per_target = len(calls)
                assert single.status == "succeeded", single.status_message

                targets = args.accounts * args.regions * args.instances
                started = time.monotonic()
                run = fleet.run(
                    [(grant, region) for grant in fleet.grants for region in fleet.regions],
                    concurrency=args.concurrency,
                )
                wall = time.monotonic() - started
                # OOS's own account of the execution (its start and end dates): what the
                # portal adds on top is the submit and the last poll and results walk.
                from runbooks.tasks import oos_client_for

                execution = oos_client_for(fleet.partner.pk).get_execution(
                    execution_id=run.execution_id
                )
                inside = (
                    (execution.end_date - execution.start_date).total_seconds()
                    if execution.start_date and execution.end_date
                    else float("nan")
                )
                # Counted here: the test database is dropped below.
                results = run.instance_results.count()
            finally:
                sim.stop()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    floor = math.ceil(targets / args.concurrency) * latency * calls_per_target
    print(f"run status        {run.status} ({results} instance results of {targets} targets)")
    print(f"latency L         {args.latency_ms:.0f} ms per call")
    print(f"calls per target  {calls_per_target} (what OOS called for one instance alone)")
    print(f"floor             {floor:.2f} s = ceil({targets}/{args.concurrency}) x L x calls")
    print(f"wall time         {wall:.2f} s (OOS's own start to end: {inside:.2f} s)")
    print(f"ratio             {wall / floor:.2f}  (target <= 1.3)")


if __name__ == "__main__":
    main()
