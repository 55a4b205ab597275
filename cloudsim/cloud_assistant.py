"""ECS 2014-05-26 Cloud Assistant: ``RunCommand``, ``DescribeInvocations``,
``DescribeInvocationResults``.

Commands are **never executed on this host**. A script is read line by line and a tiny, safe
set of commands is simulated:

- ``echo ARGS`` prints its arguments (shell quoting is honoured, ``-n`` drops the newline);
- ``hostname`` prints the instance's host name; ``date`` prints the simulated time;
- ``sleep N`` lets ``N`` seconds of *simulated* time pass (``CLOUDSIM_TIME_SCALE`` real seconds
  per simulated second, default 0.01, so ``sleep 100`` takes one real second);
- ``exit N`` ends the script with exit code ``N``.

Anything else (pipes, variables, redirections, other programs) ends the script with exit code
127 and a "not supported in cloudsim" line in the output. Commands may be separated by new
lines, ``;`` or ``&&`` (which stops after a non-zero exit).

An instance can be marked to fail every command (``PUT /_sim/ecs/command-failure`` or the
instance attribute ``CommandFailure`` in a seed): its invocations end ``Failed`` with
``ErrorCode`` ``ClientNotResponse``, as when the agent does not answer, so rate controls with
``MaxErrors`` can be exercised.

The outcome of a run is decided when ``RunCommand`` is called and revealed when its simulated
duration has passed: reads before then see ``Running`` with no output. Outputs are base64, as
the real API answers. [UNVERIFIED] choices: the error code for a stopped instance
(``InvalidInstance.NotRunning``), the agent failure's ``ClientNotResponse``, and the
``ExecutionTimeout`` error code of a script that outlives its ``Timeout``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudsim import ecs
from cloudsim.api import ApiContext, PageRequest, PageResponse, api_action, page_route
from cloudsim.errors import ApiError, invalid_parameter, missing_parameter
from cloudsim.operator import _json_body, _require_operator
from cloudsim.store import Store

VERSION = ecs.VERSION
COMMAND_TYPES = ("RunShellScript", "RunBatScript", "RunPowerShellScript")
DEFAULT_TIMEOUT = 60
MIN_TIMEOUT, MAX_TIMEOUT = 10, 86_400
MAX_CONTENT_BYTES = 18 * 1024  # RunCommand's documented limit for CommandContent
MAX_INSTANCES = 100
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 50
FAILURE_ATTRIBUTE = "CommandFailure"
SUPPORTED = ("echo", "hostname", "date", "sleep", "exit")


def time_scale() -> float:
    """Real seconds per simulated second (read per call so tests and demos can tune it)."""
    try:
        return max(0.0, float(os.environ.get("CLOUDSIM_TIME_SCALE", "0.01")))
    except ValueError:
        return 0.01


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the simulated shell ---------------------------------------------------------------------
@dataclass(frozen=True)
class ScriptOutcome:
    output: str
    exit_code: int
    seconds: float  # simulated
    timed_out: bool


def _split_commands(line: str) -> list[tuple[str, list[str]]]:
    """(separator before, words) per command of one line; raises ValueError on what the
    simulation does not understand (unbalanced quotes, pipes, redirections)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[tuple[str, list[str]]] = []
    separator, words = ";", []
    for token in lexer:
        if token in (";", "&&"):
            if words:
                commands.append((separator, words))
            separator, words = token, []
        elif set(token) <= set(";&|<>"):
            raise ValueError(token)
        else:
            words.append(token)
    if words:
        commands.append((separator, words))
    return commands


