"""Reads for the delegation pages, and the tenancy checks behind them.

Anything belonging to another organisation raises Http404 exactly like a missing id, so a
probe cannot tell "exists elsewhere" from "does not exist".
"""

import datetime as dt
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext, ngettext

from accounts import selectors as accounts_selectors
from accounts.models import Organisation
from audit.models import AuditEvent
from audit.selectors import audit_events_visible_to
from cloud import policies
from core.web import get_or_404, parse_uuid
from delegations import role_plan as planner
from delegations.connection.selectors import organisation_own_account_uids
from delegations.models import (
    CATALOG_ROLE_ORDER,
    DESIRED_PRESENT_STATUSES,
    HOME_FIRST,
    WORKER_PENDING_STATUSES,
    CatalogRole,
    CloudAccount,
    CloudCall,
    Delegation,
    DelegationExtension,
    DriftFinding,
    ManagedRole,
    PartnerAllowance,
    RoleCutOff,
)
from delegations.role_state import (
    WAITING_FOR_ROOM,
    catalog_roles_of,
    delegation_principals,
    desired_role_for,
    trust_policy_max_chars,
)

Status = Delegation.Status


# --- delegations -----------------------------------------------------------------------------


def _delegations() -> QuerySet[Delegation]:
    return Delegation.objects.select_related(
        "owner",
        "partner",
        "catalog_role",
        "managed_role__cloud_account",
        "requested_by",
        "decided_by",
        "revoked_by",
    )


def delegation_get_for_organisation(
    *, organisation: Organisation, delegation_id: object
) -> Delegation:
    """A delegation the organisation is the owner or the partner of; 404 otherwise."""
    pk = parse_uuid(delegation_id)
    return get_or_404(_delegations().filter(Q(owner=organisation) | Q(partner=organisation)), pk=pk)


def delegations_for_owner(
    *,
    owner: Organisation,
    partner_id: object = None,
    catalog_role_id: object = None,
    status: str | None = None,
) -> QuerySet[Delegation]:
    """The owner's delegations, by partner then role then newest; filters that do not parse
    simply match nothing of another organisation."""
    qs = _delegations().filter(owner=owner)
    if partner_id:
        qs = qs.filter(partner_id=_uuid_or_none(partner_id))
    if catalog_role_id:
        qs = qs.filter(catalog_role_id=_uuid_or_none(catalog_role_id))
    if status:
        qs = qs.filter(status=status) if status in Status.values else qs.none()
    return qs.order_by("partner__name", "catalog_role__role_name", "-created_at")


def _uuid_or_none(value: object) -> uuid.UUID | None:
    try:
        return parse_uuid(value)
    except Http404:
        return None


def delegations_for_partner(*, partner: Organisation) -> QuerySet[Delegation]:
    return (
        _delegations()
        .filter(partner=partner)
        .order_by("owner__name", "catalog_role__role_name", "-created_at")
    )


def delegation_status_counts(*, organisation: Organisation) -> dict[str, int]:
    """How many delegations of each status the organisation has (as owner or as partner)."""
    counts = Counter(
        Delegation.objects.filter(Q(owner=organisation) | Q(partner=organisation)).values_list(
            "status", flat=True
        )
    )
    return {status: counts.get(status, 0) for status in Status.values}


def delegation_history(*, delegation: Delegation, organisation: Organisation) -> list[AuditEvent]:
    """The delegation's audit events the organisation may see, oldest first."""
    return list(
        audit_events_visible_to(organisation=organisation)
        .filter(target_type="delegations.delegation", target_id=str(delegation.pk))
        .order_by("sequence")
    )


def delegation_cloud_calls(*, delegation: Delegation) -> QuerySet[CloudCall]:
    return CloudCall.objects.filter(delegations=delegation).order_by("intent_at", "id")


# --- what an owner can grant, and to whom ----------------------------------------------------


def catalog_roles_grantable(*, owner: Organisation) -> QuerySet[CatalogRole]:
    return (
        CatalogRole.objects.filter(
            organisation=owner, is_active=True, cloud_account__is_active=True
        )
        .select_related("cloud_account")
        .order_by(*CATALOG_ROLE_ORDER)
    )


def owner_accounts_choosable(*, owner: Organisation) -> QuerySet[CloudAccount]:
    """The owner's connected accounts, its home (primary) first: those a request or an offer
    may choose to grant a role in. The role must be offered in the chosen one too, which
    `validate_grantable` checks whichever door the request or offer comes through."""
    return CloudAccount.objects.filter(organisation=owner, is_active=True).order_by(*HOME_FIRST)


