"""OOS 2019-06-01 through the official SDK, action by action: fields, paging, filters, errors,
permissions (including ram:PassRole for the RamRole) and faults. The end-to-end scenario is in
``test_oos_scenario.py``."""

from __future__ import annotations

import json
import time

import pytest
from alibabacloud_oos20190601 import models as oos
from alibabacloud_oos20190601.client import Client as OosClient
from alibabacloud_ram20150501 import models as ram_models

from tests.cloudsim.conftest import error_of, permission_policy
from tests.cloudsim.oos_scenario import TEMPLATE_NAME, Scenario, trust

REGION = "cn-hangzhou"
# A template without a role: it acts with the caller's own key.
SELECT_ONLY = """\
FormatVersion: OOS-2019-06-01
Description: Lists running instances
Parameters:
  regionId:
    Type: String
  status:
    Type: String
    Default: Running
    AllowedValues: [Running, Stopped]
Tasks:
  - Name: getInstance
    Action: ACS::SelectTargets
    Properties:
      ResourceType: ALIYUN::ECS::Instance
      RegionId: '{{ regionId }}'
      Filters:
        - Type: All
          Parameters:
            Status: '{{ status }}'
    Outputs:
      instanceIds:
        Type: List
        ValueSelector: Instances.Instance[].InstanceId
Outputs:
  instanceIds:
    Type: List
    Value: '{{ getInstance.instanceIds }}'
"""


@pytest.fixture
def world(cloudsim) -> Scenario:
    return Scenario(cloudsim, owners=1)


def client_of(sim, keys) -> OosClient:
    return OosClient(
        sim.sdk_config(
            keys.access_key_id,
            keys.access_key_secret,
            getattr(keys, "security_token", None),
            region_id=REGION,
        )
    )


def create(client, name, content=SELECT_ONLY):
    return client.create_template(
        oos.CreateTemplateRequest(template_name=name, content=content, region_id=REGION)
    ).body


def start(client, name=None, parameters=None, **fields):
    return client.start_execution(
        oos.StartExecutionRequest(
            template_name=name,
            parameters=None if parameters is None else json.dumps(parameters),
            region_id=REGION,
            **fields,
        )
    ).body.execution


