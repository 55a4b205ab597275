"""Everything the delegation lifecycle stores.

- `CloudAccount`: an organisation's Alibaba Cloud account and the (encrypted) AccessKey the
  portal uses in it. Owners and partners both have one.
- `CatalogRole`, `PartnerAllowance`, `PartnerLink`: what an owner may grant, to which partner
  accounts, and the codes by which partners find the owner.
- `Delegation`: one partner's access to one catalogue role, and its lifecycle.
- `ManagedRole`, `CloudCall`, `DriftFinding`: the worker's view of a RAM role (lock lease,
  last seen state), every call made to the cloud (intent written before the call), and
  differences between the cloud and the portal found by the reconciler.
- `OutboxMessage`: follow-up work written in the same transaction as the change that needs
  it, so a broker outage or a lost task loses nothing.

State changes happen in `delegations.services` only; these classes hold data and the
vocabulary (statuses, the allowed transitions).
"""

import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import (
    ACCOUNT_UID_MAX_LENGTH,
    ENTERPRISE_ALIAS_MAX_LENGTH,
    validate_account_uid,
    validate_enterprise_alias,
)
from cloud import policies

ROLE_NAME_MAX_LENGTH = 64
# RAM's MaxSessionDuration bounds, in seconds.
MIN_SESSION_DURATION = 3600
MAX_SESSION_DURATION = 43200
REGION_RE = re.compile(r"\A[a-z]{2,}(?:-[a-z0-9]+){1,3}\Z")


def validate_role_name(value: str) -> None:
    """RAM's rule (1-64 of letters, digits, '.' and '-'), from the cloud adapter."""
    try:
        policies.validate_role_name(value)
    except policies.PolicyError as exc:
        raise ValidationError(str(exc), code="invalid_role_name") from exc


def validate_region(value: str) -> None:
    if not isinstance(value, str) or not REGION_RE.match(value):
        raise ValidationError(
            "A region id looks like cn-hangzhou or ap-southeast-1.", code="invalid_region"
        )


class CloudAccount(models.Model):
    """An organisation's Alibaba Cloud account and the AccessKey the portal acts with.

    The AccessKey secret is stored only as MultiFernet ciphertext (keys in
    `settings.PORTAL_ENCRYPTION_KEYS`, never in the database); pages show the AccessKey id and
    `secret_fingerprint`. At most one active account per organisation.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="cloud_accounts"
    )
    account_uid = models.CharField(
        "Alibaba Cloud account UID",
        max_length=ACCOUNT_UID_MAX_LENGTH,
        validators=[validate_account_uid],
    )
    alias = models.CharField(
        "enterprise alias",
        max_length=ENTERPRISE_ALIAS_MAX_LENGTH,
        blank=True,
        validators=[validate_enterprise_alias],
    )
    region = models.CharField(max_length=32, default="cn-hangzhou", validators=[validate_region])
    access_key_id = models.CharField("AccessKey id", max_length=128)
    secret_ciphertext = models.TextField(editable=False)
    # A short digest of the secret so an admin can tell which key is stored without seeing it.
    secret_fingerprint = models.CharField(max_length=64, editable=False)
    caller_arn = models.CharField(max_length=255, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organisation__name", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation"],
                condition=Q(is_active=True),
                name="cloudaccount_one_active_per_organisation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.alias or self.account_uid} ({self.organisation})"


class CatalogRole(models.Model):
    """A RAM role an owner is willing to grant: its name, the policies attached to it and the
    longest session it allows."""

    class PolicyType(models.TextChoices):
        SYSTEM = "System", "System"
        CUSTOM = "Custom", "Custom"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="catalog_roles"
    )
    cloud_account = models.ForeignKey(
        CloudAccount, on_delete=models.PROTECT, related_name="catalog_roles"
    )
    role_name = models.CharField(max_length=ROLE_NAME_MAX_LENGTH, validators=[validate_role_name])
    description = models.CharField(max_length=1024, blank=True)
    # [{"type": "System" | "Custom", "name": "AliyunECSFullAccess"}, ...]
    policies = models.JSONField(default=list, blank=True)
    max_session_duration = models.PositiveIntegerField(default=MIN_SESSION_DURATION)
    # When the last portal-managed principal leaves a role the portal created, the worker
    # detaches its policies and deletes it, unless the owner asked to keep it.
    keep_role_when_empty = models.BooleanField(default=False)
    # Policies that grant RAM administration or AdministratorAccess need this explicit opt-in.
    allows_high_privilege = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["role_name"]
        constraints = [
            # RAM treats role names case-insensitively; two catalogue entries differing only
            # in case would fight over one cloud role.
            models.UniqueConstraint(
                "cloud_account", Lower("role_name"), name="catalogrole_unique_name_per_account"
            ),
            models.CheckConstraint(
                condition=Q(max_session_duration__gte=MIN_SESSION_DURATION)
                & Q(max_session_duration__lte=MAX_SESSION_DURATION),
                name="catalogrole_session_duration_range",
            ),
        ]

    def __str__(self) -> str:
        return self.role_name

    @property
    def policy_labels(self) -> list[str]:
        return [f"{p.get('name')} ({p.get('type')})" for p in self.policies or []]


class PartnerAllowance(models.Model):
    """A partner account UID the owner allows to appear in its trust policies."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="partner_allowances"
    )
    partner_account_uid = models.CharField(
        max_length=ACCOUNT_UID_MAX_LENGTH, validators=[validate_account_uid]
    )
    label = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["label", "partner_account_uid"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "partner_account_uid"],
                name="partnerallowance_unique_uid_per_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label or 'partner'} {self.partner_account_uid}"


