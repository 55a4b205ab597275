"""OOS's execution engine: templates rendered and run in cloudsim's own background threads.

What it understands is what the product's scenario uses (``alibaba-api.md`` §16):

- YAML or JSON templates, ``FormatVersion: OOS-2019-06-01``, ``Parameters`` (``Type`` String,
  Number, Boolean, List, Json; ``Default``; ``AllowedValues``), ``RamRole``, ``Tasks`` and
  ``Outputs``;
- ``{{ name }}`` references to parameters, to ``task.output`` values, to
  ``ACS::TaskLoopItem``, ``ACS::RegionId``, ``ACS::ExecutionId`` and ``ACS::AccountId``. A
  whole-string reference keeps the value's type; a reference inside a longer string is
  replaced by its text. A name the scope does not know stays as written, so a parent can pass
  ``{{regionId}}`` through to the child template that defines it;
- ``Fn::MergeMap``, ``Fn::Select``, ``Fn::Join`` and ``Fn::ListJoin``;
- ``Loop`` over ``Items`` with ``RateControl`` ``{Mode: Concurrency, Concurrency, MaxErrors}``:
  at most ``Concurrency`` items run at once and, as OOS does, no new item starts once more
  than ``MaxErrors`` items have failed (items already running finish); ``Loop.Outputs`` with
  ``AggregateType: Fn::ListJoin``;
- the actions ``ACS::Template`` (a child execution, its id in the task execution's
  ``ChildExecutionId``), ``ACS::SelectTargets`` (ECS instances: ``Type`` All, ResourceIds or
  Tags, ``Parameters.Status``) and ``ACS::ECS::RunCommand`` (Cloud Assistant, waiting for the
  invocation's result).

``RamRole`` decides whose authority every call has. ``src|<uid>/<role>`` is a chain: the
service ``oos.aliyuncs.com`` assumes ``src`` in the executing account (which must trust the
service), and that session assumes ``<role>`` in ``<uid>`` (which must trust it, and ``src``
must be allowed ``sts:AssumeRole``). A plain role name stops after the first hop, and an empty
``RamRole`` acts with the caller's own AccessKey. The chain is walked again for every task
execution, through the same STS code and policy evaluation as any SDK call, so a trust
removed mid-run makes the next item fail with STS's own ``NoPermission``. Every call the
engine makes lands in the call log (``via: "oos"``), so ActionTrail shows it.

A cloudsim restart cannot resume a thread: executions still running when the server starts
are marked ``Failed`` with a message saying so, never left ``Running``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from cloudsim import api, cloud_assistant, sts
from cloudsim.calllog import redact
from cloudsim.errors import ApiError, internal_error, new_request_id
from cloudsim.identity import Identity, resolve_in
from cloudsim.store import Store, iso

FORMAT_VERSION = "OOS-2019-06-01"
SERVICE = "oos.aliyuncs.com"
# Where the service's own calls come from, as cloudsim's call log and conditions see them.
SERVICE_SOURCE_IP = "100.100.0.10"
MAX_LOOP_ITEMS = 1000
MAX_NESTING = 3
MAX_CONCURRENCY = 1000
RUNNING, SUCCESS, FAILED, CANCELLED, QUEUED, WAITING = (
    "Running",
    "Success",
    "Failed",
    "Cancelled",
    "Queued",
    "Waiting",
)
FINISHED = (SUCCESS, FAILED, CANCELLED)
TEMPLATE_ACTION = "ACS::Template"
SELECT_TARGETS = "ACS::SelectTargets"
RUN_COMMAND = "ACS::ECS::RunCommand"
ACTIONS = (TEMPLATE_ACTION, SELECT_TARGETS, RUN_COMMAND)
PARAMETER_TYPES = ("String", "Number", "Boolean", "List", "Json")
RESTART_MESSAGE = "cloudsim restarted while this execution was running; it was not resumed."
_REFERENCE = re.compile(r"\{\{\s*([A-Za-z0-9_.:\-]+)\s*\}\}")
_POLL_SECONDS = 0.02


def invalid_template(message: str) -> ApiError:
    # [UNVERIFIED] code: OOS documents the failure, not its code.
    return ApiError("InvalidTemplate", f"The template is not valid: {message}", 400)


def invalid_parameters(message: str) -> ApiError:
    return ApiError("InvalidParameter.Parameters", message, 400)


# --- templates ------------------------------------------------------------------------------------
def parse_template(content: str) -> dict[str, Any]:
    """The template as data, checked for what the engine needs; raises InvalidTemplate."""
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise invalid_template(f"it is neither YAML nor JSON ({type(exc).__name__}).") from None
    if not isinstance(document, dict):
        raise invalid_template("the top level must be a mapping.")
    if str(document.get("FormatVersion")) != FORMAT_VERSION:
        raise invalid_template(f"FormatVersion must be {FORMAT_VERSION}.")
    parameters = document.get("Parameters") or {}
    if not isinstance(parameters, dict):
        raise invalid_template("Parameters must be a mapping.")
    for name, spec in parameters.items():
        if not isinstance(spec, dict) or spec.get("Type", "String") not in PARAMETER_TYPES:
            raise invalid_template(f"parameter {name} needs a Type of {PARAMETER_TYPES}.")
    tasks = document.get("Tasks")
    if not isinstance(tasks, list) or not tasks:
        raise invalid_template("Tasks must be a non-empty list.")
    names = set()
    for task in tasks:
        if not isinstance(task, dict) or not isinstance(task.get("Name"), str):
            raise invalid_template("every task needs a Name.")
        if task["Name"] in names:
            raise invalid_template(f"the task name {task['Name']} is used twice.")
        names.add(task["Name"])
        if task.get("Action") not in ACTIONS:
            raise invalid_template(
                f"task {task['Name']}: cloudsim runs the actions {', '.join(ACTIONS)}."
            )
        loop = task.get("Loop")
        if loop is not None and (not isinstance(loop, dict) or "Items" not in loop):
            raise invalid_template(f"task {task['Name']}: a Loop needs Items.")
    return document


def description_of(document: dict[str, Any]) -> str:
    description = document.get("Description", "")
    if isinstance(description, dict):
        return str(description.get("en") or next(iter(description.values()), ""))
    return str(description or "")


def _coerce(name: str, spec: dict, value: Any) -> Any:
    kind = spec.get("Type", "String")
    if kind == "String" and not isinstance(value, str):
        if isinstance(value, bool | int | float):
            value = str(value)
        else:
            raise invalid_parameters(f"The parameter {name} must be a String.")
    elif kind == "Number":
        if isinstance(value, str):
            try:
                value = int(value) if value.strip().lstrip("-").isdigit() else float(value)
            except ValueError:
                raise invalid_parameters(f"The parameter {name} must be a Number.") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid_parameters(f"The parameter {name} must be a Number.")
    elif kind == "Boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise invalid_parameters(f"The parameter {name} must be a Boolean.")
    elif kind == "List" and not isinstance(value, list):
        raise invalid_parameters(f"The parameter {name} must be a List.")
    allowed = spec.get("AllowedValues")
    if isinstance(allowed, list) and value not in allowed:
        raise invalid_parameters(f"The parameter {name} must be one of {allowed}.")
    return value


def resolve_parameters(document: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The execution's parameters: given values checked against the template, defaults added."""
    declared = document.get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise invalid_parameters(f"The template has no parameter {', '.join(unknown)}.")
    resolved = {}
    for name, spec in declared.items():
        if name in given:
            resolved[name] = _coerce(name, spec, given[name])
        elif "Default" in spec:
            resolved[name] = spec["Default"]
        else:
            raise invalid_parameters(f"The parameter {name} is required.")
    return resolved