def wait(client, execution_id, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        (execution,) = client.list_executions(
            oos.ListExecutionsRequest(execution_id=execution_id, region_id=REGION)
        ).body.executions
        if execution.status in ("Success", "Failed", "Cancelled"):
            return execution
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_templates_create_update_get_and_versions(cloudsim, world):
    client = world.oos
    created = create(client, "pap-select").template
    assert created.template_name == "pap-select" and created.template_version == "v1"
    assert created.template_id.startswith("t-")
    assert (created.share_type, created.template_format) == ("Private", "YAML")
    assert created.created_by == world.executing.uid
    assert created.description == "Lists running instances"

    changed = SELECT_ONLY.replace("Lists running", "Lists the running")
    updated = client.update_template(
        oos.UpdateTemplateRequest(template_name="pap-select", content=changed, region_id=REGION)
    ).body.template
    assert updated.template_version == "v2" and updated.template_id == created.template_id
    latest = client.get_template(
        oos.GetTemplateRequest(template_name="pap-select", region_id=REGION)
    ).body
    assert (latest.content, latest.template.template_version) == (changed, "v2")
    first = client.get_template(
        oos.GetTemplateRequest(template_name="pap-select", template_version="v1", region_id=REGION)
    ).body
    assert first.content == SELECT_ONLY
    assert first.template.hash != latest.template.hash

    duplicate = error_of(create, client, "pap-select")
    assert (duplicate.code, duplicate.statusCode) == ("EntityAlreadyExists.Template", 409)
    missing = error_of(
        client.update_template,
        oos.UpdateTemplateRequest(template_name="nope", content=SELECT_ONLY, region_id=REGION),
    )
    assert (missing.code, missing.statusCode) == ("EntityNotExists.Template", 404)
    reserved = error_of(create, client, "ACS-Mine")
    assert reserved.code == "InvalidParameter"
    broken = error_of(create, client, "pap-broken", "FormatVersion: OOS-2019-06-01\nTasks: []\n")
    assert (broken.code, broken.statusCode) == ("InvalidTemplate", 400)
    unknown_action = error_of(
        create,
        client,
        "pap-unknown",
        "FormatVersion: OOS-2019-06-01\nTasks:\n  - Name: a\n    Action: ACS::Nope\n",
    )
    assert unknown_action.code == "InvalidTemplate"

    # Another account sees neither the template nor its name.
    other = client_of(cloudsim, world.owners[0])
    hidden = error_of(
        other.get_template, oos.GetTemplateRequest(template_name="pap-select", region_id=REGION)
    )
    assert hidden.code == "EntityNotExists.Template"
    public = other.get_template(
        oos.GetTemplateRequest(template_name="ACS-ECS-BulkyRunCommand", region_id=REGION)
    ).body
    assert public.template.share_type == "Public" and "RunCommand" in public.content


def test_list_templates_pages_and_filters(world):
    client = world.oos
    for n in range(3):
        create(client, f"pap-list-{n}")
    private = client.list_templates(
        oos.ListTemplatesRequest(share_type="Private", region_id=REGION, max_results=2)
    ).body
    assert [t.template_name for t in private.templates] == ["pap-list-0", "pap-list-1"]
    assert private.next_token and private.max_results == 2
    rest = client.list_templates(
        oos.ListTemplatesRequest(
            share_type="Private", region_id=REGION, max_results=2, next_token=private.next_token
        )
    ).body
    assert [t.template_name for t in rest.templates] == ["pap-list-2"] and not rest.next_token
    public = client.list_templates(
        oos.ListTemplatesRequest(share_type="Public", region_id=REGION)
    ).body.templates
    assert "ACS-ECS-BulkyRunCommand" in {t.template_name for t in public}
    named = client.list_templates(
        oos.ListTemplatesRequest(template_name="list-1", region_id=REGION)
    ).body.templates
    assert [t.template_name for t in named] == ["pap-list-1"]
    bad = error_of(
        client.list_templates, oos.ListTemplatesRequest(share_type="Secret", region_id=REGION)
    )
    assert bad.code == "InvalidParameter"


def test_start_execution_checks_parameters_and_runs_as_the_caller(world):
    client = client_of(world.sim, world.owners[0])
    create(client, "pap-select")
    missing = error_of(start, client, "pap-select", {})
    assert (missing.code, missing.statusCode) == ("InvalidParameter.Parameters", 400)
    unknown = error_of(start, client, "pap-select", {"regionId": "cn-shanghai", "x": 1})
    assert unknown.code == "InvalidParameter.Parameters"
    not_allowed = error_of(start, client, "pap-select", {"regionId": "a", "status": "Gone"})
    assert not_allowed.code == "InvalidParameter.Parameters"
    no_template = error_of(start, client, "pap-none", {})
    assert (no_template.code, no_template.statusCode) == ("EntityNotExists.Template", 404)
    not_json = error_of(
        client.start_execution,
        oos.StartExecutionRequest(template_name="pap-select", parameters="{", region_id=REGION),
    )
    assert not_json.code == "InvalidParameter"

    started = start(client, "pap-select", {"regionId": "cn-shanghai"}, description="mine")
    assert started.execution_id.startswith("exec-")
    assert json.loads(started.parameters) == {"regionId": "cn-shanghai", "status": "Running"}
    assert started.ram_role == "" and started.mode == "Automatic"
    assert started.executed_by == f"acs:ram::{world.owners[0].uid}:root"
    finished = wait(client, started.execution_id)
    assert finished.status == "Success" and finished.is_parent is False
    running = {i for region, i in world.owners[0].running() if region == "cn-shanghai"}
    assert set(json.loads(finished.outputs)["instanceIds"]) == running
    assert finished.counters["Total"] == 1 and finished.counters["Success"] == 1
    (task,) = client.list_task_executions(
        oos.ListTaskExecutionsRequest(execution_id=started.execution_id, region_id=REGION)
    ).body.task_executions
    assert (task.task_name, task.task_action, task.status) == (
        "getInstance",
        "ACS::SelectTargets",
        "Success",
    )
    assert set(json.loads(task.outputs)["instanceIds"]) == running
    assert json.loads(task.properties)["RegionId"] == "cn-shanghai"

    inline = start(client, template_content=SELECT_ONLY, parameters={"regionId": "cn-beijing"})
    assert wait(client, inline.execution_id).status == "Success"


def test_list_executions_filters_pages_and_hides_children_by_default(world):
    client = world.oos
    world.put_template()
    parent = start(client, TEMPLATE_NAME, world.parameters())
    wait(client, parent.execution_id)
    create(client, "pap-select")
    for region in ("cn-shanghai", "cn-beijing"):
        wait(client, start(client, "pap-select", {"regionId": region}).execution_id)

    def listed(**fields):
        return client.list_executions(oos.ListExecutionsRequest(region_id=REGION, **fields)).body

    top = listed().executions
    assert len(top) == 3 and all(not e.parent_execution_id for e in top)
    assert top[-1].execution_id == parent.execution_id  # newest first
    assert isinstance(top[0].parameters, dict) and top[0].account_id == world.executing.uid
    children = listed(parent_execution_id=parent.execution_id).executions
    assert len(children) == 2  # one owner account x two regions
    assert len(listed(include_child_execution=True).executions) == 5
    assert [e.template_name for e in listed(template_name="pap-select").executions] == [
        "pap-select",
        "pap-select",
    ]
    assert listed(status="Failed").executions == []
    page = listed(max_results=2)
    assert len(page.executions) == 2 and page.next_token
    assert len(listed(max_results=2, next_token=page.next_token).executions) == 1
    oldest_first = listed(sort_order="Ascending").executions
    assert oldest_first[0].execution_id == parent.execution_id

    tasks = client.list_task_executions(
        oos.ListTaskExecutionsRequest(
            execution_id=parent.execution_id, region_id=REGION, max_results=1
        )
    ).body
    assert len(tasks.task_executions) == 1 and tasks.next_token
    item = json.loads(tasks.task_executions[0].loop_item)
    assert set(item) == {"OOSAssumeRole", "RegionId"}

    missing = error_of(
        client.list_task_executions,
        oos.ListTaskExecutionsRequest(execution_id="exec-nope", region_id=REGION),
    )
    assert (missing.code, missing.statusCode) == ("EntityNotExists.Execution", 404)
    foreign = error_of(
        client_of(world.sim, world.owners[0]).list_task_executions,
        oos.ListTaskExecutionsRequest(execution_id=parent.execution_id, region_id=REGION),
    )
    assert foreign.code == "EntityNotExists.Execution"
    other_region = error_of(
        client.cancel_execution,
        oos.CancelExecutionRequest(execution_id=parent.execution_id, region_id="cn-beijing"),
    )
    assert other_region.code == "EntityNotExists.Execution"
    # Cancelling a finished execution changes nothing.
    client.cancel_execution(
        oos.CancelExecutionRequest(execution_id=parent.execution_id, region_id=REGION)
    )
    assert wait(client, parent.execution_id).status == "Success"


def test_client_token_makes_start_idempotent(world):
    client = client_of(world.sim, world.owners[0])
    create(client, "pap-select")
    first = start(client, "pap-select", {"regionId": "cn-shanghai"}, client_token="tok-1")
    second = start(client, "pap-select", {"regionId": "cn-shanghai"}, client_token="tok-1")
    third = start(client, "pap-select", {"regionId": "cn-shanghai"}, client_token="tok-2")
    assert first.execution_id == second.execution_id != third.execution_id


def test_permissions_and_pass_role(world, new_user, sdk):
    executing = world.executing
    world.put_template()
    nobody = new_user(executing, "nobody")
    refused = error_of(start, client_of(world.sim, nobody), TEMPLATE_NAME, world.parameters())
    assert (refused.code, refused.statusCode) == ("NoPermission", 403)

    # oos:* alone cannot hand OOS a role.
    operator = new_user(executing, "operator")
    sdk.ram(executing).create_policy(
        ram_models.CreatePolicyRequest(
            policy_name="oos-only", policy_document=permission_policy("oos:*")
        )
    )
    sdk.attach_to_user(executing, "operator", "oos-only", "Custom")
    no_pass = error_of(start, client_of(world.sim, operator), TEMPLATE_NAME, world.parameters())
    assert no_pass.code == "NoPermission" and "ram:PassRole" in no_pass.data["Message"]

    runner = new_user(executing, "runner")
    sdk.attach_to_user(executing, "runner", "AliyunOOSFullAccess")
    started = start(client_of(world.sim, runner), TEMPLATE_NAME, world.parameters())
    assert started.executed_by == f"acs:ram::{executing.uid}:user/runner"
    assert wait(world.oos, started.execution_id).status == "Success"

    reader = new_user(executing, "reader")
    sdk.attach_to_user(executing, "reader", "AliyunOOSReadOnlyAccess")
    readonly = client_of(world.sim, reader)
    assert readonly.list_executions(oos.ListExecutionsRequest(region_id=REGION)).body.executions
    denied = error_of(
        readonly.cancel_execution,
        oos.CancelExecutionRequest(execution_id=started.execution_id, region_id=REGION),
    )
    assert denied.code == "NoPermission"


def test_a_source_role_that_does_not_trust_oos_fails_the_execution(world):
    world.set_trust(world.executing, trust({"RAM": [f"acs:ram::{world.executing.uid}:root"]}))
    world.put_template()
    started = start(world.oos, TEMPLATE_NAME, world.parameters())
    finished = wait(world.oos, started.execution_id)
    assert finished.status == "Failed"
    assert "NoPermission" in finished.status_message


def test_faults_apply_to_oos_actions_and_to_the_calls_oos_makes(cloudsim_faults, cloudsim):
    world = Scenario(cloudsim, owners=1)
    world.put_template()
    cloudsim_faults.set_faults("StartExecution:internal")
    failed = error_of(start, world.oos, TEMPLATE_NAME, world.parameters())
    assert (failed.code, failed.statusCode) == ("InternalError", 500)

    cloudsim_faults.set_faults("DescribeInstances:throttle")
    started = start(world.oos, TEMPLATE_NAME, world.parameters())
    finished = wait(world.oos, started.execution_id)
    assert finished.status == "Failed" and "Throttling.User" in finished.status_message
    cloudsim_faults.clear_faults()

    cloudsim_faults.set_faults("ListExecutions:latency:1:300")
    begun = time.monotonic()
    world.oos.list_executions(oos.ListExecutionsRequest(region_id=REGION))
    assert time.monotonic() - begun >= 0.3
