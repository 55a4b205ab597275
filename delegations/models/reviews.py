"""Access reviews across the company boundary. An owner schedules reviews
(every N days, a deadline, a default outcome); each campaign puts every active delegation to
its approvers (keep / shorten / revoke) and asks each partner's admins to confirm the staff
assigned to it (keep / unassign). At the deadline, what nobody answered gets the configured
outcome: a last reminder, or revocation through the normal lifecycle. Worked by
`delegations.reviews`.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import optional_person_field
from core.db import range_constraint
from delegations.models.approvals import SettingsRow
from delegations.models.lifecycle import Delegation
from delegations.models.partner import StaffAssignment

MAX_REVIEW_EVERY_DAYS = 366
MAX_REVIEW_DEADLINE_DAYS = 60


class ReviewOutcome(models.TextChoices):
    """What happens at the deadline to what nobody answered."""

    REMIND = "remind", _("Remind, and keep the access")
    REVOKE = "revoke", _("Revoke the access")


class ReviewSchedule(SettingsRow):
    """An owner's recurring access review: one per owner organisation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.OneToOneField(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="review_schedule"
    )
    every_days = models.PositiveSmallIntegerField(default=90)
    deadline_days = models.PositiveSmallIntegerField(default=14)
    default_outcome = models.CharField(
        max_length=16, choices=ReviewOutcome.choices, default=ReviewOutcome.REMIND
    )
    next_run_at = models.DateTimeField()
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            range_constraint(
                "every_days", 1, MAX_REVIEW_EVERY_DAYS, name="reviewschedule_every_days_range"
            ),
            range_constraint(
                "deadline_days",
                1,
                MAX_REVIEW_DEADLINE_DAYS,
                name="reviewschedule_deadline_days_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Access review of {self.organisation_id} every {self.every_days} days"


class ReviewCampaign(models.Model):
    """One round of an access review: what was put to whom, until when."""

    class Status(models.TextChoices):
        # "Open" alone is the catalogue's verb on links ("open the page").
        OPEN = "open", pgettext_lazy("access review status", "Open")
        CLOSED = "closed", _("Closed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="review_campaigns"
    )
    schedule_version = models.PositiveIntegerField(null=True, blank=True)
    default_outcome = models.CharField(max_length=16, choices=ReviewOutcome.choices)
    started_at = models.DateTimeField(default=timezone.now)
    deadline_at = models.DateTimeField()
    # None: started by the schedule (beat).
    started_by = optional_person_field(on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Access review started {self.started_at:%Y-%m-%d}"

    @property
    def takes_answers(self) -> bool:
        """Open and before its deadline: after it, unanswered questions get the round's
        outcome, even in the minutes before the sweep closes the round."""
        return self.status == self.Status.OPEN and timezone.now() < self.deadline_at


class ReviewItem(models.Model):
    """One question of a campaign: "is this delegation still needed?" to the owner's
    approvers, or "does this person still need it?" to the partner's admins."""

    class Side(models.TextChoices):
        OWNER = "owner", _("Owner's approvers")
        PARTNER = "partner", _("Partner's admins")

    class Decision(models.TextChoices):
        PENDING = "pending", _("Waiting")
        KEEP = "keep", _("Keep")
        SHORTEN = "shorten", _("Shorten")
        REVOKE = "revoke", _("Revoke")
        UNASSIGN = "unassign", _("Unassign")
        # The deadline passed unanswered: the campaign's outcome applied.
        REMINDED = "reminded", _("No answer: reminded, kept")
        REVOKED_BY_DEADLINE = "revoked_by_deadline", _("No answer: revoked at the deadline")
        # The access ended (or the person left) before anyone answered.
        ENDED = "ended", _("Ended before a decision")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(ReviewCampaign, on_delete=models.CASCADE, related_name="items")
    side = models.CharField(max_length=8, choices=Side.choices)
    delegation = models.ForeignKey(Delegation, on_delete=models.PROTECT, related_name="+")
    assignment = models.ForeignKey(
        StaffAssignment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Copied for the partner side's tenancy filters.
    partner = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=24, choices=Decision.choices, default=Decision.PENDING)
    decided_by = optional_person_field(on_delete=models.PROTECT)
    decided_at = models.DateTimeField(null=True, blank=True)
    new_ends_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(max_length=2000, blank=True)

    class Meta:
        ordering = ["side", "delegation__catalog_role__role_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "delegation"],
                condition=Q(assignment__isnull=True),
                name="reviewitem_one_per_delegation",
            ),
            models.UniqueConstraint(
                fields=["campaign", "assignment"],
                condition=Q(assignment__isnull=False),
                name="reviewitem_one_per_assignment",
            ),
            models.CheckConstraint(
                condition=(Q(side="owner") & Q(assignment__isnull=True))
                | (Q(side="partner") & Q(assignment__isnull=False)),
                name="reviewitem_side_matches_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_side_display()}: {self.get_decision_display()}"

    @property
    def is_pending(self) -> bool:
        return self.decision == self.Decision.PENDING