# --- rendering ------------------------------------------------------------------------------------
def _lookup(scope: dict[str, Any], name: str) -> tuple[bool, Any]:
    if name in scope:
        return True, scope[name]
    return False, None


def render(value: Any, scope: dict[str, Any], depth: int = 0) -> Any:
    """``value`` with references and functions evaluated in ``scope``."""
    if depth > 8:
        return value
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value.strip())
        if whole:
            found, replacement = _lookup(scope, whole.group(1))
            return render(replacement, scope, depth + 1) if found else value

        def substitute(match: re.Match) -> str:
            found, replacement = _lookup(scope, match.group(1))
            if not found:
                return match.group(0)
            replacement = render(replacement, scope, depth + 1)
            return replacement if isinstance(replacement, str) else json.dumps(replacement)

        return _REFERENCE.sub(substitute, value)
    if isinstance(value, dict):
        if len(value) == 1:
            (key, argument), *_ = value.items()
            if isinstance(key, str) and key.startswith("Fn::"):
                return _function(key, render(argument, scope, depth + 1))
        return {key: render(item, scope, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, scope, depth + 1) for item in value]
    return value


def _function(name: str, argument: Any) -> Any:
    if name == "Fn::MergeMap":
        if not isinstance(argument, list) or not all(isinstance(i, dict) for i in argument):
            raise ValueError("Fn::MergeMap takes a list of maps.")
        merged: dict[str, Any] = {}
        for item in argument:
            merged.update(item)
        return merged
    if name == "Fn::Select":
        if not isinstance(argument, list) or len(argument) != 2:
            raise ValueError("Fn::Select takes [key or index, map or list].")
        key, container = argument
        if isinstance(container, dict) and key in container:
            return container[key]
        if isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container):
            return container[key]
        raise ValueError(f"Fn::Select: {key!r} is not in {type(container).__name__}.")
    if name == "Fn::Join":
        if not isinstance(argument, list) or len(argument) != 2:
            raise ValueError("Fn::Join takes [separator, list].")
        return str(argument[0]).join(str(item) for item in argument[1])
    if name == "Fn::ListJoin":
        if not isinstance(argument, list):
            raise ValueError("Fn::ListJoin takes a list.")
        return argument
    raise ValueError(f"{name} is not a function cloudsim evaluates.")


