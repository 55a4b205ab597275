"""The worker's side of a run: put the template, start the execution, follow it to its end,
cancel it; and set up OOSServiceRole after a partner admin's consent.

Each function takes ids and a client (the OOS door or, for the consent, the RAM door), so the
tasks stay thin and tests hand in a double. Claims are conditional updates, so a duplicate
delivery starts nothing twice; StartExecution carries the run's client token, so a retry after
a lost answer finds the execution it already started.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record, audit_record_many
from cloud import policies
from cloud.client import CloudClient
from cloud.errors import CloudError
from core.crypto import decrypt_secret
from delegations.models import (
    NAMED_SCOPES,
    CloudAccount,
    Delegation,
)
from delegations.models.lifecycle import DESIRED_PRESENT_STATUSES
from delegations.outbox import outbox_enqueue_reconcile
from runbooks import oos_template as tpl
from runbooks import selectors
from runbooks.audit_trail import record_run_event
from runbooks.dispatch import dispatch_follow
from runbooks.models import (
    FOLLOWED_RUN_STATUSES,
    OosConsent,
    RunbookInstanceResult,
    RunbookRun,
    RunbookTarget,
)
from runbooks.oos_port import OOS_CANCELLED, OOS_FINAL, OOS_SUCCESS, OosPort

logger = logging.getLogger(__name__)
S = RunbookRun.Status


def run_spec(run: RunbookRun) -> tpl.RunSpec:
    """The run's choices as the template functions take them (the command decrypted here, for
    the one request that needs it)."""
    targets = [
        (tpl.AccountRole(t.account_uid, t.role_name), t.region_id)
        for t in RunbookTarget.objects.filter(run=run).order_by("account_uid", "region_id")
    ]
    return tpl.RunSpec(
        targets=targets,
        command_type=run.command_type,
        command_content=decrypt_secret(run.command_ciphertext),
        working_dir=run.working_dir,
        timeout_seconds=run.timeout_seconds,
        target_type=run.target_type,
        instance_ids=tuple(run.instance_ids),
        tags=tuple((str(k), str(v)) for k, v in run.tags),
        concurrency=run.concurrency,
        max_errors=run.max_errors,
    )


def run_parameters(run: RunbookRun) -> dict[str, Any]:
    return tpl.start_parameters(run_spec(run))


def _poll_seconds() -> float:
    return float(settings.PORTAL_RUNBOOK_POLL_SECONDS)


def run_failed(*, run_id: uuid.UUID | str, error: CloudError) -> None:
    """End a run the cloud refused (or never answered for): OOS would not start it, or it can
    no longer be followed. The error's code and request id go to the run and the audit log."""
    with transaction.atomic():
        run = RunbookRun.objects.select_for_update().get(pk=run_id)
        if run.is_final:
            return
        before = run.status
        run.status = S.FAILED
        run.ended_at = timezone.now()
        run.last_error_code = error.code or error.category.value
        run.status_message = error.message[:2000]
        run.save(update_fields=["status", "ended_at", "last_error_code", "status_message"])
        record_run_event(
            run=run,
            action=(
                AuditAction.RUNBOOK_RUN_FINISHED
                if run.execution_id
                else AuditAction.RUNBOOK_RUN_SUBMIT_FAILED
            ),
            before={"status": before},
            after={"status": run.status},
            metadata={
                "execution_id": run.execution_id,
                "error_code": run.last_error_code,
                "cloud_action": error.action,
                "request_id": error.request_id,
            },
            outcome="failure",
        )


