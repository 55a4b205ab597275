"""Benchmark: 100 delegations on one role approved at once.

    .venv/bin/python benchmarks/many_partners_one_role.py [--partners 100] [--latency-ms 100]

cloudsim adds L ms to every call. 100 partner requests for one catalogue role are approved
together (one transaction, as a bulk approval would; each approval publishes its outbox
message on commit), and the real Celery worker process applies them. Reported, from the
start of the approvals until all 100 are `active` with exactly the 100 partner principals in
the trust policy:

    total time / minimal serial update time

where the minimal serial update time is measured in the same run: 100 UpdateRole calls, one
per partner and one after the other, straight through the SDK against the same cloudsim (what
granting them one at a time costs at the very least, with no read or verification). Target:
<= 1.5. The worker gets there by batching: one reconcile round puts every pending principal
into a single UpdateRole (or CreateRole), and the other 99 queued reconciles of the role
coalesce into that round (they find the role busy or already converged).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time

from portal_harness import random_uid, running_portal


def minimal_serial_update_time(portal, partners: int) -> float:
    """Seconds for `partners` UpdateRole calls in a row on a scratch role."""
    from cloud import policies

    client = portal.client()
    name = f"serial-{secrets.token_hex(3)}"
    principals: list[str] = []
    client.create_role(
        name,
        trust_document=policies.build_trust_policy([policies.account_root_arn(random_uid())]),
        description="scratch",
        max_session_duration=3600,
    )
    started = time.monotonic()
    for _ in range(partners):
        principals.append(policies.account_root_arn(random_uid()))
        client.update_role(name, trust_document=policies.build_trust_policy(principals))
    elapsed = time.monotonic() - started
    client.delete_role(name)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partners", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()

    with running_portal(latency_ms=args.latency_ms) as portal:
        from django.db import transaction

        from cloud import policies
        from delegations.models import CloudCall, Delegation

        print(
            f"cloudsim latency L = {args.latency_ms:.0f} ms per call; "
            f"database {os.environ['DATABASE_URL'].split(':', 1)[0]}; "
            f"broker {os.environ.get('CELERY_BROKER_URL', 'filesystem://').split(':', 1)[0]}; "
            f"{args.partners} partners"
        )
        role = portal.catalog_role(f"many-{secrets.token_hex(3)}")
        requests = [portal.request(portal.partner(), role) for _ in range(args.partners)]
        ids = [d.pk for d in requests]
        seq = portal.sim.last_call_seq()

        committed: list[float] = []
        started = time.monotonic()
        with transaction.atomic():
            # Registered first, so it runs first after the commit (before the publications).
            transaction.on_commit(lambda: committed.append(time.monotonic()))
            for delegation in requests:
                portal.approve(delegation)
        approved = time.monotonic()
        active = portal.wait_for(ids, "active", timeout=300)
        total = active - started

        calls = portal.calls_since(seq)
        mutating = [c["action"] for c in calls if c["mutating"]]
        trusted = set(
            policies.trust_policy_principals(
                portal.client().get_role(role.role_name).trust_document
            ).ram
        )
        wanted = {
            f"acs:ram::{uid}:root"
            for uid in Delegation.objects.filter(pk__in=ids).values_list(
                "partner_account_uid", flat=True
            )
        }
        serial = minimal_serial_update_time(portal, args.partners)

        statuses = set(Delegation.objects.filter(pk__in=ids).values_list("status", flat=True))
        print(f"all {args.partners} active: {statuses == {'active'}}")
        print(f"trust policy has exactly the {len(wanted)} partners: {trusted == wanted}")
        print(
            f"cloud calls by the worker: {len(calls)} "
            f"(mutating: {json.dumps(mutating)}); rounds' cloud call rows: "
            f"{CloudCall.objects.filter(managed_role__role_name=role.role_name).count()}"
        )
        print(
            f"approving {args.partners}: {(committed[0] - started) * 1000:.0f} ms to commit, "
            f"{(approved - committed[0]) * 1000:.0f} ms more to publish their outbox messages"
        )
        print(f"commit -> all active: {(active - committed[0]) * 1000:.0f} ms")
        print(f"approvals start -> all active: {total * 1000:.0f} ms")
        print(
            f"minimal serial update time ({args.partners} UpdateRole calls, measured): "
            f"{serial * 1000:.0f} ms ({serial * 1000 / args.partners:.1f} ms per call)"
        )
        print(f"ratio: {total / serial:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