def select_value(data: Any, selector: str) -> Any:
    """A ``ValueSelector`` path such as ``Instances.Instance[].InstanceId`` (a jq subset)."""
    values = [data]
    flatten = False
    for part in [p for p in selector.strip().lstrip(".").split(".") if p]:
        spread = part.endswith("[]")
        key = part[:-2] if spread else part
        next_values = []
        for value in values:
            item = value.get(key) if isinstance(value, dict) and key else value
            if spread:
                next_values.extend(item or [])
                flatten = True
            else:
                next_values.append(item)
        values = next_values
    return values if flatten else (values[0] if values else None)


# --- persistence ----------------------------------------------------------------------------------
def now_iso() -> str:
    return iso(time.time())


def execution_get(store: Store, execution_id: str) -> dict | None:
    with store.read() as tx:
        rows = tx.document_rows(
            "SELECT data FROM oos_executions WHERE execution_id = ?", (execution_id,)
        )
    return json.loads(rows[0]["data"]) if rows else None


def executions_of(
    store: Store,
    *,
    account_uid: str,
    region_id: str,
    execution_id: str | None = None,
    parent_id: str | None = None,
) -> list[dict]:
    """The account's executions in a region, newest first (one, or one parent's children,
    when asked: a page following a run asks for those many times)."""
    sql = "SELECT data FROM oos_executions WHERE account_uid = ? AND region_id = ?"
    args: list[Any] = [account_uid, region_id]
    if execution_id is not None:
        sql += " AND execution_id = ?"
        args.append(execution_id)
    if parent_id is not None:
        sql += " AND parent_id = ?"
        args.append(parent_id)
    with store.read() as tx:
        rows = tx.document_rows(sql + " ORDER BY seq DESC", tuple(args))
    return [json.loads(row["data"]) for row in rows]


def execution_save(store: Store, execution: dict) -> None:
    execution["UpdateDate"] = now_iso()
    with store.write() as tx:
        if "seq" not in execution:
            execution["seq"] = tx.next_seq()
            tx.document_write(
                "INSERT INTO oos_executions(execution_id, account_uid, region_id, parent_id, "
                "status, seq, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    execution["ExecutionId"],
                    execution["account_uid"],
                    execution["region_id"],
                    execution.get("ParentExecutionId") or None,
                    execution["Status"],
                    execution["seq"],
                    json.dumps(execution),
                ),
            )
        else:
            tx.document_write(
                "UPDATE oos_executions SET status = ?, data = ? WHERE execution_id = ?",
                (execution["Status"], json.dumps(execution), execution["ExecutionId"]),
            )


def task_executions_of(store: Store, execution_id: str) -> list[dict]:
    with store.read() as tx:
        rows = tx.document_rows(
            "SELECT data FROM oos_task_executions WHERE execution_id = ? ORDER BY seq",
            (execution_id,),
        )
    return [json.loads(row["data"]) for row in rows]


def task_execution_save(store: Store, task: dict) -> None:
    task["UpdateDate"] = now_iso()
    with store.write() as tx:
        if "seq" not in task:
            task["seq"] = tx.next_seq()
            tx.document_write(
                "INSERT INTO oos_task_executions(task_execution_id, execution_id, seq, data) "
                "VALUES (?, ?, ?, ?)",
                (task["TaskExecutionId"], task["ExecutionId"], task["seq"], json.dumps(task)),
            )
        else:
            tx.document_write(
                "UPDATE oos_task_executions SET data = ? WHERE task_execution_id = ?",
                (json.dumps(task), task["TaskExecutionId"]),
            )


