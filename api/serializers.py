"""What the API reads and writes. Inputs refuse unknown fields (no mass assignment); outputs
show what the pages show, never a secret beyond the one answer that issues it."""

from typing import Any

from django.db import models
from rest_framework import serializers

from accounts.models import ACCOUNT_UID_MAX_LENGTH
from delegations.approvals.rules import Tally
from delegations.approvals.selectors import approval_standing, extension_standing
from delegations.catalog.selectors import catalog_role_accounts, catalog_roles_offered_accounts
from delegations.models import CatalogRole, CloudAccount, Delegation, DelegationExtension

_REQUIRED_HELP = (
    "While it waits for the owner's decision: how many approvals the approval rules need now "
    "(the role's quorum). Null once decided."
)

_ACCOUNT_HELP = (
    "The owner's account the role is in: one role name can be granted in several of an "
    "owner's accounts (a fleet grant's), each its own delegation."
)

# One rule for both doors (a request and an offer), said once.
_CHOSEN_ACCOUNT_HELP = (
    "Which of the owner's connected accounts the role is granted in, by its account UID; "
    "absent: the role's home account (as on the request and offer pages). The role must be "
    "offered in that account: one it is not offered in, or a UID that is not one of the "
    "owner's connected accounts, is a validation problem on this field."
)
_ROLE_BY_NAME_HELP = (
    "The catalogue role's id or its role name. A name roles in two of the owner's accounts "
    "hold is refused (give the id), unless `account_uid` is given: the name then means the "
    "role of that name offered in that account, whether homed there or offered there too "
    "(the catalogue never offers two roles of one name in one account)."
)


_OFFERED_HELP = (
    "The UIDs of the owner's connected accounts the role may be granted in: what a request's "
    "or an offer's `account_uid` may name. The home account (`cloud_account_uid`) first, "
    "then the others as the owner's accounts are listed (the primary, then as connected); "
    "a disconnected account is never one of them."
)


def _chosen_account_field() -> serializers.CharField:
    return serializers.CharField(
        max_length=ACCOUNT_UID_MAX_LENGTH, required=False, help_text=_CHOSEN_ACCOUNT_HELP
    )


# --- inputs ----------------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """A body with a field this serializer does not declare is refused, naming the fields;
    so is a value of the wrong JSON type for a text or a whole number (DRF would read 0 as the
    text "0" and "1" as the number 1, where the schema says string and integer)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field is not accepted here."] for name in unknown}
                )
            mistyped = {
                name: [self.fields[name].error_messages["invalid"]]
                for name, value in data.items()
                if not _of_json_type(self.fields[name], value)
            }
            # Every field's problem at once: the mistyped ones beside the others' (missing...).
            try:
                validated = super().to_internal_value(data)
            except serializers.ValidationError as error:
                assert isinstance(error.detail, dict)
                raise serializers.ValidationError({**error.detail, **mistyped}) from error
            if mistyped:
                raise serializers.ValidationError(mistyped)
            return validated
        return super().to_internal_value(data)


def _of_json_type(field: serializers.Field, value: Any) -> bool:
    """Whether `value` is of the JSON type the schema gives `field` (null is the field's own
    business: `allow_null`)."""
    if value is None:
        return True
    if isinstance(field, serializers.CharField):
        return isinstance(value, str)
    if isinstance(field, serializers.IntegerField):
        return isinstance(value, int) and not isinstance(value, bool)
    return True


class RequestAccessInput(StrictSerializer):
    partner_link_code = serializers.CharField(
        max_length=64, required=False, help_text="The owner's partner link code."
    )
    owner = serializers.SlugField(
        max_length=80,
        required=False,
        help_text="Instead of a code: an owner whose code your organisation used before.",
    )
    catalog_role = serializers.CharField(max_length=80, help_text=_ROLE_BY_NAME_HELP)
    account_uid = _chosen_account_field()
    reason = serializers.CharField(max_length=2000)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if bool(data.get("partner_link_code")) == bool(data.get("owner")):
            raise serializers.ValidationError(
                {"partner_link_code": ["Give either a partner link code or an owner."]}
            )
        return data


class OfferInput(StrictSerializer):
    partner = serializers.CharField(max_length=80, help_text="The partner's id or slug.")
    catalog_role = serializers.CharField(max_length=80, help_text=_ROLE_BY_NAME_HELP)
    account_uid = _chosen_account_field()
    reason = serializers.CharField(max_length=2000)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)


