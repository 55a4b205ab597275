"""Runbook runs: consent, start, the owner's four eyes, cancel. Every change locks its row,
writes its audit event in the same transaction and hands cloud work to the worker on commit
(tasks take the run's id: the command never travels in a task's arguments)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Membership, Organisation, User
from audit.actions import AuditAction
from audit.services import audit_record
from core.crypto import encrypt_secret
from delegations.delegation_audit import delegation_audit_record
from delegations.models import CloudAccount, Delegation
from runbooks import oos_template as tpl
from runbooks import selectors
from runbooks.audit_trail import owner_scope, record_run_event
from runbooks.dispatch import dispatch_cancel, dispatch_consent, dispatch_submit
from runbooks.instance_check import InstanceLookup, cloud_instance_lookup, instances_check
from runbooks.models import (
    FINAL_RUN_STATUSES,
    OosConsent,
    RunApproval,
    RunApprovalRequirement,
    RunbookRun,
    RunbookTarget,
)

S = RunbookRun.Status


@dataclass(frozen=True)
class RunChoice:
    """What a partner person asks for: which grants x regions, what to run, how fast."""

    targets: Sequence[tuple[Delegation, str]]
    command_type: str
    command_content: str
    timeout_seconds: int
    target_type: str
    working_dir: str = ""
    instance_ids: Sequence[str] = ()
    tags: Sequence[tuple[str, str]] = ()
    concurrency: int = 10
    max_errors: int = 0
    title: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict, compare=False)


def _membership(user: User, organisation: Organisation) -> Membership | None:
    return Membership.objects.filter(user=user, organisation=organisation).first()


def _is_admin(user: User, organisation: Organisation) -> bool:
    membership = _membership(user, organisation)
    return membership is not None and membership.role == Membership.Role.ADMIN


# --- the partner admin's consent --------------------------------------------------------------
@transaction.atomic
def oos_consent_give(*, partner: Organisation, given_by: User) -> OosConsent:
    """Record the partner admin's consent (once) and have the worker ensure OOSServiceRole in
    the partner's account; giving it again after a failure retries the setup."""
    if not partner.is_partner:
        raise ValidationError(_("Only a partner organisation runs runbooks."))
    if not _is_admin(given_by, partner):
        raise PermissionDenied(_("Only a partner admin can allow runbooks."))
    account = CloudAccount.objects.filter(organisation=partner, is_active=True).first()
    if account is None:
        raise ValidationError(_("Connect your cloud account first: OOS runs in it."))
    consent = OosConsent.objects.select_for_update().filter(partner=partner).first()
    if consent is not None and consent.status != OosConsent.Status.FAILED:
        return consent  # a double click, or already set up
    if consent is None:
        consent = OosConsent.objects.create(
            partner=partner, account_uid=account.account_uid, given_by=given_by
        )
    else:
        consent.status = OosConsent.Status.PENDING
        consent.given_by = given_by
        consent.given_at = timezone.now()
        consent.last_error_code = consent.last_error_message = ""
        consent.save()
    audit_record(
        action=AuditAction.RUNBOOK_CONSENT_GIVEN,
        actor=given_by,
        organisation=partner,
        target=consent,
        metadata={
            "account_uid": account.account_uid,
            "role_name": tpl.OOS_SERVICE_ROLE,
            "trusted_service": tpl.OOS_SERVICE_PRINCIPAL,
            "policy": tpl.STS_ASSUME_ROLE_POLICY,
        },
    )
    transaction.on_commit(lambda: dispatch_consent(consent.pk))
    return consent