def run_submit(*, run_id: uuid.UUID | str, client: OosPort) -> RunbookRun | None:
    """Start the run's execution in OOS. Transient cloud errors propagate (the task retries);
    a permanent one fails the run."""
    claimed = RunbookRun.objects.filter(
        pk=run_id, status__in=[S.QUEUED, S.SUBMITTING], execution_id=""
    ).update(status=S.SUBMITTING)
    if not claimed:
        return None
    run = RunbookRun.objects.get(pk=run_id)
    parameters = run_parameters(run)
    try:
        version = client.put_template(name=tpl.TEMPLATE_NAME, content=tpl.MULTI_ACCOUNT_TEMPLATE)
        execution = client.start_execution(
            template_name=tpl.TEMPLATE_NAME,
            parameters=parameters,
            client_token=str(run.client_token),
        )
    except CloudError as error:
        if not error.permanent:
            raise
        run_failed(run_id=run_id, error=error)
        return RunbookRun.objects.get(pk=run_id)
    del parameters  # the command's plaintext goes no further
    with transaction.atomic():
        run = RunbookRun.objects.select_for_update().get(pk=run_id)
        cancelled_meanwhile = run.status == S.CANCELLED
        run.execution_id = execution.execution_id
        run.template_version = str(version or "")
        run.oos_status = execution.status
        run.submitted_at = timezone.now()
        run.ended_at = None if cancelled_meanwhile else run.ended_at
        # Cancelled while OOS was starting it: stop what OOS started.
        run.status = S.CANCELLING if cancelled_meanwhile else S.RUNNING
        run.save()
        record_run_event(
            run=run,
            action=AuditAction.RUNBOOK_RUN_SUBMITTED,
            after={"status": run.status},
            metadata={
                "execution_id": run.execution_id,
                "template_name": tpl.TEMPLATE_NAME,
                "template_version": run.template_version,
            },
        )
        transaction.on_commit(lambda: dispatch_follow(run.pk, countdown=_poll_seconds()))
    if cancelled_meanwhile:
        run_cancel_in_cloud(run_id=run.pk, client=client)
    return run


def run_cancel_in_cloud(*, run_id: uuid.UUID | str, client: OosPort) -> bool:
    """CancelExecution for a run being cancelled; the follower sees it end."""
    run = RunbookRun.objects.filter(pk=run_id, status=S.CANCELLING).first()
    if run is None or not run.execution_id:
        return False
    client.cancel_execution(execution_id=run.execution_id)
    return True


