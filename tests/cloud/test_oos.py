"""cloud.oos: the runbook adapter on the official OOS and ECS SDKs against cloudsim — templates
put once per content, the MultiAccount execution followed to its per-instance results, client
tokens, cancel, and every failure as a CloudError.
"""

from __future__ import annotations

import time
import uuid

import pytest

from cloud.errors import CloudError, ErrorCategory
from cloud.oos import FINISHED_STATUSES, OosClient
from tests.cloudsim.oos_scenario import MULTI_ACCOUNT_TEMPLATE, TEMPLATE_NAME, Scenario


@pytest.fixture
def scenario(cloudsim, settings) -> Scenario:
    for name in ("RAM", "STS", "OOS", "ECS"):
        setattr(settings, f"ALIBABA_{name}_ENDPOINT", cloudsim.endpoint)
    settings.ALIBABA_CLOUD_PROTOCOL = "http"
    return Scenario(cloudsim)


def client_for(account, **options) -> OosClient:
    return OosClient(
        access_key_id=account.access_key_id,
        access_key_secret=account.access_key_secret,
        region_id="cn-hangzhou",
        **options,
    )


def wait(client: OosClient, execution_id: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        execution = client.get_execution(execution_id=execution_id)
        if execution.status in FINISHED_STATUSES:
            return execution
        assert time.monotonic() < deadline, execution
        time.sleep(0.05)


def test_put_template_creates_once_and_versions_only_changed_content(scenario):
    client = client_for(scenario.executing)
    assert client.put_template(name=TEMPLATE_NAME, content=MULTI_ACCOUNT_TEMPLATE) == "v1"
    assert client.put_template(name=TEMPLATE_NAME, content=MULTI_ACCOUNT_TEMPLATE) == "v1"
    changed = MULTI_ACCOUNT_TEMPLATE.replace("Execute template.", "Execute the runbook.")
    assert client.put_template(name=TEMPLATE_NAME, content=changed) == "v2"
    assert client.get_template(name=TEMPLATE_NAME) == (changed, "v2")
    content, version = client.get_template(name="ACS-ECS-BulkyRunCommand")
    assert "ACS::ECS::RunCommand" in content and version == "v1"


def test_the_multi_account_run_reports_every_instance(scenario):
    calls: list[dict] = []
    client = client_for(scenario.executing, call_recorder=lambda **call: calls.append(call))
    client.put_template(name=TEMPLATE_NAME, content=MULTI_ACCOUNT_TEMPLATE)
    token = str(uuid.uuid4())
    started = client.start_execution(
        template_name=TEMPLATE_NAME, parameters=scenario.parameters(), client_token=token
    )
    assert started.status in ("Queued", "Running")
    assert started.template_name == TEMPLATE_NAME
    assert started.parent_execution_id is None
    assert started.parameters["templateName"] == "ACS-ECS-BulkyRunCommand"
    again = client.start_execution(
        template_name=TEMPLATE_NAME, parameters=scenario.parameters(), client_token=token
    )
    assert again.execution_id == started.execution_id

    finished = wait(client, started.execution_id)
    assert finished.status == "Success", finished.status_message
    assert finished.start_date is not None and finished.end_date is not None
    assert finished.end_date >= finished.start_date

    children = client.list_executions(parent_execution_id=started.execution_id)
    assert len(children) == 4
    assert {c.parent_execution_id for c in children} == {started.execution_id}
    tasks = client.list_task_executions(execution_id=started.execution_id)
    assert [t.task_action for t in tasks] == ["ACS::Template"] * 4
    assert {t.child_execution_id for t in tasks} == {c.execution_id for c in children}
    assert all(t.loop_item and t.status == "Success" for t in tasks)

    results = client.instance_results(execution_id=started.execution_id)
    expected = {
        (owner.uid, region, instance)
        for owner in scenario.owners
        for region, instance in owner.running()
    }
    assert {(r.account_uid, r.region_id, r.instance_id) for r in results} == expected
    assert all(r.output == "hello\n" and r.exit_code == 0 for r in results)
    assert all(r.status == "Success" for r in results)
    assert {r.child_execution_id for r in results} == {c.execution_id for c in children}
    top = client.list_executions(template_name=TEMPLATE_NAME)
    assert [e.execution_id for e in top] == [started.execution_id]
    assert {c["action"] for c in calls} >= {"GetTemplate", "CreateTemplate", "StartExecution"}
    assert all(c["request_id"] for c in calls)


def test_a_failing_instance_and_a_cancel_show_in_the_results(scenario):
    client = client_for(scenario.executing)
    client.put_template(name=TEMPLATE_NAME, content=MULTI_ACCOUNT_TEMPLATE)
    owner = scenario.owners[0]
    failing = owner.instances["cn-beijing"][0][0]
    scenario.fail_commands(failing)
    parameters = scenario.parameters(owners=[owner], child_max_errors=5, command="echo hi; exit 3")
    started = client.start_execution(
        template_name=TEMPLATE_NAME, parameters=parameters, client_token=str(uuid.uuid4())
    )
    finished = wait(client, started.execution_id)
    # Every item failed, but no loop had more failures than its MaxErrors allows.
    assert finished.status == "Success", finished.status_message
    results = {
        r.instance_id: r for r in client.instance_results(execution_id=finished.execution_id)
    }
    assert results[failing].status == "Failed" and results[failing].exit_code is None
    others = [r for i, r in results.items() if i != failing]
    assert len(others) == 3
    assert all((r.status, r.exit_code, r.output) == ("Failed", 3, "hi\n") for r in others)

    slow = client.start_execution(
        template_name=TEMPLATE_NAME,
        parameters=scenario.parameters(child_concurrency=1, command="sleep 600"),
        client_token=str(uuid.uuid4()),
    )
    client.cancel_execution(execution_id=slow.execution_id)
    assert wait(client, slow.execution_id).status == "Cancelled"
    assert all(
        r.status == "Cancelled" for r in client.instance_results(execution_id=slow.execution_id)
    )


def test_refusals_and_bad_input_are_cloud_errors(scenario, cloudsim):
    client = client_for(scenario.executing)
    with pytest.raises(CloudError) as missing:
        client.get_template(name="no-such-template")
    assert missing.value.is_not_found and missing.value.request_id
    with pytest.raises(CloudError) as no_execution:
        client.get_execution(execution_id="exec-0000")
    assert no_execution.value.is_not_found

    client.put_template(name=TEMPLATE_NAME, content=MULTI_ACCOUNT_TEMPLATE)
    with pytest.raises(CloudError) as bad:
        client.start_execution(
            template_name=TEMPLATE_NAME, parameters={"nonsense": 1}, client_token="t1"
        )
    assert bad.value.category is ErrorCategory.VALIDATION and bad.value.permanent
    with pytest.raises(CloudError) as broken:
        client.put_template(name="pap-broken", content="FormatVersion: OOS-2019-06-01\nTasks: 3\n")
    assert broken.value.code == "InvalidTemplate" and broken.value.permanent

    user = cloudsim.create_user(scenario.executing.uid, "no-oos")
    stranger = OosClient(
        access_key_id=user["access_key_id"],
        access_key_secret=user["access_key_secret"],
        region_id="cn-hangzhou",
    )
    with pytest.raises(CloudError) as refused:
        stranger.list_executions()
    assert refused.value.code == "NoPermission" and refused.value.is_configuration


def test_describe_regions_lists_the_ecs_regions(scenario):
    regions = client_for(scenario.owners[0]).describe_regions()
    names = {r.region_id: r.local_name for r in regions}
    assert names["cn-shanghai"] == "China (Shanghai)"
    assert "cn-beijing" in names
