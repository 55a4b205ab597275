"""Partner runbooks: a command run through OOS over owner accounts and regions.

A run's targets are the delegations it runs under (each one owner account through its managed
role) x the regions chosen; a fleet grant contributes its delegations the same way. The command
content is stored encrypted (`core.crypto`): it may hold what its author considers secret, and
it never leaves the database except towards OOS, the export and the run's own pages.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import account_uid_field, optional_person_field
from core.db import range_constraint
from delegations.models import Delegation


class OosConsent(models.Model):
    """A partner admin's one-time consent that the portal puts `OOSServiceRole` into the
    partner's own account (trusted by OOS, holding AliyunSTSAssumeRoleAccess), and where the
    worker stands with it."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Being set up")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.OneToOneField(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="oos_consent"
    )
    account_uid = account_uid_field()
    given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    given_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    ready_at = models.DateTimeField(null=True, blank=True)
    last_error_code = models.CharField(max_length=128, blank=True)
    last_error_message = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"OOSServiceRole consent of {self.partner}"


class RunApprovalRequirement(models.Model):
    """An owner admin's rule: every run under this delegation waits for an owner admin's
    approval (four eyes: a partner person starts, an owner admin approves)."""

    delegation = models.OneToOneField(
        Delegation, on_delete=models.CASCADE, related_name="run_approval_requirement"
    )
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Runs under {self.delegation_id} need approval"


class RunbookRun(models.Model):
    class Status(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", _("Waiting for approval")
        QUEUED = "queued", _("Queued")
        SUBMITTING = "submitting", _("Starting in OOS")
        RUNNING = "running", _("Running")
        CANCELLING = "cancelling", _("Cancelling")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        REJECTED = "rejected", _("Rejected")

    class CommandType(models.TextChoices):
        SHELL = "RunShellScript", _("Shell script (Linux)")
        POWERSHELL = "RunPowerShellScript", _("PowerShell script (Windows)")

    class TargetType(models.TextChoices):
        ALL = "All", _("All running instances")
        INSTANCES = "ResourceIds", _("These instance ids")
        TAGS = "Tags", _("Instances with these tags")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="runbook_runs"
    )
    # The executing account: the partner's, whose connected key starts the execution.
    partner_account_uid = account_uid_field()
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    title = models.CharField(max_length=200, blank=True)

    command_type = models.CharField(max_length=32, choices=CommandType.choices)
    # core.crypto ciphertext of the command; `command_sha256` and `command_bytes` identify it
    # in the audit log without its content.
    command_ciphertext = models.TextField(editable=False)
    command_sha256 = models.CharField(max_length=64, editable=False)
    command_bytes = models.PositiveIntegerField(default=0, editable=False)
    working_dir = models.CharField(max_length=255, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=600)
    target_type = models.CharField(max_length=16, choices=TargetType.choices)
    instance_ids = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=list, blank=True)  # [[key, value], ...]
    concurrency = models.PositiveSmallIntegerField(default=10)
    max_errors = models.PositiveSmallIntegerField(default=0)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    # Sent as StartExecution's ClientToken: a duplicate submission starts nothing new.
    client_token = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    execution_id = models.CharField(max_length=64, blank=True, db_index=True)
    template_version = models.CharField(max_length=32, blank=True)
    oos_status = models.CharField(max_length=20, blank=True)
    status_message = models.TextField(blank=True)
    last_error_code = models.CharField(max_length=128, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = optional_person_field(on_delete=models.PROTECT)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["partner", "-created_at"], name="runbookrun_partner_created"),
            models.Index(fields=["status"], name="runbookrun_status"),
        ]
        constraints = [
            range_constraint("concurrency", 1, 100, name="runbookrun_concurrency_range"),
            range_constraint("timeout_seconds", 10, 86400, name="runbookrun_timeout_range"),
        ]

    def __str__(self) -> str:
        return self.title or f"Run {str(self.pk)[:8]}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_RUN_STATUSES

    @property
    def can_cancel(self) -> bool:
        return self.status in CANCELLABLE_RUN_STATUSES


S = RunbookRun.Status
FINAL_RUN_STATUSES = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.REJECTED})
CANCELLABLE_RUN_STATUSES = frozenset({S.AWAITING_APPROVAL, S.QUEUED, S.SUBMITTING, S.RUNNING})
# The worker follows the execution in these.
FOLLOWED_RUN_STATUSES = frozenset({S.RUNNING, S.CANCELLING})


class RunbookTarget(models.Model):
    """One owner account (through one delegation's role) x one region of a run, and what OOS
    reports for that loop item."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(RunbookRun, on_delete=models.CASCADE, related_name="targets")
    delegation = models.ForeignKey(Delegation, on_delete=models.PROTECT, related_name="+")
    owner = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    account_uid = account_uid_field()
    role_name = models.CharField(max_length=64)
    region_id = models.CharField(max_length=32)
    # A run by instance ids: those of the partner's ids found running here when it started.
    # An owner is shown these, never the run's whole list (it may name other owners'
    # instances).
    instance_ids = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, blank=True)
    child_execution_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["account_uid", "region_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "account_uid", "region_id"], name="runbooktarget_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_uid}/{self.region_id}"


class RunbookInstanceResult(models.Model):
    """One instance's outcome in one target, as the worker last read it from OOS."""

    OUTPUT_MAX_CHARS = 24_000

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(RunbookRun, on_delete=models.CASCADE, related_name="instance_results")
    target = models.ForeignKey(
        RunbookTarget, on_delete=models.CASCADE, related_name="instance_results"
    )
    instance_id = models.CharField(max_length=64)
    status = models.CharField(max_length=20)
    exit_code = models.IntegerField(null=True, blank=True)
    output = models.TextField(blank=True)
    child_execution_id = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["target__account_uid", "target__region_id", "instance_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "instance_id"], name="runbookinstanceresult_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.instance_id}: {self.status}"


class RunApproval(models.Model):
    """One owner's decision on a run that needs it (one row per owner whose grant requires
    approval; the run starts once none is pending)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(RunbookRun, on_delete=models.CASCADE, related_name="approvals")
    owner = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_by = optional_person_field(on_delete=models.PROTECT)
    decided_at = models.DateTimeField(null=True, blank=True)
    with_mfa = models.BooleanField(default=False)
    note = models.TextField(max_length=2000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "owner"], name="runapproval_one_per_owner")
        ]

    def __str__(self) -> str:
        return f"{self.owner} on {self.run_id}: {self.status}"
