from typing import Any

from celery.signals import task_postrun, task_prerun
from django.apps import AppConfig

from audit.context import enter_task_context, exit_task_context


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        # Every task's events carry the task id as request id and "task:<name>" as source,
        # without each task having to remember.
        def _task_started(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
            enter_task_context(task_id=task_id, task_name=getattr(task, "name", "unknown"))

        def _task_finished(task_id: str = "", **kwargs: Any) -> None:
            exit_task_context(task_id=task_id)

        task_prerun.connect(_task_started, weak=False, dispatch_uid="audit.task_started")
        task_postrun.connect(_task_finished, weak=False, dispatch_uid="audit.task_finished")
