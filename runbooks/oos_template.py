"""What a runbook run sends to OOS, as pure functions: the cross-account template's text and
the `StartExecution` parameters built from a run's choices.

The template is OOS's own "MultiAccountToExecuteTemplate" (the product's source scenario,
`shared/reference/oos-cross-account.md`), stored under a name of the portal's so a partner's
own templates are never overwritten. The same text and parameters are what the export gives
the partner, so a run can be repeated by hand in the OOS console.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cloud import policies

TEMPLATE_NAME = "PAP-MultiAccountToExecuteTemplate"
# The public template each loop item runs (in the owner's account, through the role chain).
CHILD_TEMPLATE_NAME = "ACS-ECS-BulkyRunCommand"
# The source role in the partner's (the executing) account, trusted by OOS.
OOS_SERVICE_ROLE = policies.OOS_SERVICE_ROLE_NAME
OOS_SERVICE_PRINCIPAL = policies.OOS_SERVICE_PRINCIPAL
STS_ASSUME_ROLE_POLICY = "AliyunSTSAssumeRoleAccess"

COMMAND_TYPES = ("RunShellScript", "RunPowerShellScript")
TARGET_ALL = "All"
TARGET_INSTANCES = "ResourceIds"
TARGET_TAGS = "Tags"
TARGET_TYPES = (TARGET_ALL, TARGET_INSTANCES, TARGET_TAGS)

# OOS's limits and the portal's (the bad-input list).
MIN_CONCURRENCY = 1
MAX_CONCURRENCY = 100
MIN_TIMEOUT_SECONDS = 10
MAX_TIMEOUT_SECONDS = 86400
MAX_COMMAND_BYTES = 64 * 1024  # a command of 64 KiB or more is refused
MAX_LOOP_ITEMS = 1000  # OOS: a loop holds at most 1,000 items

# The template text exactly as the OOS docs print it (re-indented in the reference file).
MULTI_ACCOUNT_TEMPLATE = """\
FormatVersion: OOS-2019-06-01
Description:
  en: Multi account to execute specified template
  zh-cn: 跨账号执行指定模板
  name-en: MultiAccountToExecuteTemplate
  name-zh-cn: 跨账号执行指定模板
Parameters:
  accountRoleAndRegions:
    Type: Json
  templateName:
    Type: String
    AssociationProperty: TemplateName
  templateParameters:
    Description:
      en: Template parameters to execute with.
    Type: Json
  rateControl:
    Description:
      en: Concurrency ratio of task execution.
    Type: Json
    AssociationProperty: RateControl
    Default:
      Mode: Concurrency
      MaxErrors: 0
      Concurrency: 10
  OOSAssumeRole:
    Description:
      en: The RAM role to be assumed by OOS.
    Type: String
    Default: OOSServiceRole
RamRole: '{{ OOSAssumeRole }}'
Tasks:
  - Name: executeTemplate
    Action: 'ACS::Template'
    Description:
      en: Execute template.
    Properties:
      TemplateName: '{{ templateName }}'
      Parameters:
        'Fn::MergeMap':
          - '{{ templateParameters }}'
          - regionId:
              'Fn::Select':
                - RegionId
                - '{{ACS::TaskLoopItem}}'
          - OOSAssumeRole:
              'Fn::Select':
                - OOSAssumeRole
                - '{{ACS::TaskLoopItem}}'
    Loop:
      RateControl: '{{ rateControl }}'
      Items: '{{ accountRoleAndRegions }}'
"""


@dataclass(frozen=True)
class AccountRole:
    """One owner account and the role in it the partner's OOSServiceRole assumes."""

    account_uid: str
    role_name: str


@dataclass(frozen=True)
class RunSpec:
    """Everything a run asks OOS to do, without the command's secrecy concerns (the caller
    decrypts the content just before building the parameters)."""

    targets: Sequence[tuple[AccountRole, str]]  # (account and role, region), in order
    command_type: str
    command_content: str
    working_dir: str
    timeout_seconds: int
    target_type: str
    instance_ids: Sequence[str] = ()
    tags: Sequence[tuple[str, str]] = ()
    concurrency: int = 10
    max_errors: int = 0


def assume_role_item(account_role: AccountRole, *, source_role: str = OOS_SERVICE_ROLE) -> str:
    """`OOSServiceRole|<owner uid>/<role name>`: OOS assumes the source role in the executing
    account, which assumes the target role in the owner's."""
    return f"{source_role}|{account_role.account_uid}/{account_role.role_name}"


def account_role_and_regions(
    targets: Iterable[tuple[AccountRole, str]],
) -> list[dict[str, str]]:
    """The loop's items, one per account and region, duplicates dropped, order kept."""
    items: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for account_role, region in targets:
        item = assume_role_item(account_role)
        if (item, region) in seen:
            continue
        seen.add((item, region))
        items.append({"OOSAssumeRole": item, "RegionId": region})
    return items


def rate_control(*, concurrency: int, max_errors: int) -> dict[str, Any]:
    return {"Mode": "Concurrency", "Concurrency": concurrency, "MaxErrors": max_errors}


def targets_parameter(
    *, target_type: str, instance_ids: Sequence[str] = (), tags: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """`ACS-ECS-BulkyRunCommand`'s `targets`: every running instance, the named instances, or
    those with all the given tags, in the loop item's region (`{{regionId}}`)."""
    region = "{{regionId}}"
    if target_type == TARGET_ALL:
        return {
            "Type": TARGET_ALL,
            "Parameters": {"Status": "Running", "RegionId": region},
            "RegionId": region,
        }
    if target_type == TARGET_INSTANCES:
        return {"Type": TARGET_INSTANCES, "ResourceIds": list(instance_ids), "RegionId": region}
    if target_type == TARGET_TAGS:
        return {
            "Type": TARGET_TAGS,
            "Tags": [{"Key": key, "Value": value} for key, value in tags],
            "RegionId": region,
        }
    raise ValueError(f"Unknown target type {target_type!r}.")


def start_parameters(spec: RunSpec) -> dict[str, Any]:
    """The `Parameters` of `StartExecution` for the multi-account template."""
    control = rate_control(concurrency=spec.concurrency, max_errors=spec.max_errors)
    return {
        "accountRoleAndRegions": account_role_and_regions(spec.targets),
        "templateName": CHILD_TEMPLATE_NAME,
        "templateParameters": {
            "commandType": spec.command_type,
            "commandContent": spec.command_content,
            "workingDir": spec.working_dir,
            "windowsPasswordName": "",
            "rateControl": control,
            "enableParameter": False,
            "targets": targets_parameter(
                target_type=spec.target_type, instance_ids=spec.instance_ids, tags=spec.tags
            ),
            "timeout": spec.timeout_seconds,
            "username": "",
        },
        "rateControl": control,
        "OOSAssumeRole": OOS_SERVICE_ROLE,
    }


def parameters_json(parameters: dict[str, Any]) -> str:
    """The parameters as the export and `StartExecution` carry them (UTF-8 kept readable)."""
    return json.dumps(parameters, ensure_ascii=False, indent=2, sort_keys=False)