def new_execution(
    *,
    account_uid: str,
    region_id: str,
    template: dict[str, Any],
    parameters: dict[str, Any],
    executed_by: str,
    caller_key: str,
    mode: str,
    parent_id: str | None,
    description: str = "",
    client_token: str | None = None,
) -> dict:
    document = template["document"]
    ram_role = render(document.get("RamRole", ""), dict(parameters)) or ""
    stamp = now_iso()
    return {
        "ExecutionId": "exec-" + secrets.token_hex(9),
        "TemplateName": template["TemplateName"],
        "TemplateId": template["TemplateId"],
        "TemplateVersion": template["TemplateVersion"],
        "Mode": mode,
        "LoopMode": "Automatic",
        "SafetyCheck": "Skip",
        "Status": RUNNING,
        "StatusMessage": "",
        "StatusReason": "",
        "CreateDate": stamp,
        "StartDate": stamp,
        "EndDate": "",
        "UpdateDate": stamp,
        "ExecutedBy": executed_by,
        "IsParent": any(t.get("Action") == TEMPLATE_ACTION for t in document["Tasks"]),
        "ParentExecutionId": parent_id or "",
        "RamRole": str(ram_role),
        "Parameters": parameters,
        "Outputs": {},
        "Description": description,
        "Category": "Other",
        "ResourceGroupId": "",
        "Tags": {},
        "CurrentTasks": [],
        "account_uid": account_uid,
        "region_id": region_id,
        "caller_key": caller_key,
        "client_token": client_token or "",
        "content": template["Content"],
    }


# --- calls the service makes ------------------------------------------------------------------
def _fault_error(kind: str) -> ApiError:
    if kind in ("throttle", "throttle429"):
        return ApiError("Throttling.User", "Request was denied due to user flow control.", 400)
    return internal_error()


