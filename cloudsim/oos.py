"""OOS (CloudOps Orchestration Service) 2019-06-01: templates and executions.

``CreateTemplate``, ``UpdateTemplate``, ``GetTemplate``, ``ListTemplates``, ``StartExecution``,
``ListExecutions``, ``ListTaskExecutions`` and ``CancelExecution`` with the official SDK's
field names and shapes; the engine that runs executions is ``cloudsim.oos_engine``. Templates
and executions are regional (``RegionId``, default ``cn-hangzhou``) and belong to the caller's
account; the public template ``ACS-ECS-BulkyRunCommand`` is visible to everyone.

Permissions are checked like any product's: ``oos:<Action>`` on
``acs:oos:<region>:<uid>:template/<name>`` or ``…:execution/<id>``, and ``StartExecution`` with a
``RamRole`` also needs ``ram:PassRole`` on the executing account's source role with
``acs:Service`` = ``oos.aliyuncs.com`` (what ``AliyunOOSFullAccess`` grants).

[UNVERIFIED] choices: the codes ``InvalidTemplate``, ``InvalidParameter.Parameters`` and
``EntityAlreadyExists.Template`` (409); ``ListExecutions`` leaves child executions out unless
``ParentExecutionId``, ``ExecutionId`` or ``IncludeChildExecution`` asks for them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from typing import Any

from cloudsim import api, authz, policy
from cloudsim.api import ApiContext, api_action
from cloudsim.errors import ApiError, invalid_parameter
from cloudsim.oos_engine import (
    FINISHED,
    Engine,
    description_of,
    execution_get,
    executions_of,
    find_template,
    new_execution,
    now_iso,
    parse_template,
    public_templates,
    register_public_template,
    resolve_parameters,
    task_executions_of,
)
from cloudsim.store import Store

VERSION = "2019-06-01"
DEFAULT_REGION = "cn-hangzhou"
TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
RESERVED_PREFIXES = ("ACS", "ALIYUN", "ALIBABA")
MAX_CONTENT_BYTES = 64 * 1024
DEFAULT_MAX_RESULTS = 50
MAX_RESULTS = 100

# The public template the cross-account scenario runs, as OOS publishes it (trimmed to the
# parameters cloudsim honours; the others are accepted and passed on).
BULKY_RUN_COMMAND = """\
FormatVersion: OOS-2019-06-01
Description:
  en: Bulky run command on ECS instances
  zh-cn: 批量在多台ECS实例上运行云助手命令
  name-en: ACS-ECS-BulkyRunCommand
  name-zh-cn: 批量在实例中运行命令
Parameters:
  regionId:
    Type: String
    Label:
      en: RegionId
    AssociationProperty: RegionId
    Default: '{{ ACS::RegionId }}'
  targets:
    Type: Json
    Label:
      en: TargetInstance
    AssociationProperty: Targets
    AssociationPropertyMetadata:
      ResourceType: ALIYUN::ECS::Instance
      RegionId: regionId
  commandType:
    Label:
      en: CommandType
    Type: String
    AllowedValues:
      - RunShellScript
      - RunBatScript
      - RunPowerShellScript
    Default: RunShellScript
  commandContent:
    Label:
      en: CommandContent
    Type: String
    MaxLength: 16384
    AssociationProperty: ALIYUN::OOS::Command::CommandContent
  workingDir:
    Description:
      en: 'The directory where the created command runs on the ECS instances.'
    Label:
      en: WorkingDir
    Type: String
    Default: ''
  timeout:
    Label:
      en: Timeout
    Type: Number
    Default: 600
  enableParameter:
    Label:
      en: EnableParameter
    Type: Boolean
    Default: false
  username:
    Label:
      en: Username
    Type: String
    Default: ''
  windowsPasswordName:
    Label:
      en: WindowsPasswordName
    Type: String
    Default: ''
  rateControl:
    Label:
      en: RateControl
    Type: Json
    AssociationProperty: RateControl
    Default:
      Mode: Concurrency
      MaxErrors: 0
      Concurrency: 10
  OOSAssumeRole:
    Label:
      en: OOSAssumeRole
    Type: String
    Default: OOSServiceRole