class VersionedInput(StrictSerializer):
    expected_version = serializers.IntegerField(required=False, min_value=1)


class ApproveInput(VersionedInput):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ReasonInput(VersionedInput):
    reason = serializers.CharField(max_length=2000)


class CredentialsInput(StrictSerializer):
    duration_seconds = serializers.IntegerField(required=False, min_value=900, max_value=43200)


class AssignInput(StrictSerializer):
    user = serializers.EmailField(help_text="The staff member's email address.")


class DeviceCodeInput(StrictSerializer):
    client_name = serializers.CharField(max_length=100, required=False, default="pap")


class DeviceTokenInput(StrictSerializer):
    grant_type = serializers.CharField(max_length=100)
    device_code = serializers.CharField(max_length=200)


# --- outputs ---------------------------------------------------------------------------------


class OrganisationRef(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()


class _CatalogRoleListOutput(serializers.ListSerializer):
    """A list (a page) of catalogue roles reads where each is offered for all of them at
    once, not once per role."""

    def to_representation(self, data: Any) -> list[Any]:
        roles = list(data.all() if isinstance(data, models.manager.BaseManager) else data)
        self.child.offered_accounts = catalog_roles_offered_accounts(roles)
        return super().to_representation(roles)


class CatalogRoleOutput(serializers.ModelSerializer):
    # Set by the list for its rows; one role alone reads its own.
    offered_accounts: dict[Any, list[CloudAccount]] | None = None

    cloud_account_uid = serializers.CharField(
        source="cloud_account.account_uid", help_text="The role's home account."
    )
    offered_in_account_uids = serializers.SerializerMethodField(help_text=_OFFERED_HELP)
    policies = serializers.SerializerMethodField()

    class Meta:
        model = CatalogRole
        list_serializer_class = _CatalogRoleListOutput
        fields = [
            "id",
            "role_name",
            "description",
            "cloud_account_uid",
            "offered_in_account_uids",
            "policies",
            "max_session_duration",
            "is_active",
        ]

    def get_offered_in_account_uids(self, role: CatalogRole) -> list[str]:
        offered = self.offered_accounts
        accounts = (
            offered[role.pk]
            if offered is not None and role.pk in offered
            else catalog_role_accounts(catalog_role=role)
        )
        return [account.account_uid for account in accounts]

    def get_policies(self, role: CatalogRole) -> list[str]:
        return [str(policy.get("name", "")) for policy in role.policies or []]


class RequestableRoleOutput(CatalogRoleOutput):
    """A role as a partner sees it in an owner's catalogue: what the request page shows of it
    (its name, home account and policies) and the accounts it may be requested in; not the
    owner's description or settings."""

    class Meta(CatalogRoleOutput.Meta):
        fields = ["id", "role_name", "cloud_account_uid", "offered_in_account_uids", "policies"]


class DelegationOutput(serializers.ModelSerializer):
    owner = OrganisationRef()
    partner = OrganisationRef()
    catalog_role = serializers.SerializerMethodField()
    role_arn = serializers.CharField(source="managed_role.role_arn")
    account_uid = serializers.CharField(
        source="managed_role.cloud_account.account_uid", help_text=_ACCOUNT_HELP
    )
    requested_by = serializers.SerializerMethodField()
    decided_by = serializers.SerializerMethodField()
    # An approval that does not complete the quorum, and a withdrawn one, change neither the
    # status nor the version: these say where the decision stands.
    approvals_counted = serializers.SerializerMethodField(
        help_text="While the request waits for the owner's decision: the approvals given that "
        "count under the approval rules now (not one withdrawn, nor one whose approver can no "
        "longer decide it). Null once decided."
    )
    approvals_required = serializers.SerializerMethodField(help_text=_REQUIRED_HELP)
    # Where the quorum stands, read once per delegation for the two fields above.
    _standing: Tally | None = None

    class Meta:
        model = Delegation
        fields = [
            "id",
            "status",
            "origin",
            "owner",
            "partner",
            "catalog_role",
            "role_arn",
            "account_uid",
            "reason",
            "requested_by",
            "decided_by",
            "decided_at",
            "decision_reason",
            "approvals_counted",
            "approvals_required",
            "starts_at",
            "ends_at",
            "activated_at",
            "ended_at",
            "version",
            "created_at",
            "updated_at",
        ]

    def get_catalog_role(self, delegation: Delegation) -> dict[str, str]:
        return {
            "id": str(delegation.catalog_role_id),
            "role_name": delegation.catalog_role.role_name,
        }

    def get_requested_by(self, delegation: Delegation) -> str | None:
        return delegation.requester or None

    def get_decided_by(self, delegation: Delegation) -> str | None:
        return str(delegation.decided_by) if delegation.decided_by_id else None

    def to_representation(self, delegation: Delegation) -> Any:
        self._standing = approval_standing(delegation=delegation)
        return super().to_representation(delegation)

    def get_approvals_counted(self, delegation: Delegation) -> int | None:
        return self._standing.counted if self._standing is not None else None

    def get_approvals_required(self, delegation: Delegation) -> int | None:
        return self._standing.required if self._standing is not None else None


class AccessOutput(serializers.Serializer):
    delegation = serializers.UUIDField(source="delegation.id")
    owner = serializers.CharField(source="delegation.owner.slug")
    owner_name = serializers.CharField(source="delegation.owner.name")
    role_name = serializers.CharField(source="delegation.catalog_role.role_name")
    role_arn = serializers.CharField(source="delegation.managed_role.role_arn")
    account_uid = serializers.CharField(
        source="delegation.managed_role.cloud_account.account_uid", help_text=_ACCOUNT_HELP
    )
    status = serializers.CharField(source="delegation.status")
    usable = serializers.BooleanField()
    ends_at = serializers.DateTimeField(source="delegation.ends_at", allow_null=True)
    switch_role_url = serializers.CharField()
    max_duration_seconds = serializers.IntegerField(source="bounds.maximum")
    policies = serializers.ListField(child=serializers.CharField())


class CredentialsOutput(serializers.Serializer):
    access_key_id = serializers.CharField()
    access_key_secret = serializers.CharField()
    security_token = serializers.CharField()
    expiration = serializers.CharField()
    region_id = serializers.CharField()
    role_arn = serializers.CharField()
    session_name = serializers.CharField()


class ConsoleOutput(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=["federation", "switch_role"],
        help_text="federation: a one-click sign-in URL (single use, about 30 s; a secret while it "
        "lives); switch_role: the console's switch-role link (no secret).",
    )
    url = serializers.CharField()
    expires_in = serializers.IntegerField(
        allow_null=True, help_text="Seconds the federation URL stays usable; null for a link."
    )


class AssignmentOutput(serializers.Serializer):
    id = serializers.UUIDField()
    user = serializers.EmailField(source="user.email")
    created_at = serializers.DateTimeField(source="assigned_at", required=False)


class StaffAssignmentOutput(serializers.Serializer):
    """One open assignment in a partner admin's overview: who uses which delegation."""

    id = serializers.UUIDField()
    delegation = serializers.UUIDField(source="delegation_id")
    owner = serializers.CharField(source="delegation.owner.slug")
    role_name = serializers.CharField(source="delegation.catalog_role.role_name")
    account_uid = serializers.CharField(
        source="delegation.managed_role.cloud_account.account_uid", help_text=_ACCOUNT_HELP
    )
    delegation_status = serializers.CharField(source="delegation.status")
    user = serializers.EmailField(source="user.email")
    session_policy_kind = serializers.CharField()
    assigned_at = serializers.DateTimeField()


class AuditEventOutput(serializers.Serializer):
    sequence = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    action = serializers.CharField()
    outcome = serializers.CharField()
    actor = serializers.CharField(source="actor_label")
    actor_organisation = serializers.CharField(source="actor_organisation_label")
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    target = serializers.CharField(source="target_label")
    source = serializers.CharField()
    request_id = serializers.CharField()
    metadata = serializers.JSONField()


class AuditEventPageOutput(serializers.Serializer):
    """A page of events and the URL of the next one (null on the last page)."""

    next = serializers.URLField(allow_null=True)
    results = AuditEventOutput(many=True)


class MeOutput(serializers.Serializer):
    caller = serializers.CharField()
    kind = serializers.CharField()
    organisation = OrganisationRef()
    role = serializers.CharField(allow_null=True)
    scopes = serializers.ListField(child=serializers.CharField())
    token_prefix = serializers.CharField()
    token_expires_at = serializers.DateTimeField()


class DeviceCodeOutput(serializers.Serializer):
    device_code = serializers.CharField()
    user_code = serializers.CharField()
    verification_uri = serializers.CharField()
    expires_in = serializers.IntegerField()
    interval = serializers.IntegerField()


class DeviceTokenOutput(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()
    scope = serializers.CharField()
    organisation = serializers.CharField()


class DeviceTokenError(serializers.Serializer):
    """RFC 8628 §3.5: `authorization_pending` and `slow_down` mean poll again."""

    error = serializers.ChoiceField(
        choices=[
            "authorization_pending",
            "slow_down",
            "access_denied",
            "expired_token",
            "invalid_grant",
            "unsupported_grant_type",
        ]
    )
    error_description = serializers.CharField(required=False)


class AccessReportRowOutput(serializers.Serializer):
    kind = serializers.CharField()
    who = serializers.CharField()
    detail = serializers.CharField()
    delegation_id = serializers.CharField()
    partner_name = serializers.CharField()
    partner_account_uid = serializers.CharField()
    account_uid = serializers.CharField()
    role_name = serializers.CharField()
    approved_by = serializers.CharField()
    approved_at = serializers.DateTimeField(allow_null=True)
    access_from = serializers.DateTimeField(allow_null=True)
    access_until = serializers.DateTimeField(allow_null=True)
    residual_until = serializers.DateTimeField(allow_null=True)
    ended_how = serializers.CharField()
    credentials = serializers.IntegerField()
    still_able = serializers.BooleanField()


class NamedSpellOutput(serializers.Serializer):
    ram_user_name = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField(allow_null=True, help_text="null: still in the policy.")


class NamedPeopleOutput(serializers.Serializer):
    delegation_id = serializers.UUIDField()
    role_name = serializers.CharField()
    partner_name = serializers.CharField()
    scope = serializers.CharField()
    could_act = NamedSpellOutput(many=True)


class AccessReportOutput(serializers.Serializer):
    account_uid = serializers.CharField()
    role_name = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    generated_at = serializers.DateTimeField()
    rows = AccessReportRowOutput(many=True)
    per_person_data = serializers.BooleanField()
    delegations_considered = serializers.IntegerField()
    named_people = NamedPeopleOutput(
        many=True,
        help_text="Per delegation whose trust policy named people in the window: each person "
        "in it at any time in the window, with from/to (from the recorded trust-policy writes).",
    )


class CloudAccountOutput(serializers.Serializer):
    """One of the organisation's connected accounts; never its AccessKey (id or secret). An
    owner may have several: `name` tells them apart, `is_primary` marks the one
    used wherever no account is chosen."""

    id = serializers.UUIDField()
    account_uid = serializers.CharField()
    alias = serializers.CharField()
    name = serializers.CharField()
    is_primary = serializers.BooleanField()
    region = serializers.CharField()
    caller_arn = serializers.CharField()
    verified_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


# --- extensions (a partner asks for more time; the owner decides) ----------------------------


class ExtensionRequestInput(StrictSerializer):
    new_ends_at = serializers.DateTimeField(
        help_text="The new end, with a time zone (ISO 8601), later than the current end."
    )
    reason = serializers.CharField(max_length=2000)


class ExtensionApproveInput(StrictSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ExtensionRejectInput(StrictSerializer):
    reason = serializers.CharField(max_length=2000)


class ExtensionOutput(serializers.ModelSerializer):
    delegation = serializers.UUIDField(source="delegation_id")
    requested_by = serializers.SerializerMethodField()
    decided_by = serializers.SerializerMethodField()
    approvals_counted = serializers.SerializerMethodField(
        help_text="Approvals recorded so far (a quorum may need more)."
    )
    approvals_required = serializers.SerializerMethodField(help_text=_REQUIRED_HELP)

    class Meta:
        model = DelegationExtension
        fields = [
            "id",
            "delegation",
            "status",
            "reason",
            "requested_by",
            "previous_ends_at",
            "new_ends_at",
            "approvals_counted",
            "approvals_required",
            "decided_by",
            "decided_at",
            "decision_reason",
            "created_at",
        ]

    def get_requested_by(self, extension: DelegationExtension) -> str:
        return str(extension.requested_by)

    def get_decided_by(self, extension: DelegationExtension) -> str | None:
        return str(extension.decided_by) if extension.decided_by_id else None

    def get_approvals_counted(self, extension: DelegationExtension) -> int:
        return len(extension.approvals or [])

    def get_approvals_required(self, extension: DelegationExtension) -> int | None:
        standing = extension_standing(extension=extension)
        return standing.required if standing is not None else None
