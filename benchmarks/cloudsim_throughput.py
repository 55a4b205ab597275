"""How fast cloudsim answers signed SDK calls, compared with an unauthenticated no-op.

    .venv/bin/python benchmarks/cloudsim_throughput.py [--seconds 3] [--threads 1 8]

Starts ``python -m cloudsim --demo`` on a free port, then for each concurrency level runs:

- GetRole, signed ACS3-HMAC-SHA256, as a RAM user whose policies are evaluated per call;
- AssumeRole, signed, as company-b's Alice (trust + caller policies + a session written);
- GET /_sim/noop, unauthenticated, through the same SDK client stack (tea-openapi's generic
  ``call_api`` with ``auth_type="Anonymous"``) - the baseline.

It prints calls/s and the ratio signed/no-op for each (target: >= 0.5). A benchmark prints;
it does not assert.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(_proxy, None)

from alibabacloud_ram20150501 import models as ram_models  # noqa: E402
from alibabacloud_ram20150501.client import Client as RamClient  # noqa: E402
from alibabacloud_sts20150401 import models as sts_models  # noqa: E402
from alibabacloud_sts20150401.client import Client as StsClient  # noqa: E402
from alibabacloud_tea_openapi import utils_models as open_api_models  # noqa: E402
from alibabacloud_tea_openapi.client import Client as OpenApiClient  # noqa: E402
from darabonba.runtime import RuntimeOptions  # noqa: E402

from tests.fixtures.cloudsim import CloudSim  # noqa: E402

TRUST_B = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": ["acs:ram::12345678:root"]},
            }
        ],
    }
)


def _server_cpu_seconds(pid: int) -> float:
    """User + system CPU the cloudsim process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(
    make_call: Callable[[], Callable[[], object]], threads: int, seconds: float
) -> tuple[int, float]:
    """(calls, seconds) for ``threads`` clients, each built by ``make_call`` in its thread."""
    counts = [0] * threads
    errors: list[BaseException] = []
    start = threading.Barrier(threads + 1)
    stop_at = [time.monotonic() + 3600]

    def worker(index: int) -> None:
        call = make_call()
        call()  # warm the connection pool outside the measurement
        start.wait()
        done = 0
        try:
            while time.monotonic() < stop_at[0]:
                call()
                done += 1
        except BaseException as exc:
            errors.append(exc)
        counts[index] = done

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    start.wait()
    began = time.monotonic()
    stop_at[0] = began + seconds
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - began
    if errors:
        raise RuntimeError(f"{len(errors)} worker(s) failed: {errors[0]!r}")
    return sum(counts), elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cloudsim-bench-") as directory:
        sim = CloudSim(data_dir=Path(directory)).start()
        try:
            return _run(sim, args)
        finally:
            sim.stop()


def _run(sim: CloudSim, args: argparse.Namespace) -> int:
    a_root = sim.root_key("company-a")
    b_root = sim.root_key("company-b")
    alice = sim.user_key("company-b", "Alice")
    RamClient(sim.sdk_config(*a_root)).create_role(
        ram_models.CreateRoleRequest(
            role_name="bench-role",
            assume_role_policy_document=TRUST_B,
            max_session_duration=3600,
        )
    )
    RamClient(sim.sdk_config(*a_root)).attach_policy_to_role(
        ram_models.AttachPolicyToRoleRequest(
            policy_type="System",
            policy_name="AliyunECSFullAccess",
            role_name="bench-role",
        )
    )
    RamClient(sim.sdk_config(*b_root)).attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(
            policy_type="System",
            policy_name="AliyunSTSAssumeRoleAccess",
            user_name="Alice",
        )
    )
    reader = sim.create_user("11223344", "bench-reader")
    RamClient(sim.sdk_config(*a_root)).attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(
            policy_type="System",
            policy_name="AliyunRAMReadOnlyAccess",
            user_name="bench-reader",
        )
    )
    role_arn = "acs:ram::11223344:role/bench-role"

    def get_role() -> Callable[[], object]:
        client = RamClient(sim.sdk_config(reader["access_key_id"], reader["access_key_secret"]))
        request = ram_models.GetRoleRequest(role_name="bench-role")
        return lambda: client.get_role(request)

    def assume_role() -> Callable[[], object]:
        client = StsClient(sim.sdk_config(*alice))
        request = sts_models.AssumeRoleRequest(
            role_arn=role_arn, role_session_name="bench", duration_seconds=900
        )
        return lambda: client.assume_role(request)

    def noop() -> Callable[[], object]:
        # The SDK's own generic call path with auth_type Anonymous: everything a signed call
        # does on the client (request model, headers, pooled requests session, JSON parsing)
        # except signing, so the ratio isolates what cloudsim spends on a real API call.
        client = OpenApiClient(sim.sdk_config(*a_root))
        params = open_api_models.Params(
            action="Noop",
            version="2015-05-01",
            protocol="HTTP",
            pathname="/_sim/noop",
            method="GET",
            auth_type="Anonymous",
            style="ROA",
            req_body_type="json",
            body_type="json",
        )
        request = open_api_models.OpenApiRequest()
        runtime = RuntimeOptions()
        return lambda: client.call_api(params, request, runtime)

    kinds = {"noop": noop, "GetRole": get_role, "AssumeRole": assume_role}
    rounds = 3  # interleaved, so a neighbour's load burst hits every kind alike
    print(f"cloudsim at {sim.url}; {args.seconds:.1f} s per kind and level; cpus={os.cpu_count()}")
    print(f"{'threads':>7}  {'kind':>10}  {'calls/s':>8}  {'ratio':>6}  {'server CPU ms/call':>18}")
    worst = None
    for threads in args.threads:
        totals = {kind: [0, 0.0, 0.0] for kind in kinds}  # calls, seconds, server CPU
        for _ in range(rounds):
            for kind, make_call in kinds.items():
                cpu_before = _server_cpu_seconds(sim.process.pid)
                calls, elapsed = _measure(make_call, threads, args.seconds / rounds)
                totals[kind][0] += calls
                totals[kind][1] += elapsed
                totals[kind][2] += _server_cpu_seconds(sim.process.pid) - cpu_before
        baseline = totals["noop"][0] / totals["noop"][1]
        for kind, (calls, elapsed, cpu) in totals.items():
            rate = calls / elapsed
            ratio = rate / baseline
            if kind != "noop":
                worst = ratio if worst is None else min(worst, ratio)
            print(
                f"{threads:>7}  {kind:>10}  {rate:>8.0f}  {ratio:>6.2f}  "
                f"{1000 * cpu / max(calls, 1):>18.2f}"
            )
    print(f"lowest ratio {worst:.2f} (target >= 0.50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
