"""A named person in a delegation's trust policy (the owner-approved scope): a RAM user of the
partner the partner admin proposed and the owner approves or refuses. State changes happen in
`delegations.trust.services`.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import optional_person_field
from cloud import policies
from delegations.models.lifecycle import Delegation


class TrustedPerson(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending the owner's decision")
        APPROVED = "approved", _("In the trust policy")
        REJECTED = "rejected", _("Refused by the owner")
        REMOVED = "removed", _("Removed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    delegation = models.ForeignKey(
        Delegation, on_delete=models.PROTECT, related_name="trusted_people"
    )
    ram_user_name = models.CharField(max_length=64)
    # The portal person behind the RAM user, when the partner linked one.
    person = optional_person_field(on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    proposed_by = optional_person_field(on_delete=models.PROTECT)
    proposed_at = models.DateTimeField(default=timezone.now)
    decided_by = optional_person_field(on_delete=models.PROTECT)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(max_length=2000, blank=True)
    decided_with_mfa = models.BooleanField(default=False)

    class Meta:
        ordering = ["ram_user_name", "-proposed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["delegation", "ram_user_name"],
                condition=Q(status__in=["pending", "approved"]),
                name="trustedperson_one_open_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ram_user_name} ({self.get_status_display()})"

    @property
    def principal_arn(self) -> str:
        return policies.ram_user_arn(self.delegation.partner_account_uid, self.ram_user_name)