def owner_accounts_if_several(*, owner: Organisation) -> QuerySet[CloudAccount]:
    """The owner's choosable accounts when it has more than one (a request or offer page may
    then choose one), else none: a single account needs no choice."""
    accounts = owner_accounts_choosable(owner=owner)
    return accounts if accounts.count() > 1 else accounts.none()


def owner_account_by_uid(*, owner: Organisation, account_uid: str) -> CloudAccount | None:
    """The choosable account of the owner with this UID (the API names an account where the
    pages list them), or None: another organisation's account, a disconnected one and one
    that does not exist are all the same "not one of the owner's accounts"."""
    return owner_accounts_choosable(owner=owner).filter(account_uid=account_uid).first()


def catalog_roles_of_owner(*, owner: Organisation) -> QuerySet[CatalogRole]:
    return (
        CatalogRole.objects.filter(organisation=owner)
        .select_related("cloud_account")
        .order_by(*CATALOG_ROLE_ORDER)
    )


def partners_offerable(*, owner: Organisation) -> QuerySet[Organisation]:
    """Partner organisations registered with an account UID on the owner's allow-list: the
    owner already knows those accounts, so listing them reveals nothing new. None under one
    of the owner's own accounts, any of them (an owner does not offer access to itself)."""
    allowed = PartnerAllowance.objects.filter(organisation=owner).values("partner_account_uid")
    return accounts_selectors.organisations_confirmed(
        Organisation.objects.filter(kind=Organisation.Kind.PARTNER, account_uid__in=allowed)
        .exclude(account_uid__in=organisation_own_account_uids(organisation=owner))
        .order_by("name")
    )


def partners_of_owner(*, owner: Organisation) -> QuerySet[Organisation]:
    """Partners that have or had a delegation with the owner (for the overview's filter)."""
    return (
        Organisation.objects.filter(delegations_received__owner=owner).distinct().order_by("name")
    )


# --- roles: the cloud's trust policy next to the portal's wish --------------------------------


@dataclass(frozen=True)
class PrincipalRow:
    principal: str
    who: str  # the partner's name, or "" for a principal the portal does not manage
    in_cloud: bool
    wanted: bool | None  # None: not managed here, the portal neither wants nor removes it
    state: str  # ok | pending_add | waiting | pending_remove | missing | unexpected | unmanaged
    label: str

    @property
    def is_drift(self) -> bool:
        return self.state in ("missing", "unexpected")


@dataclass(frozen=True)
class PolicyRow:
    policy_type: str
    name: str
    in_cloud: bool
    wanted: bool
    state: str  # ok | missing | unknown | unexpected | cut_off | idle
    label: str


@dataclass(frozen=True)
class RoleRetirement:
    """A role the portal deleted on purpose because nobody needed it any more."""

    deleted_at: dt.datetime
    request_id: str
    why: str


@dataclass
class RoleComparison:
    managed_role: ManagedRole
    catalog_roles: list[CatalogRole]
    seen: bool
    exists_in_cloud: bool | None
    principals: list[PrincipalRow] = field(default_factory=list)
    policies: list[PolicyRow] = field(default_factory=list)
    cloud_document: str = ""
    wanted_document: str = ""
    document_error: str = ""
    refusal: str = ""
    open_findings: list[DriftFinding] = field(default_factory=list)
    # By status as people read it (the label, lowercase), for the page's "Delegations:" line.
    delegation_counts: dict[str, int] = field(default_factory=dict)
    retirement: RoleRetirement | None = None
    # The trust policy's size as last seen (None: not seen) against the limit, and how many
    # approved accesses wait for room in it.
    trust_chars: int | None = None
    trust_chars_limit: int = 0
    waiting_for_room: int = 0

    @property
    def capacity_percent(self) -> int:
        if self.trust_chars is None or self.trust_chars_limit <= 0:
            return 0
        return min(100, round(100 * self.trust_chars / self.trust_chars_limit))

    @property
    def has_drift(self) -> bool:
        # A retired role has nothing the portal wants in the cloud, so nothing can differ.
        if self.retirement is not None:
            return False
        return (
            bool(self.open_findings)
            or any(row.is_drift for row in self.principals)
            or any(row.state in ("missing", "unexpected") for row in self.policies)
        )

    @property
    def state(self) -> str:
        """retired | not_seen | drift | in_sync: the one word the page's badge and counts use."""
        if self.retirement is not None:
            return "retired"
        if not self.seen:
            return "not_seen"
        return "drift" if self.has_drift else "in_sync"


