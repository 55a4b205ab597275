"""Alibaba Cloud's System policies, by their real names, as cloudsim serves them.

Every account sees the same catalogue (RAM's ``PolicyType=System``). Names and descriptions
follow the RAM console; the documents are faithful in spirit, granting the same services with
the same read/write split, but shorter than Alibaba's, which list dozens of related actions
cloudsim does not emulate. Each document passes :func:`cloudsim.policy.parse_policy_document`
(checked at import time and in the tests).

Entry shape (the fields RAM's GetPolicy/ListPolicies return for a System policy)::

    {"PolicyName", "PolicyType": "System", "Description", "DefaultVersion",
     "PolicyDocument": <JSON text>, "CreateDate", "UpdateDate", "AttachmentCount": 0}
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cloudsim.policy import parse_policy_document

# One fixed date for the whole catalogue: System policies predate every emulated account.
_CATALOGUE_DATE = "2015-04-28T09:30:00Z"


def _allow(actions: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


def _read_only(*services: str) -> list[str]:
    return [f"{service}:{verb}*" for service in services for verb in ("Describe", "List", "Get")]


_DEFINITIONS: list[tuple[str, str, list[dict]]] = [
    (
        "AdministratorAccess",
        "Provides full access to Alibaba Cloud services and resources.",
        [_allow("*")],
    ),
    (
        "ReadOnlyAccess",
        "Provides read-only access to Alibaba Cloud services and resources.",
        [_allow(["*:Describe*", "*:List*", "*:Get*", "*:BatchGet*", "*:Query*", "*:BatchQuery*"])],
    ),
    (
        "AliyunECSFullAccess",
        "Provides full access to Elastic Compute Service (ECS) via Management Console.",
        [
            _allow("ecs:*"),
            _allow(["vpc:DescribeVpcs", "vpc:DescribeVSwitches", "vpc:DescribeVpcAttribute"]),
            _allow(["slb:DescribeLoadBalancers", "cms:QueryMetricLast", "cms:QueryMetricList"]),
            _allow(
                "ram:CreateServiceLinkedRole",
                Condition={"StringEquals": {"ram:ServiceName": "ecs.aliyuncs.com"}},
            ),
        ],
    ),
    (
        "AliyunECSReadOnlyAccess",
        "Provides read-only access to Elastic Compute Service (ECS) via Management Console.",
        [
            _allow(["ecs:Describe*", "ecs:List*"]),
            _allow(["vpc:DescribeVpcs", "vpc:DescribeVSwitches"]),
        ],
    ),
    (
        "AliyunSTSAssumeRoleAccess",
        "Provides access to call the AssumeRole operation of Security Token Service (STS).",
        [_allow("sts:AssumeRole")],
    ),
    (
        "AliyunRAMFullAccess",
        "Provides full access to Resource Access Management (RAM), including managing users, "
        "groups, roles and permissions.",
        [_allow("ram:*")],
    ),
    (
        "AliyunRAMReadOnlyAccess",
        "Provides read-only access to Resource Access Management (RAM), including viewing "
        "users, groups, roles and permissions.",
        [_allow(["ram:Get*", "ram:List*"])],
    ),
    (
        "AliyunOOSFullAccess",
        "Provides full access to Operation Orchestration Service (OOS) via Management Console.",
        [
            _allow("oos:*"),
            # OOS runs templates as a role the user hands it; PassRole only to OOS itself.
            _allow(
                "ram:PassRole",
                Condition={"StringEquals": {"acs:Service": "oos.aliyuncs.com"}},
            ),
        ],
    ),
    (
        "AliyunOOSReadOnlyAccess",
        "Provides read-only access to Operation Orchestration Service (OOS) via Management "
        "Console.",
        [_allow(["oos:Get*", "oos:List*", "oos:Describe*", "oos:Search*"])],
    ),
    (
        "AliyunOSSFullAccess",
        "Provides full access to Object Storage Service (OSS) via Management Console.",
        [_allow("oss:*")],
    ),
    (
        "AliyunOSSReadOnlyAccess",
        "Provides read-only access to Object Storage Service (OSS) via Management Console.",
        [_allow(["oss:Get*", "oss:List*"])],
    ),
    (
        "AliyunRDSFullAccess",
        "Provides full access to ApsaraDB RDS via Management Console.",
        [
            _allow("rds:*"),
            _allow(["vpc:DescribeVpcs", "vpc:DescribeVSwitches"]),
            _allow(
                "ram:CreateServiceLinkedRole",
                Condition={"StringEquals": {"ram:ServiceName": "rds.aliyuncs.com"}},
            ),
        ],
    ),
    (
        "AliyunRDSReadOnlyAccess",
        "Provides read-only access to ApsaraDB RDS via Management Console.",
        [_allow(["rds:Describe*", "rds:List*"])],
    ),
    (
        "AliyunSLBFullAccess",
        "Provides full access to Server Load Balancer (SLB) via Management Console.",
        [_allow("slb:*"), _allow(["ecs:DescribeInstances", "vpc:DescribeVpcs"])],
    ),
    (
        "AliyunSLBReadOnlyAccess",
        "Provides read-only access to Server Load Balancer (SLB) via Management Console.",
        [_allow(["slb:Describe*", "slb:List*"])],
    ),
    (
        "AliyunVPCFullAccess",
        "Provides full access to Virtual Private Cloud (VPC) via Management Console.",
        [_allow("vpc:*")],
    ),
    (
        "AliyunVPCReadOnlyAccess",
        "Provides read-only access to Virtual Private Cloud (VPC) via Management Console.",
        [_allow(_read_only("vpc"))],
    ),
    (
        "AliyunLogFullAccess",
        "Provides full access to Log Service via Management Console.",
        [_allow("log:*")],
    ),
    (
        "AliyunLogReadOnlyAccess",
        "Provides read-only access to Log Service via Management Console.",
        [_allow(["log:Get*", "log:List*"], "acs:log:*:*:*")],
    ),
    (
        "AliyunCloudMonitorFullAccess",
        "Provides full access to CloudMonitor via Management Console.",
        [_allow("cms:*")],
    ),
    (
        "AliyunCloudMonitorReadOnlyAccess",
        "Provides read-only access to CloudMonitor via Management Console.",
        [_allow(["cms:Describe*", "cms:List*", "cms:Query*", "cms:Get*"])],
    ),
    (
        "AliyunActionTrailReadOnlyAccess",
        "Provides read-only access to ActionTrail via Management Console.",
        [_allow(["actiontrail:Describe*", "actiontrail:Get*", "actiontrail:LookupEvents"])],
    ),
]


def _entry(name: str, description: str, statements: list[dict]) -> dict[str, Any]:
    text = json.dumps({"Version": "1", "Statement": statements}, indent=4)
    parse_policy_document(text)  # a catalogue typo fails at import, not at the first call
    return {
        "PolicyName": name,
        "PolicyType": "System",
        "Description": description,
        "DefaultVersion": "v1",
        "PolicyDocument": text,
        "CreateDate": _CATALOGUE_DATE,
        "UpdateDate": _CATALOGUE_DATE,
        "AttachmentCount": 0,
    }


SYSTEM_POLICIES: dict[str, dict[str, Any]] = {
    name: _entry(name, description, statements) for name, description, statements in _DEFINITIONS
}


def find_system_policy(name: str) -> dict[str, Any] | None:
    """The catalogue entry called ``name`` (exact spelling, as RAM requires), or None."""
    return SYSTEM_POLICIES.get(name)


@cache
def system_policy_document(name: str) -> dict[str, Any]:
    """The parsed, normalised document of a System policy; KeyError for unknown names."""
    return parse_policy_document(SYSTEM_POLICIES[name]["PolicyDocument"])
