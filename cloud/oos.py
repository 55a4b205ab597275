"""OOS (CloudOps Orchestration Service, API 2019-06-01) and the ECS calls runbooks need, through
the official SDKs (`alibabacloud-oos20190601`, `alibabacloud-ecs20140526`).

A runbook is an OOS execution: the portal stores its MultiAccount template in the partner's
account (`put_template`), starts it (`start_execution`), follows it (`get_execution`,
`list_executions`, `list_task_executions`) and can stop it (`cancel_execution`). The per-target
outcome lives in the execution tree: the parent's loop items start child executions of
`ACS-ECS-BulkyRunCommand`, whose `ACS::ECS::RunCommand` loop items are one instance each;
`instance_results` walks that tree. Statuses are OOS's own values (Queued, Running, Waiting,
Success, Failed, Cancelled). Every SDK failure is a `cloud.errors.CloudError`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as _EcsSdkClient
from alibabacloud_oos20190601 import models as oos_models
from alibabacloud_oos20190601.client import Client as _OosSdkClient
from django.conf import settings

from cloud.errors import CloudError, ErrorCategory
from cloud.sdk import (
    DEFAULT_REGION,
    InvalidResponse,
    SdkTransport,
    body_of,
    optional_text,
    required_text,
)
from cloud.values import CallRecorder, CloudCredentials, IntentRecorder

RUN_COMMAND_ACTION = "ACS::ECS::RunCommand"
# Statuses after which an execution (or task execution) changes no more.
FINISHED_STATUSES = frozenset({"Success", "Failed", "Cancelled"})
# OOS pages by NextToken, at most 100 items a page.
_NEXT_TOKEN_PAGES: dict[str, Any] = {
    "next_of": lambda body, _request_id: optional_text(body.next_token),
    "cursor_name": "NextToken",
    "page_size": 100,
    "max_pages": 200,
}
_MAX_TREE_DEPTH = 3  # OOS nests templates at most three levels deep
_MAX_INSTANCE_IDS = 100  # DescribeInstances takes at most 100 InstanceIds per request


@dataclass(frozen=True)
class OosExecution:
    execution_id: str
    template_name: str
    status: str  # OOS's own values: Queued/Running/Waiting/Success/Failed/Cancelled
    status_message: str
    parent_execution_id: str | None
    mode: str
    start_date: datetime | None
    end_date: datetime | None
    parameters: dict[str, Any]
    outputs: dict[str, Any]


@dataclass(frozen=True)
class OosTaskExecution:
    task_execution_id: str
    execution_id: str
    task_name: str
    task_action: str
    status: str
    status_message: str
    child_execution_id: str | None
    loop_item: str | None
    outputs: dict[str, Any]
    start_date: datetime | None
    end_date: datetime | None


@dataclass(frozen=True)
class InstanceResult:
    """One target's outcome, found by walking child executions."""

    account_uid: str
    region_id: str
    instance_id: str
    status: str  # Success/Failed/Running/Cancelled/...
    exit_code: int | None
    output: str  # decoded text, never base64
    child_execution_id: str


@dataclass(frozen=True)
class EcsRegion:
    region_id: str
    local_name: str


