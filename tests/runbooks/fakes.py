"""A recording double of the OOS door (`cloud.oos.OosClient`'s interface), for the worker's
service tests; the end-to-end tests run the real SDK client against cloudsim."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloud.errors import CloudError, ErrorCategory


@dataclass(frozen=True)
class Execution:
    execution_id: str
    status: str
    status_message: str = ""
    template_name: str = ""
    parent_execution_id: str | None = None
    mode: str = "Automatic"
    start_date: datetime | None = None
    end_date: datetime | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskExecution:
    task_execution_id: str
    execution_id: str
    status: str
    child_execution_id: str | None
    loop_item: str | None
    task_name: str = "executeTemplate"
    task_action: str = "ACS::Template"
    status_message: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    start_date: datetime | None = None
    end_date: datetime | None = None


@dataclass(frozen=True)
class InstanceResult:
    account_uid: str
    region_id: str
    instance_id: str
    status: str
    exit_code: int | None
    output: str
    child_execution_id: str


class FakeOos:
    """Starts executions that end when the test says; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.templates: dict[str, str] = {}
        self.executions: dict[str, Execution] = {}
        self.by_token: dict[str, str] = {}
        self.started_parameters: dict[str, dict[str, Any]] = {}
        self.results: dict[str, list[InstanceResult]] = {}
        self.tasks: dict[str, list[TaskExecution]] = {}
        self.fail_start: CloudError | None = None

    def put_template(self, *, name: str, content: str) -> str:
        self.calls.append(("put_template", {"name": name}))
        self.templates[name] = content
        return "v1"

    def start_execution(
        self, *, template_name: str, parameters: dict[str, Any], client_token: str
    ) -> Execution:
        self.calls.append(("start_execution", {"template_name": template_name}))
        if self.fail_start is not None:
            raise self.fail_start
        if client_token in self.by_token:
            return self.executions[self.by_token[client_token]]
        execution_id = f"exec-{len(self.executions) + 1:04d}"
        self.by_token[client_token] = execution_id
        self.executions[execution_id] = Execution(execution_id, "Running")
        self.started_parameters[execution_id] = json.loads(json.dumps(parameters))
        return self.executions[execution_id]

    def get_execution(self, *, execution_id: str) -> Execution:
        self.calls.append(("get_execution", {"execution_id": execution_id}))
        return self.executions[execution_id]

    def list_task_executions(self, *, execution_id: str) -> list[TaskExecution]:
        return self.tasks.get(execution_id, [])

    def instance_results(self, *, execution_id: str) -> list[InstanceResult]:
        return self.results.get(execution_id, [])

    def cancel_execution(self, *, execution_id: str) -> None:
        self.calls.append(("cancel_execution", {"execution_id": execution_id}))
        self.executions[execution_id] = Execution(execution_id, "Cancelled")

    # --- what the test makes OOS do -------------------------------------------------------
    def finish(self, execution_id: str, status: str = "Success", *, output: str = "hello\n"):
        """End the execution: one instance per loop item, all with `status`."""
        parameters = self.started_parameters[execution_id]
        tasks, results = [], []
        for number, item in enumerate(parameters["accountRoleAndRegions"], start=1):
            uid = item["OOSAssumeRole"].split("|")[1].split("/")[0]
            child = f"{execution_id}-child-{number}"
            tasks.append(
                TaskExecution(f"t-{number}", execution_id, status, child, json.dumps(item))
            )
            results.append(
                InstanceResult(
                    uid,
                    item["RegionId"],
                    f"i-{uid[-4:]}{number:04d}",
                    status,
                    0 if status == "Success" else 1,
                    output,
                    child,
                )
            )
        self.tasks[execution_id] = tasks
        self.results[execution_id] = results
        self.executions[execution_id] = Execution(execution_id, status, "done")


def permanent_error(code: str = "InvalidTemplate") -> CloudError:
    return CloudError(
        code=code,
        message="The template is invalid.",
        action="StartExecution",
        request_id="req-1",
        http_status=400,
        category=ErrorCategory.VALIDATION,
    )
