"""Reads for the partner-side pages, and their tenancy checks.

Anything outside the person's organisation (or, for staff, outside their own open assignments)
raises Http404 exactly like a missing id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from cloud import console, policies
from core.web import get_or_404, parse_uuid
from delegations.connection.selectors import cloud_account_sign_in_name
from delegations.models import (
    CloudCall,
    CredentialIssuance,
    CredentialsUriToken,
    Delegation,
    PartnerUserPolicy,
    RoleCutOff,
    StaffAssignment,
    StaffRamUserLink,
)
from delegations.partner.credentials import (
    DurationBounds,
    credential_duration_bounds,
    session_name_for,
)
from delegations.partner.services import (
    broker_is_root,
    credentials_uri_key_hash,
    delegation_is_usable,
)
from delegations.partner_access import broker_user_name, partner_cloud_account
from delegations.trust.selectors import no_broker_reason, not_named_reason

Status = Delegation.Status


def _delegations() -> QuerySet[Delegation]:
    return Delegation.objects.select_related(
        "owner", "partner", "catalog_role", "managed_role__cloud_account"
    )


# --- partner admins --------------------------------------------------------------------------


def staff_members(*, organisation: Organisation) -> QuerySet[User]:
    """The organisation's staff (the only people a partner admin can link or assign)."""
    return User.objects.filter(
        memberships__organisation=organisation, memberships__role=Membership.Role.STAFF
    ).order_by("email")


@dataclass
class StaffRow:
    user: User
    link: StaffRamUserLink | None
    assignments: list[StaffAssignment]


def staff_overview(*, organisation: Organisation) -> list[StaffRow]:
    links = staff_links_by_user(organisation=organisation)
    open_assignments: dict[Any, list[StaffAssignment]] = {}
    for assignment in StaffAssignment.objects.filter(
        partner=organisation, ended_at__isnull=True
    ).select_related(
        "delegation__owner", "delegation__catalog_role", "delegation__managed_role__cloud_account"
    ):
        open_assignments.setdefault(assignment.user_id, []).append(assignment)
    return [
        StaffRow(user=user, link=links.get(user.pk), assignments=open_assignments.get(user.pk, []))
        for user in staff_members(organisation=organisation)
    ]


def open_assignments_of_partner(*, partner: Organisation) -> QuerySet[StaffAssignment]:
    """Every open staff assignment of `partner`: who is assigned to which delegation."""
    return (
        StaffAssignment.objects.filter(partner=partner, ended_at__isnull=True)
        .select_related(
            "user",
            "delegation__owner",
            "delegation__catalog_role",
            "delegation__managed_role__cloud_account",
        )
        .order_by(
            "delegation__owner__name",
            "delegation__catalog_role__role_name",
            "delegation__managed_role__cloud_account__account_uid",
            "user__email",
        )
    )


def staff_links_by_user(*, organisation: Organisation) -> dict[Any, StaffRamUserLink]:
    return {
        link.user_id: link for link in StaffRamUserLink.objects.filter(organisation=organisation)
    }


def active_delegations_of_partner(*, partner: Organisation) -> QuerySet[Delegation]:
    return _delegations().filter(partner=partner, status=Status.ACTIVE).order_by("owner__name")


def staff_link_get(*, organisation: Organisation, link_id: object) -> StaffRamUserLink:
    return get_or_404(
        StaffRamUserLink.objects.select_related("user", "cloud_account"),
        organisation=organisation,
        pk=parse_uuid(link_id),
    )


def partner_delegation_get(*, organisation: Organisation, delegation_id: object) -> Delegation:
    """A delegation granted to `organisation` (the partner); 404 otherwise."""
    return get_or_404(_delegations(), partner=organisation, pk=parse_uuid(delegation_id))