def simulate(content: str, *, hostname: str, timeout: int, started: float) -> ScriptOutcome:
    """Run ``content`` in the simulation: nothing here touches the host."""
    output: list[str] = []
    seconds = 0.0
    exit_code = 0
    for line in content.splitlines():
        try:
            commands = _split_commands(line)
        except ValueError:
            commands = [(";", ["<shell syntax>"])]
        for separator, words in commands:
            if separator == "&&" and exit_code != 0:
                break
            name, args = words[0], words[1:]
            if any("$" in word or "`" in word for word in words):
                name = "<shell expansion>"
            if name == "echo":
                newline = "\n"
                if args[:1] == ["-n"]:
                    args, newline = args[1:], ""
                output.append(" ".join(args) + newline)
                exit_code = 0
            elif name == "hostname" and not args:
                output.append(hostname + "\n")
                exit_code = 0
            elif name == "date" and not args:
                moment = datetime.fromtimestamp(started + seconds, UTC)
                output.append(moment.strftime("%a %b %d %H:%M:%S UTC %Y") + "\n")
                exit_code = 0
            elif name == "sleep" and len(args) == 1 and _is_number(args[0]):
                seconds += float(args[0])
                exit_code = 0
                if seconds > timeout:
                    return ScriptOutcome("".join(output), -1, float(timeout), True)
            elif name == "exit" and len(args) <= 1 and all(a.lstrip("-").isdigit() for a in args):
                return ScriptOutcome(
                    "".join(output), int(args[0]) % 256 if args else 0, seconds, False
                )
            else:
                output.append(
                    f"cloudsim: {name}: not supported in cloudsim (only "
                    f"{', '.join(SUPPORTED)} are simulated; nothing runs on a host)\n"
                )
                return ScriptOutcome("".join(output), 127, seconds, False)
    return ScriptOutcome("".join(output), exit_code, seconds, False)


def _is_number(text: str) -> bool:
    try:
        return 0 <= float(text) < 10**7
    except ValueError:
        return False


# --- storage ---------------------------------------------------------------------------------
def _save(store: Store, invocation: dict, *, new: bool) -> None:
    with store.write() as tx:
        if new:
            invocation["seq"] = tx.next_seq()
            tx.document_write(
                "INSERT INTO ecs_invocations(invoke_id, account_uid, region_id, seq, data) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    invocation["InvokeId"],
                    invocation["account_uid"],
                    invocation["RegionId"],
                    invocation["seq"],
                    json.dumps(invocation),
                ),
            )
        else:
            tx.document_write(
                "UPDATE ecs_invocations SET data = ? WHERE invoke_id = ?",
                (json.dumps(invocation), invocation["InvokeId"]),
            )


def _load(
    store: Store, *, account_uid: str, region_id: str, invoke_id: str | None = None
) -> list[dict]:
    if invoke_id is not None:  # the OOS engine polls one invocation many times
        with store.read() as tx:
            rows = tx.document_rows(
                "SELECT data FROM ecs_invocations WHERE invoke_id = ? AND account_uid = ? "
                "AND region_id = ?",
                (invoke_id, account_uid, region_id),
            )
        return [json.loads(row["data"]) for row in rows]
    with store.read() as tx:
        rows = tx.document_rows(
            "SELECT data FROM ecs_invocations WHERE account_uid = ? AND region_id = ? "
            "ORDER BY seq DESC",
            (account_uid, region_id),
        )
    return [json.loads(row["data"]) for row in rows]


# --- per-instance state as an observer sees it now -------------------------------------------
def _instance_view(record: dict, now: float) -> dict:
    """The record's state at ``now``: Running until its finish time, then its outcome."""
    finished = now >= record["finish_at"] or record.get("stopped_at") is not None
    view = dict(record)
    if record.get("stopped_at") is not None and now < record["finish_at"]:
        view.update(status="Stopped", record_status="Stopped", end=record["stopped_at"])
        view["output"] = ""
        view["exit_code"] = None
        return view
    if not finished:
        view.update(status="Running", record_status="Running", output="", exit_code=None)
        view["end"] = None
        return view
    view["end"] = record["finish_at"]
    return view