# --- the owner's rule: runs under a grant need approval ---------------------------------------
@transaction.atomic
def run_approval_requirement_set(*, delegation: Delegation, required: bool, set_by: User) -> bool:
    """Require (or stop requiring) an owner admin's approval for each run under a grant.
    Returns whether anything changed."""
    if not _is_admin(set_by, delegation.owner):
        raise PermissionDenied(_("Only the owner's admins decide which runs need approval."))
    delegation = Delegation.objects.select_for_update().get(pk=delegation.pk)
    existing = RunApprovalRequirement.objects.filter(delegation=delegation).first()
    if required == (existing is not None):
        return False
    if required:
        RunApprovalRequirement.objects.create(delegation=delegation, set_by=set_by)
    elif existing is not None:
        existing.delete()
    delegation_audit_record(
        delegation,
        AuditAction.RUNBOOK_APPROVAL_RULE_SET,
        actor=set_by,
        before={"runs_need_approval": not required},
        after={"runs_need_approval": required},
    )
    return True


# --- starting a run ---------------------------------------------------------------------------
def validate_run_choice(
    choice: RunChoice, *, allowed: dict[Delegation, frozenset[str]]
) -> dict[str, list[str]]:
    """Every reason the run cannot start, by form field (empty when it can). `allowed`: the
    grants the person may run under and the regions each covers."""
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if not choice.targets:
        refuse("targets", _("Choose at least one account and region."))
    allowed_by_pk = {delegation.pk: regions for delegation, regions in allowed.items()}
    for delegation, region in choice.targets:
        if region not in allowed_by_pk.get(delegation.pk, frozenset()):
            refuse(
                "targets",
                _("Account %(uid)s in %(region)s is not covered by your active grants.")
                % {"uid": delegation.managed_role.cloud_account.account_uid, "region": region},
            )
    if len(choice.targets) > tpl.MAX_LOOP_ITEMS:
        refuse("targets", _("OOS loops over at most 1,000 accounts and regions."))
    if choice.command_type not in tpl.COMMAND_TYPES:
        refuse("command_type", _("Choose a shell or PowerShell script."))
    content_bytes = len(choice.command_content.encode("utf-8"))
    if not choice.command_content.strip():
        refuse("command_content", _("Enter the command to run."))
    elif content_bytes >= tpl.MAX_COMMAND_BYTES:
        refuse("command_content", _("The command must be smaller than 64 KiB."))
    if not tpl.MIN_TIMEOUT_SECONDS <= choice.timeout_seconds <= tpl.MAX_TIMEOUT_SECONDS:
        refuse("timeout_seconds", _("The timeout is between 10 and 86,400 seconds."))
    if not tpl.MIN_CONCURRENCY <= choice.concurrency <= tpl.MAX_CONCURRENCY:
        refuse("concurrency", _("Concurrency is between 1 and 100."))
    if choice.max_errors < 0:
        refuse("max_errors", _("MaxErrors cannot be negative."))
    if choice.target_type not in tpl.TARGET_TYPES:
        refuse("target_type", _("Choose which instances to run on."))
    elif choice.target_type == tpl.TARGET_INSTANCES and not choice.instance_ids:
        refuse("instance_ids", _("List at least one instance id."))
    elif choice.target_type == tpl.TARGET_TAGS and not choice.tags:
        refuse("tags", _("Give at least one tag (key=value)."))
    return errors


def _dedupe(targets: Sequence[tuple[Delegation, str]]) -> list[tuple[Delegation, str]]:
    seen: set[tuple[str, str]] = set()
    result = []
    for delegation, region in targets:
        key = (delegation.managed_role.cloud_account.account_uid, region)
        if key in seen:
            continue  # one account and region once, even through two grants
        seen.add(key)
        result.append((delegation, region))
    return result


def _run_metadata(run: RunbookRun) -> dict[str, Any]:
    return {
        "command_type": run.command_type,
        "command_sha256": run.command_sha256,
        "command_bytes": run.command_bytes,
        "target_type": run.target_type,
        "instance_ids": list(run.instance_ids),
        "concurrency": run.concurrency,
        "max_errors": run.max_errors,
        "timeout_seconds": run.timeout_seconds,
    }


