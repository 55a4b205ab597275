"""The recorder: one `CloudCall` row and its audit events per cloud request a reconcile makes.

A part of the reconcile engine (`delegations.worker.engine`): the intent of a mutating call is
committed, with a lease renewal, before the request is sent; answers are written with the next
transaction the round makes anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Organisation
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record, audit_record_many
from cloud.client import CloudClient
from cloud.errors import CloudError
from core.db import insert_rows
from delegations.models import CloudCall
from delegations.worker.lease import Lease


@dataclass(frozen=True)
class Answer:
    value: Any = None
    error: CloudError | None = None
    request_id: str = ""


def ask(client: CloudClient, call: Callable[[], Any]) -> Answer:
    """Send one request; its answer or its error, with the request id either way."""
    try:
        value = call()
    except CloudError as error:
        return Answer(error=error, request_id=error.request_id or "")
    return Answer(value=value, request_id=client.last_request_id or "")


def _error_fields(error: CloudError) -> dict[str, Any]:
    return {
        "request_id": (error.request_id or "")[:64],
        "http_status": error.http_status,
        "error_code": (error.code or error.category.value)[:128],
        "error_message": (error.message or "")[:2000],
    }


class Recorder:
    """Writes one `CloudCall` row (and its audit events) per cloud request of a round.

    `subject` are the `CloudCall` fields that tie a row to its subject (e.g. `managed_role`);
    `audit_subject` names the subject in the audit events; `organisation` scopes them.

    The intent of a mutating call is committed before the request (write-ahead). Answers
    (reads, and results of mutations) are kept and written in the next transaction the round
    makes anyway (the next intent, or the transitions at the end), each with the time it
    arrived: a worker that dies in between leaves an intent without a result, which the next
    run closes as "resolved by reconcile", exactly as if it had died just after the call.

    In each transaction the `CloudCall` rows come first and their audit events last, in one
    batch (`audit_record_many`): the audit chain's single lock is held for the events and the
    commit, not also while the rows (and their links to delegation rows) are written.
    """

    def __init__(
        self,
        *,
        lease: Lease,
        organisation: Organisation,
        subject: dict[str, Any],
        audit_subject: dict[str, str],
        delegation_ids: Iterable[Any] = (),
    ) -> None:
        self.lease = lease
        self.organisation = organisation
        self.subject = subject
        self.audit_subject = audit_subject
        self.delegation_ids = list(delegation_ids)
        # Saved on the subject's row with the first intent's lease renewal (before any change).
        self.row_changes: dict[str, Any] = {}
        self.mutations_sent = 0
        self.mutations_succeeded = 0
        # Each writes its row and returns its audit event's arguments (None: nothing written).
        self._unwritten: list[Callable[[], dict[str, Any] | None]] = []

    @property
    def has_unwritten(self) -> bool:
        return bool(self._unwritten)

    def _link(self, call: CloudCall) -> None:
        if self.delegation_ids:
            through = CloudCall.delegations.through
            insert_rows(
                [through(cloudcall_id=call.pk, delegation_id=d) for d in self.delegation_ids]
            )

    def audit(
        self,
        call: CloudCall,
        *,
        action: AuditAction,
        outcome: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        audit_record(**self.audit_event(call, action=action, outcome=outcome, extra=extra))

    def audit_event(
        self,
        call: CloudCall,
        *,
        action: AuditAction,
        outcome: str,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The `audit_record` arguments of the event about `call`."""
        # Scoped to the subject's organisation only: one call can serve several partners of a
        # shared role, and its summary names every principal it changed, which no partner may
        # see of another. Partners follow their delegation's transitions instead.
        return dict(
            action=action,
            organisation=self.organisation,
            target=call,
            target_label=f"{call.action} {call.target}",
            after={
                "outcome": call.outcome,
                "request_id": call.request_id,
                "error_code": call.error_code,
            },
            metadata={
                "cloud_action": call.action,
                "target": call.target,
                "mutating": call.mutating,
                "request": call.request_summary,
                "http_status": call.http_status,
                "worker": call.worker,
                **(extra or {}),
                **self.audit_subject,
            },
            outcome=outcome,
        )

    def flush(self) -> None:
        """Write the answers kept so far; runs inside the caller's transaction."""
        with transaction.atomic():
            audit_record_many(self.write_rows())

    def write_rows(self) -> list[dict[str, Any]]:
        """Write the kept answers' rows; returns their audit events, for the caller to write
        (`audit_record_many`) in the same transaction, before any later event."""
        unwritten, self._unwritten = self._unwritten, []
        return [event for write in unwritten if (event := write()) is not None]

    def record_read(self, action: str, target: str, answer: Answer) -> None:
        """A read needs no intent (it changes nothing): one row once it answered."""
        arrived = timezone.now()
        # "Not found" is an answer to a read, not a failure.
        ok = answer.error is None or answer.error.is_not_found
        fields = (
            _error_fields(answer.error)
            if answer.error is not None
            else {"request_id": answer.request_id[:64]}
        )

        def write() -> dict[str, Any]:
            call = CloudCall.objects.create(
                **self.subject,
                action=action,
                mutating=False,
                target=target,
                worker=self.lease.token,
                intent_at=arrived,
                finished_at=arrived,
                outcome=CloudCall.Outcome.OK if ok else CloudCall.Outcome.ERROR,
                **fields,
            )
            self._link(call)
            return self.audit_event(
                call,
                action=AuditAction.CLOUD_CALL_READ,
                outcome=AuditEvent.Outcome.SUCCESS if ok else AuditEvent.Outcome.FAILURE,
            )

        self._unwritten.append(write)

    def read(self, client: CloudClient, action: str, target: str, call: Callable[[], Any]) -> Any:
        """One recorded read: its value, or its error raised."""
        answer = ask(client, call)
        self.record_read(action, target, answer)
        if answer.error is not None:
            raise answer.error
        return answer.value

    def intent(self, action: str, target: str, summary: dict[str, Any]) -> CloudCall:
        """Write-ahead: committed before the request is sent. Renewing the lease in the same
        transaction fences off a worker whose lease ran out: it raises instead of calling."""
        with transaction.atomic():
            events = self.write_rows()
            call = CloudCall.objects.create(
                **self.subject,
                action=action,
                mutating=True,
                target=target,
                request_summary=summary,
                worker=self.lease.token,
            )
            self._link(call)
            events.append(
                self.audit_event(
                    call, action=AuditAction.CLOUD_CALL_INTENT, outcome=AuditEvent.Outcome.SUCCESS
                )
            )
            audit_record_many(events)
            # Last, so this transaction takes its locks in the lifecycle services' order (audit
            # chain head, then the subject's row) and cannot deadlock with an approval.
            self.lease.renew(**self.row_changes)
        self.mutations_sent += 1
        return call

    def finish(
        self,
        call: CloudCall,
        *,
        error: CloudError | None = None,
        request_id: str = "",
        note: str = "",
    ) -> None:
        arrived = timezone.now()
        fields: dict[str, Any] = (
            _error_fields(error) if error is not None else {"request_id": request_id[:64]}
        )
        outcome = CloudCall.Outcome.OK if error is None or note else CloudCall.Outcome.ERROR
        if outcome == CloudCall.Outcome.OK:
            self.mutations_succeeded += 1

        def write() -> dict[str, Any] | None:
            # Only a row still pending: another worker may have closed it as "unknown" after
            # our lease ran out.
            updated = CloudCall.objects.filter(
                pk=call.pk, outcome=CloudCall.Outcome.PENDING
            ).update(outcome=outcome, finished_at=arrived, note=note[:255], **fields)
            if not updated:
                return None
            call.refresh_from_db()
            return self.audit_event(
                call,
                action=AuditAction.CLOUD_CALL_RESULT,
                outcome=(
                    AuditEvent.Outcome.SUCCESS
                    if outcome == CloudCall.Outcome.OK
                    else AuditEvent.Outcome.FAILURE
                ),
            )

        self._unwritten.append(write)

    def close_dangling_intents(self) -> int:
        """Intents of workers that died before recording the answer. We hold the lease, so
        nobody else can still be waiting for them; the read that follows tells what they did."""
        dangling = list(
            CloudCall.objects.filter(**self.subject, outcome=CloudCall.Outcome.PENDING)
            .exclude(worker=self.lease.token)
            .order_by("id")
        )
        for call in dangling:
            with transaction.atomic():
                if not CloudCall.objects.filter(
                    pk=call.pk, outcome=CloudCall.Outcome.PENDING
                ).update(
                    outcome=CloudCall.Outcome.UNKNOWN,
                    finished_at=timezone.now(),
                    note="resolved by reconcile",
                ):
                    continue
                call.refresh_from_db()
                self.audit(
                    call,
                    action=AuditAction.CLOUD_CALL_RESULT,
                    outcome=AuditEvent.Outcome.FAILURE,
                    extra={"note": call.note, "resolved_by": self.lease.token},
                )
        return len(dangling)
