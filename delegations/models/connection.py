"""An organisation's connected Alibaba Cloud account: the AccessKey the portal acts with.

`delegations.connection` connects, checks, replaces and disconnects it.
"""

import re
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import account_uid_field, enterprise_alias_field, optional_person_field
from core.db import ReportsChange

REGION_RE = re.compile(r"\A[a-z]{2,}(?:-[a-z0-9]+){1,3}\Z")


def validate_region(value: str) -> None:
    if not isinstance(value, str) or not REGION_RE.match(value):
        raise ValidationError(
            gettext("A region id looks like cn-hangzhou or ap-southeast-1."), code="invalid_region"
        )


# An organisation's connected accounts in the order every list and default uses: its primary
# (home) account first, then the others as they were connected.
HOME_FIRST = ("-is_primary", "created_at", "pk")


class CloudAccount(ReportsChange, models.Model):
    """An organisation's Alibaba Cloud account and the AccessKey the portal acts with.

    The AccessKey secret is stored only as MultiFernet ciphertext (keys in
    `settings.PORTAL_ENCRYPTION_KEYS`, never in the database); pages show the AccessKey id and
    `secret_fingerprint`.

    An owner may connect several accounts (production, staging…), each with its own key; one
    of them is the primary, the account every single-account path (a catalogue role added
    without naming one, a request that names none) uses. A partner keeps one account: its
    broker key. Each account UID is connected at most once per organisation.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="cloud_accounts"
    )
    account_uid = account_uid_field("Alibaba Cloud account UID")
    alias = enterprise_alias_field("enterprise alias")
    # What the owner calls the account among its others ("production", "staging"); RAM's
    # enterprise alias above is the cloud's own name for it (console links use that one).
    name = models.CharField(max_length=64, blank=True)
    region = models.CharField(max_length=32, default="cn-hangzhou", validators=[validate_region])
    access_key_id = models.CharField("AccessKey id", max_length=128)
    secret_ciphertext = models.TextField(editable=False)
    # A short digest of the secret so an admin can tell which key is stored without seeing it.
    secret_fingerprint = models.CharField(max_length=64, editable=False)
    caller_arn = models.CharField(max_length=255, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    # When the partner's `OOSServiceRole` (runbooks through OOS) was last confirmed in this
    # account: from then on, named-people grants of this partner admit that role too.
    oos_service_role_ready_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The organisation's default account; exactly one connected account per organisation has
    # it (the first one connected; moved on when it is disconnected or by the owner).
    # (True by default: an organisation's one account is its primary; the connect service
    # sets it explicitly for the further accounts of an owner.)
    is_primary = models.BooleanField(default=True)
    created_by = optional_person_field(on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organisation__name", "-is_primary", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "account_uid"],
                condition=Q(is_active=True),
                name="cloudaccount_one_active_per_uid",
            ),
            models.UniqueConstraint(
                fields=["organisation"],
                condition=Q(is_active=True, is_primary=True),
                name="cloudaccount_one_primary_per_organisation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.alias or self.account_uid} ({self.organisation})"

    @property
    def label(self) -> str:
        """How pages name the account among the organisation's others: its name (else the
        enterprise alias) and its UID."""
        named = self.name or self.alias
        return f"{named} ({self.account_uid})" if named else self.account_uid