_PENDING_ADD = frozenset({Status.APPROVED, Status.APPLYING})


def _principal_rows(
    *, managed_role: ManagedRole, delegations: list[Delegation], cloud: set[str]
) -> list[PrincipalRow]:
    wanted: dict[str, Delegation] = {}
    pending_add: set[str] = set()
    waiting: set[str] = set()
    pending_remove: set[str] = set()
    names: dict[str, str] = {}
    for delegation in delegations:
        # The partner's root, or the named people of a named trust scope.
        for arn in delegation_principals(delegation) or {delegation.principal_arn}:
            names.setdefault(arn, delegation.partner.name)
            if delegation.status in DESIRED_PRESENT_STATUSES:
                wanted[arn] = delegation
                names[arn] = delegation.partner.name
                if delegation.status in _PENDING_ADD:
                    pending_add.add(arn)
                    if delegation.last_error_code == WAITING_FOR_ROOM:
                        waiting.add(arn)
            elif delegation.status == Status.REVOKING or (
                delegation.status == Status.FAILED and delegation.failed_phase == "revoking"
            ):
                pending_remove.add(arn)
    managed = set(managed_role.known_principals or []) | set(wanted) | set(names)
    parking = policies.account_root_arn(managed_role.cloud_account.account_uid)
    rows = []
    for arn in sorted(cloud | set(wanted)):
        in_cloud = arn in cloud
        if arn == parking and arn not in wanted:
            label = gettext(
                "the owner's own account: keeps the role valid while no partner is on it"
            )
            rows.append(PrincipalRow(arn, "", in_cloud, None, "parking", label))
        elif arn in wanted:
            if in_cloud:
                state, label = "ok", gettext("in place")
            elif arn in waiting:
                state, label = "waiting", gettext("waiting for room: the trust policy is full")
            elif arn in pending_add:
                state, label = "pending_add", gettext("being added")
            else:
                state, label = "missing", gettext("missing from the cloud (drift)")
            rows.append(PrincipalRow(arn, names.get(arn, ""), in_cloud, True, state, label))
        elif arn in managed:
            if arn in pending_remove:
                state, label = "pending_remove", gettext("being removed")
            else:
                state, label = "unexpected", gettext("should not be there (drift)")
            rows.append(PrincipalRow(arn, names.get(arn, ""), in_cloud, False, state, label))
        else:
            rows.append(
                PrincipalRow(arn, "", in_cloud, None, "unmanaged", gettext("not managed here"))
            )
    return rows


def _policy_key(policy: Any) -> tuple[str, str] | None:
    if isinstance(policy, dict):
        return (str(policy.get("type", "")), str(policy.get("name", "")))
    return None


def _policy_rows(
    *,
    catalog_roles: list[CatalogRole],
    cloud_policies: list[Any],
    seen: bool,
    cut_off: bool,
    partner_wanted: bool,
) -> list[PolicyRow]:
    """The catalogue's policies next to the cloud's. A catalogue policy is wanted in the cloud
    only while a partner is (being) put on the role and no cut-off is in force, as the worker
    and the periodic drift check see it; otherwise its absence is expected, not drift."""
    catalogue = {
        key
        for catalog_role in catalog_roles
        if catalog_role.is_active
        for key in (_policy_key(p) for p in catalog_role.policies or [])
        if key
    }
    in_cloud = {key for key in (_policy_key(p) for p in cloud_policies or []) if key}
    rows = []
    for policy_type, name in sorted(catalogue | in_cloud, key=lambda k: (k[1], k[0])):
        key = (policy_type, name)
        if key in catalogue and key in in_cloud:
            state, label = "ok", gettext("attached")
        elif key in catalogue and cut_off:
            state, label = "cut_off", gettext("detached by the emergency cut-off")
        elif key in catalogue and not partner_wanted:
            state, label = "idle", gettext("attached again when a partner is granted this role")
        elif key in catalogue:
            state, label = (
                ("missing", gettext("not attached (drift)")) if seen else ("unknown", "—")
            )
        else:
            state, label = "unexpected", gettext("attached outside the catalogue")
        rows.append(PolicyRow(policy_type, name, key in in_cloud, key in catalogue, state, label))
    return rows


