"""Where an audit event comes from: request id, source and client IP.

Web requests get them from `core.request_id.RequestIdMiddleware`. Celery tasks get them
automatically (see `audit.apps`: every task runs inside `audit_context(request_id=<task id>,
source="task:<name>")`); management commands and scripts can wrap their work the same way.
"""

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.request_id import current_client_ip, current_request_id

_UNSET = "-"  # what core.request_id answers outside a request


@dataclass(frozen=True)
class AuditOrigin:
    request_id: str
    source: str
    source_ip: str


_override: contextvars.ContextVar[AuditOrigin | None] = contextvars.ContextVar(
    "audit_origin", default=None
)


@contextmanager
def audit_context(
    *, request_id: str = "", source: str, source_ip: str = ""
) -> Iterator[AuditOrigin]:
    """Attribute every event recorded inside the block to this origin.

    `source` names the caller: "task:delegations.apply", "command:seed_demo". A task that
    continues a web request's work may pass that request's id to keep the trail joined.
    """
    origin = AuditOrigin(request_id=request_id, source=source, source_ip=source_ip)
    token = _override.set(origin)
    try:
        yield origin
    finally:
        _override.reset(token)


def current_origin() -> AuditOrigin:
    override = _override.get()
    if override is not None:
        return override
    request_id = current_request_id()
    if request_id and request_id != _UNSET:
        return AuditOrigin(request_id=request_id, source="web", source_ip=current_client_ip() or "")
    return AuditOrigin(request_id="", source="system", source_ip="")


# Celery's prerun/postrun signals come in pairs per task id; the tokens let postrun restore
# exactly what prerun replaced even if a task runs another task eagerly inside itself.
_task_tokens: dict[str, contextvars.Token[AuditOrigin | None]] = {}


def enter_task_context(*, task_id: str, task_name: str) -> None:
    origin = AuditOrigin(request_id=task_id or "", source=f"task:{task_name}", source_ip="")
    _task_tokens[task_id] = _override.set(origin)


def exit_task_context(*, task_id: str) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        _override.reset(token)