class PartnerLink(models.Model):
    """An owner-issued code by which a partner organisation finds the owner to request access.

    Only the SHA-256 of the code is stored (`accounts.models.hash_token`); the owner sees the
    code once, when it is created. `code_hint` (its last characters) tells links apart.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="partner_links"
    )
    label = models.CharField(max_length=200, blank=True)
    code_hash = models.CharField(max_length=64, unique=True, editable=False)
    code_hint = models.CharField(max_length=8, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label or 'Partner link'} (…{self.code_hint})"

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


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
        ]

    def __str__(self) -> str:
        return f"{self.role_name} in {self.cloud_account.account_uid}"

    @property
    def role_arn(self) -> str:
        return policies.role_arn(self.cloud_account.account_uid, self.role_name)


class Delegation(models.Model):
    """One partner organisation's access to one catalogue role of one owner."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        APPLYING = "applying", "Applying"
        ACTIVE = "active", "Active"
        REVOKING = "revoking", "Revoking"
        REVOKED = "revoked", "Revoked"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Origin(models.TextChoices):
        REQUEST = "request", "Requested by the partner"
        OFFER = "offer", "Offered by the owner"

    class Phase(models.TextChoices):
        """Which way the worker was moving when a delegation failed."""

        NONE = "", "—"
        APPLYING = "applying", "while applying"
        REVOKING = "revoking", "while revoking"

    class EndCause(models.TextChoices):
        NONE = "", "—"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="delegations_granted"
    )
    partner = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="delegations_received"
    )
    catalog_role = models.ForeignKey(
        CatalogRole, on_delete=models.PROTECT, related_name="delegations"
    )
    managed_role = models.ForeignKey(
        ManagedRole, on_delete=models.PROTECT, related_name="delegations"
    )
    # Copied from the partner organisation when the delegation is created: the trust policy
    # names this account, whatever later happens to the organisation's record.
    partner_account_uid = models.CharField(
        max_length=ACCOUNT_UID_MAX_LENGTH, validators=[validate_account_uid]
    )

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED)
    failed_phase = models.CharField(
        max_length=16, choices=Phase.choices, blank=True, default=Phase.NONE
    )
    end_cause = models.CharField(
        max_length=16, choices=EndCause.choices, blank=True, default=EndCause.NONE
    )
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.REQUEST)
    partner_link = models.ForeignKey(
        PartnerLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="delegations"
    )

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField("justification", max_length=2000)
    starts_at = models.DateTimeField(default=timezone.now)
    # None means open-ended: access lasts until revoked.
    ends_at = models.DateTimeField(null=True, blank=True)

    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(max_length=2000, blank=True)
    approved_with_mfa = models.BooleanField(default=False)

    activated_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    revoke_requested_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.TextField(max_length=2000, blank=True)
    # The partner admin who took back their own request before the owner decided it.
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    ended_at = models.DateTimeField(null=True, blank=True)

    last_error_code = models.CharField(max_length=128, blank=True)
    last_error_message = models.TextField(max_length=2000, blank=True)
    last_error_request_id = models.CharField(max_length=64, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    # Not stored: the lifecycle services set it on the instance they return, True when the
    # call changed the delegation and False when it found the change already made (a double
    # click), so a page can say "already approved".
    changed = False

    # Incremented by every transition: a page posts the version it showed, so a decision
    # made on a stale page is refused instead of silently overriding another admin's.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "status"], name="delegation_owner_status"),
            models.Index(fields=["partner", "status"], name="delegation_partner_status"),
            models.Index(fields=["managed_role", "status"], name="delegation_role_status"),
            models.Index(fields=["status", "ends_at"], name="delegation_status_ends_at"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "requested",
                        "approved",
                        "applying",
                        "active",
                        "revoking",
                        "revoked",
                        "rejected",
                        "failed",
                        "expired",
                        "withdrawn",
                    ]
                ),
                name="delegation_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="delegation_ends_after_start",
            ),
            models.CheckConstraint(
                condition=~Q(owner=models.F("partner")), name="delegation_owner_is_not_partner"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.catalog_role.role_name} for {self.partner} ({self.get_status_display()})"

    @property
    def principal_arn(self) -> str:
        """The principal this delegation puts into the role's trust policy."""
        return policies.account_root_arn(self.partner_account_uid)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def can_retry(self) -> bool:
        return self.status == self.Status.FAILED

    @property
    def can_revoke(self) -> bool:
        return Delegation.Status.REVOKING in ALLOWED_TRANSITIONS[self.status]

    @property
    def is_pending_decision(self) -> bool:
        return self.status == self.Status.REQUESTED


