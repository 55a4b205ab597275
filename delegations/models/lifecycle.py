"""One partner's access to one catalogue role (`Delegation`) and the lifecycle's vocabulary:
its statuses, the one table of allowed moves and the groups of statuses the code asks about.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import account_uid_field, optional_person_field
from cloud import policies
from core.db import ReportsChange
from delegations.models.catalog import CatalogRole, PartnerLink, role_in_account
from delegations.models.fleet import FleetGrant
from delegations.models.trust_scope import DEFAULT_NAMED_PEOPLE_CAP, trust_scope_field
from delegations.models.versioned import VersionedModel
from delegations.models.worker import LastErrorModel, ManagedRole


class DelegationQuerySet(models.QuerySet["Delegation"]):
    def locked_for_change(self) -> "DelegationQuerySet":
        """The delegations' own rows locked until the transaction ends (not the rows joined
        in), loaded with what a change reads and reports: owner, partner, catalogue role and
        managed role with its cloud account."""
        return self.select_for_update(of=("self",)).select_related(
            "owner", "partner", "catalog_role", "managed_role__cloud_account"
        )


class Delegation(ReportsChange, VersionedModel, LastErrorModel):
    """One partner organisation's access to one catalogue role of one owner."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        APPROVED = "approved", _("Approved")
        # Approved for a start that lies ahead: nothing is in the cloud until the scheduler
        # moves it to approved shortly before `starts_at`.
        SCHEDULED = "scheduled", _("Scheduled")
        APPLYING = "applying", _("Applying")
        ACTIVE = "active", _("Active")
        REVOKING = "revoking", _("Revoking")
        REVOKED = "revoked", _("Revoked")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    class Origin(models.TextChoices):
        REQUEST = "request", _("Requested by the partner")
        OFFER = "offer", _("Offered by the owner")
        # Activated by a partner's named person on an emergency role (`breakglass`).
        BREAK_GLASS = "break_glass", _("Break-glass activation")

    class Phase(models.TextChoices):
        """Which way the worker was moving when a delegation failed."""

        NONE = "", "—"
        APPLYING = "applying", _("while applying")
        REVOKING = "revoking", _("while revoking")

    class EndCause(models.TextChoices):
        NONE = "", "—"
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    objects = DelegationQuerySet.as_manager()
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
    # The fleet grant this delegation is one account of, if any (`delegations.fleet`).
    fleet = models.ForeignKey(
        FleetGrant, on_delete=models.PROTECT, null=True, blank=True, related_name="delegations"
    )
    # Copied from the partner organisation when the delegation is created: the trust policy
    # names this account, whatever later happens to the organisation's record.
    partner_account_uid = account_uid_field()

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

    # The person who asked (or offered); empty when an API service account filed the request,
    # which `requested_by_label` then names ("service account ci-pipeline").
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_by_label = models.CharField(max_length=200, blank=True, default="")
    reason = models.TextField("justification", max_length=2000)
    starts_at = models.DateTimeField(default=timezone.now)
    # None means open-ended: access lasts until revoked.
    ends_at = models.DateTimeField(null=True, blank=True)

    decided_by = optional_person_field(on_delete=models.PROTECT)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(max_length=2000, blank=True)
    approved_with_mfa = models.BooleanField(default=False)

    activated_at = models.DateTimeField(null=True, blank=True)
    revoked_by = optional_person_field(on_delete=models.PROTECT)
    revoke_requested_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.TextField(max_length=2000, blank=True)
    # The partner admin who took back their own request before the owner decided it.
    withdrawn_by = optional_person_field(on_delete=models.PROTECT)
    withdrawn_by_label = models.CharField(max_length=200, blank=True, default="")
    ended_at = models.DateTimeField(null=True, blank=True)

    # Whom the trust policy names for this partner (`delegations.trust`): the whole account,
    # or named RAM users up to `named_people_cap`. `external_id_ciphertext` (core.crypto) holds
    # the ExternalId the trust statement requires, when the owner asked for one.
    trust_scope = trust_scope_field()
    named_people_cap = models.PositiveSmallIntegerField(default=DEFAULT_NAMED_PEOPLE_CAP)
    # Named scopes may also trust the partner's broker so the portal can issue credentials and
    # console sessions for the named people. Off by default: people who switch role in the
    # console as themselves do not need it, and the partner holds the broker's key too. The
    # owner's scope change decides it from the delegation's use through the portal
    # (`delegations.trust.selectors.portal_brokered_use`) unless they set it themselves.
    named_scope_trusts_broker = models.BooleanField(default=False)
    external_id_ciphertext = models.TextField(blank=True, default="", editable=False)
    # The ExternalId is shown once to the partner's admin; a new one starts unshown.
    external_id_shown_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(default=timezone.now, editable=False)

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
                        "scheduled",
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
            # Someone always asked: a person, or a service account named by its label.
            models.CheckConstraint(
                condition=Q(requested_by__isnull=False) | ~Q(requested_by_label=""),
                name="delegation_has_requester",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.catalog_role.role_name} for {self.partner} ({self.get_status_display()})"

    @property
    def role_label(self) -> str:
        """How a message or a list names the delegation's role: its name and the owner's
        account it is granted in (not always the role's home: a fleet's accounts, or another
        account a request or offer chose), as `CatalogRole.label` names a role by its home."""
        return role_in_account(
            self.catalog_role.role_name, self.managed_role.cloud_account.account_uid
        )

    @property
    def principal_arn(self) -> str:
        """The principal this delegation puts into the role's trust policy."""
        return policies.account_root_arn(self.partner_account_uid)

    @property
    def requester(self) -> str:
        """Who asked (or offered): the person, or the service account that filed it."""
        return str(self.requested_by) if self.requested_by_id else self.requested_by_label

    @property
    def withdrawer(self) -> str:
        """Who withdrew the request: the person or the service account; "" when nobody did."""
        return str(self.withdrawn_by) if self.withdrawn_by_id else self.withdrawn_by_label

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def can_retry(self) -> bool:
        return self.status == self.Status.FAILED

    @property
    def can_revoke(self) -> bool:
        # A scheduled grant is revoked at once: nothing of it is in the cloud yet.
        return self.status == self.Status.SCHEDULED or (
            Delegation.Status.REVOKING in ALLOWED_TRANSITIONS[self.status]
        )

    @property
    def starts_later(self) -> bool:
        """Scheduled access (or a request for it) whose start lies ahead: pages say when."""
        return self.status in (self.Status.REQUESTED, self.Status.SCHEDULED) and (
            self.starts_at > timezone.now()
        )

    @property
    def is_pending_decision(self) -> bool:
        return self.status == self.Status.REQUESTED