def _overall(instance_views: list[dict]) -> tuple[str, str]:
    """(InvocationStatus, InvokeStatus) of a whole invocation."""
    statuses = [view["status"] for view in instance_views]
    if any(status == "Running" for status in statuses):
        return "Running", "Running"
    if all(status == "Success" for status in statuses):
        return "Success", "Finished"
    if all(status == "Stopped" for status in statuses):
        return "Stopped", "Stopped"
    if any(status == "Success" for status in statuses):
        return "PartialFailed", "PartialFinished"
    return "Failed", "Failed"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- operations shared by the API and the OOS engine ------------------------------------------
def run_command(
    *,
    store: Store,
    identity: Any,
    region_id: str,
    instance_ids: list[str],
    command_type: str,
    content: str,
    timeout: int,
    working_dir: str,
    username: str,
    name: str,
    source_ip: str,
    secure_transport: bool = False,
) -> dict:
    ecs.require_region(region_id)
    now = time.time()
    found = []
    with store.read() as tx:
        for instance_id in instance_ids:
            instance = tx.ecs_instance_get(instance_id)
            if (
                instance is None
                or instance.account_uid != identity.account_uid
                or instance.region_id != region_id
            ):
                raise ApiError(
                    "InvalidInstance.NotFound", f"The instance {instance_id} does not exist.", 404
                )
            found.append(instance)
    for instance in found:
        ecs._authorize(
            store=store,
            identity=identity,
            action="ecs:RunCommand",
            resource=ecs.instance_arn(instance),
            source_ip=source_ip,
            secure_transport=secure_transport,
        )
    for instance in found:
        if ecs.effective_status(instance, now=now) != ecs.RUNNING:
            raise ApiError(
                "InvalidInstance.NotRunning",
                f"The instance {instance.instance_id} is not running.",
                400,
            )
    scale = time_scale()
    records = []
    for instance in found:
        attributes = instance.attributes or {}
        hostname = attributes.get("HostName", f"iZ{instance.instance_id[2:]}Z")
        if attributes.get(FAILURE_ATTRIBUTE):
            records.append(
                {
                    "InstanceId": instance.instance_id,
                    "start": now,
                    "finish_at": now + scale,
                    "status": "Failed",
                    "record_status": "Failed",
                    "exit_code": None,
                    "output": "",
                    "error_code": "ClientNotResponse",
                    "error_info": "The Cloud Assistant agent did not respond (simulated failure).",
                }
            )
            continue
        outcome = simulate(content, hostname=hostname, timeout=timeout, started=now)
        if outcome.timed_out:
            status, code, info = "Timeout", "ExecutionTimeout", "The command timed out."
        elif outcome.exit_code != 0:
            status, code, info = "Failed", "", f"The command exited with {outcome.exit_code}."
        else:
            status, code, info = "Success", "", ""
        records.append(
            {
                "InstanceId": instance.instance_id,
                "start": now,
                "finish_at": now + outcome.seconds * scale,
                "sim_seconds": outcome.seconds,
                "status": status,
                "record_status": "Finished" if status == "Success" else "Failed",
                "exit_code": outcome.exit_code,
                "output": outcome.output,
                "error_code": code,
                "error_info": info,
            }
        )
    invocation = {
        "InvokeId": "t-" + secrets.token_hex(10),
        "CommandId": "c-" + secrets.token_hex(10),
        "CommandName": name or "",
        "CommandType": command_type,
        "CommandContent": _b64(content),
        "WorkingDir": working_dir,
        "Timeout": timeout,
        "Username": username,
        "RegionId": region_id,
        "account_uid": identity.account_uid,
        "created": now,
        "instances": records,
    }
    _save(store, invocation, new=True)
    return invocation