def run_start(
    *,
    partner: Organisation,
    started_by: User,
    choice: RunChoice,
    instance_lookup: InstanceLookup | None = None,
) -> RunbookRun:
    """Start a run (or put it before the owners whose grants require approval). Raises
    ValidationError (by field) and starts nothing when anything is wrong, including instance
    ids that are not running in the chosen accounts x regions (asked of ECS through
    `instance_lookup`, by default the partner's key through each grant's owner role)."""
    if _membership(started_by, partner) is None or not partner.is_partner:
        raise PermissionDenied(_("Only the partner's own people start its runbooks."))
    consent = OosConsent.objects.filter(partner=partner).first()
    if consent is None or consent.status != OosConsent.Status.READY:
        raise ValidationError(
            _("A partner admin has to allow runbooks first (OOSServiceRole in your account).")
        )
    account = CloudAccount.objects.filter(organisation=partner, is_active=True).first()
    if account is None:
        raise ValidationError(_("Your organisation's cloud account is not connected."))
    allowed = selectors.runnable_grants(user=started_by, partner=partner)
    errors = validate_run_choice(choice, allowed=allowed)
    if errors:
        raise ValidationError(errors)
    targets = _dedupe(choice.targets)
    running_in: dict[tuple[str, str], list[str]] = {}
    if choice.target_type == tpl.TARGET_INSTANCES:
        check = instances_check(
            targets=targets,
            instance_ids=choice.instance_ids,
            lookup=instance_lookup or cloud_instance_lookup(account),
        )
        if check.problems:
            raise ValidationError({"instance_ids": check.problems})
        running_in = check.running_in
    with transaction.atomic():
        return _run_create(
            partner=partner,
            account=account,
            started_by=started_by,
            choice=choice,
            targets=targets,
            running_in=running_in,
        )


def _run_create(
    *,
    partner: Organisation,
    account: CloudAccount,
    started_by: User,
    choice: RunChoice,
    targets: list[tuple[Delegation, str]],
    running_in: dict[tuple[str, str], list[str]],
) -> RunbookRun:
    needing = {
        delegation.owner_id
        for delegation, _region in targets
        if RunApprovalRequirement.objects.filter(delegation=delegation).exists()
    }
    content = choice.command_content
    run = RunbookRun.objects.create(
        partner=partner,
        partner_account_uid=account.account_uid,
        started_by=started_by,
        title=choice.title.strip()[:200],
        command_type=choice.command_type,
        command_ciphertext=encrypt_secret(content),
        command_sha256=hashlib.sha256(content.encode("utf-8")).hexdigest(),
        command_bytes=len(content.encode("utf-8")),
        working_dir=choice.working_dir,
        timeout_seconds=choice.timeout_seconds,
        target_type=choice.target_type,
        instance_ids=list(choice.instance_ids),
        tags=[list(tag) for tag in choice.tags],
        concurrency=choice.concurrency,
        max_errors=choice.max_errors,
        status=S.AWAITING_APPROVAL if needing else S.QUEUED,
    )
    RunbookTarget.objects.bulk_create(
        RunbookTarget(
            run=run,
            delegation=delegation,
            owner_id=delegation.owner_id,
            account_uid=delegation.managed_role.cloud_account.account_uid,
            role_name=delegation.managed_role.role_name,
            region_id=region,
            instance_ids=running_in.get(
                (delegation.managed_role.cloud_account.account_uid, region), []
            ),
        )
        for delegation, region in targets
    )
    RunApproval.objects.bulk_create(RunApproval(run=run, owner_id=owner) for owner in needing)
    record_run_event(
        run=run,
        action=AuditAction.RUNBOOK_RUN_STARTED,
        actor=started_by,
        after={"status": run.status},
        metadata=_run_metadata(run),
    )
    if run.status == S.QUEUED:
        transaction.on_commit(lambda: dispatch_submit(run.pk))
    return run