@dataclass
class Engine:
    """Runs executions of one data directory's store."""

    store: Store
    call_log: Any
    faults: Any
    _cancelled: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- calls ---------------------------------------------------------------------------------
    def _record(self, log: dict) -> None:
        if self.call_log is not None:
            self.call_log.record(**log)

    def call(self, identity: Identity, version: str, action: str, params: dict[str, str]) -> dict:
        """One API call made by the service, through the product's own handler: the same
        permission checks, faults and call log as a call over HTTP."""
        registered = api.find_action(version, action)
        if registered is None:
            raise internal_error()
        started = time.monotonic()
        request_id = new_request_id()
        log: dict[str, Any] = {
            "request_id": request_id,
            "account": identity.account_uid,
            "caller_arn": identity.arn,
            "identity": identity.log_fields(),
            "product": registered.product,
            "action": action,
            "version": version,
            "parameters": redact(params),
            "mutating": registered.mutating,
            "source_ip": SERVICE_SOURCE_IP,
            "via": "oos",
        }
        try:
            self._faults_for(action, log)
            ctx = api.ApiContext(
                identity=identity,
                params=params,
                store=self.store,
                request_id=request_id,
                action=action,
                version=version,
                product=registered.product,
                source_ip=SERVICE_SOURCE_IP,
                secure_transport=True,
                call_log=self.call_log,
                faults=self.faults,
            )
            result = registered.handler(ctx)
            log.update(ctx.log_extra)
            log.update(outcome="success", error_code=None, status=200)
            return result
        except ApiError as error:
            log.update(outcome="error", error_code=error.code, status=error.status)
            raise
        finally:
            log.setdefault("outcome", "error")
            log["duration_ms"] = round((time.monotonic() - started) * 1000, 2)
            self._record(log)

    def _faults_for(self, action: str, log: dict[str, Any]) -> None:
        """The latency and faults configured for ``action`` hit the service's calls too."""
        decision = self.faults.decide(action) if self.faults is not None else None
        if decision is not None and decision.latency:
            time.sleep(decision.latency)
        if decision is not None and decision.kind not in (None, "lost"):
            log["fault"] = decision.kind
            raise _fault_error(decision.kind)

    def _identity_of_key(self, access_key_id: str) -> Identity:
        with self.store.read() as tx:
            resolved = resolve_in(tx, access_key_id)
        if resolved is None or resolved.status != "Active":
            raise ApiError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        return resolved.identity

    def _service_session(self, *, account_uid: str, role_name: str, session: str) -> Identity:
        role_arn = f"acs:ram::{account_uid}:role/{role_name}"
        log: dict[str, Any] = {
            "request_id": new_request_id(),
            "account": account_uid,
            "caller_arn": f"service/{SERVICE}",
            "identity": {"kind": "Service", "user_name": SERVICE},
            "product": "sts",
            "action": "AssumeRole",
            "version": sts.VERSION,
            "parameters": {"RoleArn": role_arn, "RoleSessionName": session},
            "mutating": True,
            "source_ip": SERVICE_SOURCE_IP,
            "via": "oos",
            "resource": role_arn,
        }
        try:
            self._faults_for("AssumeRole", log)
            credentials = sts.assume_role_as_service(
                self.store, service=SERVICE, role_arn=role_arn, session_name=session
            )
        except ApiError as error:
            log.update(outcome="error", error_code=error.code, status=error.status)
            self._record(log)
            raise
        log.update(outcome="success", error_code=None, status=200)
        self._record(log)
        return self._identity_of_key(credentials["Credentials"]["AccessKeyId"])

    def identity_for(self, execution: dict) -> Identity:
        """Whose authority the execution's next call has, walking the RamRole chain now."""
        ram_role = execution.get("RamRole") or ""
        account_uid = execution["account_uid"]
        session = "oos-" + execution["ExecutionId"][5:21]
        if not ram_role:
            return self._identity_of_key(execution["caller_key"])
        source, _, target = ram_role.partition("|")
        identity = self._service_session(account_uid=account_uid, role_name=source, session=session)
        if not target:
            return identity
        target_uid, _, target_role = target.partition("/")
        if not target_uid or not target_role:
            raise ApiError("InvalidParameter.RamRole", f"The RamRole {ram_role} is malformed.")
        answer = self.call(
            identity,
            sts.VERSION,
            "AssumeRole",
            {"RoleArn": f"acs:ram::{target_uid}:role/{target_role}", "RoleSessionName": session},
        )
        return self._identity_of_key(answer["Credentials"]["AccessKeyId"])

    # -- lifecycle -----------------------------------------------------------------------------
    def recover(self) -> int:
        """Mark what a restart interrupted as Failed; returns how many executions."""
        with self.store.read() as tx:
            rows = tx.document_rows(
                "SELECT data FROM oos_executions WHERE status IN (?, ?, ?)",
                (RUNNING, QUEUED, WAITING),
            )
        executions = [json.loads(row["data"]) for row in rows]
        for execution in executions:
            for task in task_executions_of(self.store, execution["ExecutionId"]):
                if task["Status"] not in FINISHED:
                    task.update(Status=FAILED, StatusMessage=RESTART_MESSAGE, EndDate=now_iso())
                    task_execution_save(self.store, task)
            execution.update(Status=FAILED, StatusMessage=RESTART_MESSAGE, EndDate=now_iso())
            execution["CurrentTasks"] = []
            execution_save(self.store, execution)
        return len(executions)

    def start(self, execution: dict) -> None:
        execution_save(self.store, execution)
        thread = threading.Thread(
            target=self._run_top, args=(execution,), name=execution["ExecutionId"], daemon=True
        )
        thread.start()

    def cancel(self, execution_id: str) -> None:
        with self._lock:
            self._cancelled.add(execution_id)

    def cancelled(self, execution: dict) -> bool:
        with self._lock:
            return any(
                ident in self._cancelled
                for ident in (execution["ExecutionId"], *execution.get("ancestors", []))
            )

    def _run_top(self, execution: dict) -> None:
        try:
            self.run(execution, depth=1)
        except Exception as exc:  # a bug must not leave the execution Running forever
            execution.update(
                Status=FAILED,
                StatusMessage=f"cloudsim's engine failed: {type(exc).__name__}",
                EndDate=now_iso(),
            )
            execution_save(self.store, execution)
            raise

    def run(self, execution: dict, *, depth: int) -> None:
        """Run one execution to its end in the calling thread."""
        document = parse_template(execution["content"])
        scope: dict[str, Any] = dict(execution["Parameters"])
        scope.update(
            {
                "ACS::RegionId": execution["region_id"],
                "ACS::ExecutionId": execution["ExecutionId"],
                "ACS::AccountId": execution["account_uid"],
            }
        )
        status, message = SUCCESS, ""
        for task in document["Tasks"]:
            if self.cancelled(execution):
                status, message = CANCELLED, "The execution was cancelled."
                break
            execution["CurrentTasks"] = [
                {"TaskName": task["Name"], "TaskAction": task["Action"], "TaskExecutionId": ""}
            ]
            execution_save(self.store, execution)
            task_status, task_message = self._run_task(execution, task, scope, depth=depth)
            if task_status != SUCCESS:
                status, message = task_status, task_message
                break
        outputs = {}
        if status == SUCCESS:
            for name, spec in (document.get("Outputs") or {}).items():
                try:
                    outputs[name] = (
                        render(spec.get("Value"), scope) if isinstance(spec, dict) else None
                    )
                except ValueError as exc:
                    status, message = FAILED, f"Output {name}: {exc}"
        if self.cancelled(execution) and status != SUCCESS:
            status, message = CANCELLED, "The execution was cancelled."
        execution.update(
            Status=status,
            StatusMessage=message,
            Outputs=outputs,
            EndDate=now_iso(),
            CurrentTasks=[],
        )
        execution_save(self.store, execution)

    # -- tasks ---------------------------------------------------------------------------------
    def _run_task(
        self, execution: dict, task: dict, scope: dict[str, Any], *, depth: int
    ) -> tuple[str, str]:
        loop = task.get("Loop")
        name = task["Name"]
        if loop is None:
            status, message, raw = self._run_item(execution, task, scope, None, depth=depth)
            for output, spec in (task.get("Outputs") or {}).items():
                scope[f"{name}.{output}"] = _task_output(spec, raw)
            return status, message
        try:
            items = render(loop["Items"], scope)
            rate = render(loop.get("RateControl") or {}, scope)
            concurrency, max_errors = _rate_control(
                rate, len(items) if isinstance(items, list) else 0
            )
        except ValueError as exc:
            return FAILED, f"Task {name}: {exc}"
        if not isinstance(items, list):
            return FAILED, f"Task {name}: Loop.Items must be a list."
        if len(items) > MAX_LOOP_ITEMS:
            return FAILED, f"Task {name}: a loop holds at most {MAX_LOOP_ITEMS} items."
        results: list[tuple[str, str, Any] | None] = [None] * len(items)
        state = {"next": 0, "failures": 0, "stop": False}
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    if state["stop"] or state["next"] >= len(items) or self.cancelled(execution):
                        return
                    index = state["next"]
                    state["next"] += 1
                item_scope = dict(scope)
                item_scope["ACS::TaskLoopItem"] = items[index]
                outcome = self._run_item(execution, task, item_scope, items[index], depth=depth)
                with lock:
                    results[index] = outcome
                    if outcome[0] == FAILED:
                        state["failures"] += 1
                        if state["failures"] > max_errors:
                            state["stop"] = True

        workers = [
            threading.Thread(target=worker, name=f"{execution['ExecutionId']}:{name}", daemon=True)
            for _ in range(min(concurrency, len(items)))
        ]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        item_outputs = [_item_outputs(task, r[2]) if r else None for r in results]
        for output, spec in (loop.get("Outputs") or {}).items():
            field_name = spec.get("AggregateField") if isinstance(spec, dict) else None
            scope[f"{name}.{output}"] = [
                outputs.get(field_name) for outputs in item_outputs if outputs is not None
            ]
        if self.cancelled(execution):
            return CANCELLED, "The execution was cancelled."
        failed = [r for r in results if r is not None and r[0] == FAILED]
        if len(failed) > max_errors:
            not_started = sum(1 for r in results if r is None)
            first = failed[0][1]
            return FAILED, (
                f"Task {name}: {len(failed)} of {len(items)} loop items failed (MaxErrors "
                f"{max_errors}); {not_started} not started. First failure: {first}"
            )
        return SUCCESS, ""

    def _run_item(
        self, execution: dict, task: dict, scope: dict[str, Any], loop_item: Any, *, depth: int
    ) -> tuple[str, str, Any]:
        record = {
            "TaskExecutionId": "task-exec-" + secrets.token_hex(9),
            "ExecutionId": execution["ExecutionId"],
            "TaskName": task["Name"],
            "TaskAction": task["Action"],
            "Status": RUNNING,
            "StatusMessage": "",
            "CreateDate": now_iso(),
            "StartDate": now_iso(),
            "EndDate": "",
            "UpdateDate": now_iso(),
            "ChildExecutionId": "",
            "LoopItem": "" if loop_item is None else _loop_item_text(loop_item),
            "Outputs": {},
            "Properties": {},
            "TemplateId": execution["TemplateId"],
            "ParentTaskExecutionId": "",
            "ExtraData": {},
            "Loop": {},
            "LoopBatchNumber": 0,
        }
        status, message, raw = FAILED, "", None
        try:
            properties = render(task.get("Properties") or {}, scope)
            record["Properties"] = properties
            task_execution_save(self.store, record)
            if task["Action"] == TEMPLATE_ACTION:
                status, message, raw = self._template(execution, record, properties, depth=depth)
            elif task["Action"] == SELECT_TARGETS:
                status, message, raw = self._select_targets(execution, properties)
            else:
                status, message, raw = self._run_command(execution, properties)
        except ApiError as error:
            status, message = FAILED, f"{error.code}: {error.message}"
        except (ValueError, TypeError, KeyError) as exc:
            status, message = FAILED, f"{type(exc).__name__}: {exc}"
        if status == FAILED and self.cancelled(execution):
            status = CANCELLED
        if task["Action"] == RUN_COMMAND and isinstance(raw, dict):
            # [UNVERIFIED] what OOS keeps in ExtraData: cloudsim keeps the invocation's facts
            # (not its output, which the template's Outputs select).
            record["ExtraData"] = {
                key: raw[key]
                for key in ("invokeId", "instanceId", "regionId", "exitCode", "invocationStatus")
            }
        record.update(
            Status=status,
            StatusMessage=message,
            EndDate=now_iso(),
            Outputs=_item_outputs(task, raw) or {},
        )
        task_execution_save(self.store, record)
        return status, message, raw

    # -- actions -------------------------------------------------------------------------------
    def _template(
        self, execution: dict, record: dict, properties: dict, *, depth: int
    ) -> tuple[str, str, Any]:
        if depth >= MAX_NESTING:
            return FAILED, f"Templates nest at most {MAX_NESTING} levels.", None
        name = properties.get("TemplateName")
        if not isinstance(name, str) or not name:
            return FAILED, "ACS::Template needs Properties.TemplateName.", None
        template = find_template(
            self.store,
            account_uid=execution["account_uid"],
            region_id=execution["region_id"],
            name=name,
            version=properties.get("TemplateVersion"),
        )
        document = template["document"]
        given = properties.get("Parameters") or {}
        if not isinstance(given, dict):
            return FAILED, "Properties.Parameters must be a map.", None
        child = new_execution(
            account_uid=execution["account_uid"],
            region_id=execution["region_id"],
            template=template,
            parameters=resolve_parameters(document, given),
            executed_by=execution["ExecutedBy"],
            caller_key=execution["caller_key"],
            mode=execution["Mode"],
            parent_id=execution["ExecutionId"],
        )
        child["ancestors"] = [execution["ExecutionId"], *execution.get("ancestors", [])]
        execution_save(self.store, child)
        record["ChildExecutionId"] = child["ExecutionId"]
        task_execution_save(self.store, record)
        self.run(child, depth=depth + 1)
        return child["Status"], child["StatusMessage"], child["Outputs"]

    def _select_targets(self, execution: dict, properties: dict) -> tuple[str, str, Any]:
        resource_type = properties.get("ResourceType", "ALIYUN::ECS::Instance")
        if resource_type != "ALIYUN::ECS::Instance":
            return FAILED, f"cloudsim selects ALIYUN::ECS::Instance, not {resource_type}.", None
        filters = properties.get("Filters") or []
        if not isinstance(filters, list) or len(filters) != 1 or not isinstance(filters[0], dict):
            return FAILED, "ACS::SelectTargets takes one filter (the targets parameter).", None
        target = filters[0]
        kind = target.get("Type", "All")
        conditions = target.get("Parameters") or {}
        region_id = str(
            conditions.get("RegionId") or target.get("RegionId") or properties.get("RegionId")
        )
        identity = self.identity_for(execution)
        params = {"RegionId": region_id, "PageSize": "100"}
        if conditions.get("Status"):
            params["Status"] = str(conditions["Status"])
        found: list[dict] = []
        page = 1
        while True:
            answer = self.call(
                identity, "2014-05-26", "DescribeInstances", {**params, "PageNumber": str(page)}
            )
            batch = answer["Instances"]["Instance"]
            found += batch
            if len(found) >= answer["TotalCount"] or not batch:
                break
            page += 1
        if kind == "ResourceIds":
            wanted = target.get("ResourceIds") or []
            found = [i for i in found if i["InstanceId"] in wanted]
        elif kind == "Tags":
            tags = {(t.get("Key"), t.get("Value")) for t in target.get("Tags") or []}
            found = [
                i for i in found if tags <= {(t["TagKey"], t["TagValue"]) for t in i["Tags"]["Tag"]}
            ]
        elif kind != "All":
            return FAILED, f"Targets of Type {kind} are not supported in cloudsim.", None
        return SUCCESS, "", {"Instances": {"Instance": found}}

    def _run_command(self, execution: dict, properties: dict) -> tuple[str, str, Any]:
        region_id = str(properties.get("regionId") or execution["region_id"])
        instance_id = str(properties.get("instanceId") or "")
        identity = self.identity_for(execution)
        params = {
            "RegionId": region_id,
            "Type": str(properties.get("commandType") or "RunShellScript"),
            "CommandContent": str(properties.get("commandContent") or ""),
            "InstanceId.1": instance_id,
            "Timeout": str(properties.get("timeout") or 600),
        }
        for key, name in (("workingDir", "WorkingDir"), ("username", "Username")):
            if properties.get(key):
                params[name] = str(properties[key])
        answer = self.call(identity, "2014-05-26", "RunCommand", params)
        invoke_id = answer["InvokeId"]
        while True:
            if self.cancelled(execution):
                invocation = cloud_assistant.find_invocation(
                    self.store,
                    account_uid=identity.account_uid,
                    region_id=region_id,
                    invoke_id=invoke_id,
                )
                cloud_assistant.stop_invocation(self.store, invocation)
                return CANCELLED, "The execution was cancelled.", None
            results = self.call(
                identity,
                "2014-05-26",
                "DescribeInvocationResults",
                {"RegionId": region_id, "InvokeId": invoke_id, "InstanceId": instance_id},
            )["Invocation"]["InvocationResults"]["InvocationResult"]
            result = results[0]
            if result["InvokeRecordStatus"] != "Running":
                break
            time.sleep(_POLL_SECONDS)
        output = base64.b64decode(result["Output"]).decode(errors="replace")
        raw = {
            "invocationOutput": output,
            "exitCode": result.get("ExitCode"),
            "invocationStatus": result["InvocationStatus"],
            "invokeId": invoke_id,
            "instanceId": instance_id,
            "regionId": region_id,
            "errorCode": result.get("ErrorCode", ""),
        }
        if result["InvocationStatus"] == "Success":
            return SUCCESS, "", raw
        detail = result.get("ErrorInfo") or f"exit code {result.get('ExitCode')}"
        code = result.get("ErrorCode")
        return (
            FAILED,
            (
                f"Command on {instance_id} ended {result['InvocationStatus']}"
                + (f" ({code})" if code else "")
                + f": {detail}"
            ),
            raw,
        )