def _invocation_body(invocation: dict, now: float, *, include_output: bool) -> dict:
    views = [_instance_view(record, now) for record in invocation["instances"]]
    status, invoke_status = _overall(views)
    instances = []
    for view in views:
        item = {
            "InstanceId": view["InstanceId"],
            "InstanceInvokeStatus": view["record_status"],
            "InvocationStatus": view["status"],
            "CreationTime": _iso(invocation["created"]),
            "StartTime": _iso(view["start"]),
            "UpdateTime": _iso(view["end"] or now),
            "FinishTime": _iso(view["end"]) if view["end"] else "",
            "StopTime": _iso(view["stopped_at"]) if view.get("stopped_at") else "",
            "Repeats": 1,
            "Dropped": 0,
            "ErrorCode": view.get("error_code", "") if view["end"] else "",
            "ErrorInfo": view.get("error_info", "") if view["end"] else "",
            "Output": _b64(view["output"]) if include_output else "",
        }
        if view["exit_code"] is not None:
            item["ExitCode"] = view["exit_code"]
        instances.append(item)
    return {
        "InvokeId": invocation["InvokeId"],
        "CommandId": invocation["CommandId"],
        "CommandName": invocation["CommandName"],
        "CommandType": invocation["CommandType"],
        "CommandContent": invocation["CommandContent"],
        "CommandDescription": "",
        "InvocationStatus": status,
        "InvokeStatus": invoke_status,
        "CreationTime": _iso(invocation["created"]),
        "Timed": False,
        "RepeatMode": "Once",
        "Frequency": "",
        "Parameters": "{}",
        "Timeout": invocation["Timeout"],
        "WorkingDir": invocation["WorkingDir"],
        "Username": invocation["Username"],
        "InvokeInstances": {"InvokeInstance": instances},
        "Tags": {"Tag": []},
    }


def invocation_results(invocation: dict, now: float) -> list[dict]:
    results = []
    for record in invocation["instances"]:
        view = _instance_view(record, now)
        item = {
            "CommandId": invocation["CommandId"],
            "InvokeId": invocation["InvokeId"],
            "InstanceId": view["InstanceId"],
            "InvocationStatus": view["status"],
            "InvokeRecordStatus": view["record_status"],
            "Output": _b64(view["output"]),
            "Dropped": 0,
            "ErrorCode": view.get("error_code", "") if view["end"] else "",
            "ErrorInfo": view.get("error_info", "") if view["end"] else "",
            "StartTime": _iso(view["start"]),
            "FinishedTime": _iso(view["end"]) if view["end"] else "",
            "StopTime": _iso(view["stopped_at"]) if view.get("stopped_at") else "",
            "Repeats": 1,
            "Username": invocation["Username"],
            "TerminationMode": "Process",
            "Tags": {"Tag": []},
        }
        if view["exit_code"] is not None:
            item["ExitCode"] = view["exit_code"]
        results.append(item)
    return results


def find_invocation(store: Store, *, account_uid: str, region_id: str, invoke_id: str) -> dict:
    for invocation in _load(
        store, account_uid=account_uid, region_id=region_id, invoke_id=invoke_id
    ):
        return invocation
    raise ApiError("InvalidInvokeId.NotFound", "The specified InvokeId does not exist.", 404)


def stop_invocation(store: Store, invocation: dict) -> None:
    """Stop what is still running (OOS cancelling its execution)."""
    now = time.time()
    changed = False
    for record in invocation["instances"]:
        if now < record["finish_at"] and record.get("stopped_at") is None:
            record["stopped_at"] = now
            changed = True
    if changed:
        _save(store, invocation, new=False)


# --- API handlers ----------------------------------------------------------------------------
def _commands_arn(ctx: ApiContext, region_id: str) -> str:
    return f"acs:ecs:{region_id}:{ctx.identity.account_uid}:command/*"


def _authorize_read(ctx: ApiContext, action: str, region_id: str) -> None:
    ecs._authorize(
        store=ctx.store,
        identity=ctx.identity,
        action=action,
        resource=_commands_arn(ctx, region_id),
        source_ip=ctx.source_ip,
        secure_transport=ctx.secure_transport,
    )