def delegation_assignments(*, delegation: Delegation) -> list[StaffAssignment]:
    return list(
        StaffAssignment.objects.filter(delegation=delegation)
        .select_related("user", "assigned_by", "ended_by")
        .order_by("ended_at", "user__email", "-assigned_at")
    )


def assignment_get_for_partner(
    *, organisation: Organisation, delegation: Delegation, assignment_id: object
) -> StaffAssignment:
    return get_or_404(
        StaffAssignment.objects.select_related(
            "user",
            "partner",
            "delegation__owner",
            "delegation__catalog_role",
            "delegation__managed_role__cloud_account",
        ),
        partner=organisation,
        delegation=delegation,
        pk=parse_uuid(assignment_id),
    )


def assignable_staff(*, delegation: Delegation) -> QuerySet[User]:
    assigned = StaffAssignment.objects.filter(delegation=delegation, ended_at__isnull=True).values(
        "user_id"
    )
    return staff_members(organisation=delegation.partner).exclude(pk__in=assigned)


@dataclass
class PolicyRow:
    policy: PartnerUserPolicy
    is_broker: bool
    pending: bool
    calls: list[CloudCall] = field(default_factory=list)


def partner_policies(*, organisation: Organisation) -> list[PolicyRow]:
    account = partner_cloud_account(organisation=organisation)
    if account is None:
        return []
    broker = (broker_user_name(account) or "").lower()
    rows = []
    for policy in PartnerUserPolicy.objects.filter(cloud_account=account):
        calls = list(
            CloudCall.objects.filter(partner_user_policy=policy, mutating=True).order_by(
                "-intent_at"
            )[:5]
        )
        rows.append(
            PolicyRow(
                policy=policy,
                is_broker=policy.ram_user_name.lower() == broker,
                pending=policy.desired_version != policy.applied_version,
                calls=calls,
            )
        )
    return rows


def partner_account_summary(*, organisation: Organisation) -> dict[str, Any]:
    account = partner_cloud_account(organisation=organisation)
    return {
        "account": account,
        "broker": broker_user_name(account) if account else None,
        "broker_is_root": broker_is_root(account) if account else False,
    }


# --- staff: "My access" ----------------------------------------------------------------------


def owner_console_alias(delegation: Delegation) -> str:
    """What the switch-role page needs to find the role's account (the owner's)."""
    account = delegation.managed_role.cloud_account
    account.organisation = delegation.owner  # already loaded: no second read of the row
    return cloud_account_sign_in_name(account)


@dataclass
class AccessItem:
    assignment: StaffAssignment
    delegation: Delegation
    usable: bool
    switch_role_url: str
    owner_alias: str
    ram_user_name: str | None
    ram_logon_name: str | None
    console_ready: bool
    session_name: str
    bounds: DurationBounds
    uri_keys: list[CredentialsUriToken]
    recent: list[CredentialIssuance]
    policies: list[str]
    # Why a named-people trust scope leaves this person out, and whom to ask (None: named).
    not_named: str | None = None
    # Named, but the owner trusts only their own RAM user: no brokered credentials or console.
    no_broker: str | None = None
    # One-click console sign-in through federation (PORTAL_CONSOLE_FEDERATION).
    console_federation: bool = False

    @property
    def shows_open_console(self) -> bool:
        """Whether My access offers Open console for this access (as the template decides)."""
        return self.usable and self.console_federation and not self.not_named and not self.no_broker


def _logon_name(link: StaffRamUserLink | None) -> str | None:
    """`<user>@<account>.onaliyun.com` for the RAM user, in the account it lives in."""
    if link is None or not link.ram_user_name:
        return None
    return f"{link.ram_user_name}@{cloud_account_sign_in_name(link.cloud_account)}.onaliyun.com"


