"""The OOS template engine's pure parts: parsing, references, functions, value selectors,
parameters and rate controls (no server needed)."""

from __future__ import annotations

import pytest

from cloudsim import oos_engine as engine
from cloudsim.cloud_assistant import simulate
from cloudsim.errors import ApiError
from tests.cloudsim.oos_scenario import MULTI_ACCOUNT_TEMPLATE


def test_the_multi_account_template_parses_and_renders_a_loop_item():
    document = engine.parse_template(MULTI_ACCOUNT_TEMPLATE)
    (task,) = document["Tasks"]
    parameters = engine.resolve_parameters(
        document,
        {
            "accountRoleAndRegions": [{"OOSAssumeRole": "S|1/T", "RegionId": "cn-beijing"}],
            "templateName": "ACS-ECS-BulkyRunCommand",
            "templateParameters": {"commandContent": "echo hi", "targets": {"R": "{{regionId}}"}},
        },
    )
    assert parameters["rateControl"] == {"Mode": "Concurrency", "MaxErrors": 0, "Concurrency": 10}
    assert parameters["OOSAssumeRole"] == "OOSServiceRole"
    assert engine.render(document["RamRole"], parameters) == "OOSServiceRole"
    items = engine.render(task["Loop"]["Items"], parameters)
    scope = {**parameters, "ACS::TaskLoopItem": items[0]}
    properties = engine.render(task["Properties"], scope)
    assert properties == {
        "TemplateName": "ACS-ECS-BulkyRunCommand",
        "Parameters": {
            "commandContent": "echo hi",
            # Unknown here, known in the child: passed through as written.
            "targets": {"R": "{{regionId}}"},
            "regionId": "cn-beijing",
            "OOSAssumeRole": "S|1/T",
        },
    }
    child_scope = {"regionId": "cn-beijing", "targets": properties["Parameters"]["targets"]}
    assert engine.render("{{ targets }}", child_scope) == {"R": "cn-beijing"}


def test_references_keep_types_whole_and_become_text_inside_strings():
    scope = {"n": 3, "m": {"a": 1}, "s": "x", "t.out": [1, 2]}
    assert engine.render("{{ n }}", scope) == 3
    assert engine.render("n={{n}} m={{ m }} s={{s}}", scope) == 'n=3 m={"a": 1} s=x'
    assert engine.render("{{ t.out }}", scope) == [1, 2]
    assert engine.render("{{ missing }}", scope) == "{{ missing }}"
    assert engine.render({"Fn::Join": [",", ["a", "{{ s }}"]]}, scope) == "a,x"
    assert engine.render({"Fn::Select": [1, [7, 8]]}, scope) == 8
    with pytest.raises(ValueError):
        engine.render({"Fn::Select": ["nope", {"a": 1}]}, scope)
    with pytest.raises(ValueError):
        engine.render({"Fn::Base64Encode": "x"}, scope)


def test_value_selectors():
    data = {"Instances": {"Instance": [{"InstanceId": "i-1"}, {"InstanceId": "i-2"}]}}
    assert engine.select_value(data, "Instances.Instance[].InstanceId") == ["i-1", "i-2"]
    assert engine.select_value({"invocationOutput": "x"}, ".invocationOutput") == "x"
    assert engine.select_value({"Instances": {"Instance": []}}, "Instances.Instance[].Id") == []


@pytest.mark.parametrize(
    "content, problem",
    [
        ("- a\n- b\n", "mapping"),
        ("FormatVersion: OOS-2019-06-01\nTasks: []\n", "Tasks"),
        ("FormatVersion: '2020'\nTasks: [{Name: a, Action: 'ACS::Template'}]\n", "FormatVersion"),
        (
            "FormatVersion: OOS-2019-06-01\nTasks:\n  - {Name: a, Action: 'ACS::Template'}\n"
            "  - {Name: a, Action: 'ACS::Template'}\n",
            "twice",
        ),
        (
            "FormatVersion: OOS-2019-06-01\nParameters: {p: {Type: Date}}\n"
            "Tasks: [{Name: a, Action: 'ACS::Template'}]\n",
            "Type",
        ),
        (
            "FormatVersion: OOS-2019-06-01\n"
            "Tasks: [{Name: a, Action: 'ACS::Template', Loop: {}}]\n",
            "Items",
        ),
        ("{unbalanced: [", "YAML"),
    ],
)
def test_invalid_templates_say_why(content, problem):
    with pytest.raises(ApiError) as caught:
        engine.parse_template(content)
    assert caught.value.code == "InvalidTemplate" and problem in caught.value.message


def test_parameters_are_coerced_and_checked():
    document = engine.parse_template(
        "FormatVersion: OOS-2019-06-01\nParameters:\n  n: {Type: Number}\n  b: {Type: Boolean}\n"
        "  l: {Type: List, Default: []}\n  s: {Type: String, AllowedValues: [a, b], Default: a}\n"
        "Tasks: [{Name: t, Action: 'ACS::SelectTargets'}]\n"
    )
    assert engine.resolve_parameters(document, {"n": "600", "b": "true"}) == {
        "n": 600,
        "b": True,
        "l": [],
        "s": "a",
    }
    for bad in ({"n": "x", "b": True}, {"n": 1, "b": "maybe"}, {"n": 1, "b": True, "l": "x"}):
        with pytest.raises(ApiError):
            engine.resolve_parameters(document, bad)
    with pytest.raises(ApiError):
        engine.resolve_parameters(document, {"n": 1, "b": True, "s": "c"})


def test_rate_controls():
    rate = engine._rate_control
    assert rate({"Mode": "Concurrency", "Concurrency": 10, "MaxErrors": 0}, 4) == (10, 0)
    assert rate({"Concurrency": "50%", "MaxErrors": "25%"}, 8) == (4, 2)
    assert rate({}, 3) == (1, 0)
    for bad in (
        {"Mode": "Batch"},
        {"Concurrency": 0},
        {"MaxErrors": -1},
        "fast",
        {"Concurrency": 1.5},
    ):
        with pytest.raises(ValueError):
            rate(bad, 3)


def test_the_simulated_shell():
    run = simulate
    assert run("echo hello", hostname="h", timeout=60, started=0).output == "hello\n"
    assert run("hostname", hostname="iZabcZ", timeout=60, started=0).output == "iZabcZ\n"
    assert (
        run("date", hostname="h", timeout=60, started=0).output == "Thu Jan 01 00:00:00 UTC 1970\n"
    )
    slept = run("sleep 2.5; sleep 1\ndate", hostname="h", timeout=60, started=0)
    assert (slept.seconds, slept.output) == (3.5, "Thu Jan 01 00:00:03 UTC 1970\n")
    assert run("false && echo x", hostname="h", timeout=60, started=0).exit_code == 127
    assert run("exit 300", hostname="h", timeout=60, started=0).exit_code == 44
    assert run("", hostname="h", timeout=60, started=0).exit_code == 0
    timed = run("sleep 100", hostname="h", timeout=60, started=0)
    assert timed.timed_out and timed.seconds == 60
    for unsafe in ("rm -rf /", "echo `id`", "echo hi > /tmp/x", "python -c 1", "echo 'open"):
        assert run(unsafe, hostname="h", timeout=60, started=0).exit_code == 127, unsafe
