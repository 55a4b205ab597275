"""Benchmark: from the approve call returning to the delegation being `active`.

    .venv/bin/python benchmarks/approve_to_active.py [--latency-ms 100] [--runs 5]

cloudsim adds L ms to every call. For each run an owner admin approves a partner's request
(the approve service, as the web view calls it: it commits and publishes the outbox message)
and the script polls the database until the real Celery worker process has made the
delegation active. The ratio is

    (time from approve returning to active) / (cloud calls strictly needed x L)

for two cases: the first partner of a role (the role does not exist yet: GetRole, CreateRole,
AttachPolicyToRole, then the verifying GetRole and ListPoliciesForRole) and a further partner
on the existing role (GetRole and ListPoliciesForRole, UpdateRole, and the two verifying
reads). Target: <= 1.5. The topology comes from DATABASE_URL and CELERY_BROKER_URL
(defaults: a fresh SQLite file and the embedded filesystem broker).
"""

from __future__ import annotations

import argparse
import secrets
import time

from portal_harness import median, running_portal

NEEDED = {
    "new role": ["GetRole", "CreateRole", "AttachPolicyToRole", "GetRole", "ListPoliciesForRole"],
    "existing role": [
        "GetRole",
        "ListPoliciesForRole",
        "UpdateRole",
        "GetRole",
        "ListPoliciesForRole",
    ],
}


def measure(portal, catalog_role) -> tuple[float, list[str], float]:
    delegation = portal.request(portal.partner(), catalog_role)
    seq = portal.sim.last_call_seq()
    portal.approve(delegation)
    returned = time.monotonic()
    active = portal.wait_for([delegation.pk], "active")
    calls = portal.calls_since(seq)
    mean_call_ms = sum(c["duration_ms"] for c in calls) / len(calls) if calls else 0.0
    return active - returned, [c["action"] for c in calls], mean_call_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    latency = args.latency_ms / 1000.0

    with running_portal(latency_ms=args.latency_ms) as portal:
        import os

        print(
            f"cloudsim latency L = {args.latency_ms:.0f} ms per call; "
            f"database {os.environ['DATABASE_URL'].split(':', 1)[0]}; "
            f"broker {os.environ.get('CELERY_BROKER_URL', 'filesystem://').split(':', 1)[0]}"
        )
        results: dict[str, list[float]] = {case: [] for case in NEEDED}
        for run in range(args.runs):
            role = portal.catalog_role(f"bench-{run}-{secrets.token_hex(3)}")
            for case in NEEDED:
                elapsed, actions, mean_ms = measure(portal, role)
                needed = NEEDED[case]
                ratio = elapsed / (len(needed) * latency)
                results[case].append(ratio)
                extra = "" if sorted(actions) == sorted(needed) else f"  calls made: {actions}"
                print(
                    f"run {run + 1} {case:13s}: {elapsed * 1000:7.1f} ms for "
                    f"{len(needed)} needed calls x {args.latency_ms:.0f} ms "
                    f"(measured mean call {mean_ms:.1f} ms) -> ratio {ratio:.2f}{extra}"
                )
        for case, ratios in results.items():
            print(
                f"{case:13s}: median ratio {median(ratios):.2f}, worst {max(ratios):.2f} "
                f"(target <= 1.5)"
            )


if __name__ == "__main__":
    main()