S = Delegation.Status

# The one table of allowed lifecycle moves. Services refuse anything else.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    # Decided by the owner, withdrawn by the partner, or left undecided until its end date.
    S.REQUESTED: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED, S.WITHDRAWN}),
    # The worker may find the principal already in place and go straight to active.
    S.APPROVED: frozenset({S.APPLYING, S.ACTIVE, S.FAILED, S.REVOKING}),
    S.APPLYING: frozenset({S.ACTIVE, S.FAILED, S.REVOKING}),
    S.ACTIVE: frozenset({S.REVOKING}),
    # Revoked, or ended by the scheduler: both go through revoking, then the final state.
    S.REVOKING: frozenset({S.REVOKED, S.EXPIRED, S.FAILED}),
    # Retry (back to approved or revoking), revoke a failed apply, or converge later.
    S.FAILED: frozenset({S.APPROVED, S.REVOKING, S.REVOKED, S.EXPIRED}),
    S.REVOKED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.WITHDRAWN: frozenset(),
}

FINAL_STATUSES = frozenset({S.REVOKED, S.REJECTED, S.EXPIRED, S.WITHDRAWN})
# Delegations that never got near the cloud: the worker and the drift check ignore them.
NEVER_APPLIED_STATUSES = frozenset({S.REQUESTED, S.REJECTED, S.WITHDRAWN})
# Delegations whose partner principal should be in the role's trust policy.
DESIRED_PRESENT_STATUSES = frozenset({S.APPROVED, S.APPLYING, S.ACTIVE})
# Delegations the worker still has to act on (present or absent).
WORKER_PENDING_STATUSES = frozenset({S.APPROVED, S.APPLYING, S.REVOKING})
# Statuses the scheduler ends when `ends_at` has passed.
EXPIRABLE_STATUSES = frozenset({S.REQUESTED, S.APPROVED, S.APPLYING, S.ACTIVE, S.FAILED})