RamRole: '{{ OOSAssumeRole }}'
Tasks:
  - Name: getInstance
    Description:
      en: Views the ECS instances.
    Action: ACS::SelectTargets
    Properties:
      ResourceType: ALIYUN::ECS::Instance
      RegionId: '{{ regionId }}'
      Filters:
        - '{{ targets }}'
    Outputs:
      instanceIds:
        Type: List
        ValueSelector: Instances.Instance[].InstanceId
  - Name: runCommand
    Action: ACS::ECS::RunCommand
    Description:
      en: Execute cloud assistant command.
    Properties:
      regionId: '{{ regionId }}'
      commandContent: '{{ commandContent }}'
      instanceId: '{{ ACS::TaskLoopItem }}'
      commandType: '{{ commandType }}'
      workingDir: '{{ workingDir }}'
      timeout: '{{ timeout }}'
      enableParameter: '{{ enableParameter }}'
      username: '{{ username }}'
      windowsPasswordName: '{{ windowsPasswordName }}'
    Loop:
      RateControl: '{{ rateControl }}'
      Items: '{{ getInstance.instanceIds }}'
      Outputs:
        commandOutputs:
          AggregateType: Fn::ListJoin
          AggregateField: commandOutput
    Outputs:
      commandOutput:
        Type: String
        ValueSelector: invocationOutput
Outputs:
  commandOutputs:
    Type: List
    Value: '{{ runCommand.commandOutputs }}'
