"""Who may decide a partner's request and how many must agree: approver groups attached to
catalogue roles and/or allow-listed partners, a quorum per catalogue role, and each approval
recorded on its own row. Worked by `delegations.approvals`.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import optional_person_field
from core.db import ReportsChange, range_constraint
from delegations.models.catalog import CatalogRole, PartnerAllowance
from delegations.models.lifecycle import Delegation
from delegations.models.trust_scope import TrustScope
from delegations.models.versioned import VersionedModel

# The most distinct approvals a catalogue role may require.
MAX_APPROVALS_REQUIRED = 5
# The longest request an auto-approval rule may approve.
MAX_AUTO_APPROVE_HOURS = 24
APPROVER_GROUP_NAME_MAX_LENGTH = 100


class SettingsRow(VersionedModel):
    """Settings an owner admin edits in place (`delegations.versioned.versioned_save`): each
    change counts a version, which the ledger names and a stale page is refused by, and the
    row keeps who changed it last."""

    updated_by = optional_person_field(on_delete=models.SET_NULL)

    class Meta:
        abstract = True


class Decision(models.Model):
    """A request somebody else decides: who did, when and (rejecting) why; newest first."""

    decided_by = optional_person_field(on_delete=models.PROTECT)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True
        ordering = ["-created_at"]


class ApproverGroup(VersionedModel):
    """People of an owner organisation who alone may decide the requests for the catalogue
    roles and partners the group is attached to. A request that no group covers may be
    decided by any owner admin."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="approver_groups"
    )
    name = models.CharField(max_length=APPROVER_GROUP_NAME_MAX_LENGTH)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="approver_groups")
    catalog_roles = models.ManyToManyField(CatalogRole, blank=True, related_name="approver_groups")
    partner_allowances = models.ManyToManyField(
        PartnerAllowance, blank=True, related_name="approver_groups"
    )
    created_by = optional_person_field(on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                "organisation", Lower("name"), name="approvergroup_unique_name_per_owner"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ApprovalRule(SettingsRow):
    """How many distinct approvals a request for one catalogue role needs (1 when absent)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    catalog_role = models.OneToOneField(
        CatalogRole, on_delete=models.CASCADE, related_name="approval_rule"
    )
    approvals_required = models.PositiveSmallIntegerField(default=1)
    # Auto-approval: a request for at most this many hours (with an end date) from an
    # allow-listed partner is approved by this rule; None never approves automatically.
    auto_approve_max_hours = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            range_constraint(
                "approvals_required",
                1,
                MAX_APPROVALS_REQUIRED,
                name="approvalrule_approvals_required_range",
            ),
            models.CheckConstraint(
                condition=Q(auto_approve_max_hours__isnull=True)
                | (Q(auto_approve_max_hours__gte=1) & Q(auto_approve_max_hours__lte=24)),
                name="approvalrule_auto_approve_hours_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.catalog_role}: {self.approvals_required} approval(s)"


class DelegationApproval(models.Model):
    """One approver's yes to one request, kept whether or not it completed the quorum."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delegation = models.ForeignKey(Delegation, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    with_mfa = models.BooleanField(default=False)
    note = models.TextField(max_length=2000, blank=True)
    # The quorum in force when this approval was given, and the rule's version.
    approvals_required = models.PositiveSmallIntegerField(default=1)
    rule_version = models.PositiveIntegerField(null=True, blank=True)
    # An earlier end this approver set (the earliest of the approvers' applies).
    ends_at = models.DateTimeField(null=True, blank=True)
    # Whom this approver agreed the trust policy names (the narrowest of the approvers'
    # applies); empty on approvals recorded before it was kept.
    trust_scope = models.CharField(max_length=16, choices=TrustScope.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # Nobody approves twice: the database says so too, whatever the services miss.
            models.UniqueConstraint(
                fields=["delegation", "approver"], name="delegationapproval_one_per_person"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver} approved {self.delegation_id}"


class DelegationExtension(ReportsChange, Decision):
    """A partner's request to move a time-bound delegation's end later, decided like a
    request (approver groups, quorum). Approved, the delegation's end moves without a gap;
    rejected or left undecided, access ends as planned."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        # The delegation ended (or changed) before a decision.
        LAPSED = "lapsed", _("Lapsed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delegation = models.ForeignKey(Delegation, on_delete=models.CASCADE, related_name="extensions")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(max_length=2000)
    # The end the delegation had when this was asked, and the end asked for.
    previous_ends_at = models.DateTimeField()
    new_ends_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED)
    # [{"approver": <user pk>, "with_mfa": bool, "at": "<iso>"}], written under the
    # delegation's row lock.
    approvals = models.JSONField(default=list, blank=True)

    class Meta(Decision.Meta):
        constraints = [
            models.CheckConstraint(
                condition=Q(new_ends_at__gt=models.F("previous_ends_at")),
                name="delegationextension_moves_the_end_later",
            ),
            # One open extension per delegation.
            models.UniqueConstraint(
                fields=["delegation"],
                condition=Q(status="requested"),
                name="delegationextension_one_open_per_delegation",
            ),
        ]

    def __str__(self) -> str:
        return f"Extension of {self.delegation_id} to {self.new_ends_at:%Y-%m-%d %H:%M}"


class ApprovalSettings(SettingsRow):
    """An owner organisation's approval settings: with `four_eyes` on, changes to its
    approval rules are proposals a second owner admin approves before they take effect."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.OneToOneField(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="approval_settings"
    )
    four_eyes = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"Approval settings of {self.organisation_id}"


class RuleProposal(Decision):
    """A change of approval rules waiting for a second owner admin (four eyes)."""

    class Kind(models.TextChoices):
        GROUP_CREATE = "group_create", _("Create an approver group")
        GROUP_UPDATE = "group_update", _("Change an approver group")
        GROUP_DELETE = "group_delete", _("Delete an approver group")
        RULE_SET = "rule_set", _("Change a role's approvals")
        FOUR_EYES_OFF = "four_eyes_off", _("Turn four eyes off")
        # The catalogue and the allow-list, and break-glass marking.
        CATALOG_ROLE_CREATE = "catalog_role_create", _("Add a catalogue role")
        CATALOG_ROLE_UPDATE = "catalog_role_update", _("Change a catalogue role")
        CATALOG_ROLE_DEACTIVATE = "catalog_role_deactivate", _("Deactivate a catalogue role")
        CATALOG_ROLE_REACTIVATE = "catalog_role_reactivate", _("Reactivate a catalogue role")
        CATALOG_ROLE_SET_ACCOUNTS = (
            "catalog_role_set_accounts",
            _("Change where a catalogue role is offered"),
        )
        ALLOWANCE_ADD = "allowance_add", _("Add a partner to the allow-list")
        ALLOWANCE_REMOVE = "allowance_remove", _("Remove a partner from the allow-list")
        BREAK_GLASS_SET = "break_glass_set", _("Mark an emergency role")
        BREAK_GLASS_REMOVE = "break_glass_remove", _("Stop offering an emergency role")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a second admin")
        APPLIED = "applied", _("Approved and applied")
        REJECTED = "rejected", _("Rejected")
        # Its target changed (or went) after it was written: refused when approved.
        OUTDATED = "outdated", _("Outdated: the rule changed since")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="rule_proposals"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # The group or catalogue role the change is about (empty for a new group).
    target_id = models.CharField(max_length=64, blank=True)
    # What to apply (ids), and the diff people read (names) before and after.
    payload = models.JSONField(default=dict)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # A digest of the target as it was when proposed (`proposals.proposal_target_fingerprint`):
    # the diff above is true only while the target still has it.
    target_fingerprint = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # Not stored: whether a waiting proposal's target changed since, and why the person
    # reading may not approve it and who may, set by
    # `approvals.selectors.rule_proposals_waiting` for the rules page.
    outdated: bool = False
    refusal: str | None = None
    deciders: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display()})"
