"""The partner side: which of a partner's people use a delegation, the AssumeRole policy the
portal manages for their RAM users in the partner's account, the STS credentials people took
(never the secret), their credentials-URI keys (a hash only) and the owner's emergency
cut-off. State changes happen in `delegations.partner.services` / `.credentials`.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import optional_person_field
from core.db import ReportsChange
from delegations.models.connection import CloudAccount
from delegations.models.lifecycle import Delegation
from delegations.models.worker import LastErrorModel, LeasedModel, ManagedRole


class StaffRamUserLink(models.Model):
    """A partner staff member's RAM user in the partner's connected account: the console
    identity they switch role from. Checked against ListUsers when it is made."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="staff_ram_links"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    cloud_account = models.ForeignKey(
        CloudAccount, on_delete=models.PROTECT, related_name="staff_ram_links"
    )
    ram_user_name = models.CharField(max_length=64)
    linked_by = optional_person_field(on_delete=models.SET_NULL)
    linked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ram_user_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "user"], name="stafframuserlink_one_per_person"
            ),
            # Two people on one RAM user would make the cloud log name the wrong person.
            models.UniqueConstraint(
                "cloud_account", Lower("ram_user_name"), name="stafframuserlink_one_person_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} as {self.ram_user_name}"


# The assignments whose credentials carry no session policy (`StaffAssignment.is_narrowed`
# false): the only ones a person's own RAM user may be granted the role for.
NOT_NARROWED = Q(session_policy_kind="", session_policy="")


class StaffAssignment(models.Model):
    """A partner admin's choice that one of their staff may use one active delegation,
    optionally narrowed by a session policy every credential for them carries.

    A narrowed person uses the role only through credentials the portal issues: only
    AssumeRole's Policy parameter carries a session policy, and switching role in the console
    or AssumeRole with their own AccessKey would not, so their RAM user is never granted it.

    Ending an assignment keeps the row (who could act, and when, is part of the record)."""

    class SessionPolicyKind(models.TextChoices):
        NONE = "", _("The role's full permissions")
        READ_ONLY = "read_only", _("Read-only ECS")
        ECS_INSTANCES = "ecs_instances", _("Only listed ECS instances")
        CUSTOM = "custom", _("Custom session policy")

    class EndReason(models.TextChoices):
        NONE = "", "—"
        UNASSIGNED = "unassigned", _("Unassigned by an admin")
        MEMBER_REMOVED = "member_removed", _("Removed from the organisation")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delegation = models.ForeignKey(
        Delegation, on_delete=models.PROTECT, related_name="staff_assignments"
    )
    # The delegation's partner, copied so tenancy filters need no join.
    partner = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="staff_assignments"
    )
    session_policy_kind = models.CharField(
        max_length=16, choices=SessionPolicyKind.choices, blank=True, default=""
    )
    # The minified document sent as AssumeRole's Policy (validated by parse_session_policy).
    session_policy = models.TextField(blank=True, max_length=2048)
    ecs_instance_ids = models.JSONField(default=list, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    assigned_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = optional_person_field(on_delete=models.PROTECT)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True, default="")

    class Meta:
        ordering = ["-assigned_at"]
        indexes = [
            models.Index(fields=["user", "ended_at"], name="staffassignment_user_open"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["delegation", "user"],
                condition=Q(ended_at__isnull=True),
                name="staffassignment_one_open_per_person",
            ),
            models.CheckConstraint(
                condition=Q(session_policy_kind__in=["", "read_only", "ecs_instances", "custom"]),
                name="staffassignment_policy_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.delegation_id}"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    @property
    def is_narrowed(self) -> bool:
        """Whether credentials for this person carry a session policy (`NOT_NARROWED` is the
        same rule as a query filter)."""
        return bool(self.session_policy_kind or self.session_policy)


class PartnerUserPolicy(LeasedModel, LastErrorModel):
    """The one custom policy (`portal-assume-<user>`) the portal manages for one RAM user in a
    partner's account: `sts:AssumeRole` on exactly the roles that user may use now.

    The lease and version fields are `ManagedRole`'s (`LeasedModel`, the same lease and
    outbox code); the last error is recorded as a delegation's is (`LastErrorModel`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cloud_account = models.ForeignKey(
        CloudAccount, on_delete=models.PROTECT, related_name="partner_user_policies"
    )
    ram_user_name = models.CharField(max_length=64)
    policy_name = models.CharField(max_length=128)
    # The role ARNs the cloud showed in the policy after the last verified run.
    applied_role_arns = models.JSONField(default=list, blank=True)
    policy_attached = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["ram_user_name"]
        constraints = [
            models.UniqueConstraint(
                "cloud_account", Lower("ram_user_name"), name="partneruserpolicy_one_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy_name} for {self.ram_user_name}"


class CredentialsUriToken(models.Model):
    """A personal, revocable, expiring key for the credentials URI of one assignment. Only its
    SHA-256 is stored; the person sees the URL once. Every fetch is authorised afresh."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    assignment = models.ForeignKey(
        StaffAssignment, on_delete=models.PROTECT, related_name="uri_tokens"
    )
    delegation = models.ForeignKey(Delegation, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    partner = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(max_length=8, editable=False)
    label = models.CharField(max_length=100, blank=True)
    # What each fetch asks for; capped again at every fetch by the delegation's time left.
    duration_seconds = models.PositiveIntegerField(default=3600)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = optional_person_field(on_delete=models.SET_NULL)
    last_used_at = models.DateTimeField(null=True, blank=True)
    use_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label or 'Credentials URI'} (…{self.token_hint})"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class CredentialIssuance(models.Model):
    """One set of STS credentials the portal handed to a person. Never the secret or token:
    who, which session name (what the owner's cloud log shows), the AccessKey id and expiry."""

    class Via(models.TextChoices):
        WEB = "web", _("Portal page")
        URI = "uri", _("Credentials URI")
        CONSOLE = "console", _("Console sign-in (federation)")
        API = "api", _("REST API (pap)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delegation = models.ForeignKey(
        Delegation, on_delete=models.PROTECT, related_name="credential_issuances"
    )
    assignment = models.ForeignKey(
        StaffAssignment, on_delete=models.PROTECT, related_name="issuances"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    partner = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    session_name = models.CharField(max_length=64)
    access_key_id = models.CharField(max_length=128)
    expiration = models.DateTimeField()
    duration_seconds = models.PositiveIntegerField()
    via = models.CharField(max_length=8, choices=Via.choices, default=Via.WEB)
    uri_token = models.ForeignKey(
        CredentialsUriToken,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="issuances",
    )
    session_policy_kind = models.CharField(max_length=16, blank=True, default="")
    sts_request_id = models.CharField(max_length=64, blank=True)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-issued_at"]
        indexes = [
            models.Index(fields=["delegation", "expiration"], name="issuance_delegation_expiry"),
            # Activity joins each ActionTrail event's STS key to the person it was issued to.
            models.Index(fields=["access_key_id"], name="issuance_access_key"),
        ]

    def __str__(self) -> str:
        return f"{self.session_name} {self.access_key_id}"


class RoleCutOff(ReportsChange, models.Model):
    """An owner's emergency cut-off: the role's permission policies stay detached (the worker
    plans without them) until the owner lifts it. Detaching stops credentials already issued,
    since the cloud evaluates a role session's permissions when it is used."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    managed_role = models.ForeignKey(ManagedRole, on_delete=models.PROTECT, related_name="cut_offs")
    delegation = models.ForeignKey(Delegation, on_delete=models.PROTECT, related_name="cut_offs")
    reason = models.TextField(max_length=2000)
    cut_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    cut_off_at = models.DateTimeField(default=timezone.now)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = optional_person_field(on_delete=models.PROTECT)

    class Meta:
        ordering = ["-cut_off_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["managed_role"],
                condition=Q(lifted_at__isnull=True),
                name="rolecutoff_one_in_force_per_role",
            ),
        ]

    def __str__(self) -> str:
        return f"Cut-off of {self.managed_role.role_name}"

    @property
    def in_force(self) -> bool:
        return self.lifted_at is None