def _loop_item_text(item: Any) -> str:
    return item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))


def _task_output(spec: Any, raw: Any) -> Any:
    if not isinstance(spec, dict) or raw is None:
        return None
    selector = spec.get("ValueSelector")
    return select_value(raw, selector) if isinstance(selector, str) else None


def _item_outputs(task: dict, raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if task["Action"] == TEMPLATE_ACTION and not task.get("Outputs"):
        return raw if isinstance(raw, dict) else None
    return {name: _task_output(spec, raw) for name, spec in (task.get("Outputs") or {}).items()}


def _rate_control(rate: Any, total: int) -> tuple[int, int]:
    """(concurrency, max errors) from ``{Mode, Concurrency, MaxErrors}``; a value may be a
    percentage of the items, as OOS allows (``"10%"``)."""
    if not isinstance(rate, dict):
        raise ValueError("RateControl must be a map.")
    mode = rate.get("Mode", "Concurrency")
    if mode != "Concurrency":
        raise ValueError(f"RateControl Mode {mode} is not supported in cloudsim.")

    def number(value: Any, default: int, low: int) -> int:
        if value is None:
            return default
        if isinstance(value, str) and value.endswith("%"):
            share = float(value[:-1])
            return max(low, int(total * share / 100))
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"{value!r} is not a whole number.")
        return int(value)

    concurrency = number(rate.get("Concurrency"), 1, 1)
    max_errors = number(rate.get("MaxErrors"), 0, 0)
    if not 1 <= concurrency <= MAX_CONCURRENCY or max_errors < 0:
        raise ValueError("Concurrency must be 1 or more and MaxErrors 0 or more.")
    return concurrency, max_errors


