"""Reading whom a delegation's trust policy names, for the trust page, the partner's pages,
the credentials and console checks and the access report. Tenancy: a delegation or named
person of another organisation is a 404."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Organisation, User
from cloud import policies
from core.web import get_or_404, parse_uuid
from delegations.models import (
    NAMED_SCOPES,
    CredentialIssuance,
    CredentialsUriToken,
    Delegation,
    StaffAssignment,
    StaffRamUserLink,
    TrustedPerson,
    TrustScope,
)
from delegations.role_state import broker_principal, named_ram_users

IN_POLICY = "in_policy"
BEING_APPLIED = "being_applied"
PENDING = "pending"
REFUSED = "refused"
OVER_CAP = "over_cap"
NOT_LINKED = "not_linked"
REMOVED = "removed"

STATE_LABELS = {
    IN_POLICY: gettext_lazy("In the trust policy"),
    BEING_APPLIED: gettext_lazy("Being applied"),
    PENDING: gettext_lazy("Pending the owner's approval"),
    REFUSED: gettext_lazy("Refused by the owner"),
    OVER_CAP: gettext_lazy("Not named: over the owner's cap"),
    NOT_LINKED: gettext_lazy("Not named: no RAM user linked"),
    REMOVED: gettext_lazy("Removed"),
}


@dataclass(frozen=True)
class NamedPersonRow:
    ram_user_name: str
    principal_arn: str
    state: str
    person_label: str = ""
    trusted_person: TrustedPerson | None = None

    @property
    def state_label(self) -> str:
        return str(STATE_LABELS[self.state])

    @property
    def is_named(self) -> bool:
        return self.state in (IN_POLICY, BEING_APPLIED)


@dataclass(frozen=True)
class TrustView:
    delegation: Delegation
    scope: str
    scope_label: str
    named_people_cap: int
    external_id_required: bool
    rows: list[NamedPersonRow] = field(default_factory=list)
    broker_arn: str | None = None

    @property
    def is_named(self) -> bool:
        return self.scope in NAMED_SCOPES

    @property
    def named(self) -> list[NamedPersonRow]:
        return [row for row in self.rows if row.is_named]

    @property
    def not_named(self) -> list[NamedPersonRow]:
        return [row for row in self.rows if not row.is_named]

    @property
    def has_pending(self) -> bool:
        return any(row.state == PENDING for row in self.rows)


@dataclass(frozen=True)
class PeopleDeciding:
    """Whether the person reading a trust page may decide on the people proposed there
    (`refusal` None) and, when not, why, and who may (`deciders`: their emails)."""

    refusal: str | None
    deciders: tuple[str, ...] = ()


PeopleDecidingReader = Callable[[Delegation, User], PeopleDeciding]
# Who decides on proposed people is for the approval rules to say, which this area sits beside
# and cannot read: the lifecycle, which applies them to the decisions, registers the reader.
_PEOPLE_DECIDING: list[PeopleDecidingReader] = []


def people_deciding_register(reader: PeopleDecidingReader) -> None:
    _PEOPLE_DECIDING[:] = [reader]


def people_deciding(*, delegation: Delegation, user: User) -> PeopleDeciding:
    """`PeopleDeciding` for `user` on `delegation`, as the registered reader says."""
    return _PEOPLE_DECIDING[0](delegation, user)


def trusted_person_get_for_organisation(
    *, organisation: Organisation, person_id: object
) -> TrustedPerson:
    """A named person of a delegation the organisation owns or partners in; 404 otherwise."""
    return get_or_404(
        TrustedPerson.objects.select_related(
            "delegation__owner", "delegation__partner", "delegation__managed_role"
        ).filter(Q(delegation__owner=organisation) | Q(delegation__partner=organisation)),
        pk=parse_uuid(person_id),
    )


def _in_cloud(delegation: Delegation) -> frozenset[str]:
    seen = delegation.managed_role.last_seen_trust_policy
    if not seen:
        return frozenset()
    try:
        return policies.trust_policy_principals(seen).ram
    except policies.PolicyError:
        return frozenset()


def _named_state(name: str, arn: str, named: set[str], cloud: frozenset[str]) -> str:
    if name not in named:
        return OVER_CAP
    return IN_POLICY if arn in cloud else BEING_APPLIED


def _arn(delegation: Delegation, name: str) -> str:
    return policies.ram_user_arn(delegation.partner_account_uid, name)


def _owner_approved_rows(
    delegation: Delegation, named: set[str], cloud: frozenset[str]
) -> list[NamedPersonRow]:
    rows = []
    people = TrustedPerson.objects.filter(delegation=delegation).select_related("person")
    seen: set[str] = set()
    for person in people.order_by("ram_user_name", "-proposed_at"):
        if person.ram_user_name in seen:
            continue  # an older, closed proposal of someone listed already
        seen.add(person.ram_user_name)
        arn = _arn(delegation, person.ram_user_name)
        if person.status == TrustedPerson.Status.APPROVED:
            state = _named_state(person.ram_user_name, arn, named, cloud)
        else:
            state = {
                TrustedPerson.Status.PENDING: PENDING,
                TrustedPerson.Status.REJECTED: REFUSED,
                TrustedPerson.Status.REMOVED: REMOVED,
            }[TrustedPerson.Status(person.status)]
        label = person.person.email if person.person else ""
        rows.append(NamedPersonRow(person.ram_user_name, arn, state, label, person))
    return rows


def _partner_managed_rows(
    delegation: Delegation, named: set[str], cloud: frozenset[str]
) -> list[NamedPersonRow]:
    assigned = list(
        StaffAssignment.objects.filter(delegation=delegation, ended_at__isnull=True)
        .select_related("user")
        .order_by("assigned_at", "pk")
    )
    links = {
        link.user_id: link.ram_user_name
        for link in StaffRamUserLink.objects.filter(
            organisation_id=delegation.partner_id, user_id__in=[a.user_id for a in assigned]
        )
    }
    rows = []
    for assignment in assigned:
        name = links.get(assignment.user_id)
        if name is None:
            rows.append(NamedPersonRow("", "", NOT_LINKED, assignment.user.email))
            continue
        arn = _arn(delegation, name)
        state = _named_state(name, arn, named, cloud)
        rows.append(NamedPersonRow(name, arn, state, assignment.user.email))
    return rows


def trust_view(delegation: Delegation) -> TrustView:
    """The scope and, for named scopes, every person and where they stand."""
    named = set(named_ram_users(delegation))
    cloud = _in_cloud(delegation)
    rows: list[NamedPersonRow] = []
    if delegation.trust_scope == TrustScope.NAMED_OWNER_APPROVED:
        rows = _owner_approved_rows(delegation, named, cloud)
    elif delegation.trust_scope == TrustScope.NAMED_PARTNER_MANAGED:
        rows = _partner_managed_rows(delegation, named, cloud)
    return TrustView(
        delegation=delegation,
        scope=delegation.trust_scope,
        scope_label=str(TrustScope(delegation.trust_scope).label),
        named_people_cap=delegation.named_people_cap,
        external_id_required=bool(delegation.external_id_ciphertext),
        rows=rows,
        broker_arn=(
            broker_principal(delegation)
            if delegation.trust_scope in NAMED_SCOPES and delegation.named_scope_trusts_broker
            else None
        ),
    )


def portal_brokered_use(delegation: Delegation) -> bool:
    """Whether the partner's people use this delegation through the portal's broker: any
    credentials the portal issued for it (page, API, credentials URI, one-click console), or a
    credentials-URI key still live. That is what needs the broker in a named scope's trust
    policy; people who only switch role in the console as their own RAM users do not."""
    if CredentialIssuance.objects.filter(delegation=delegation).exists():
        return True
    return CredentialsUriToken.objects.filter(
        assignment__delegation=delegation,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).exists()


def person_ram_user(*, delegation: Delegation, user_id: int) -> str | None:
    return (
        StaffRamUserLink.objects.filter(organisation_id=delegation.partner_id, user_id=user_id)
        .values_list("ram_user_name", flat=True)
        .first()
    )


def not_named_reason(*, delegation: Delegation, user_id: int) -> str | None:
    """Why this partner person may not use the delegation under its trust scope, with whom to
    ask; None when they may (always under the whole-account scope)."""
    if delegation.trust_scope not in NAMED_SCOPES:
        return None
    name = person_ram_user(delegation=delegation, user_id=user_id)
    if name is None:
        return _(
            "%(owner)s trusts only named people on this access, and you have no RAM user "
            "linked. Ask your admin at %(partner)s to link yours."
        ) % {"owner": delegation.owner.name, "partner": delegation.partner.name}
    if name not in named_ram_users(delegation):
        return _not_named_text(delegation, name)
    return None


def no_broker_reason(*, delegation: Delegation, user_id: int) -> str | None:
    """Why the portal cannot broker (credentials, one-click console) for a named person when
    the owner trusts only the named people's own RAM users; None when it can."""
    if delegation.trust_scope not in NAMED_SCOPES or delegation.named_scope_trusts_broker:
        return None
    name = person_ram_user(delegation=delegation, user_id=user_id) or "?"
    return _(
        "%(owner)s trusts only the named people's own RAM users on this access, so the "
        "portal cannot sign in or take credentials for you: use Switch role in the "
        "console as %(name)s."
    ) % {"owner": delegation.owner.name, "name": name}
    return None


def _not_named_text(delegation: Delegation, name: str) -> str:
    if delegation.trust_scope == TrustScope.NAMED_OWNER_APPROVED:
        return _(
            "%(owner)s trusts only named people on this access, and your RAM user %(name)s is "
            "not one of them yet. Ask your admin at %(partner)s to propose you; %(owner)s "
            "approves each person."
        ) % {"owner": delegation.owner.name, "partner": delegation.partner.name, "name": name}
    return _(
        "%(owner)s trusts at most %(cap)s named people on this access and your RAM user "
        "%(name)s is not among them. Ask your admin at %(partner)s."
    ) % {
        "owner": delegation.owner.name,
        "partner": delegation.partner.name,
        "name": name,
        "cap": delegation.named_people_cap,
    }
