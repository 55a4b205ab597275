"""Break-glass access: an owner marks a catalogue role as an emergency role
for one partner, naming the partner's people who may activate it themselves for at most N
hours (never more than 24) with a written reason. Each activation is a delegation granted at
once through the normal worker path; an owner admin must review it within 24 hours (confirm,
or revoke and flag), and an unreviewed one escalates. Worked by `delegations.breakglass`.
"""

import datetime as dt
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import optional_person_field
from core.db import range_constraint
from delegations.models.catalog import CatalogRole
from delegations.models.lifecycle import Delegation
from delegations.models.versioned import VersionedModel

# The longest emergency window an owner may allow (the bound).
MAX_BREAK_GLASS_HOURS = 24
# The most approvals an emergency role's requests may need: a marking is agreed by at most two
# people (its author and a four-eyes proposal's second admin).
MAX_BREAK_GLASS_QUORUM = 2
# A reason shorter than this says nothing a reviewer could check.
MIN_BREAK_GLASS_REASON = 20
# Every activation must be reviewed by an owner admin within this long.
BREAK_GLASS_REVIEW_WITHIN = dt.timedelta(hours=24)


class BreakGlassRole(VersionedModel):
    """A catalogue role one partner's named people may activate themselves in an emergency."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="break_glass_roles"
    )
    catalog_role = models.ForeignKey(
        CatalogRole, on_delete=models.CASCADE, related_name="break_glass_roles"
    )
    partner = models.ForeignKey("accounts.Organisation", on_delete=models.CASCADE, related_name="+")
    # The partner's people who may activate it (members of the partner when named).
    people = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+")
    max_hours = models.PositiveSmallIntegerField(default=4)
    is_active = models.BooleanField(default=True)
    created_by = optional_person_field(on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["catalog_role__role_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["catalog_role", "partner"], name="breakglassrole_one_per_role_partner"
            ),
            range_constraint(
                "max_hours", 1, MAX_BREAK_GLASS_HOURS, name="breakglassrole_max_hours_range"
            ),
        ]

    def __str__(self) -> str:
        return f"Break-glass {self.catalog_role} for {self.partner}"


class BreakGlassActivation(models.Model):
    """One emergency activation: who, why, for how long, and the owner's review of it."""

    class Review(models.TextChoices):
        PENDING = "pending", _("Waiting for review")
        CONFIRMED = "confirmed", _("Confirmed")
        REVOKED = "revoked", _("Revoked and flagged")

    class Escalation(models.IntegerChoices):
        NONE = 0, _("None")
        # The owner's admins were reminded that the review is due.
        REMINDED = 1, _("Reminded")
        # The review window passed: every owner admin and the escalation contact were told.
        ESCALATED = 2, _("Escalated")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    break_glass_role = models.ForeignKey(
        BreakGlassRole, on_delete=models.PROTECT, related_name="activations"
    )
    # Copied for tenancy filters without joins.
    owner = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    partner = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    delegation = models.OneToOneField(
        Delegation, on_delete=models.PROTECT, related_name="break_glass"
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(max_length=2000)
    hours = models.PositiveSmallIntegerField()
    rule_version = models.PositiveIntegerField(default=1)
    activated_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    review_due_at = models.DateTimeField()
    review = models.CharField(max_length=16, choices=Review.choices, default=Review.PENDING)
    reviewed_by = optional_person_field(on_delete=models.PROTECT)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(max_length=2000, blank=True)
    flagged = models.BooleanField(default=False)
    escalation = models.PositiveSmallIntegerField(
        choices=Escalation.choices, default=Escalation.NONE
    )
    # When the activating person was assigned to the delegation (once it was active).
    assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-activated_at"]
        indexes = [
            models.Index(fields=["review", "review_due_at"], name="breakglass_review_due"),
        ]
        constraints = [
            range_constraint(
                "hours", 1, MAX_BREAK_GLASS_HOURS, name="breakglassactivation_hours_range"
            ),
        ]

    def __str__(self) -> str:
        return f"Break-glass activation of {self.delegation_id} by {self.activated_by}"

    @property
    def is_pending_review(self) -> bool:
        return self.review == self.Review.PENDING