def _lock(run: RunbookRun) -> RunbookRun:
    return RunbookRun.objects.select_for_update().get(pk=run.pk)


# --- four eyes: the owner's decision ----------------------------------------------------------
@transaction.atomic
def run_decide(
    *,
    run: RunbookRun,
    owner: Organisation,
    decided_by: User,
    approve: bool,
    with_mfa: bool,
    note: str = "",
) -> RunbookRun:
    """An owner admin approves or rejects a run waiting for them. The run starts once no owner
    is pending; one rejection ends it."""
    if not _is_admin(decided_by, owner):
        raise PermissionDenied(_("Only the owner's admins decide runs."))
    run = _lock(run)
    approval = RunApproval.objects.select_for_update().filter(run=run, owner=owner).first()
    if approval is None:
        raise PermissionDenied(_("This run does not wait for your organisation."))
    if approval.status != RunApproval.Status.PENDING or run.status != S.AWAITING_APPROVAL:
        return run  # decided already (a double click, or another admin)
    if decided_by.pk == run.started_by_id:
        raise PermissionDenied(_("The person who started a run cannot approve it."))
    approval.status = RunApproval.Status.APPROVED if approve else RunApproval.Status.REJECTED
    approval.decided_by = decided_by
    approval.decided_at = timezone.now()
    approval.with_mfa = with_mfa
    approval.note = note[:2000]
    approval.save()
    before = run.status
    if not approve:
        run.status = S.REJECTED
        run.ended_at = timezone.now()
    elif not RunApproval.objects.filter(run=run, status=RunApproval.Status.PENDING).exists():
        run.status = S.QUEUED
    run.save(update_fields=["status", "ended_at"])
    audit_record(
        action=AuditAction.RUNBOOK_RUN_APPROVED if approve else AuditAction.RUNBOOK_RUN_REJECTED,
        actor=decided_by,
        organisation=owner,
        related_organisations=[run.partner],
        target=run,
        before={"status": before},
        after={"status": run.status},
        metadata={"with_mfa": with_mfa, "note": approval.note, **owner_scope(run, owner)},
    )
    if run.status == S.QUEUED:
        transaction.on_commit(lambda: dispatch_submit(run.pk))
    return run


# --- cancel / stop ----------------------------------------------------------------------------
@transaction.atomic
def run_cancel(*, run: RunbookRun, cancelled_by: User) -> RunbookRun:
    """Stop a run: before OOS has it, it simply ends; once running, the worker asks OOS to
    cancel (CancelExecution) and follows it to Cancelled. The partner's people who may run it
    and the admins of an owner it touches may stop it."""
    run = _lock(run)
    if run.status in FINAL_RUN_STATUSES or run.status == S.CANCELLING:
        return run
    actor_organisation = selectors.acting_organisation(run=run, user=cancelled_by)
    if actor_organisation is None or not selectors.may_cancel(
        run=run, user=cancelled_by, organisation=actor_organisation
    ):
        raise PermissionDenied(_("You cannot stop this run."))
    before = run.status
    run.cancel_requested_by = cancelled_by
    run.cancel_requested_at = timezone.now()
    if run.execution_id:
        run.status = S.CANCELLING
    else:
        # Not in OOS yet: the submit task finds it cancelled and starts nothing.
        run.status = S.CANCELLED
        run.ended_at = timezone.now()
        RunApproval.objects.filter(run=run, status=RunApproval.Status.PENDING).delete()
    run.save(update_fields=["status", "cancel_requested_by", "cancel_requested_at", "ended_at"])
    record_run_event(
        run=run,
        action=AuditAction.RUNBOOK_RUN_CANCEL_REQUESTED,
        actor=cancelled_by,
        actor_organisation=actor_organisation,
        before={"status": before},
        after={"status": run.status},
        metadata={"execution_id": run.execution_id},
    )
    if run.status == S.CANCELLING:
        transaction.on_commit(lambda: dispatch_cancel(run.pk))
    return run