def _loop_item_key(loop_item: str | None) -> tuple[str, str] | None:
    """(owner uid, region) of a loop item such as
    `{"OOSAssumeRole": "OOSServiceRole|654321/ecs-admin", "RegionId": "cn-shanghai"}`."""
    if not loop_item:
        return None
    try:
        item = json.loads(loop_item) if isinstance(loop_item, str) else loop_item
        chain = str(item["OOSAssumeRole"])
        uid = chain.split("|", 1)[1].split("/", 1)[0]
        return uid, str(item["RegionId"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def results_due(run: RunbookRun) -> bool:
    """Whether a results interval has begun since the last poll (counted from the start)."""
    if run.submitted_at is None or run.last_polled_at is None:
        return True
    interval = max(float(settings.PORTAL_RUNBOOK_RESULTS_SECONDS), 0.001)
    now = timezone.now()
    last = (run.last_polled_at - run.submitted_at).total_seconds() // interval
    return (now - run.submitted_at).total_seconds() // interval != last


@dataclass(frozen=True)
class FollowReport:
    status: str
    more: bool


def _record_results(run: RunbookRun, tasks: list[Any], outcomes: list[Any]) -> None:
    targets = {(t.account_uid, t.region_id): t for t in RunbookTarget.objects.filter(run=run)}
    for task in tasks:
        key = _loop_item_key(getattr(task, "loop_item", None))
        target = targets.get(key) if key else None
        if target is None:
            continue
        changed = (target.status, target.child_execution_id) != (
            task.status,
            task.child_execution_id or "",
        )
        if changed:
            target.status = task.status
            target.child_execution_id = task.child_execution_id or ""
            target.save(update_fields=["status", "child_execution_id"])
    limit = RunbookInstanceResult.OUTPUT_MAX_CHARS
    # One read of what is stored and two bulk writes: a fleet run reports hundreds of
    # instances at once, and a row-by-row upsert would cost the follower seconds per poll.
    stored = {
        (result.target_id, result.instance_id): result
        for result in RunbookInstanceResult.objects.filter(run=run)
    }
    fields = ("status", "exit_code", "output", "child_execution_id")
    new: dict[tuple[Any, str], RunbookInstanceResult] = {}
    updated: list[RunbookInstanceResult] = []
    for outcome in outcomes:
        target = targets.get((outcome.account_uid, outcome.region_id))
        if target is None:
            continue  # OOS reported an account and region the run never asked for
        values = {
            "status": outcome.status,
            "exit_code": outcome.exit_code,
            "output": (outcome.output or "")[:limit],
            "child_execution_id": outcome.child_execution_id or "",
        }
        result_key = (target.pk, outcome.instance_id)
        existing = stored.get(result_key)
        if existing is None:
            new[result_key] = RunbookInstanceResult(
                run=run, target=target, instance_id=outcome.instance_id, **values
            )
        elif any(getattr(existing, name) != values[name] for name in fields):
            for name in fields:
                setattr(existing, name, values[name])
            existing.updated_at = timezone.now()  # bulk_update skips auto_now
            updated.append(existing)
    RunbookInstanceResult.objects.bulk_create(new.values())
    RunbookInstanceResult.objects.bulk_update(updated, [*fields, "updated_at"])


def _target_outcome(target: RunbookTarget, results: list[RunbookInstanceResult]) -> str:
    if target.status:
        return target.status
    if results and all(r.status == OOS_SUCCESS for r in results):
        return OOS_SUCCESS
    return "NotRun"


def _finish(run_id: uuid.UUID | str, *, oos_status: str, message: str) -> RunbookRun:
    with transaction.atomic():
        run = RunbookRun.objects.select_for_update().get(pk=run_id)
        if run.is_final:
            return run
        before = run.status
        run.status = {OOS_SUCCESS: S.SUCCEEDED, OOS_CANCELLED: S.CANCELLED}.get(
            oos_status, S.FAILED
        )
        run.oos_status = oos_status
        run.status_message = message[:2000]
        run.ended_at = timezone.now()
        run.save(update_fields=["status", "oos_status", "status_message", "ended_at"])
        records: list[dict[str, Any]] = []
        for view in selectors.run_targets(run):
            target = view.target
            records.append(
                {
                    "action": AuditAction.RUNBOOK_TARGET_FINISHED,
                    "organisation": target.owner,
                    "related_organisations": [run.partner],
                    "target": run,
                    "target_label": f"{run} in {target.account_uid}/{target.region_id}",
                    "metadata": {
                        "execution_id": run.execution_id,
                        "child_execution_id": target.child_execution_id,
                        "account_uid": target.account_uid,
                        "region_id": target.region_id,
                        "role_name": target.role_name,
                        "oos_status": _target_outcome(target, view.results),
                        "instances": [
                            {
                                "instance_id": r.instance_id,
                                "status": r.status,
                                "exit_code": r.exit_code,
                            }
                            for r in view.results
                        ],
                    },
                    "outcome": "success"
                    if _target_outcome(target, view.results) == OOS_SUCCESS
                    else "failure",
                }
            )
        audit_record_many(records)
        record_run_event(
            run=run,
            action=AuditAction.RUNBOOK_RUN_FINISHED,
            before={"status": before},
            after={"status": run.status},
            metadata={"execution_id": run.execution_id, "oos_status": oos_status},
            outcome="success" if run.status == S.SUCCEEDED else "failure",
        )
        return run


def run_follow(
    *, run_id: uuid.UUID | str, client: OosPort, read_results: bool | None = None
) -> FollowReport:
    """Read the execution, its loop items and every instance's outcome; store them; end the run
    when OOS says it ended. `more` says whether to look again."""
    run = RunbookRun.objects.filter(pk=run_id).first()
    if run is None or run.status not in FOLLOWED_RUN_STATUSES or not run.execution_id:
        return FollowReport(status=run.status if run else "gone", more=False)
    execution = client.get_execution(execution_id=run.execution_id)
    tasks = client.list_task_executions(execution_id=run.execution_id)
    ended = execution.status in OOS_FINAL
    # Every instance's outcome walks the whole tree of child executions (a request per child):
    # read it at the end, and while running only every PORTAL_RUNBOOK_RESULTS_SECONDS, so the
    # live page moves without the follower loading OOS (and the run) with each poll.
    outcomes = (
        client.instance_results(execution_id=run.execution_id)
        if ended or (results_due(run) if read_results is None else read_results)
        else []
    )
    with transaction.atomic():
        _record_results(run, tasks, outcomes)
        RunbookRun.objects.filter(pk=run.pk).update(
            last_polled_at=timezone.now(), oos_status=execution.status
        )
    if ended:
        run = _finish(run.pk, oos_status=execution.status, message=execution.status_message or "")
        return FollowReport(status=run.status, more=False)
    return FollowReport(status=run.status, more=True)


# --- OOSServiceRole in the partner's account --------------------------------------------------
def _oos_trust_added(document: str) -> dict[str, Any] | None:
    """The role's trust policy with OOS admitted, or None when it already is (every other
    principal kept as it was)."""
    principals = policies.trust_policy_principals(document)
    if tpl.OOS_SERVICE_PRINCIPAL in principals.service:
        return None
    canonical = policies.canonical_policy(document, trust=True)
    statements = list(canonical["Statement"])
    statements.append(
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": [tpl.OOS_SERVICE_PRINCIPAL]},
        }
    )
    return {"Version": "1", "Statement": statements}


def oos_service_role_ensure(
    *, consent_id: uuid.UUID | str, client: CloudClient
) -> OosConsent | None:
    """Create or repair `OOSServiceRole` in the partner's account: trusted by oos.aliyuncs.com,
    holding AliyunSTSAssumeRoleAccess. Then named-people grants of the partner admit it."""
    consent = OosConsent.objects.filter(pk=consent_id).select_related("partner").first()
    if consent is None or consent.status == OosConsent.Status.READY:
        return consent
    name = tpl.OOS_SERVICE_ROLE
    calls: list[str] = []
    try:
        role = client.get_role(name)
        if role is None:
            client.create_role(
                name,
                trust_document=policies.build_trust_policy(
                    [], services=[tpl.OOS_SERVICE_PRINCIPAL]
                ),
                description=policies.description_with_marker(
                    "OOS runs the partner's runbooks in owner accounts through this role."
                ),
                max_session_duration=3600,
            )
            calls.append("CreateRole")
        else:
            wanted = _oos_trust_added(role.trust_document)
            if wanted is not None:
                client.update_role_trust(name, wanted)
                calls.append("UpdateRole")
        attached = {(p.policy_type, p.policy_name) for p in client.list_policies_for_role(name)}
        if ("System", tpl.STS_ASSUME_ROLE_POLICY) not in attached:
            client.attach_policy_to_role(
                role_name=name, policy_type="System", policy_name=tpl.STS_ASSUME_ROLE_POLICY
            )
            calls.append("AttachPolicyToRole")
    except CloudError as error:
        if not error.permanent:
            raise
        with transaction.atomic():
            consent = OosConsent.objects.select_for_update().get(pk=consent_id)
            consent.status = OosConsent.Status.FAILED
            consent.last_error_code = error.code or error.category.value
            consent.last_error_message = error.message[:2000]
            consent.save()
            audit_record(
                action=AuditAction.RUNBOOK_OOS_ROLE_FAILED,
                organisation=consent.partner,
                target=consent,
                metadata={"error_code": consent.last_error_code, "cloud_action": error.action},
                outcome="failure",
            )
        return consent
    with transaction.atomic():
        consent = OosConsent.objects.select_for_update().get(pk=consent_id)
        consent.status = OosConsent.Status.READY
        consent.ready_at = timezone.now()
        consent.last_error_code = consent.last_error_message = ""
        consent.save()
        CloudAccount.objects.filter(organisation=consent.partner, is_active=True).update(
            oos_service_role_ready_at=consent.ready_at
        )
        audit_record(
            action=AuditAction.RUNBOOK_OOS_ROLE_READY,
            organisation=consent.partner,
            target=consent,
            metadata={"role_arn": policies.role_arn(consent.account_uid, name), "calls": calls},
        )
        # Named-people grants admit the partner's OOSServiceRole from now on.
        named = Delegation.objects.filter(
            partner=consent.partner,
            status__in=DESIRED_PRESENT_STATUSES,
            trust_scope__in=NAMED_SCOPES,
        ).select_related("managed_role")
        for delegation in named:
            outbox_enqueue_reconcile(managed_role=delegation.managed_role)
    return consent
