"""A fleet grant: one catalogue role for one partner across several of the owner's cloud
accounts x regions, decided once. Worked by `delegations.fleet`.

The grant owns one `Delegation` per account (`Delegation.fleet`): each account's access has
its own lifecycle, cloud calls, retry, revoke and expiry, and every existing page, report and
worker path sees it as the delegation it is. RAM is global, so the regions do not change what
is put into the cloud; they say where the partner may operate (runbooks run there), and are
kept here, on the fleet.

Rate control: the worker applies at most `concurrency` accounts at a time. Approved accounts
wait their turn as `scheduled` delegations (nothing of them is in the cloud); once more than
`max_errors` accounts failed, the fleet stops (`stopped_at`) and the accounts still waiting
are "not attempted" until someone retries them.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import account_uid_field, optional_person_field
from core.db import ReportsChange, range_constraint
from delegations.models.catalog import CatalogRole, PartnerLink
from delegations.models.versioned import VersionedModel

# A fleet is applied by the portal's worker pool; more than this many accounts at once would
# only queue behind each other (and trip the cloud's per-account throttling sooner).
MAX_FLEET_CONCURRENCY = 20
MAX_FLEET_REGIONS = 30
MAX_FLEET_ACCOUNTS = 100


class FleetGrantQuerySet(models.QuerySet["FleetGrant"]):
    def locked_for_change(self) -> "FleetGrantQuerySet":
        """The fleets' own rows locked until the transaction ends (a fleet is locked before
        its accounts, so a fleet-wide change and a per-account one never wait crosswise),
        loaded with owner, partner and catalogue role."""
        return self.select_for_update(of=("self",)).select_related(
            "owner", "partner", "catalog_role"
        )


class FleetGrant(ReportsChange, VersionedModel):
    class Origin(models.TextChoices):
        REQUEST = "request", _("Requested by the partner")
        OFFER = "offer", _("Offered by the owner")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    objects = FleetGrantQuerySet.as_manager()
    owner = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="fleets_granted"
    )
    partner = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="fleets_received"
    )
    catalog_role = models.ForeignKey(CatalogRole, on_delete=models.PROTECT, related_name="fleets")
    partner_account_uid = account_uid_field()
    partner_link = models.ForeignKey(
        PartnerLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="fleets"
    )
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.REQUEST)
    # Region ids ("cn-shanghai", …) in the order they were chosen.
    regions = models.JSONField(default=list)
    concurrency = models.PositiveSmallIntegerField(default=5)
    max_errors = models.PositiveSmallIntegerField(default=0)

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField("justification", max_length=2000)
    ends_at = models.DateTimeField(null=True, blank=True)
    decided_by = optional_person_field(on_delete=models.PROTECT)
    decided_at = models.DateTimeField(null=True, blank=True)
    revoked_by = optional_person_field(on_delete=models.PROTECT)
    revoke_requested_at = models.DateTimeField(null=True, blank=True)

    # A run: the accounts applied since the approval (or the last "continue"). Failures count
    # against `max_errors` from `run_started_at`; when more than `max_errors` accounts failed,
    # `stopped_at` is set and the accounts still waiting are not attempted until someone
    # continues the fleet. `run_finished_at`: every account of the run left the worker.
    run_started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    run_finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "created_at"], name="fleet_owner_created"),
            models.Index(fields=["partner", "created_at"], name="fleet_partner_created"),
        ]
        constraints = [
            range_constraint(
                "concurrency", 1, MAX_FLEET_CONCURRENCY, name="fleet_concurrency_range"
            ),
            models.CheckConstraint(
                condition=~Q(owner=models.F("partner")), name="fleet_owner_is_not_partner"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.catalog_role.role_name} fleet for {self.partner}"
