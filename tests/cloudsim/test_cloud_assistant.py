"""ECS Cloud Assistant through the official ECS SDK: RunCommand, DescribeInvocations and
DescribeInvocationResults — shapes, base64 output, the simulated commands (nothing runs on the
host), failures, permissions, paging and faults."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from alibabacloud_ecs20140526 import models as ecs
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_ram20150501 import models as ram_models

from tests.cloudsim.conftest import error_of, permission_policy
from tests.cloudsim.oos_scenario import Scenario


@pytest.fixture
def world(cloudsim):
    return Scenario(cloudsim, owners=1, running=3)


def ecs_client(sim, account) -> EcsClient:
    return EcsClient(sim.sdk_config(account.access_key_id, account.access_key_secret))


def run(client, region, instances, content, **fields):
    return client.run_command(
        ecs.RunCommandRequest(
            region_id=region,
            type=fields.pop("type", "RunShellScript"),
            command_content=content,
            instance_id=list(instances),
            **fields,
        )
    ).body


def results(client, region, invoke_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        body = client.describe_invocation_results(
            ecs.DescribeInvocationResultsRequest(region_id=region, invoke_id=invoke_id)
        ).body.invocation
        found = body.invocation_results.invocation_result
        if all(r.invoke_record_status != "Running" for r in found):
            return found
        assert time.monotonic() < deadline
        time.sleep(0.05)


def decoded(result) -> str:
    return base64.b64decode(result.output).decode()


def test_run_command_echo_answers_base64_per_instance(cloudsim, world):
    owner = world.owners[0]
    client = ecs_client(cloudsim, owner)
    region = "cn-shanghai"
    running = [i for i, s in owner.instances[region] if s == "Running"]
    body = run(client, region, running, "echo hello")
    assert body.invoke_id.startswith("t-") and body.command_id.startswith("c-")
    assert body.request_id
    found = results(client, region, body.invoke_id)
    assert {r.instance_id for r in found} == set(running)
    for result in found:
        assert (result.invocation_status, result.invoke_record_status) == ("Success", "Finished")
        assert result.exit_code == 0
        assert result.output == base64.b64encode(b"hello\n").decode()
        assert result.invoke_id == body.invoke_id and result.command_id == body.command_id
        assert result.finished_time.endswith("Z")

    invocation = client.describe_invocations(
        ecs.DescribeInvocationsRequest(
            region_id=region, invoke_id=body.invoke_id, include_output=True
        )
    ).body.invocations.invocation[0]
    assert invocation.invocation_status == "Success"
    assert invocation.invoke_status == "Finished"
    assert invocation.command_type == "RunShellScript"
    assert base64.b64decode(invocation.command_content).decode() == "echo hello"
    instances = invocation.invoke_instances.invoke_instance
    assert {i.instance_id for i in instances} == set(running)
    assert all(decoded(i) == "hello\n" for i in instances)


def test_the_simulated_commands_and_nothing_else(cloudsim, world, tmp_path: Path):
    owner = world.owners[0]
    client = ecs_client(cloudsim, owner)
    region = "cn-beijing"
    instance = owner.instances[region][0][0]
    marker = tmp_path / "never-created"
    cases = {
        "echo 'a  b' && echo -n c; hostname": (0, None),
        "sleep 3\necho done": (0, "done\n"),
        "echo before; exit 7; echo after": (7, "before\n"),
        f"touch {marker}": (127, None),
        "echo $HOME": (127, None),
        "cat /etc/passwd | head": (127, None),
    }
    for content, (exit_code, output) in cases.items():
        invoke_id = run(client, region, [instance], content).invoke_id
        (result,) = results(client, region, invoke_id)
        assert result.exit_code == exit_code, content
        text = decoded(result)
        if output is not None:
            assert text == output
        if exit_code == 127:
            assert "not supported in cloudsim" in text
            assert result.invocation_status == "Failed"
    assert not marker.exists()  # nothing ever runs on this host

    first = run(client, region, [instance], "echo 'a  b' && echo -n c; hostname").invoke_id
    (result,) = results(client, region, first)
    assert decoded(result).startswith("a  b\nc")
    assert decoded(result).endswith("Z\n")  # the instance's host name iZ…Z

    timed_out = run(client, region, [instance], "sleep 20", timeout=10).invoke_id
    (result,) = results(client, region, timed_out)
    assert (result.invocation_status, result.error_code) == ("Timeout", "ExecutionTimeout")


def test_sleep_is_simulated_time_and_running_until_it_passes(cloudsim, world):
    owner = world.owners[0]
    client = ecs_client(cloudsim, owner)
    instance = owner.instances["cn-shanghai"][0][0]
    started = time.monotonic()
    invoke_id = run(
        client, "cn-shanghai", [instance], "sleep 100; echo late", timeout=600
    ).invoke_id
    early = client.describe_invocation_results(
        ecs.DescribeInvocationResultsRequest(region_id="cn-shanghai", invoke_id=invoke_id)
    ).body.invocation.invocation_results.invocation_result[0]
    assert (early.invocation_status, early.output) == ("Running", "")
    (result,) = results(client, "cn-shanghai", invoke_id)
    assert decoded(result) == "late\n"
    assert time.monotonic() - started < 10  # 100 simulated seconds, about one real second


def test_a_marked_instance_fails_and_stopped_ones_are_refused(cloudsim, world):
    owner = world.owners[0]
    client = ecs_client(cloudsim, owner)
    region = "cn-shanghai"
    running = [i for i, s in owner.instances[region] if s == "Running"]
    stopped = [i for i, s in owner.instances[region] if s == "Stopped"]
    world.fail_commands(running[0])
    invoke_id = run(client, region, running[:2], "echo hi").invoke_id
    found = {r.instance_id: r for r in results(client, region, invoke_id)}
    assert found[running[0]].invocation_status == "Failed"
    assert found[running[0]].error_code == "ClientNotResponse"
    assert found[running[0]].exit_code is None
    assert found[running[1]].invocation_status == "Success"
    invocation = client.describe_invocations(
        ecs.DescribeInvocationsRequest(region_id=region, invoke_id=invoke_id)
    ).body.invocations.invocation[0]
    assert invocation.invocation_status == "PartialFailed"

    refused = error_of(run, client, region, stopped, "echo hi")
    assert (refused.code, refused.statusCode) == ("InvalidInstance.NotRunning", 400)
    missing = error_of(run, client, region, ["i-missing"], "echo hi")
    assert (missing.code, missing.statusCode) == ("InvalidInstance.NotFound", 404)
    bad_type = error_of(run, client, region, running[1:2], "echo", type="RunPerlScript")
    assert bad_type.code == "InvalidCommandType.NotSupported"
    too_big = error_of(run, client, region, running[1:2], "echo " + "x" * 20_000)
    assert too_big.code == "InvalidCmdContent.ExceedLimit"
    short_timeout = error_of(run, client, region, running[1:2], "echo", timeout=5)
    assert short_timeout.code == "InvalidTimeout.ExceedLimit"


def test_permissions_are_checked_per_call(cloudsim, world, new_user, sdk):
    owner = world.owners[0]
    instance = owner.instances["cn-shanghai"][0][0]
    reader = new_user(owner, "reader")
    sdk.ram(owner).create_policy(
        ram_models.CreatePolicyRequest(
            policy_name="describe-only",
            policy_document=permission_policy(
                ["ecs:DescribeInvocations", "ecs:DescribeInvocationResults"]
            ),
        )
    )
    sdk.attach_to_user(owner, "reader", "describe-only", "Custom")
    client = EcsClient(cloudsim.sdk_config(reader.access_key_id, reader.access_key_secret))
    refused = error_of(run, client, "cn-shanghai", [instance], "echo hi")
    assert (refused.code, refused.statusCode) == ("Forbidden.RAM", 403)
    assert "ecs:RunCommand" in refused.data["Message"]
    listed = client.describe_invocations(
        ecs.DescribeInvocationsRequest(region_id="cn-shanghai")
    ).body
    assert listed.total_count == 0


def test_paging_and_filters(cloudsim, world):
    owner = world.owners[0]
    client = ecs_client(cloudsim, owner)
    region = "cn-beijing"
    instance = owner.instances[region][1][0]
    ids = [run(client, region, [instance], f"echo {n}").invoke_id for n in range(5)]
    pages = [
        client.describe_invocations(
            ecs.DescribeInvocationsRequest(region_id=region, page_size=2, page_number=n)
        ).body
        for n in (1, 2, 3)
    ]
    assert all(p.total_count == 5 for p in pages)
    seen = [i.invoke_id for p in pages for i in p.invocations.invocation]
    assert seen == list(reversed(ids))  # newest first
    token_page = client.describe_invocation_results(
        ecs.DescribeInvocationResultsRequest(region_id=region, max_results=3)
    ).body.invocation
    assert len(token_page.invocation_results.invocation_result) == 3 and token_page.next_token
    rest = client.describe_invocation_results(
        ecs.DescribeInvocationResultsRequest(
            region_id=region, max_results=3, next_token=token_page.next_token
        )
    ).body.invocation
    assert len(rest.invocation_results.invocation_result) == 2 and not rest.next_token
    by_instance = client.describe_invocations(
        ecs.DescribeInvocationsRequest(region_id=region, instance_id="i-other")
    ).body
    assert by_instance.total_count == 0


def test_faults_and_latency_are_injectable_per_action(cloudsim_faults, world):
    owner = world.owners[0]
    client = ecs_client(cloudsim_faults, owner)
    instance = owner.instances["cn-shanghai"][0][0]
    cloudsim_faults.set_faults("RunCommand:throttle")
    throttled = error_of(run, client, "cn-shanghai", [instance], "echo hi")
    assert throttled.code == "Throttling.User"
    cloudsim_faults.set_faults("DescribeInvocations:latency:1:300")
    started = time.monotonic()
    client.describe_invocations(ecs.DescribeInvocationsRequest(region_id="cn-shanghai"))
    assert time.monotonic() - started >= 0.3


def test_calls_are_in_the_call_log_without_secrets(cloudsim, world):
    owner = world.owners[0]
    client = ecs_client(cloudsim, owner)
    mark = cloudsim.last_call_seq()
    instance = owner.instances["cn-beijing"][0][0]
    run(client, "cn-beijing", [instance], "echo logged")
    entry = next(c for c in cloudsim.calls(mark) if c["action"] == "RunCommand")
    assert entry["account"] == owner.uid and entry["product"] == "ecs"
    assert entry["mutating"] is True and entry["outcome"] == "success"
    assert entry["parameters"]["CommandContent"] == "echo logged"
