"""The OOS cross-account scenario's cloud, built through the official SDKs (and the operator's
instance endpoint), shared by the cloudsim OOS tests and the cloud adapter's tests.

An executing account E holds ``OOSServiceRole`` (trusted by ``oos.aliyuncs.com``, with
``AliyunSTSAssumeRoleAccess``); each owner account holds ``OOSServiceRole`` trusting E, with
``AliyunECSFullAccess``, and running instances in cn-shanghai and cn-beijing plus one stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from alibabacloud_oos20190601 import models as oos_models
from alibabacloud_oos20190601.client import Client as OosClient
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient

from tests.fixtures.cloudsim import CloudSim

REGIONS = ("cn-shanghai", "cn-beijing")
ROLE = "OOSServiceRole"
TEMPLATE_NAME = "PAP-MultiAccountToExecuteTemplate"
# The reference document's template, as the OOS docs print it.
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


def trust(principal: dict) -> str:
    return json.dumps(
        {
            "Version": "1",
            "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": principal}],
        }
    )


@dataclass
class Account:
    uid: str
    access_key_id: str
    access_key_secret: str
    # region → [(instance id, status)]
    instances: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def running(self) -> list[tuple[str, str]]:
        return [
            (region, instance)
            for region, found in self.instances.items()
            for instance, status in found
            if status == "Running"
        ]


class Scenario:
    def __init__(self, sim: CloudSim, *, owners: int = 2, running: int = 2) -> None:
        self.sim = sim
        self.executing = self.account()
        self.owners = [self.account() for _ in range(owners)]
        self.role(
            self.executing, trust({"Service": ["oos.aliyuncs.com"]}), "AliyunSTSAssumeRoleAccess"
        )
        for owner in self.owners:
            self.role(
                owner,
                trust({"RAM": [f"acs:ram::{self.executing.uid}:root"]}),
                "AliyunECSFullAccess",
            )
            for region in REGIONS:
                owner.instances[region] = [
                    (self.instance(owner, region, f"web-{n}", "Running"), "Running")
                    for n in range(running)
                ] + [(self.instance(owner, region, "stopped-1", "Stopped"), "Stopped")]
        self.oos = self.oos_client(self.executing)

    def account(self) -> Account:
        created = self.sim.create_account()
        root = created["root"]
        return Account(created["uid"], root["access_key_id"], root["access_key_secret"])

    def ram(self, account: Account) -> RamClient:
        return RamClient(self.sim.sdk_config(account.access_key_id, account.access_key_secret))

    def role(self, account: Account, document: str, policy: str) -> None:
        ram = self.ram(account)
        ram.create_role(
            ram_models.CreateRoleRequest(role_name=ROLE, assume_role_policy_document=document)
        )
        ram.attach_policy_to_role(
            ram_models.AttachPolicyToRoleRequest(
                policy_type="System", policy_name=policy, role_name=ROLE
            )
        )

    def set_trust(self, account: Account, document: str) -> None:
        self.ram(account).update_role(
            ram_models.UpdateRoleRequest(role_name=ROLE, new_assume_role_policy_document=document)
        )

    def instance(self, account: Account, region: str, name: str, status: str) -> str:
        created = self.sim.request(
            "POST",
            "/_sim/ecs/instances",
            {"uid": account.uid, "region_id": region, "name": name, "status": status},
        )
        return created["instance_id"]

    def fail_commands(self, instance_id: str, fail: bool = True) -> None:
        self.sim.request(
            "PUT", "/_sim/ecs/command-failure", {"instance_id": instance_id, "fail": fail}
        )

    def oos_client(self, account: Account, security_token: str | None = None) -> OosClient:
        return OosClient(
            self.sim.sdk_config(
                account.access_key_id,
                account.access_key_secret,
                security_token,
                region_id="cn-hangzhou",
            )
        )

    def put_template(self) -> None:
        self.oos.create_template(
            oos_models.CreateTemplateRequest(
                template_name=TEMPLATE_NAME, content=MULTI_ACCOUNT_TEMPLATE, region_id="cn-hangzhou"
            )
        )

    def parameters(
        self,
        *,
        command: str = "echo hello",
        concurrency: int = 10,
        max_errors: int = 0,
        child_concurrency: int = 10,
        child_max_errors: int = 0,
        owners: list[Account] | None = None,
    ) -> dict:
        return {
            "accountRoleAndRegions": [
                {"OOSAssumeRole": f"{ROLE}|{owner.uid}/{ROLE}", "RegionId": region}
                for owner in (owners or self.owners)
                for region in REGIONS
            ],
            "templateName": "ACS-ECS-BulkyRunCommand",
            "templateParameters": {
                "commandType": "RunShellScript",
                "commandContent": command,
                "workingDir": "",
                "windowsPasswordName": "",
                "rateControl": {
                    "MaxErrors": child_max_errors,
                    "Concurrency": child_concurrency,
                    "Mode": "Concurrency",
                },
                "enableParameter": False,
                "targets": {
                    "Type": "All",
                    "Parameters": {"Status": "Running", "RegionId": "{{regionId}}"},
                    "RegionId": "{{regionId}}",
                },
                "timeout": 600,
                "username": "",
            },
            "rateControl": {
                "Mode": "Concurrency",
                "Concurrency": concurrency,
                "MaxErrors": max_errors,
            },
        }

    def start(self, parameters: dict, token: str | None = None):
        return self.oos.start_execution(
            oos_models.StartExecutionRequest(
                template_name=TEMPLATE_NAME,
                parameters=json.dumps(parameters),
                region_id="cn-hangzhou",
                client_token=token,
            )
        ).body.execution

    def execution(self, execution_id: str):
        return self.oos.list_executions(
            oos_models.ListExecutionsRequest(execution_id=execution_id, region_id="cn-hangzhou")
        ).body.executions[0]

    def wait(self, execution_id: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while True:
            execution = self.execution(execution_id)
            if execution.status in ("Success", "Failed", "Cancelled"):
                return execution
            if time.monotonic() > deadline:
                raise AssertionError(f"{execution_id} still {execution.status}")
            time.sleep(0.05)

    def tasks(self, execution_id: str) -> list:
        found, token = [], None
        while True:
            body = self.oos.list_task_executions(
                oos_models.ListTaskExecutionsRequest(
                    execution_id=execution_id,
                    region_id="cn-hangzhou",
                    next_token=token,
                    sort_order="Ascending",
                )
            ).body
            found += body.task_executions
            token = body.next_token or None
            if token is None:
                return found

    def children(self, execution_id: str) -> list:
        return self.oos.list_executions(
            oos_models.ListExecutionsRequest(
                parent_execution_id=execution_id, region_id="cn-hangzhou"
            )
        ).body.executions

    def outputs_by_instance(self, execution_id: str) -> dict[str, tuple[str, str]]:
        """instance id → (task status, command output) across the whole tree."""
        found = {}
        for task in self.tasks(execution_id):
            if task.child_execution_id:
                found.update(self.outputs_by_instance(task.child_execution_id))
            elif task.task_action == "ACS::ECS::RunCommand":
                output = json.loads(task.outputs or "{}").get("commandOutput")
                found[task.loop_item] = (task.status, output)
        return found
