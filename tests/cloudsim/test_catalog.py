"""The System policy catalogue: real names, parseable documents, the grants they are known for."""

from __future__ import annotations

import pytest

from cloudsim.catalog import SYSTEM_POLICIES, find_system_policy, system_policy_document
from cloudsim.policy import evaluate, parse_policy_document

REQUIRED = [
    "AdministratorAccess",
    "AliyunECSFullAccess",
    "AliyunECSReadOnlyAccess",
    "AliyunSTSAssumeRoleAccess",
    "AliyunRAMFullAccess",
    "AliyunRAMReadOnlyAccess",
    "AliyunOOSFullAccess",
    "AliyunOOSReadOnlyAccess",
    "AliyunOSSFullAccess",
    "AliyunOSSReadOnlyAccess",
    "AliyunRDSFullAccess",
    "AliyunRDSReadOnlyAccess",
    "AliyunSLBFullAccess",
    "AliyunSLBReadOnlyAccess",
    "AliyunVPCReadOnlyAccess",
    "AliyunLogReadOnlyAccess",
    "ReadOnlyAccess",
]
INSTANCE = "acs:ecs:cn-hangzhou:11223344:instance/i-abc"
ROLE = "acs:ram:*:11223344:role/ecs-admin"


@pytest.mark.parametrize("name", sorted(SYSTEM_POLICIES))
def test_every_entry_is_a_well_formed_system_policy(name):
    entry = SYSTEM_POLICIES[name]
    assert entry["PolicyName"] == name
    assert entry["PolicyType"] == "System"
    assert entry["DefaultVersion"] == "v1"
    assert 0 < len(entry["Description"]) <= 1024
    assert len(entry["PolicyDocument"]) <= 6144
    assert parse_policy_document(entry["PolicyDocument"]) == system_policy_document(name)


def test_the_catalogue_has_the_names_the_product_relies_on():
    assert set(REQUIRED) <= set(SYSTEM_POLICIES)
    assert find_system_policy("AliyunECSFullAccess") is SYSTEM_POLICIES["AliyunECSFullAccess"]
    assert find_system_policy("NoSuchPolicy") is None
    with pytest.raises(KeyError):
        system_policy_document("NoSuchPolicy")


@pytest.mark.parametrize(
    ("policy", "action", "resource", "allowed"),
    [
        ("AdministratorAccess", "ram:DeleteRole", ROLE, True),
        ("ReadOnlyAccess", "ecs:DescribeInstances", INSTANCE, True),
        ("ReadOnlyAccess", "ram:GetRole", ROLE, True),
        ("ReadOnlyAccess", "ecs:StopInstance", INSTANCE, False),
        ("AliyunECSFullAccess", "ecs:StopInstance", INSTANCE, True),
        ("AliyunECSFullAccess", "ram:CreateRole", ROLE, False),
        ("AliyunECSReadOnlyAccess", "ecs:DescribeInstances", INSTANCE, True),
        ("AliyunECSReadOnlyAccess", "ecs:StopInstance", INSTANCE, False),
        ("AliyunSTSAssumeRoleAccess", "sts:AssumeRole", ROLE, True),
        ("AliyunSTSAssumeRoleAccess", "ram:GetRole", ROLE, False),
        ("AliyunRAMFullAccess", "ram:UpdateRole", ROLE, True),
        ("AliyunRAMReadOnlyAccess", "ram:GetRole", ROLE, True),
        ("AliyunRAMReadOnlyAccess", "ram:ListRoles", "*", True),
        ("AliyunRAMReadOnlyAccess", "ram:UpdateRole", ROLE, False),
        ("AliyunOOSFullAccess", "oos:StartExecution", "*", True),
        ("AliyunOOSReadOnlyAccess", "oos:StartExecution", "*", False),
        ("AliyunOSSReadOnlyAccess", "oss:GetObject", "acs:oss:*:*:bucket/key", True),
        ("AliyunOSSReadOnlyAccess", "oss:PutObject", "acs:oss:*:*:bucket/key", False),
        ("AliyunVPCReadOnlyAccess", "vpc:DescribeVpcs", "*", True),
        ("AliyunVPCReadOnlyAccess", "vpc:CreateVpc", "*", False),
        ("AliyunLogReadOnlyAccess", "log:GetLogStore", "acs:log:*:*:project/p", True),
    ],
)
def test_documents_grant_what_their_names_say(policy, action, resource, allowed):
    decision = evaluate(
        [system_policy_document(policy)], action=action, resource=resource, context={}
    )
    assert decision.allowed is allowed


def test_oos_may_pass_roles_only_to_oos():
    document = system_policy_document("AliyunOOSFullAccess")

    def pass_role(service: str) -> bool:
        return evaluate(
            [document], action="ram:PassRole", resource=ROLE, context={"acs:Service": service}
        ).allowed

    assert pass_role("oos.aliyuncs.com")
    assert not pass_role("ecs.aliyuncs.com")