def _instance_id_list(ctx: ApiContext) -> list[str]:
    ids = []
    for n in range(1, MAX_INSTANCES + 2):
        value = ctx.param(f"InstanceId.{n}")
        if value is None:
            break
        ids.append(value)
    if not ids:
        raise missing_parameter("InstanceId")
    if len(ids) > MAX_INSTANCES:
        raise invalid_parameter("InstanceId", f"At most {MAX_INSTANCES} instances per call.")
    if len(set(ids)) != len(ids):
        raise invalid_parameter("InstanceId", "An instance is named twice.")
    return ids


@api_action(version=VERSION, name="RunCommand", mutating=True)
def run_command_action(ctx: ApiContext) -> dict:
    region_id = ctx.require("RegionId")
    command_type = ctx.require("Type")
    if command_type not in COMMAND_TYPES:
        raise ApiError("InvalidCommandType.NotSupported", f"Valid values: {COMMAND_TYPES}.", 400)
    content = ctx.require("CommandContent")
    encoding = (ctx.param("ContentEncoding") or "PlainText").lower()
    if encoding == "base64":
        try:
            content = base64.b64decode(content.encode(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise ApiError(
                "InvalidCommandContent.Malformed", "The CommandContent is not base64.", 400
            ) from None
    elif encoding != "plaintext":
        raise invalid_parameter("ContentEncoding", "Valid values: PlainText, Base64.")
    if len(content.encode()) > MAX_CONTENT_BYTES:
        raise ApiError(
            "InvalidCmdContent.ExceedLimit",
            f"The CommandContent exceeds {MAX_CONTENT_BYTES} bytes.",
            400,
        )
    timeout = ctx.int_param(
        "Timeout",
        DEFAULT_TIMEOUT,
        minimum=MIN_TIMEOUT,
        maximum=MAX_TIMEOUT,
        error=ApiError(
            "InvalidTimeout.ExceedLimit",
            f"The Timeout must be {MIN_TIMEOUT} to {MAX_TIMEOUT} seconds.",
            400,
        ),
    )
    assert timeout is not None
    invocation = run_command(
        store=ctx.store,
        identity=ctx.identity,
        region_id=region_id,
        instance_ids=_instance_id_list(ctx),
        command_type=command_type,
        content=content,
        timeout=timeout,
        working_dir=ctx.param("WorkingDir") or "",
        username=ctx.param("Username") or "",
        name=ctx.param("Name") or "",
        source_ip=ctx.source_ip,
        secure_transport=ctx.secure_transport,
    )
    ctx.log_extra["resource"] = _commands_arn(ctx, region_id)
    return {"InvokeId": invocation["InvokeId"], "CommandId": invocation["CommandId"]}


def _page(ctx: ApiContext, items: list[dict]) -> tuple[list[dict], dict]:
    next_token = ctx.param("NextToken")
    max_results = ctx.param("MaxResults")
    if next_token is not None or max_results is not None:
        limit = ctx.int_param("MaxResults", DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
        assert limit is not None
        offset = ecs._decode_token(next_token) if next_token else 0
        more = offset + limit < len(items)
        return items[offset : offset + limit], {
            "NextToken": ecs._encode_token(offset + limit) if more else "",
            "TotalCount": len(items),
        }
    number = ctx.int_param("PageNumber", 1, minimum=1, maximum=10**9)
    size = ctx.int_param("PageSize", DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
    assert number is not None and size is not None
    start = (number - 1) * size
    return items[start : start + size], {
        "PageNumber": number,
        "PageSize": size,
        "TotalCount": len(items),
    }


@api_action(version=VERSION, name="DescribeInvocations")
def describe_invocations(ctx: ApiContext) -> dict:
    region_id = ctx.require("RegionId")
    ecs.require_region(region_id)
    _authorize_read(ctx, "ecs:DescribeInvocations", region_id)
    now = time.time()
    invoke_id, instance_id = ctx.param("InvokeId"), ctx.param("InstanceId")
    command_type, status = ctx.param("CommandType"), ctx.param("InvokeStatus")
    include_output = bool(ctx.bool_param("IncludeOutput", False))
    bodies = []
    for invocation in _load(
        ctx.store, account_uid=ctx.identity.account_uid, region_id=region_id, invoke_id=invoke_id
    ):
        if command_type is not None and invocation["CommandType"] != command_type:
            continue
        if instance_id is not None and all(
            r["InstanceId"] != instance_id for r in invocation["instances"]
        ):
            continue
        body = _invocation_body(invocation, now, include_output=include_output)
        if status is not None and status not in (body["InvocationStatus"], body["InvokeStatus"]):
            continue
        bodies.append(body)
    page, paging = _page(ctx, bodies)
    return {**paging, "Invocations": {"Invocation": page}}


@api_action(version=VERSION, name="DescribeInvocationResults")
def describe_invocation_results(ctx: ApiContext) -> dict:
    region_id = ctx.require("RegionId")
    ecs.require_region(region_id)
    _authorize_read(ctx, "ecs:DescribeInvocationResults", region_id)
    now = time.time()
    invoke_id, instance_id = ctx.param("InvokeId"), ctx.param("InstanceId")
    record_status = ctx.param("InvokeRecordStatus")
    results = []
    for invocation in _load(
        ctx.store, account_uid=ctx.identity.account_uid, region_id=region_id, invoke_id=invoke_id
    ):
        for result in invocation_results(invocation, now):
            if instance_id is not None and result["InstanceId"] != instance_id:
                continue
            if record_status is not None and result["InvokeRecordStatus"] != record_status:
                continue
            results.append(result)
    page, paging = _page(ctx, results)
    return {"Invocation": {**paging, "InvocationResults": {"InvocationResult": page}}}


# --- the operator's knobs --------------------------------------------------------------------
@page_route("PUT", "/_sim/ecs/command-failure")
def command_failure(request: PageRequest) -> PageResponse:
    """``{"instance_id": "i-…", "fail": true}``: every later command on it fails."""
    _require_operator(request)
    data = _json_body(request)
    instance_id, fail = data.get("instance_id"), data.get("fail", True)
    if not isinstance(instance_id, str) or not isinstance(fail, bool):
        raise ApiError("InvalidParameter", "Give instance_id (string) and fail (boolean).", 400)
    with request.store.write() as tx:
        instance = tx.ecs_instance_get(instance_id)
        if instance is None:
            raise ApiError("InvalidInstanceId.NotFound", "No such instance.", 404)
        attributes = dict(instance.attributes or {})
        if fail:
            attributes[FAILURE_ATTRIBUTE] = True
        else:
            attributes.pop(FAILURE_ATTRIBUTE, None)
        tx.ecs_instance_set_attributes(instance_id=instance_id, attributes=attributes)
    return PageResponse.json({"instance_id": instance_id, "fail": fail})


@page_route("POST", "/_sim/ecs/instances")
def instances_create(request: PageRequest) -> PageResponse:
    """``{"uid", "region_id", "name", "status"?, "zone_id"?, "tags"?}`` → the new instance."""
    _require_operator(request)
    data = _json_body(request)
    uid, region_id, name = data.get("uid"), data.get("region_id"), data.get("name")
    status = data.get("status", ecs.RUNNING)
    if not all(isinstance(v, str) and v for v in (uid, region_id, name)) or status not in (
        ecs.RUNNING,
        ecs.STOPPED,
    ):
        raise ApiError(
            "InvalidParameter", "Give uid, region_id, name and status Running|Stopped.", 400
        )
    ecs.require_region(str(region_id))
    tags = data.get("tags") or []
    with request.store.write() as tx:
        if tx.account_get(str(uid)) is None:
            raise ApiError("InvalidParameter", f"account {uid} does not exist", 400)
        instance = tx.ecs_instance_create(
            account_uid=str(uid),
            region_id=str(region_id),
            zone_id=str(data.get("zone_id") or f"{region_id}-a"),
            instance_name=str(name),
            status=str(status),
            attributes={"Tags": tags} if tags else None,
        )
    return PageResponse.json(
        {"instance_id": instance.instance_id, "uid": uid, "region_id": region_id}, status=201
    )