# --- reading OOS's shapes ------------------------------------------------------------------------
def _date(value: Any) -> datetime | None:
    text = optional_text(value)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json_map(value: Any) -> dict[str, Any]:
    """OOS answers some maps as JSON text (Outputs, StartExecution's Parameters)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _execution_from(model: Any, request_id: str | None) -> OosExecution:
    return OosExecution(
        execution_id=required_text(model.execution_id, "Execution.ExecutionId", request_id),
        template_name=optional_text(model.template_name) or "",
        status=required_text(model.status, "Execution.Status", request_id),
        status_message=optional_text(model.status_message) or "",
        parent_execution_id=optional_text(model.parent_execution_id),
        mode=optional_text(model.mode) or "Automatic",
        start_date=_date(model.start_date),
        end_date=_date(model.end_date),
        parameters=_json_map(model.parameters),
        outputs=_json_map(model.outputs),
    )


def _task_from(model: Any, request_id: str | None) -> OosTaskExecution:
    return OosTaskExecution(
        task_execution_id=required_text(
            model.task_execution_id, "TaskExecution.TaskExecutionId", request_id
        ),
        execution_id=required_text(model.execution_id, "TaskExecution.ExecutionId", request_id),
        task_name=optional_text(model.task_name) or "",
        task_action=optional_text(model.task_action) or "",
        status=required_text(model.status, "TaskExecution.Status", request_id),
        status_message=optional_text(model.status_message) or "",
        child_execution_id=optional_text(model.child_execution_id),
        loop_item=optional_text(model.loop_item),
        outputs=_json_map(model.outputs),
        start_date=_date(model.start_date),
        end_date=_date(model.end_date),
    )


def _target_account(ram_role: str | None, fallback: str) -> str:
    """`OOSServiceRole|<uid>/<role>` → `<uid>`; a plain role acts in the executing account."""
    target = (ram_role or "").partition("|")[2]
    uid = target.partition("/")[0]
    return uid or fallback


def _exit_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _checked_page(
    items: Any, what: str, check: Callable[[Any, str | None], object], request_id: str | None
) -> list[Any]:
    """A page's items as the SDK models, each checked by `check` for its required fields."""
    items = items if items is not None else []
    if not isinstance(items, list):
        raise InvalidResponse(what, request_id)
    for item in items:
        check(item, request_id)
    return items