# --- templates in the store -------------------------------------------------------------------
PublicTemplates = dict[str, dict[str, Any]]
_PUBLIC: PublicTemplates = {}


def register_public_template(name: str, content: str, *, created: str) -> None:
    document = parse_template(content)
    _PUBLIC[name] = {
        "TemplateName": name,
        "TemplateId": "t-" + hashlib.sha256(name.encode()).hexdigest()[:16],
        "TemplateVersion": "v1",
        "Content": content,
        "document": document,
        "Description": description_of(document),
        "ShareType": "Public",
        "CreatedBy": "ACS",
        "UpdatedBy": "ACS",
        "CreatedDate": created,
        "UpdatedDate": created,
        "TemplateFormat": "YAML",
        "TemplateType": "Automation",
        "Category": "ECS",
    }


def public_templates() -> PublicTemplates:
    return _PUBLIC


def find_template(
    store: Store, *, account_uid: str, region_id: str, name: str, version: Any = None
) -> dict[str, Any]:
    """A public template or the account's own (the given version, else the latest)."""
    if name in _PUBLIC:
        return _PUBLIC[name]
    with store.read() as tx:
        rows = tx.document_rows(
            "SELECT data FROM oos_templates WHERE account_uid = ? AND region_id = ? AND name = ?",
            (account_uid, region_id, name),
        )
    if not rows:
        raise ApiError("EntityNotExists.Template", f"The template {name} does not exist.", 404)
    stored = json.loads(rows[0]["data"])
    if version:
        for old in stored["versions"]:
            if old["TemplateVersion"] == version:
                stored = {**stored, **old}
                break
        else:
            raise ApiError(
                "EntityNotExists.TemplateVersion",
                f"The template {name} has no version {version}.",
                404,
            )
    stored["document"] = parse_template(stored["Content"])
    return stored
