"""The OOS cross-account scenario end to end through the official OOS SDK: two owner accounts x
cn-shanghai and cn-beijing, ``echo hello`` on every running instance; MaxErrors stopping the
loop; cancel; a trust revoked mid-run; a cloudsim restart mid-run.

The module runs its own emulator (simulated time 100 times faster than real time) because these
tests restart it.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alibabacloud_actiontrail20200706 import models as trail_models
from alibabacloud_actiontrail20200706.client import Client as TrailClient
from alibabacloud_oos20190601 import models as oos_models
from alibabacloud_tea_openapi import utils_models as openapi_models

from tests.cloudsim.oos_scenario import REGIONS, ROLE, Scenario, trust
from tests.fixtures.cloudsim import CloudSim


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Iterator[CloudSim]:
    emulator = CloudSim(
        data_dir=tmp_path_factory.mktemp("cloudsim-oos"),
        env={"CLOUDSIM_TIME_SCALE": "0.01"},
        demo=False,
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def scenario(sim) -> Scenario:
    built = Scenario(sim)
    built.put_template()
    return built


def test_echo_hello_runs_on_every_running_instance_of_both_accounts_and_regions(scenario):
    started = scenario.start(scenario.parameters())
    assert started.status == "Running"
    assert started.template_name == "PAP-MultiAccountToExecuteTemplate"
    assert json.loads(started.parameters)["templateName"] == "ACS-ECS-BulkyRunCommand"
    assert started.ram_role == "OOSServiceRole"

    finished = scenario.wait(started.execution_id)
    assert finished.status == "Success", finished.status_message
    assert finished.is_parent is True

    children = scenario.children(started.execution_id)
    assert len(children) == 4
    assert {c.template_name for c in children} == {"ACS-ECS-BulkyRunCommand"}
    assert {c.parameters["regionId"] for c in children} == {"cn-shanghai", "cn-beijing"}
    assert {c.ram_role for c in children} == {
        f"{ROLE}|{owner.uid}/{ROLE}" for owner in scenario.owners
    }
    assert all(c.status == "Success" for c in children)

    loop = scenario.tasks(started.execution_id)
    assert len(loop) == 4
    assert {t.task_action for t in loop} == {"ACS::Template"}
    assert {json.loads(t.loop_item)["RegionId"] for t in loop} == {"cn-shanghai", "cn-beijing"}
    assert {t.child_execution_id for t in loop} == {c.execution_id for c in children}

    outputs = scenario.outputs_by_instance(started.execution_id)
    running = {i for owner in scenario.owners for _, i in owner.running()}
    assert set(outputs) == running  # the stopped instances were not targeted
    assert all(outputs[i] == ("Success", "hello\n") for i in running)

    # The operator's overview lists the run with its children.
    connection = http.client.HTTPConnection(scenario.sim.endpoint, timeout=10)
    connection.request(
        "GET", "/_sim/", headers={"X-Cloudsim-Operator-Token": scenario.sim.operator_token}
    )
    page = connection.getresponse().read().decode()
    connection.close()
    assert started.execution_id in page and "Success: 4" in page


def test_one_failing_instance_with_max_errors_zero_stops_the_loop(scenario):
    owner = scenario.owners[0]
    failing = owner.instances["cn-shanghai"][0][0]
    scenario.fail_commands(failing)
    started = scenario.start(
        scenario.parameters(
            owners=[owner], concurrency=1, child_concurrency=1, command="sleep 5; echo hello"
        )
    )
    finished = scenario.wait(started.execution_id)
    assert finished.status == "Failed"
    assert "MaxErrors 0" in finished.status_message

    outputs = scenario.outputs_by_instance(started.execution_id)
    # Concurrency 1: instances ran one after another until the failing one, and nothing
    # started after it — in that region or in cn-beijing (the parent loop stopped too).
    assert outputs[failing] == ("Failed", "")
    shanghai = {i for i, _ in owner.instances["cn-shanghai"] if i != failing}
    assert set(outputs) - {failing} <= shanghai
    child = scenario.children(started.execution_id)[0]
    runs = [t for t in scenario.tasks(child.execution_id) if t.loop_item]
    assert runs[-1].loop_item == failing
    assert [t.status for t in runs] == ["Success"] * (len(runs) - 1) + ["Failed"]
    assert "ClientNotResponse" in runs[-1].status_message
    loop = scenario.tasks(started.execution_id)
    assert len(loop) == 1
    assert json.loads(loop[0].loop_item)["RegionId"] == "cn-shanghai"
    assert loop[0].status == "Failed"


def test_max_errors_above_the_failures_lets_the_loop_finish(scenario):
    owner = scenario.owners[0]
    failing = owner.instances["cn-beijing"][1][0]
    scenario.fail_commands(failing)
    started = scenario.start(scenario.parameters(owners=[owner], child_max_errors=1))
    finished = scenario.wait(started.execution_id)
    assert finished.status == "Success", finished.status_message
    outputs = scenario.outputs_by_instance(started.execution_id)
    assert outputs.pop(failing)[0] == "Failed"
    assert set(outputs.values()) == {("Success", "hello\n")}
    assert len(outputs) == 3


def test_cancel_mid_run_stops_everything(scenario):
    started = scenario.start(
        scenario.parameters(child_concurrency=1, command="sleep 300; echo late")
    )
    time.sleep(0.5)
    scenario.oos.cancel_execution(
        oos_models.CancelExecutionRequest(
            execution_id=started.execution_id, region_id="cn-hangzhou"
        )
    )
    finished = scenario.wait(started.execution_id, timeout=10)
    assert finished.status == "Cancelled"
    assert all(c.status == "Cancelled" for c in scenario.children(started.execution_id))
    outputs = scenario.outputs_by_instance(started.execution_id)
    assert all(status == "Cancelled" for status, _ in outputs.values())
    assert all(output != "late\n" for _, output in outputs.values())


def test_trust_removed_mid_run_fails_the_next_item_with_the_clouds_refusal(scenario, sim):
    owner = scenario.owners[0]
    started = scenario.start(
        scenario.parameters(
            owners=[owner], concurrency=1, child_concurrency=1, command="sleep 50; echo hello"
        )
    )
    # Wait until the first instance has its output, then remove the executing account.
    deadline = time.monotonic() + 20
    while not any(
        s == "Success" for s, _ in scenario.outputs_by_instance(started.execution_id).values()
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    scenario.set_trust(owner, trust({"RAM": ["acs:ram::1:root"]}))
    mark = sim.last_call_seq()
    finished = scenario.wait(started.execution_id)
    assert finished.status == "Failed"
    assert "NoPermission" in finished.status_message
    outputs = scenario.outputs_by_instance(started.execution_id)
    # The item that had assumed the role before the revoke may finish; nothing after it runs.
    assert 1 <= [s for s, _ in outputs.values()].count("Success") <= 2
    later = sim.calls(mark)
    refusals = [
        n
        for n, c in enumerate(later)
        if c["action"] == "AssumeRole"
        and c["parameters"].get("RoleArn", "").startswith(f"acs:ram::{owner.uid}:")
    ]
    assert refusals
    assert all(later[n]["error_code"] == "NoPermission" for n in refusals)
    after_refusal = later[refusals[0] :]
    assert not [c for c in after_refusal if c.get("account") == owner.uid]


def test_a_restart_mid_run_ends_the_execution_failed_never_running(scenario, sim):
    started = scenario.start(scenario.parameters(child_concurrency=1, command="sleep 500"))
    time.sleep(0.3)
    sim.restart()
    finished = scenario.wait(started.execution_id, timeout=5)
    assert finished.status == "Failed"
    assert "restarted" in finished.status_message
    assert all(c.status == "Failed" for c in scenario.children(started.execution_id))


def test_oos_and_ecs_calls_land_in_actiontrail(scenario, sim):
    started = scenario.start(scenario.parameters(owners=[scenario.owners[0]]))
    scenario.wait(started.execution_id)
    now = datetime.now(UTC)

    def events(account, service, regions=("cn-hangzhou",)):
        # ActionTrail is regional: a call is in the trail of the region it was made in, and a
        # client reads one region's trail (the region goes in `x-acs-region-id`).
        found = []
        for region in regions:
            config = sim.sdk_config(
                account.access_key_id,
                account.access_key_secret,
                region_id=region,
                global_parameters=openapi_models.GlobalParameters(
                    headers={"x-acs-region-id": region}
                ),
            )
            found += (
                TrailClient(config)
                .lookup_events(
                    trail_models.LookupEventsRequest(
                        start_time=(now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        end_time=(now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        max_results="50",
                        lookup_attribute=[
                            trail_models.LookupEventsRequestLookupAttribute(
                                key="ServiceName", value=service
                            )
                        ],
                    )
                )
                .body.events
            )
        return found

    oos_events = {e["eventName"] for e in events(scenario.executing, "Oos")}
    assert {"CreateTemplate", "StartExecution", "ListExecutions"} <= oos_events
    ecs_events = events(scenario.owners[0], "Ecs", regions=REGIONS)
    names = {e["eventName"] for e in ecs_events}
    assert {"DescribeInstances", "RunCommand", "DescribeInvocationResults"} <= names
    run = next(e for e in ecs_events if e["eventName"] == "RunCommand")
    assert run["userIdentity"]["type"] == "assumed-role"
    assert run["userIdentity"]["userName"].startswith(f"{ROLE}:")


def test_an_owner_role_trusting_only_the_source_role_admits_the_chain(sim):
    # Named-people trust: the owner's role names the partner's OOSServiceRole, not its account.
    built = Scenario(sim, owners=1, running=1)
    built.put_template()
    owner = built.owners[0]
    built.set_trust(owner, trust({"RAM": [f"acs:ram::{built.executing.uid}:role/{ROLE}"]}))
    finished = built.wait(built.start(built.parameters()).execution_id)
    assert finished.status == "Success", finished.status_message
    assert set(built.outputs_by_instance(finished.execution_id).values()) == {
        ("Success", "hello\n")
    }
    # A RAM user of the executing account is not the role: the same trust refuses it.
    built.set_trust(owner, trust({"RAM": [f"acs:ram::{built.executing.uid}:user/{ROLE}"]}))
    refused = built.wait(built.start(built.parameters()).execution_id)
    assert refused.status == "Failed" and "NoPermission" in refused.status_message


def test_targets_by_resource_ids_and_by_tags(sim):
    built = Scenario(sim, owners=1, running=2)
    built.put_template()
    owner = built.owners[0]
    chosen = owner.instances["cn-shanghai"][1][0]
    parameters = built.parameters()
    parameters["accountRoleAndRegions"] = parameters["accountRoleAndRegions"][:1]  # cn-shanghai
    parameters["templateParameters"]["targets"] = {
        "Type": "ResourceIds",
        "ResourceIds": [chosen],
        "RegionId": "{{regionId}}",
    }
    by_id = built.wait(built.start(parameters).execution_id)
    assert by_id.status == "Success", by_id.status_message
    assert built.outputs_by_instance(by_id.execution_id) == {chosen: ("Success", "hello\n")}

    tagged = sim.request(
        "POST",
        "/_sim/ecs/instances",
        {
            "uid": owner.uid,
            "region_id": "cn-shanghai",
            "name": "tagged",
            "tags": [{"Key": "env", "Value": "prod"}],
        },
    )["instance_id"]
    parameters["templateParameters"]["targets"] = {
        "Type": "Tags",
        "Tags": [{"Key": "env", "Value": "prod"}],
        "Parameters": {"Status": "Running"},
        "RegionId": "{{regionId}}",
    }
    by_tag = built.wait(built.start(parameters).execution_id)
    assert by_tag.status == "Success", by_tag.status_message
    assert built.outputs_by_instance(by_tag.execution_id) == {tagged: ("Success", "hello\n")}