class CloudCall(models.Model):
    """One call to Alibaba Cloud. For a mutating call the row is written (the intent) before the
    call and completed after it, so a crash between the two leaves an `unknown` outcome the
    reconciler resolves instead of an unrecorded change."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "In progress"
        OK = "ok", "OK"
        ERROR = "error", "Error"
        UNKNOWN = "unknown", "Unknown"

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
    delegations = models.ManyToManyField(Delegation, blank=True, related_name="cloud_calls")
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
            models.CheckConstraint(
                condition=Q(managed_role__isnull=False, partner_user_policy__isnull=True)
                | Q(managed_role__isnull=True, partner_user_policy__isnull=False),
                name="cloudcall_one_subject",
            ),
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
        RECONCILE_ROLE = "reconcile_role", "Reconcile a managed role"
        RECONCILE_PARTNER_USER = (
            "reconcile_partner_user",
            "Reconcile a partner RAM user's AssumeRole policy",
        )

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
        MANAGED_PRINCIPAL_MISSING = "managed_principal_missing", "Managed principal missing"
        REVOKED_PRINCIPAL_BACK = "revoked_principal_back", "Revoked partner back"
        UNMANAGED_PRINCIPAL_ADDED = "unmanaged_principal_added", "Unmanaged principal added"
        POLICY_DETACHED = "policy_detached", "Policy detached"
        ROLE_DELETED = "role_deleted", "Role deleted"

    class Resolution(models.TextChoices):
        NONE = "", "—"
        REPAIR = "repair", "Repaired"
        ACCEPT = "accept", "Accepted"
        GONE = "gone", "No longer present"

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
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

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


# =============================================================================================
# Partner side (issue 6): which of a partner's people use a delegation, the AssumeRole policy
# the portal manages for their RAM users in the partner's account, the STS credentials people
# took (never the secret), their credentials-URI keys (a hash only) and the owner's emergency
# cut-off. State changes happen in `delegations.partner.services` / `.credentials`.
# =============================================================================================


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
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
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


class StaffAssignment(models.Model):
    """A partner admin's choice that one of their staff may use one active delegation,
    optionally narrowed by a session policy every credential for them carries.

    Ending an assignment keeps the row (who could act, and when, is part of the record)."""

    class SessionPolicyKind(models.TextChoices):
        NONE = "", "The role's full permissions"
        READ_ONLY = "read_only", "Read-only ECS"
        ECS_INSTANCES = "ecs_instances", "Only listed ECS instances"
        CUSTOM = "custom", "Custom session policy"

    class EndReason(models.TextChoices):
        NONE = "", "—"
        UNASSIGNED = "unassigned", "Unassigned by an admin"
        MEMBER_REMOVED = "member_removed", "Removed from the organisation"

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
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
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


class PartnerUserPolicy(LeasedModel):
    """The one custom policy (`portal-assume-<user>`) the portal manages for one RAM user in a
    partner's account: `sts:AssumeRole` on exactly the roles that user may use now.

    The lease and version fields are `ManagedRole`'s (`LeasedModel`, the same lease and
    outbox code)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cloud_account = models.ForeignKey(
        CloudAccount, on_delete=models.PROTECT, related_name="partner_user_policies"
    )
    ram_user_name = models.CharField(max_length=64)
    policy_name = models.CharField(max_length=128)
    # The role ARNs the cloud showed in the policy after the last verified run.
    applied_role_arns = models.JSONField(default=list, blank=True)
    policy_attached = models.BooleanField(default=False)
    last_error_code = models.CharField(max_length=128, blank=True)
    last_error_message = models.TextField(max_length=2000, blank=True)
    last_error_request_id = models.CharField(max_length=64, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
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
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
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
        WEB = "web", "Portal page"
        URI = "uri", "Credentials URI"

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
        ]

    def __str__(self) -> str:
        return f"{self.session_name} {self.access_key_id}"


class RoleCutOff(models.Model):
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
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

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