def _actual_from_last_seen(managed_role: ManagedRole, max_session: int) -> Any:
    if not managed_role.last_seen_exists or managed_role.last_seen_trust_policy is None:
        return None
    return planner.ActualRole(
        description=managed_role.last_seen_description,
        trust_document=managed_role.last_seen_trust_policy,
        attached_policies=frozenset(
            key for key in (_policy_key(p) for p in managed_role.last_seen_policies or []) if key
        ),
        max_session_duration=max_session,
    )


# Delegations that need the role in the cloud, or that the worker has yet to finish.
_NEEDS_ROLE = DESIRED_PRESENT_STATUSES | WORKER_PENDING_STATUSES


def _ended_how(delegation: Delegation) -> str:
    if delegation.end_cause:
        return delegation.get_end_cause_display().lower()
    return delegation.get_status_display().lower()


def role_retirement(
    *, managed_role: ManagedRole, delegations: list[Delegation] | None = None
) -> RoleRetirement | None:
    """When and why the portal deleted the role on purpose, if it is retired; else None.

    Read from the portal's own record, never from a guess: the worker last saw no role, no
    delegation needs it (or is still being worked on), and the last CreateRole or DeleteRole
    that succeeded on it is the portal's DeleteRole. A new grant needs the role again, so the
    role is live from that moment (and a later CreateRole keeps it so)."""
    if managed_role.last_seen_exists is not False:
        return None
    if delegations is None:
        delegations = list(
            Delegation.objects.filter(managed_role=managed_role).select_related("partner")
        )
    # A failed delegation is unsettled (the owner may retry it): not retired yet.
    if any(d.status in _NEEDS_ROLE or d.status == Status.FAILED for d in delegations):
        return None
    deletion = (
        CloudCall.objects.filter(
            managed_role=managed_role,
            action__in=("CreateRole", "DeleteRole"),
            outcome=CloudCall.Outcome.OK,
        )
        .order_by("-intent_at", "-id")
        .first()
    )
    if deletion is None or deletion.action != "DeleteRole":
        return None
    # The delegations that call ended are the ones whose end left the role with nobody.
    ended = list(deletion.delegations.select_related("partner").order_by("partner__name"))
    if ended:
        whose = ", ".join(f"{d.partner.name} ({_ended_how(d)})" for d in ended)
        why = ngettext(
            "The portal deleted it because no partner needed it any more: the last "
            "delegation on it ended: %(whose)s.",
            "The portal deleted it because no partner needed it any more: the last "
            "delegations on it ended: %(whose)s.",
            len(ended),
        ) % {"whose": whose}
    else:
        why = gettext("The portal deleted it because no partner needed it any more.")
    return RoleRetirement(
        deleted_at=deletion.finished_at or deletion.intent_at,
        request_id=deletion.request_id,
        why=why,
    )


@dataclass(frozen=True)
class RoleOccupancy:
    """Who the role is granted to now (or is being granted to), by partner name: the ones a
    cut-off takes the permissions from and its lift gives them back to. With nobody on it,
    `retirement` says whether the portal has deleted the role itself."""

    partners: tuple[str, ...]
    retirement: RoleRetirement | None

    @property
    def anyone(self) -> bool:
        return bool(self.partners)


def role_occupancy(*, managed_role: ManagedRole) -> RoleOccupancy:
    partners = tuple(
        Organisation.objects.filter(
            delegations_received__managed_role=managed_role,
            delegations_received__status__in=DESIRED_PRESENT_STATUSES,
        )
        .distinct()
        .order_by("name")
        .values_list("name", flat=True)
    )
    return RoleOccupancy(
        partners=partners,
        retirement=None if partners else role_retirement(managed_role=managed_role),
    )


