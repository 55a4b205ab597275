"""The pure functions that build what OOS receives: the template text is OOS's own
MultiAccountToExecuteTemplate, and the parameters follow a run's choices exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from runbooks import oos_template as tpl

REFERENCE = Path("/work/shared/reference/oos-cross-account.md")

uids = st.integers(10**5, 10**16 - 1).map(str)
role_names = st.text("abcXYZ019.-", min_size=1, max_size=64)
regions = st.sampled_from(["cn-hangzhou", "cn-shanghai", "cn-beijing", "ap-southeast-1"])
account_roles = st.builds(tpl.AccountRole, uids, role_names)
targets = st.lists(st.tuples(account_roles, regions), min_size=1, max_size=12)
commands = st.text(min_size=1, max_size=200)
instance_ids = st.lists(st.text("abc0123", min_size=4, max_size=20).map("i-{}".format), max_size=5)
tags = st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=8)), max_size=3)


@st.composite
def specs(draw: st.DrawFn) -> tpl.RunSpec:
    target_type = draw(st.sampled_from(tpl.TARGET_TYPES))
    return tpl.RunSpec(
        targets=draw(targets),
        command_type=draw(st.sampled_from(tpl.COMMAND_TYPES)),
        command_content=draw(commands),
        working_dir=draw(st.sampled_from(["", "/tmp", "C:\\"])),
        timeout_seconds=draw(st.integers(10, 86400)),
        target_type=target_type,
        instance_ids=draw(instance_ids),
        tags=draw(tags),
        concurrency=draw(st.integers(1, 100)),
        max_errors=draw(st.integers(0, 50)),
    )


# The scenario's parameters as the reference prints them (shared/reference/oos-cross-account.md).
SCENARIO_PARAMETERS = {
    "accountRoleAndRegions": [
        {"OOSAssumeRole": "OOSServiceRole|654321/OOSServiceRole", "RegionId": "cn-shanghai"},
        {"OOSAssumeRole": "OOSServiceRole|654321/OOSServiceRole", "RegionId": "cn-beijing"},
    ],
    "templateName": "ACS-ECS-BulkyRunCommand",
    "templateParameters": {
        "commandType": "RunShellScript",
        "commandContent": "echo hello",
        "workingDir": "",
        "windowsPasswordName": "",
        "rateControl": {"MaxErrors": 0, "Concurrency": 10, "Mode": "Concurrency"},
        "enableParameter": False,
        "targets": {
            "Type": "All",
            "Parameters": {"Status": "Running", "RegionId": "{{regionId}}"},
            "RegionId": "{{regionId}}",
        },
        "timeout": 600,
        "username": "",
    },
}


def test_the_template_is_the_one_of_the_scenario():
    if not REFERENCE.exists():
        pytest.skip("the shared reference is not on this machine")
    reference = REFERENCE.read_text(encoding="utf-8")
    block = reference.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(tpl.MULTI_ACCOUNT_TEMPLATE) == yaml.safe_load(block)
    assert json.loads(reference.split("```json\n", 1)[1].split("```", 1)[0]) == (
        SCENARIO_PARAMETERS
    )


def test_the_template_parses_into_a_rate_controlled_loop_over_the_items():
    template = yaml.safe_load(tpl.MULTI_ACCOUNT_TEMPLATE)
    task = template["Tasks"][0]
    assert task["Action"] == "ACS::Template"
    assert task["Loop"] == {
        "RateControl": "{{ rateControl }}",
        "Items": "{{ accountRoleAndRegions }}",
    }
    assert template["RamRole"] == "{{ OOSAssumeRole }}"


def test_the_scenario_parameters_come_out_as_the_reference_prints_them():
    expected = SCENARIO_PARAMETERS
    role = tpl.AccountRole("654321", "OOSServiceRole")
    spec = tpl.RunSpec(
        targets=[(role, "cn-shanghai"), (role, "cn-beijing")],
        command_type="RunShellScript",
        command_content="echo hello",
        working_dir="",
        timeout_seconds=600,
        target_type=tpl.TARGET_ALL,
    )
    parameters = tpl.start_parameters(spec)
    assert parameters["OOSAssumeRole"] == "OOSServiceRole"
    del parameters["OOSAssumeRole"], parameters["rateControl"]
    assert parameters == expected


# The machine running the suite is shared: generation speed is not what these tests check.
@given(specs())
def test_one_loop_item_per_distinct_account_role_and_region_in_order(spec: tpl.RunSpec):
    items = tpl.start_parameters(spec)["accountRoleAndRegions"]
    wanted = list(
        dict.fromkeys(
            (f"OOSServiceRole|{role.account_uid}/{role.role_name}", region)
            for role, region in spec.targets
        )
    )
    assert [(i["OOSAssumeRole"], i["RegionId"]) for i in items] == wanted
    for item in items:
        source, target = item["OOSAssumeRole"].split("|")
        assert source == tpl.OOS_SERVICE_ROLE
        uid, role = target.split("/", 1)
        assert uid.isdigit() and role


# The machine running the suite is shared: generation speed is not what these tests check.
@given(specs())
def test_parameters_carry_the_run_exactly_and_survive_json(spec: tpl.RunSpec):
    parameters = tpl.start_parameters(spec)
    assert json.loads(tpl.parameters_json(parameters)) == parameters
    assert parameters["templateName"] == "ACS-ECS-BulkyRunCommand"
    control = {"Mode": "Concurrency", "Concurrency": spec.concurrency, "MaxErrors": spec.max_errors}
    assert parameters["rateControl"] == control
    child = parameters["templateParameters"]
    assert child["rateControl"] == control
    assert child["commandType"] == spec.command_type
    assert child["commandContent"] == spec.command_content
    assert child["timeout"] == spec.timeout_seconds
    assert child["workingDir"] == spec.working_dir
    chosen = child["targets"]
    assert chosen["Type"] == spec.target_type and chosen["RegionId"] == "{{regionId}}"
    if spec.target_type == tpl.TARGET_ALL:
        assert chosen["Parameters"] == {"Status": "Running", "RegionId": "{{regionId}}"}
    elif spec.target_type == tpl.TARGET_INSTANCES:
        assert chosen["ResourceIds"] == list(spec.instance_ids)
    else:
        assert chosen["Tags"] == [{"Key": k, "Value": v} for k, v in spec.tags]
