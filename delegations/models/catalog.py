"""What an owner may grant (catalogue roles), to which partner accounts (the allow-list), and
the codes by which partners find the owner (partner links). Worked by `delegations.catalog`.
"""

import uuid
from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import (
    ACCOUNT_UID_MAX_LENGTH,
    account_uid_field,
    optional_person_field,
    validate_account_uid,
)
from cloud import policies
from core.db import ReportsChange, range_constraint
from delegations.models.connection import CloudAccount
from delegations.models.trust_scope import trust_scope_field

ROLE_NAME_MAX_LENGTH = 64
# RAM's MaxSessionDuration bounds, in seconds.
MIN_SESSION_DURATION = 3600
MAX_SESSION_DURATION = 43200

# Catalogue roles by name, one name's roles in their accounts' order (`HOME_FIRST`): each of
# an owner's accounts may hold a role of one name.
CATALOG_ROLE_ORDER = (
    "role_name",
    "-cloud_account__is_primary",
    "cloud_account__created_at",
    "pk",
)


def validate_role_name(value: str) -> None:
    """RAM's rule (1-64 of letters, digits, '.' and '-'), from the cloud adapter."""
    try:
        policies.validate_role_name(value)
    except policies.PolicyError as exc:
        raise ValidationError(str(exc), code="invalid_role_name") from exc


# What an edit of a catalogue role may change (`catalog_role_update` saves exactly these, and
# a four-eyes proposal to edit, deactivate or reactivate the role is outdated once any of them,
# or whether the role is offered, moved).
CATALOG_ROLE_EDITABLE_FIELDS = (
    "description",
    "policies",
    "max_session_duration",
    "keep_role_when_empty",
    "allows_high_privilege",
    "default_trust_scope",
)


def role_in_account(role_name: str, account_uid: str) -> str:
    """A role named with the owner's account it is in, "ecs-admin (11223344)": one role name
    can be in several of an owner's accounts (a role of that name homed in each, or a fleet's
    or an offer's grant in another), and the bare name would read the same for each. The one
    way a list, a choice or an inbox line writes it (`CatalogRole.label` for the role's home,
    `Delegation.role_label` for the account it is granted in)."""
    return f"{role_name} ({account_uid})"


class CatalogRole(ReportsChange, models.Model):
    """A RAM role an owner is willing to grant: its name, the policies attached to it and the
    longest session it allows."""

    class PolicyType(models.TextChoices):
        SYSTEM = "System", _("System")
        CUSTOM = "Custom", _("Custom")

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
    # Not stored: why the role is high privilege, `[(policy name, reason), ...]`, set by
    # `catalog_roles_with_high_privilege_reasons` for the catalogue page.
    high_privilege_reasons: Sequence[tuple[str, str]] = ()
    # The trust scope a new delegation of this role starts with (the owner may change it).
    default_trust_scope = trust_scope_field()
    # One RAM role per partner (`<role>-<partner alias>`, `role_state.partner_role_name`)
    # instead of one shared role: no trust-policy size limit across partners, and each
    # partner's activity in the cloud is attributable to its own role. Chosen when the role
    # is added: it decides which RAM roles exist, so it never changes afterwards.
    one_role_per_partner = models.BooleanField(default=False)
    # Where the role may be granted besides its home account (`cloud_account`, where it was
    # added): every connected account of the owner, or the ones listed.
    offered_in_all_accounts = models.BooleanField(default=False)
    extra_accounts = models.ManyToManyField(
        CloudAccount, blank=True, related_name="extra_catalog_roles"
    )
    is_active = models.BooleanField(default=True)
    created_by = optional_person_field(on_delete=models.SET_NULL)
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
            range_constraint(
                "max_session_duration",
                MIN_SESSION_DURATION,
                MAX_SESSION_DURATION,
                name="catalogrole_session_duration_range",
            ),
        ]

    def __str__(self) -> str:
        return self.role_name

    @property
    def label(self) -> str:
        """How a choice or a list names the role: its name and its account's UID. Each of an
        owner's accounts may hold a catalogue role of one name (a new role's home is the
        primary of the day), and the two would otherwise read the same."""
        return role_in_account(self.role_name, self.cloud_account.account_uid)

    @property
    def policy_labels(self) -> list[str]:
        return [f"{p.get('name')} ({p.get('type')})" for p in self.policies or []]


class PartnerAllowance(models.Model):
    """A partner account UID the owner allows to appear in its trust policies."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="partner_allowances"
    )
    partner_account_uid = account_uid_field()
    label = models.CharField(max_length=200, blank=True)
    created_by = optional_person_field(on_delete=models.SET_NULL)
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
    A code works only for partners on the owner's allow-list; the owner may also bind it to
    one partner account UID and make it single use (used up by the first request sent
    through it). Links made before codes expired by default may have no expiry.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="partner_links"
    )
    label = models.CharField(max_length=200, blank=True)
    code_hash = models.CharField(max_length=64, unique=True, editable=False)
    code_hint = models.CharField(max_length=8, editable=False)
    # Blank: any partner account on the owner's allow-list.
    partner_account_uid = models.CharField(
        max_length=ACCOUNT_UID_MAX_LENGTH, blank=True, validators=[validate_account_uid]
    )
    single_use = models.BooleanField(default=False)
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_by = optional_person_field(on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = optional_person_field(on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.label or 'Partner link'} (…{self.code_hint})"

    @property
    def is_used_up(self) -> bool:
        return self.single_use and self.used_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired and not self.is_used_up