"""
register_public_template(
    "ACS-ECS-BulkyRunCommand", BULKY_RUN_COMMAND, created="2021-03-01T08:00:00Z"
)

# --- the engine of each data directory -------------------------------------------------------
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(store: Store, call_log: Any, faults: Any) -> Engine:
    with _ENGINES_LOCK:
        engine = _ENGINES.get(store.path)
        if engine is None:
            engine = _ENGINES[store.path] = Engine(store=store, call_log=call_log, faults=faults)
        return engine


@api.on_startup
def settle_interrupted_executions(server: Any) -> None:
    """Executions a restart interrupted end Failed (a thread cannot be resumed)."""
    engine_for(server.store, server.call_log, server.faults).recover()


# --- shapes --------------------------------------------------------------------------------------
def _region(ctx: ApiContext) -> str:
    return ctx.param("RegionId") or DEFAULT_REGION


def _template_arn(ctx: ApiContext, name: str) -> str:
    return f"acs:oos:{_region(ctx)}:{ctx.identity.account_uid}:template/{name}"


def _execution_arn(ctx: ApiContext, execution_id: str) -> str:
    return f"acs:oos:{_region(ctx)}:{ctx.identity.account_uid}:execution/{execution_id}"


def _template_body(template: dict, *, with_content: bool = False) -> dict:
    body = {
        "TemplateName": template["TemplateName"],
        "TemplateId": template["TemplateId"],
        "TemplateVersion": template["TemplateVersion"],
        "Description": template.get("Description", ""),
        "ShareType": template["ShareType"],
        "CreatedBy": template["CreatedBy"],
        "UpdatedBy": template["UpdatedBy"],
        "CreatedDate": template["CreatedDate"],
        "UpdatedDate": template["UpdatedDate"],
        "TemplateFormat": template["TemplateFormat"],
        "TemplateType": template.get("TemplateType", "Automation"),
        "Hash": hashlib.sha256(template["Content"].encode()).hexdigest(),
        "HasTrigger": False,
        "ResourceGroupId": "",
        "Tags": {},
        "Category": template.get("Category", "Other"),
        "VersionName": template.get("VersionName", ""),
    }
    if with_content:
        body["Content"] = template["Content"]
    return body


def _counters(execution_id: str, store: Store) -> dict[str, int]:
    counters = dict.fromkeys(("Total", "Success", "Failed", "Running", "Cancelled"), 0)
    for task in task_executions_of(store, execution_id):
        counters["Total"] += 1
        counters[task["Status"]] = counters.get(task["Status"], 0) + 1
    return counters


def _execution_body(store: Store, execution: dict, *, strings: bool) -> dict:
    """StartExecution's model has Parameters as a JSON string, ListExecutions' as an object;
    both carry Outputs as a string."""
    body = {
        key: execution[key]
        for key in (
            "ExecutionId",
            "TemplateName",
            "TemplateId",
            "TemplateVersion",
            "Mode",
            "LoopMode",
            "SafetyCheck",
            "Status",
            "StatusMessage",
            "StatusReason",
            "CreateDate",
            "StartDate",
            "EndDate",
            "UpdateDate",
            "ExecutedBy",
            "IsParent",
            "ParentExecutionId",
            "RamRole",
            "Description",
            "Category",
            "ResourceGroupId",
            "Tags",
            "CurrentTasks",
        )
    }
    body["Outputs"] = json.dumps(execution["Outputs"])
    body["Parameters"] = json.dumps(execution["Parameters"]) if strings else execution["Parameters"]
    body["Counters"] = _counters(execution["ExecutionId"], store)
    body["AccountId"] = execution["account_uid"]
    return body


def _task_body(task: dict) -> dict:
    body = {key: value for key, value in task.items() if key != "seq"}
    body["Outputs"] = json.dumps(task["Outputs"])
    body["Properties"] = json.dumps(task["Properties"])
    return body


def _paged(ctx: ApiContext, items: list[dict], default: int = DEFAULT_MAX_RESULTS) -> tuple:
    limit = ctx.int_param("MaxResults", default, minimum=1, maximum=MAX_RESULTS)
    assert limit is not None
    token = ctx.param("NextToken")
    offset = 0
    if token:
        try:
            label, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
            offset = int(number)
            if label != "oos" or offset < 0:
                raise ValueError(label)
        except (ValueError, UnicodeError):
            raise invalid_parameter(
                "NextToken", "The token is not one this API returned."
            ) from None
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    next_token = base64.urlsafe_b64encode(f"oos:{offset + limit}".encode()).decode() if more else ""
    return page, next_token, limit


# --- templates -----------------------------------------------------------------------------------
def _checked_content(ctx: ApiContext) -> tuple[str, dict]:
    content = ctx.require("Content")
    if len(content.encode()) > MAX_CONTENT_BYTES:
        raise invalid_parameter("Content", f"A template holds at most {MAX_CONTENT_BYTES} bytes.")
    return content, parse_template(content)


def _format_of(content: str) -> str:
    return "JSON" if content.lstrip().startswith("{") else "YAML"


def _stored_template(ctx: ApiContext, name: str) -> dict | None:
    with ctx.store.read() as tx:
        rows = tx.document_rows(
            "SELECT data FROM oos_templates WHERE account_uid = ? AND region_id = ? AND name = ?",
            (ctx.identity.account_uid, _region(ctx), name),
        )
    return json.loads(rows[0]["data"]) if rows else None


@api_action(version=VERSION, name="CreateTemplate", mutating=True)
def create_template(ctx: ApiContext) -> dict:
    name = ctx.require("TemplateName")
    if not TEMPLATE_NAME.match(name) or name.upper().startswith(RESERVED_PREFIXES):
        raise invalid_parameter(
            "TemplateName",
            "Use 1-200 letters, digits, '.', '_' and '-', not starting with ACS or ALIYUN.",
        )
    ctx.authorize("oos:CreateTemplate", _template_arn(ctx, name))
    content, document = _checked_content(ctx)
    stamp = now_iso()
    template = {
        "TemplateName": name,
        "TemplateId": "t-" + hashlib.sha256(f"{ctx.request_id}".encode()).hexdigest()[:16],
        "TemplateVersion": "v1",
        "VersionName": ctx.param("VersionName") or "",
        "Content": content,
        "Description": description_of(document),
        "ShareType": "Private",
        "CreatedBy": ctx.identity.account_uid,
        "UpdatedBy": ctx.identity.account_uid,
        "CreatedDate": stamp,
        "UpdatedDate": stamp,
        "TemplateFormat": _format_of(content),
        "TemplateType": "Automation",
    }
    template["versions"] = [
        {k: template[k] for k in ("TemplateVersion", "Content", "UpdatedDate", "VersionName")}
    ]
    with ctx.store.write() as tx:
        exists = tx.document_rows(
            "SELECT 1 FROM oos_templates WHERE account_uid = ? AND region_id = ? AND name = ?",
            (ctx.identity.account_uid, _region(ctx), name),
        )
        if exists:
            raise ApiError(
                "EntityAlreadyExists.Template", f"The template {name} already exists.", 409
            )
        tx.document_write(
            "INSERT INTO oos_templates(account_uid, region_id, name, seq, data) "
            "VALUES (?, ?, ?, ?, ?)",
            (ctx.identity.account_uid, _region(ctx), name, tx.next_seq(), json.dumps(template)),
        )
    ctx.log_extra["resource"] = _template_arn(ctx, name)
    return {"Template": _template_body(template)}


@api_action(version=VERSION, name="UpdateTemplate", mutating=True)
def update_template(ctx: ApiContext) -> dict:
    name = ctx.require("TemplateName")
    ctx.authorize("oos:UpdateTemplate", _template_arn(ctx, name))
    content, document = _checked_content(ctx)
    with ctx.store.write() as tx:
        rows = tx.document_rows(
            "SELECT data FROM oos_templates WHERE account_uid = ? AND region_id = ? AND name = ?",
            (ctx.identity.account_uid, _region(ctx), name),
        )
        if not rows:
            raise ApiError("EntityNotExists.Template", f"The template {name} does not exist.", 404)
        template = json.loads(rows[0]["data"])
        template.update(
            TemplateVersion=f"v{len(template['versions']) + 1}",
            VersionName=ctx.param("VersionName") or "",
            Content=content,
            Description=description_of(document),
            UpdatedBy=ctx.identity.account_uid,
            UpdatedDate=now_iso(),
            TemplateFormat=_format_of(content),
        )
        template["versions"].append(
            {k: template[k] for k in ("TemplateVersion", "Content", "UpdatedDate", "VersionName")}
        )
        tx.document_write(
            "UPDATE oos_templates SET data = ? WHERE account_uid = ? AND region_id = ? "
            "AND name = ?",
            (json.dumps(template), ctx.identity.account_uid, _region(ctx), name),
        )
    ctx.log_extra["resource"] = _template_arn(ctx, name)
    return {"Template": _template_body(template)}


@api_action(version=VERSION, name="GetTemplate")
def get_template(ctx: ApiContext) -> dict:
    name = ctx.require("TemplateName")
    ctx.authorize("oos:GetTemplate", _template_arn(ctx, name))
    template = find_template(
        ctx.store,
        account_uid=ctx.identity.account_uid,
        region_id=_region(ctx),
        name=name,
        version=ctx.param("TemplateVersion"),
    )
    return {"Content": template["Content"], "Template": _template_body(template)}


@api_action(version=VERSION, name="ListTemplates")
def list_templates(ctx: ApiContext) -> dict:
    ctx.authorize("oos:ListTemplates", _template_arn(ctx, "*"))
    share_type = ctx.param("ShareType")
    if share_type not in (None, "Public", "Private"):
        raise invalid_parameter("ShareType", "Valid values: Public, Private.")
    with ctx.store.read() as tx:
        rows = tx.document_rows(
            "SELECT data FROM oos_templates WHERE account_uid = ? AND region_id = ? ORDER BY name",
            (ctx.identity.account_uid, _region(ctx)),
        )
    templates: list[dict] = []
    if share_type in (None, "Private"):
        templates += [json.loads(row["data"]) for row in rows]
    if share_type in (None, "Public"):
        templates += sorted(public_templates().values(), key=lambda t: t["TemplateName"])
    wanted = ctx.param("TemplateName")
    if wanted:
        templates = [t for t in templates if wanted.lower() in t["TemplateName"].lower()]
    page, token, limit = _paged(ctx, templates, default=20)
    return {
        "Templates": [{**_template_body(t), "TotalExecutionCount": 0} for t in page],
        "NextToken": token,
        "MaxResults": limit,
    }


# --- executions ----------------------------------------------------------------------------------
def _check_pass_role(ctx: ApiContext, ram_role: str) -> None:
    """Handing OOS a role needs ram:PassRole on it (asked with acs:Service = OOS)."""
    source = ram_role.partition("|")[0]
    uid = ctx.identity.account_uid
    resource = f"acs:ram::{uid}:role/{source}"
    if ctx.identity.is_root:
        return
    documents = [
        authz.parsed_document(text) for text in authz._identity_documents(ctx.store, ctx.identity)
    ]
    layers = [documents]
    if ctx.identity.session_policy:
        layers.append([authz.parsed_document(ctx.identity.session_policy)])
    context = authz.condition_context(
        identity=ctx.identity,
        source_ip=ctx.source_ip,
        secure_transport=ctx.secure_transport,
        extra={"acs:Service": "oos.aliyuncs.com"},
    )
    decision = policy.evaluate_layers(
        layers, action="ram:PassRole", resource=resource, context=context
    )
    if decision is not policy.Decision.ALLOW:
        raise ApiError(
            "NoPermission",
            f"You are not authorized to do this action. Resource: {resource} Action: ram:PassRole",
            403,
            access_denied_detail=authz.access_denied_detail(
                identity=ctx.identity,
                action="ram:PassRole",
                resource=resource,
                policy_type=authz.IDENTITY_POLICY,
                explicit=decision is policy.Decision.EXPLICIT_DENY,
            ),
        )


def _own_execution(ctx: ApiContext, execution_id: str) -> dict:
    execution = execution_get(ctx.store, execution_id)
    if (
        execution is None
        or execution["account_uid"] != ctx.identity.account_uid
        or execution["region_id"] != _region(ctx)
    ):
        raise ApiError(
            "EntityNotExists.Execution", f"The execution {execution_id} does not exist.", 404
        )
    return execution


@api_action(version=VERSION, name="StartExecution", mutating=True)
def start_execution(ctx: ApiContext) -> dict:
    region = _region(ctx)
    uid = ctx.identity.account_uid
    name, content = ctx.param("TemplateName"), ctx.param("TemplateContent")
    if bool(name) == bool(content):
        raise invalid_parameter("TemplateName", "Give either TemplateName or TemplateContent.")
    mode = ctx.param("Mode") or "Automatic"
    if mode not in ("Automatic", "Debug"):
        raise invalid_parameter("Mode", "Valid values: Automatic, Debug.")
    ctx.authorize("oos:StartExecution", f"acs:oos:{region}:{uid}:execution/*")
    if name:
        ctx.authorize("oos:GetTemplate", _template_arn(ctx, name))
        template = find_template(
            ctx.store,
            account_uid=uid,
            region_id=region,
            name=name,
            version=ctx.param("TemplateVersion"),
        )
    else:
        assert content is not None
        template = {
            "TemplateName": "",
            "TemplateId": "",
            "TemplateVersion": "",
            "Content": content,
            "document": parse_template(content),
        }
    raw = ctx.param("Parameters") or "{}"
    try:
        given = json.loads(raw)
    except ValueError:
        given = None
    if not isinstance(given, dict):
        raise invalid_parameter("Parameters", "Parameters must be a JSON object.")
    parameters = resolve_parameters(template["document"], given)
    token = ctx.param("ClientToken")
    if token:
        for existing in executions_of(ctx.store, account_uid=uid, region_id=region):
            if existing["client_token"] == token and not existing["ParentExecutionId"]:
                return {"Execution": _execution_body(ctx.store, existing, strings=True)}
    engine = engine_for(ctx.store, ctx.call_log, ctx.faults)
    execution = new_execution(
        account_uid=uid,
        region_id=region,
        template=template,
        parameters=parameters,
        executed_by=ctx.identity.arn,
        caller_key=ctx.identity.access_key_id,
        mode=mode,
        parent_id=None,
        description=ctx.param("Description") or "",
        client_token=token,
    )
    if execution["RamRole"]:
        _check_pass_role(ctx, execution["RamRole"])
    engine.start(execution)
    ctx.log_extra["resource"] = _execution_arn(ctx, execution["ExecutionId"])
    return {"Execution": _execution_body(ctx.store, execution, strings=True)}


@api_action(version=VERSION, name="ListExecutions")
def list_executions(ctx: ApiContext) -> dict:
    ctx.authorize("oos:ListExecutions", _execution_arn(ctx, "*"))
    execution_id, parent_id = ctx.param("ExecutionId"), ctx.param("ParentExecutionId")
    include_children = bool(ctx.bool_param("IncludeChildExecution", False))
    status, template_name = ctx.param("Status"), ctx.param("TemplateName")
    found = []
    for execution in executions_of(
        ctx.store,
        account_uid=ctx.identity.account_uid,
        region_id=_region(ctx),
        execution_id=execution_id,
        parent_id=parent_id,
    ):
        if execution_id is not None and execution["ExecutionId"] != execution_id:
            continue
        if parent_id is not None and execution["ParentExecutionId"] != parent_id:
            continue
        if (
            execution_id is None
            and parent_id is None
            and not include_children
            and execution["ParentExecutionId"]
        ):
            continue
        if status is not None and execution["Status"] != status:
            continue
        if template_name is not None and execution["TemplateName"] != template_name:
            continue
        found.append(execution)
    if (ctx.param("SortOrder") or "Descending") == "Ascending":
        found.reverse()
    page, token, limit = _paged(ctx, found)
    return {
        "Executions": [_execution_body(ctx.store, e, strings=False) for e in page],
        "NextToken": token,
        "MaxResults": limit,
    }


@api_action(version=VERSION, name="ListTaskExecutions")
def list_task_executions(ctx: ApiContext) -> dict:
    ctx.authorize("oos:ListTaskExecutions", _execution_arn(ctx, "*"))
    execution_id = ctx.require("ExecutionId")
    _own_execution(ctx, execution_id)
    tasks = task_executions_of(ctx.store, execution_id)
    for key in ("TaskName", "Status", "TaskAction", "TaskExecutionId"):
        wanted = ctx.param(key)
        if wanted is not None:
            tasks = [t for t in tasks if t[key] == wanted]
    if (ctx.param("SortOrder") or "Descending") == "Descending":
        tasks.reverse()
    page, token, limit = _paged(ctx, tasks)
    return {
        "TaskExecutions": [_task_body(t) for t in page],
        "NextToken": token,
        "MaxResults": limit,
    }


@api_action(version=VERSION, name="CancelExecution", mutating=True)
def cancel_execution(ctx: ApiContext) -> dict:
    execution_id = ctx.require("ExecutionId")
    ctx.authorize("oos:CancelExecution", _execution_arn(ctx, execution_id))
    execution = _own_execution(ctx, execution_id)
    ctx.log_extra["resource"] = _execution_arn(ctx, execution_id)
    if execution["Status"] in FINISHED:
        return {}
    engine_for(ctx.store, ctx.call_log, ctx.faults).cancel(execution_id)
    # The engine settles the status as its threads notice; a caller reading right away
    # already sees the request.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        current = execution_get(ctx.store, execution_id)
        if current is None or current["Status"] in FINISHED:
            break
        time.sleep(0.02)
    return {}