def _access_item(assignment: StaffAssignment, *, now: dt.datetime) -> AccessItem:
    delegation = assignment.delegation
    organisation = delegation.partner
    link = (
        StaffRamUserLink.objects.filter(organisation=organisation, user=assignment.user)
        .select_related("cloud_account__organisation")
        .first()
    )
    ram_user_name = link.ram_user_name if link else None
    ready = False
    if link is not None:
        policy = PartnerUserPolicy.objects.filter(
            cloud_account=link.cloud_account, ram_user_name__iexact=link.ram_user_name
        ).first()
        ready = bool(
            policy is not None
            and policy.policy_attached
            and delegation.managed_role.role_arn in (policy.applied_role_arns or [])
        )
    alias = owner_console_alias(delegation)
    url = ""
    # A narrowed person's RAM user is not granted the role (switching role would carry no
    # session policy): no link to a switch the cloud would refuse.
    if not assignment.is_narrowed:
        with contextlib.suppress(policies.PolicyError):
            url = console.switch_role_url(
                signin_base_url=settings.ALIBABA_CONSOLE_SIGNIN_URL,
                parent_alias_or_uid=alias,
                # The RAM role's own name: a partner's own role when the catalogue role has
                # one role per partner.
                role_name=delegation.managed_role.role_name,
            )
    return AccessItem(
        assignment=assignment,
        delegation=delegation,
        usable=delegation_is_usable(delegation, now=now),
        switch_role_url=url,
        owner_alias=alias,
        ram_user_name=ram_user_name,
        ram_logon_name=_logon_name(link),
        console_ready=ready,
        session_name=session_name_for(user=assignment.user, partner=organisation),
        bounds=credential_duration_bounds(delegation=delegation, now=now),
        uri_keys=list(
            CredentialsUriToken.objects.filter(assignment=assignment).order_by("-created_at")[:10]
        ),
        recent=list(
            CredentialIssuance.objects.filter(assignment=assignment).order_by("-issued_at")[:5]
        ),
        policies=[p.get("name", "") for p in delegation.catalog_role.policies or []],
        not_named=not_named_reason(delegation=delegation, user_id=assignment.user_id),
        no_broker=no_broker_reason(delegation=delegation, user_id=assignment.user_id),
        console_federation=bool(getattr(settings, "PORTAL_CONSOLE_FEDERATION", False)),
    )


def my_access(*, user: User, organisation: Organisation) -> list[AccessItem]:
    """The person's open assignments in `organisation`, usable ones first."""
    now = timezone.now()
    assignments = StaffAssignment.objects.filter(
        user=user, partner=organisation, ended_at__isnull=True
    ).select_related(
        "user",
        "delegation__owner",
        "delegation__partner",
        "delegation__catalog_role",
        "delegation__managed_role__cloud_account",
    )
    items = [_access_item(a, now=now) for a in assignments]
    items.sort(key=lambda item: (not item.usable, item.delegation.owner.name))
    return items


def my_assignment_get(
    *, user: User, organisation: Organisation, delegation_id: object
) -> StaffAssignment:
    """The person's open assignment on a delegation of their own organisation; 404 for anything
    else (another partner's delegation, one they are not assigned to)."""
    assignment = get_or_404(
        StaffAssignment.objects.select_related(
            "delegation__owner",
            "delegation__catalog_role",
            "delegation__managed_role__cloud_account",
        ),
        user=user,
        partner=organisation,
        delegation_id=parse_uuid(delegation_id),
        ended_at__isnull=True,
        delegation__partner=organisation,
    )
    # The filter made these the caller's own objects; reusing them saves three joins.
    assignment.user = user
    assignment.partner = organisation
    assignment.delegation.partner = organisation
    return assignment


def my_access_item(*, assignment: StaffAssignment) -> AccessItem:
    return _access_item(assignment, now=timezone.now())


def my_uri_key_get(
    *, user: User, assignment: StaffAssignment, key_id: object
) -> CredentialsUriToken:
    return get_or_404(
        CredentialsUriToken.objects.select_related("delegation", "partner"),
        user=user,
        assignment=assignment,
        pk=parse_uuid(key_id),
    )


