"""The worker's records: the RAM roles it manages under a lease, every call it makes to the
cloud (intent written before the call), the outbox of follow-up work, and the drift it finds.

`CloudCall` names its delegations and partner-user policy by string: those models sit on the
floors above (`lifecycle`, `partner`), which build on `ManagedRole`.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import optional_person_field
from cloud import policies
from core.db import exactly_one_set
from delegations.models.catalog import ROLE_NAME_MAX_LENGTH, CatalogRole, validate_role_name
from delegations.models.connection import CloudAccount


class LeasedModel(models.Model):
    """A row a worker converges the cloud to, one worker at a time, under a lease.

    The lock is a lease: a worker claims it with a conditional UPDATE (`locked_until` empty
    or past → set `locked_by`/`locked_until`), so it works on SQLite too and no database
    transaction stays open during cloud calls. The services bump `desired_version` whenever
    the desired state changes; the worker records the version it converged to in
    `applied_version`, so "is there anything left to do" is one compare.
    `delegations.worker.owner_role.RoleLease` is the code that works these fields.
    """

    locked_by = models.CharField(max_length=64, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    desired_version = models.PositiveBigIntegerField(default=0)
    applied_version = models.PositiveBigIntegerField(default=0)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class LastErrorModel(models.Model):
    """The cloud's last refusal of a row the worker converges: its code, message and request
    id as the owner or partner sees them, cleared when the worker succeeds."""

    last_error_code = models.CharField(max_length=128, blank=True)
    last_error_message = models.TextField(max_length=2000, blank=True)
    last_error_request_id = models.CharField(max_length=64, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class ManagedRole(LeasedModel):
    """One RAM role (per cloud account and name) the portal manages, and its lock.

    The lease (see `LeasedModel`) serialises the read-modify-write-verify of the role's
    shared trust policy.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cloud_account = models.ForeignKey(
        CloudAccount, on_delete=models.PROTECT, related_name="managed_roles"
    )
    role_name = models.CharField(max_length=ROLE_NAME_MAX_LENGTH, validators=[validate_role_name])
    # Set on the role of one partner for a catalogue role marked one role per partner
    # (`<role>-<partner alias>`); empty on a role shared by every partner of its catalogue
    # role, which is found by name.
    catalog_role = models.ForeignKey(
        CatalogRole,
        on_delete=models.PROTECT,
        related_name="partner_roles",
        null=True,
        blank=True,
    )
    partner = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )

    # Set once the portal has created the role (its Description carries the portal marker):
    # only such roles are ever deleted by the portal.
    created_by_portal = models.BooleanField(default=False)
    # Every principal ARN the portal has ever managed on this role. A principal in the trust
    # policy that is not here is "not managed here" and is never touched.
    known_principals = models.JSONField(default=list, blank=True)
    # Permission policies ([type, name] pairs) the catalogue role held before an owner edited
    # them away: the worker detaches them, while policies it never managed stay untouched.
    known_policies = models.JSONField(default=list, blank=True)

    # What the cloud had the last time the worker looked (shown to the owner).
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_exists = models.BooleanField(null=True, blank=True)
    # The trust policy document as GetRole returned it (a dict, or the raw JSON string).
    last_seen_trust_policy = models.JSONField(null=True, blank=True)
    # ListPoliciesForRole: [{"type": "System" | "Custom", "name": "..."}, ...]
    last_seen_policies = models.JSONField(default=list, blank=True)
    last_seen_description = models.CharField(max_length=1024, blank=True)
    # Summary of differences found on the last look, e.g. {"missing": [...], "unexpected": [...]}.
    drift = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["role_name"]
        constraints = [
            models.UniqueConstraint(
                "cloud_account", Lower("role_name"), name="managedrole_unique_name_per_account"
            ),
            # One per partner and account: a fleet grant gives the partner its own role in
            # each of the owner's accounts.
            models.UniqueConstraint(
                fields=["catalog_role", "partner", "cloud_account"],
                condition=Q(partner__isnull=False),
                name="managedrole_one_per_partner_account",
            ),
            models.CheckConstraint(
                condition=Q(catalog_role__isnull=True, partner__isnull=True)
                | Q(catalog_role__isnull=False, partner__isnull=False),
                name="managedrole_partner_role_names_both",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role_name} in {self.cloud_account.account_uid}"

    @property
    def role_arn(self) -> str:
        return policies.role_arn(self.cloud_account.account_uid, self.role_name)


class CloudCall(models.Model):
    """One call to Alibaba Cloud. For a mutating call the row is written (the intent) before the
    call and completed after it, so a crash between the two leaves an `unknown` outcome the
    reconciler resolves instead of an unrecorded change."""

    class Outcome(models.TextChoices):
        PENDING = "pending", _("In progress")
        OK = "ok", _("OK")
        ERROR = "error", _("Error")
        UNKNOWN = "unknown", _("Unknown")

    id = models.BigAutoField(primary_key=True)
    # What the call was about: a role in an owner's account, or (partner side) the policy the
    # portal manages for one RAM user in a partner's account. Exactly one is set.
    managed_role = models.ForeignKey(
        ManagedRole, on_delete=models.PROTECT, related_name="cloud_calls", null=True, blank=True
    )
    partner_user_policy = models.ForeignKey(
        "PartnerUserPolicy",
        on_delete=models.PROTECT,
        related_name="cloud_calls",
        null=True,
        blank=True,
    )
    # The delegations this call served (one UpdateRole can add several partners at once).
    delegations = models.ManyToManyField(
        "delegations.Delegation", blank=True, related_name="cloud_calls"
    )
    action = models.CharField(max_length=64)  # e.g. "UpdateRole"
    mutating = models.BooleanField(default=True)
    target = models.CharField(max_length=255, blank=True)  # e.g. the role ARN
    # What was asked, without secrets: role name, policy name/type, principals added/removed.
    request_summary = models.JSONField(default=dict, blank=True)
    # Who made it: the worker's lease token on the managed role.
    worker = models.CharField(max_length=64, blank=True)
    intent_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    request_id = models.CharField(max_length=64, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=128, blank=True)
    error_message = models.TextField(max_length=2000, blank=True)
    # e.g. "resolved by reconcile" for an intent whose worker died before the answer.
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["intent_at", "id"]
        indexes = [
            models.Index(fields=["managed_role", "intent_at"], name="cloudcall_role_intent"),
            models.Index(fields=["outcome"], name="cloudcall_outcome"),
            models.Index(
                fields=["partner_user_policy", "intent_at"], name="cloudcall_partner_intent"
            ),
        ]
        constraints = [
            exactly_one_set("managed_role", "partner_user_policy", name="cloudcall_one_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target} ({self.outcome})"


class OutboxMessage(models.Model):
    """Work to do after a commit, written in the same transaction as the change.

    `transaction.on_commit` publishes it at once; a periodic dispatcher re-publishes any row not
    `done_at` whose `available_at` has passed, so a lost task or a broker outage only delays.
    Messages carry ids only.
    """

    class Kind(models.TextChoices):
        RECONCILE_ROLE = "reconcile_role", _("Reconcile a managed role")
        RECONCILE_PARTNER_USER = (
            "reconcile_partner_user",
            _("Reconcile a partner RAM user's AssumeRole policy"),
        )
        # An account of a fleet grant finished (or the fleet was approved or retried): start
        # the next accounts within the fleet's rate control.
        ADVANCE_FLEET = "advance_fleet", _("Start a fleet grant's next accounts")

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    object_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["available_at"],
                condition=Q(done_at__isnull=True),
                name="outbox_undone_available",
            ),
            models.Index(fields=["kind", "object_id"], name="outbox_kind_object"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id}"


class DriftFinding(models.Model):
    """A difference between a role in the cloud and what the portal wants, found by the
    reconciler. The owner chooses to repair it (the portal puts its state back) or to accept
    it (the portal adopts the cloud's state)."""

    class Kind(models.TextChoices):
        MANAGED_PRINCIPAL_MISSING = "managed_principal_missing", _("Managed principal missing")
        REVOKED_PRINCIPAL_BACK = "revoked_principal_back", _("Revoked partner back")
        UNMANAGED_PRINCIPAL_ADDED = "unmanaged_principal_added", _("Unmanaged principal added")
        POLICY_DETACHED = "policy_detached", _("Policy detached")
        ROLE_DELETED = "role_deleted", _("Role deleted")
        # A time-bound grant's `DateLessThan acs:CurrentTime` trust condition was deleted or
        # its date altered in the cloud: the reconciler restores it at once.
        FAIL_SAFE_END_CHANGED = "fail_safe_end_changed", _("Fail-safe end time removed or changed")

    class Resolution(models.TextChoices):
        NONE = "", "—"
        REPAIR = "repair", _("Repaired")
        ACCEPT = "accept", _("Accepted")
        GONE = "gone", _("No longer present")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    managed_role = models.ForeignKey(
        ManagedRole, on_delete=models.CASCADE, related_name="drift_findings"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # The principal ARN or "Type:PolicyName" the finding is about; blank for a deleted role.
    subject = models.CharField(max_length=255, blank=True)
    details = models.JSONField(default=dict, blank=True)
    detected_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(
        max_length=16, choices=Resolution.choices, blank=True, default=Resolution.NONE
    )
    resolved_by = optional_person_field(on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            # The reconciler reports each difference once until it is resolved.
            models.UniqueConstraint(
                fields=["managed_role", "kind", "subject"],
                condition=Q(resolved_at__isnull=True),
                name="driftfinding_one_open_per_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.managed_role.role_name}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