S = Delegation.Status

# The one table of allowed lifecycle moves. Services refuse anything else.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    # Decided by the owner, withdrawn by the partner, or left undecided until its end date.
    S.REQUESTED: frozenset({S.APPROVED, S.SCHEDULED, S.REJECTED, S.EXPIRED, S.WITHDRAWN}),
    # Approved for later: started by the scheduler, or ended before it ever reached the cloud.
    S.SCHEDULED: frozenset({S.APPROVED, S.REVOKED, S.EXPIRED}),
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
NEVER_APPLIED_STATUSES = frozenset({S.REQUESTED, S.SCHEDULED, S.REJECTED, S.WITHDRAWN})
# Delegations whose partner principal should be in the role's trust policy.
DESIRED_PRESENT_STATUSES = frozenset({S.APPROVED, S.APPLYING, S.ACTIVE})
# Delegations the worker still has to act on (present or absent).
WORKER_PENDING_STATUSES = frozenset({S.APPROVED, S.APPLYING, S.REVOKING})
# Statuses the scheduler ends when `ends_at` has passed, except a revoke that failed, which
# waits for an owner's Retry (`delegations.lifecycle.automatic`, which expires what is due).
EXPIRABLE_STATUSES = frozenset(
    {S.REQUESTED, S.SCHEDULED, S.APPROVED, S.APPLYING, S.ACTIVE, S.FAILED}
)