class OosClient(SdkTransport):
    """OOS and ECS for one account's credentials (a runbook's executing account: the
    partner's). Create one per task; not for sharing between threads."""

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        region_id: str = DEFAULT_REGION,
        endpoint: str | None = None,
        ecs_endpoint: str | None = None,
        security_token: str | None = None,
        call_recorder: CallRecorder | None = None,
        intent_recorder: IntentRecorder | None = None,
        protocol: str | None = None,
        connect_timeout_ms: int | None = None,
        read_timeout_ms: int | None = None,
    ) -> None:
        credentials = CloudCredentials(access_key_id, access_key_secret, security_token)
        super().__init__(
            credentials,
            region_id=region_id,
            call_recorder=call_recorder,
            intent_recorder=intent_recorder,
            protocol=protocol,
            connect_timeout_ms=connect_timeout_ms,
            read_timeout_ms=read_timeout_ms,
        )
        self.region_id = region_id
        self._oos_endpoint = endpoint or settings.ALIBABA_OOS_ENDPOINT
        self._ecs_endpoint = ecs_endpoint or settings.ALIBABA_ECS_ENDPOINT
        self._oos = _OosSdkClient(self._sdk_config(endpoint=self._oos_endpoint))
        self._ecs = _EcsSdkClient(self._sdk_config(endpoint=self._ecs_endpoint))

    def __repr__(self) -> str:
        return (
            f"OosClient(access_key_id={self._credentials.access_key_id!r}, "
            f"oos={self._oos_endpoint!r}, ecs={self._ecs_endpoint!r}, region={self.region_id!r})"
        )

    # -- templates ---------------------------------------------------------------------------------
    def get_template(self, *, name: str) -> tuple[str, str]:
        """(content, version) of the account's template `name` (or a public one)."""
        request = oos_models.GetTemplateRequest(template_name=name, region_id=self.region_id)

        def read(response: Any, request_id: str | None) -> tuple[str, str]:
            body = body_of(response, request_id)
            content = required_text(body.content, "Content", request_id)
            template = body.template
            if template is None:
                raise InvalidResponse("Template", request_id)
            return content, required_text(
                template.template_version, "Template.TemplateVersion", request_id
            )

        return self._call(
            "GetTemplate", name, lambda: self._oos.get_template(request), read, mutating=False
        )

    def put_template(self, *, name: str, content: str) -> str:
        """CreateTemplate, or UpdateTemplate if it exists with other content; returns the
        version now current (unchanged content makes no new version)."""
        try:
            current, version = self.get_template(name=name)
        except CloudError as error:
            if not error.is_not_found:
                raise
        else:
            if current == content:
                return version
            return self._update_template(name=name, content=content)
        request = oos_models.CreateTemplateRequest(
            template_name=name, content=content, region_id=self.region_id
        )
        try:
            return self._call(
                "CreateTemplate",
                name,
                lambda: self._oos.create_template(request),
                self._read_template_version,
                mutating=True,
            )
        except CloudError as error:
            if not error.is_already_exists:  # created meanwhile by another worker
                raise
            return self._update_template(name=name, content=content)

    def _update_template(self, *, name: str, content: str) -> str:
        request = oos_models.UpdateTemplateRequest(
            template_name=name, content=content, region_id=self.region_id
        )
        return self._call(
            "UpdateTemplate",
            name,
            lambda: self._oos.update_template(request),
            self._read_template_version,
            mutating=True,
        )

    @staticmethod
    def _read_template_version(response: Any, request_id: str | None) -> str:
        template = body_of(response, request_id).template
        if template is None:
            raise InvalidResponse("Template", request_id)
        return required_text(template.template_version, "Template.TemplateVersion", request_id)

    # -- executions --------------------------------------------------------------------------------
    def start_execution(
        self, *, template_name: str, parameters: dict[str, Any], client_token: str
    ) -> OosExecution:
        """StartExecution; the same `client_token` again returns the same execution."""
        request = oos_models.StartExecutionRequest(
            template_name=template_name,
            parameters=json.dumps(parameters, separators=(",", ":")),
            client_token=client_token,
            mode="Automatic",
            region_id=self.region_id,
        )

        def read(response: Any, request_id: str | None) -> OosExecution:
            execution = body_of(response, request_id).execution
            if execution is None:
                raise InvalidResponse("Execution", request_id)
            return _execution_from(execution, request_id)

        return self._call(
            "StartExecution",
            template_name,
            lambda: self._oos.start_execution(request),
            read,
            mutating=True,
        )

    def _list_execution_models(self, **filters: Any) -> list[Any]:
        return self._list_pages(
            "ListExecutions",
            ",".join(f"{k}={v}" for k, v in filters.items() if v) or "*",
            lambda token, page_size: self._oos.list_executions(
                oos_models.ListExecutionsRequest(
                    region_id=self.region_id, max_results=page_size, next_token=token, **filters
                )
            ),
            lambda body, request_id: _checked_page(
                body.executions, "Executions", _execution_from, request_id
            ),
            **_NEXT_TOKEN_PAGES,
        )

    def _execution_model(self, execution_id: str) -> Any:
        found = self._list_execution_models(execution_id=execution_id)
        if not found:
            raise CloudError(
                code="EntityNotExists.Execution",
                message=f"The execution {execution_id} does not exist.",
                action="ListExecutions",
                request_id=self.last_request_id,
                category=ErrorCategory.NOT_FOUND,
            )
        return found[0]

    def get_execution(self, *, execution_id: str) -> OosExecution:
        return _execution_from(self._execution_model(execution_id), self.last_request_id)

    def list_executions(
        self, *, parent_execution_id: str | None = None, template_name: str | None = None
    ) -> list[OosExecution]:
        """Executions newest first: the children of `parent_execution_id`, else the account's
        top-level executions (of `template_name` when given)."""
        models = self._list_execution_models(
            parent_execution_id=parent_execution_id, template_name=template_name
        )
        return [_execution_from(model, self.last_request_id) for model in models]

    def _task_models(self, execution_id: str) -> list[Any]:
        return self._list_pages(
            "ListTaskExecutions",
            execution_id,
            lambda token, page_size: self._oos.list_task_executions(
                oos_models.ListTaskExecutionsRequest(
                    execution_id=execution_id,
                    region_id=self.region_id,
                    max_results=page_size,
                    next_token=token,
                    sort_order="Ascending",
                )
            ),
            lambda body, request_id: _checked_page(
                body.task_executions, "TaskExecutions", _task_from, request_id
            ),
            **_NEXT_TOKEN_PAGES,
        )

    def list_task_executions(self, *, execution_id: str) -> list[OosTaskExecution]:
        """The execution's task executions in the order they started (loop items included)."""
        return [_task_from(m, self.last_request_id) for m in self._task_models(execution_id)]

    def cancel_execution(self, *, execution_id: str) -> None:
        request = oos_models.CancelExecutionRequest(
            execution_id=execution_id, region_id=self.region_id
        )
        self._call(
            "CancelExecution",
            execution_id,
            lambda: self._oos.cancel_execution(request),
            self._request_id_only,
            mutating=True,
        )

    def instance_results(self, *, execution_id: str) -> list[InstanceResult]:
        """Every instance a RunCommand loop reached under `execution_id` (the whole tree),
        with its account and region from the child execution that ran it."""
        top = self._execution_model(execution_id)
        results: list[InstanceResult] = []
        executing_uid = optional_text(getattr(top, "account_id", None)) or ""

        def walk(execution: Any, account_uid: str, region_id: str, depth: int) -> None:
            parameters = _json_map(execution.parameters)
            account_uid = _target_account(optional_text(execution.ram_role), account_uid)
            region_id = str(parameters.get("regionId") or region_id)
            for task in self._task_models(execution.execution_id):
                child_id = optional_text(task.child_execution_id)
                if child_id and depth < _MAX_TREE_DEPTH:
                    walk(self._execution_model(child_id), account_uid, region_id, depth + 1)
                    continue
                if task.task_action != RUN_COMMAND_ACTION or not optional_text(task.loop_item):
                    continue
                outputs = _json_map(task.outputs)
                extra = task.extra_data if isinstance(task.extra_data, dict) else {}
                output = outputs.get("commandOutput")
                if not isinstance(output, str):
                    output = extra.get("invocationOutput")
                results.append(
                    InstanceResult(
                        account_uid=account_uid,
                        region_id=str(extra.get("regionId") or region_id),
                        instance_id=str(task.loop_item),
                        status=str(task.status),
                        exit_code=_exit_code(extra.get("exitCode")),
                        output=output if isinstance(output, str) else "",
                        child_execution_id=str(execution.execution_id),
                    )
                )

        walk(top, executing_uid, self.region_id, 1)
        return results

    # -- ECS -------------------------------------------------------------------------------------
    def describe_regions(self, *, accept_language: str = "en-US") -> list[EcsRegion]:
        """The regions ECS offers to this account (where a runbook can run)."""
        request = ecs_models.DescribeRegionsRequest(accept_language=accept_language)

        def read(response: Any, request_id: str | None) -> list[EcsRegion]:
            body = body_of(response, request_id)
            regions = getattr(body.regions, "region", None) if body.regions is not None else None
            if not isinstance(regions, list):
                raise InvalidResponse("Regions.Region", request_id)
            return [
                EcsRegion(
                    region_id=required_text(r.region_id, "Region.RegionId", request_id),
                    local_name=optional_text(r.local_name) or r.region_id,
                )
                for r in regions
            ]

        return self._call(
            "DescribeRegions",
            "*",
            lambda: self._ecs.describe_regions(request),
            read,
            mutating=False,
        )

    def instance_statuses(self, *, region_id: str, instance_ids: Sequence[str]) -> dict[str, str]:
        """ECS DescribeInstances for `instance_ids` in `region_id`: each id found → its
        status (Running, Stopped, ...). An id ECS does not know in this account and region
        is absent from the answer. One request per 100 ids."""
        statuses: dict[str, str] = {}
        ids = list(dict.fromkeys(instance_ids))
        for start in range(0, len(ids), _MAX_INSTANCE_IDS):
            chunk = ids[start : start + _MAX_INSTANCE_IDS]
            request = ecs_models.DescribeInstancesRequest(
                region_id=region_id,
                instance_ids=json.dumps(chunk),
                page_size=_MAX_INSTANCE_IDS,
            )

            def read(response: Any, request_id: str | None) -> dict[str, str]:
                body = body_of(response, request_id)
                found = getattr(body.instances, "instance", None) if body.instances else []
                if not isinstance(found, list):
                    raise InvalidResponse("Instances.Instance", request_id)
                return {
                    required_text(i.instance_id, "Instance.InstanceId", request_id): (
                        required_text(i.status, "Instance.Status", request_id)
                    )
                    for i in found
                }

            statuses.update(
                self._call(
                    "DescribeInstances",
                    f"{region_id}:{','.join(chunk[:3])}",
                    functools.partial(self._ecs.describe_instances, request),
                    read,
                    mutating=False,
                )
            )
        return statuses