def role_comparison(*, managed_role: ManagedRole) -> RoleComparison:
    """What the cloud had when the worker last looked, next to what the portal wants (the
    role the worker's planner would leave after reconciling it). A role the portal deleted
    on purpose is *retired*: shown with when and why, and never compared for drift."""
    delegations = list(
        Delegation.objects.filter(managed_role=managed_role).select_related("partner")
    )
    catalog_roles = list(catalog_roles_of(managed_role))
    seen = managed_role.last_seen_at is not None
    comparison = RoleComparison(
        managed_role=managed_role,
        catalog_roles=catalog_roles,
        seen=seen,
        exists_in_cloud=managed_role.last_seen_exists,
        open_findings=list(managed_role.drift_findings.filter(resolved_at__isnull=True)),
        delegation_counts=dict(Counter(d.get_status_display().lower() for d in delegations)),
        retirement=role_retirement(managed_role=managed_role, delegations=delegations),
        trust_chars_limit=trust_policy_max_chars(),
        waiting_for_room=sum(
            1
            for d in delegations
            if d.status in _PENDING_ADD and d.last_error_code == WAITING_FOR_ROOM
        ),
    )
    if comparison.retirement is not None:
        comparison.wanted_document = gettext(
            "(no role: retired, the portal creates it again for a new grant)"
        )
        return comparison
    cloud: set[str] = set()
    document = managed_role.last_seen_trust_policy if managed_role.last_seen_exists else None
    try:
        if document is not None:
            found = policies.trust_policy_principals(document)
            cloud = set(found.ram | found.service | found.federated)
            comparison.trust_chars = planner.trust_policy_chars(document)
            comparison.cloud_document = json.dumps(
                policies.canonical_policy(document, trust=True), indent=2
            )
        if delegations and catalog_roles:
            desired, _wanted = desired_role_for(managed_role, delegations)
            actual = _actual_from_last_seen(managed_role, desired.max_session_duration)
            plan = planner.plan_role_reconciliation(actual=actual, desired=desired)
            if isinstance(plan, planner.Refusal):
                comparison.refusal = plan.reason
            else:
                expected = planner.expected_state_after(actual, plan)
                comparison.wanted_document = (
                    json.dumps(
                        policies.canonical_policy(expected.trust_document, trust=True), indent=2
                    )
                    if expected is not None
                    else gettext("(no role: nobody needs it any more, so the portal deletes it)")
                )
    except (policies.PolicyError, ValueError) as exc:
        comparison.document_error = str(exc)
    comparison.principals = _principal_rows(
        managed_role=managed_role, delegations=delegations, cloud=cloud
    )
    comparison.policies = _policy_rows(
        catalog_roles=catalog_roles,
        cloud_policies=managed_role.last_seen_policies if managed_role.last_seen_exists else [],
        seen=seen,
        cut_off=RoleCutOff.objects.filter(
            managed_role=managed_role, lifted_at__isnull=True
        ).exists(),
        partner_wanted=any(d.status in DESIRED_PRESENT_STATUSES for d in delegations),
    )
    return comparison


def role_comparisons_for_owner(*, owner: Organisation) -> list[RoleComparison]:
    roles = (
        ManagedRole.objects.filter(cloud_account__organisation=owner)
        .select_related("cloud_account", "catalog_role", "partner")
        .order_by("role_name")
    )
    return [role_comparison(managed_role=role) for role in roles]


def role_comparison_counts(comparisons: list[RoleComparison]) -> dict[str, int]:
    """How many roles are in each state, for the page's summary: retired roles are counted
    apart, never as drift."""
    counts = Counter(comparison.state for comparison in comparisons)
    return {state: counts.get(state, 0) for state in ("in_sync", "drift", "retired", "not_seen")}


def drift_finding_get_for_owner(*, owner: Organisation, finding_id: object) -> DriftFinding:
    return get_or_404(
        DriftFinding.objects.select_related("managed_role__cloud_account"),
        managed_role__cloud_account__organisation=owner,
        pk=parse_uuid(finding_id),
    )


def managed_role_get_for_owner(*, owner: Organisation, managed_role_id: object) -> ManagedRole:
    return get_or_404(
        ManagedRole.objects.select_related("cloud_account"),
        cloud_account__organisation=owner,
        pk=parse_uuid(managed_role_id),
    )


# --- extensions ------------------------------------------------------------------------------


def extensions_of_delegation(*, delegation: Delegation) -> QuerySet[DelegationExtension]:
    """A delegation (already found through a tenancy selector) and its extensions, newest
    first."""
    return DelegationExtension.objects.filter(delegation=delegation).select_related(
        "requested_by", "decided_by"
    )


def extension_get_for_delegation(
    *, delegation: Delegation, extension_id: object
) -> DelegationExtension:
    """One extension of `delegation`; another delegation's extension is 404 like a missing id."""
    return get_or_404(extensions_of_delegation(delegation=delegation), pk=parse_uuid(extension_id))