def credentials_uri_key_lookup(*, raw_key: str) -> CredentialsUriToken | None:
    if not raw_key or len(raw_key) > 200:
        return None
    return (
        CredentialsUriToken.objects.select_related(
            "user",
            "partner",
            "assignment__delegation__owner",
            "assignment__delegation__partner",
            "assignment__delegation__catalog_role",
            "assignment__delegation__managed_role__cloud_account",
        )
        .filter(token_hash=credentials_uri_key_hash(raw_key))
        .first()
    )


# --- owners (and the partner's admins): who took credentials ---------------------------------


@dataclass
class ResidualWindow:
    """How long credentials already issued can still be used: STS credentials cannot be
    recalled, only outlived, or stopped by detaching the role's policies."""

    until: dt.datetime | None
    live_count: int
    cut_off: RoleCutOff | None
    role_gone: bool
    # The worker has verified the cut-off in the cloud (no policy left on the role).
    cut_off_applied: bool = False

    @property
    def open(self) -> bool:
        return self.until is not None and self.cut_off is None and not self.role_gone


def residual_window(*, delegation: Delegation, now: dt.datetime | None = None) -> ResidualWindow:
    now = now or timezone.now()
    live = CredentialIssuance.objects.filter(delegation=delegation, expiration__gt=now)
    last = live.order_by("-expiration").values_list("expiration", flat=True).first()
    cut_off = (
        RoleCutOff.objects.filter(managed_role=delegation.managed_role, lifted_at__isnull=True)
        .select_related("cut_off_by")
        .first()
    )
    role = delegation.managed_role
    role_gone = role.last_seen_exists is False and delegation.status in (
        Status.REVOKED,
        Status.EXPIRED,
    )
    applied = (
        cut_off is not None
        and role.applied_version >= role.desired_version
        and not role.last_seen_policies
    )
    return ResidualWindow(
        until=last,
        live_count=live.count(),
        cut_off=cut_off,
        role_gone=role_gone,
        cut_off_applied=applied,
    )


def delegation_issuances(*, delegation: Delegation, limit: int = 200) -> list[CredentialIssuance]:
    return list(
        CredentialIssuance.objects.filter(delegation=delegation)
        .select_related("user")
        .order_by("-issued_at")[:limit]
    )


@dataclass(frozen=True)
class CutOffEntry:
    """A cut-off of the role as `reader` may see it. The role is shared, so a cut-off made
    on another partner's access stops this partner's credentials too and is listed; but that
    partner's name and the owner's reason about them stay with the owner and that partner."""

    cut_off: RoleCutOff
    partner_name: str | None
    reason: str | None

    @property
    def in_force(self) -> bool:
        return self.cut_off.in_force


def cut_offs(*, delegation: Delegation, reader: Organisation) -> list[CutOffEntry]:
    rows = (
        RoleCutOff.objects.filter(managed_role=delegation.managed_role)
        .select_related("cut_off_by", "lifted_by", "delegation__partner")
        .order_by("-cut_off_at")
    )
    entries = []
    for row in rows:
        shown = reader.pk in (delegation.owner_id, row.delegation.partner_id)
        entries.append(
            CutOffEntry(
                cut_off=row,
                partner_name=row.delegation.partner.name if shown else None,
                reason=row.reason if shown else None,
            )
        )
    return entries


def cut_off_get(*, delegation: Delegation, cut_off_id: object) -> RoleCutOff:
    return get_or_404(
        RoleCutOff.objects.select_related("managed_role__cloud_account"),
        managed_role=delegation.managed_role,
        pk=parse_uuid(cut_off_id),
    )


def other_active_partners_on_role(*, delegation: Delegation) -> list[Delegation]:
    return list(
        Delegation.objects.filter(managed_role=delegation.managed_role, status=Status.ACTIVE)
        .exclude(pk=delegation.pk)
        .select_related("partner")
    )
