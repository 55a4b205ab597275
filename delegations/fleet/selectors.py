"""Reads of fleet grants, with their tenancy: another organisation's fleet is 404, exactly
like a missing id.

`runbook_targets_for` is what a runbook may act on: the (delegation, owner account UID, RAM
role name, region) targets a partner person's active fleet grants cover.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _

from accounts.models import Membership, Organisation, User
from core.web import get_or_404, parse_uuid
from delegations.approvals.selectors import ApprovalProgress, approval_progress
from delegations.fleet.services import (
    NOT_ATTEMPTED,
    WAITING,
    fleet_account_state,
)
from delegations.models import (
    ALLOWED_TRANSITIONS,
    FINAL_STATUSES,
    Delegation,
    FleetGrant,
    OutboxMessage,
)

Status = Delegation.Status


def fleets_for_organisation(*, organisation: Organisation) -> list[FleetGrant]:
    """The fleet grants an organisation gave (owner) or received (partner), newest first."""
    return list(
        FleetGrant.objects.filter(Q(owner=organisation) | Q(partner=organisation))
        .select_related("owner", "partner", "catalog_role")
        .order_by("-created_at")
    )


def fleet_get_for_organisation(*, organisation: Organisation, fleet_id: object) -> FleetGrant:
    """A fleet the organisation gave or received; anyone else's is 404, like a missing id."""
    return get_or_404(
        FleetGrant.objects.filter(Q(owner=organisation) | Q(partner=organisation)).select_related(
            "owner", "partner", "catalog_role", "requested_by", "decided_by"
        ),
        pk=parse_uuid(fleet_id),
    )


@dataclass(frozen=True)
class FleetAccountRow:
    delegation: Delegation
    account_uid: str
    account_label: str
    state: str
    state_label: str
    can_retry: bool
    can_revoke: bool


def _state_label(state: str) -> str:
    if state == WAITING:
        return _("waiting for its turn")
    if state == NOT_ATTEMPTED:
        return _("not attempted")
    return str(Status(state).label).lower()


def fleet_accounts(*, fleet: FleetGrant) -> list[FleetAccountRow]:
    """Each account of the fleet, in the order chosen, with its state and what may be done."""
    rows = []
    for delegation in (
        Delegation.objects.filter(fleet=fleet)
        .select_related("managed_role__cloud_account", "catalog_role", "owner", "partner")
        .order_by("created_at", "pk")
    ):
        state = fleet_account_state(fleet=fleet, delegation=delegation)
        account = delegation.managed_role.cloud_account
        rows.append(
            FleetAccountRow(
                delegation=delegation,
                account_uid=account.account_uid,
                account_label=account.label,
                state=state,
                state_label=_state_label(state),
                can_retry=state == NOT_ATTEMPTED
                or (
                    delegation.status == Status.FAILED
                    and delegation.failed_phase == Delegation.Phase.APPLYING
                ),
                can_revoke=(
                    delegation.status == Status.SCHEDULED
                    or Status.REVOKING in ALLOWED_TRANSITIONS[delegation.status]
                )
                and not (
                    delegation.status == Status.FAILED
                    and delegation.failed_phase == Delegation.Phase.REVOKING
                ),
            )
        )
    return rows


@dataclass(frozen=True)
class FleetSummary:
    label: str
    counts: dict[str, int]
    # Nothing left for the worker or the approvers: the page stops following it.
    is_final: bool
    is_requested: bool
    can_revoke: bool
    can_continue: bool


def fleet_summary(*, fleet: FleetGrant, rows: list[FleetAccountRow]) -> FleetSummary:
    """One line for the whole fleet, from its accounts' states."""
    counts = Counter(row.state for row in rows)
    total = len(rows)
    busy = sum(counts[s] for s in (Status.APPROVED, Status.APPLYING, Status.REVOKING, WAITING))
    ended = sum(counts[s] for s in FINAL_STATUSES)
    if counts[Status.REQUESTED] == total:
        label = _("requested")
    elif counts[Status.REJECTED] == total:
        label = _("rejected")
    elif busy:
        label = _("in progress")
    elif counts[Status.ACTIVE] == total:
        label = _("active")
    elif ended == total:
        label = _("ended")
    elif fleet.stopped_at is not None and counts[NOT_ATTEMPTED]:
        label = _("stopped after errors")
    elif counts[Status.ACTIVE]:
        label = _("partly active")
    else:
        label = _("failed")
    return FleetSummary(
        label=label,
        counts=dict(counts),
        is_final=ended == total,
        is_requested=counts[Status.REQUESTED] > 0,
        can_revoke=any(row.can_revoke for row in rows) and counts[Status.REQUESTED] != total,
        can_continue=fleet.stopped_at is not None and counts[NOT_ATTEMPTED] > 0,
    )


def fleet_approval_progress(*, fleet: FleetGrant, user: User) -> ApprovalProgress | None:
    """The approvals a requested fleet has so far and whether `user` may approve it (or why
    not, and whether they may withdraw their own), as the request page says of one request;
    None once it is decided. Every account is approved and withdrawn from at once under the
    same rules (one role, one partner), so its first waiting account speaks for the fleet."""
    first = (
        Delegation.objects.filter(fleet=fleet, status=Status.REQUESTED)
        .select_related("owner", "partner")
        .order_by("created_at", "pk")
        .first()
    )
    return None if first is None else approval_progress(delegation=first, user=user)


def fleets_to_advance_after(*, managed_role_id: Any) -> list[str]:
    """The fleets with an account on this role whose next step is still to be taken (an
    undone advance message): the worker advances them right after reconciling the role."""
    fleet_ids = {
        str(fleet_id)
        for fleet_id in Delegation.objects.filter(
            managed_role_id=managed_role_id, fleet__isnull=False
        ).values_list("fleet_id", flat=True)
    }
    if not fleet_ids:
        return []
    return sorted(
        set(
            OutboxMessage.objects.filter(
                kind=OutboxMessage.Kind.ADVANCE_FLEET,
                done_at__isnull=True,
                object_id__in=sorted(fleet_ids),
            ).values_list("object_id", flat=True)
        )
    )


# --- what a runbook may act on ---------------------------------------------------------------


@dataclass(frozen=True)
class RunbookTarget:
    """One place a partner person may run a runbook: an owner account and region, through
    the RAM role their active grant put there."""

    delegation: Delegation
    account_uid: str
    role_name: str
    region: str


def runbook_targets_for(*, person: User, partner: Organisation) -> list[RunbookTarget]:
    """The targets `person`'s active fleet grants in `partner` cover: every active account of
    a fleet x the fleet's regions, for the partner's admins and for staff assigned to that
    account's delegation. Nobody outside `partner` gets any."""
    role = (
        Membership.objects.filter(user=person, organisation=partner)
        .values_list("role", flat=True)
        .first()
    )
    if role is None or not partner.is_partner:
        return []
    delegations = Delegation.objects.filter(
        partner=partner, status=Status.ACTIVE, fleet__isnull=False
    )
    if role != Membership.Role.ADMIN:
        delegations = delegations.filter(
            staff_assignments__user=person, staff_assignments__ended_at__isnull=True
        )
    targets = []
    for delegation in (
        delegations.select_related("fleet", "managed_role__cloud_account", "catalog_role")
        .distinct()
        .order_by("fleet__created_at", "created_at", "pk")
    ):
        fleet = delegation.fleet
        assert fleet is not None  # filtered above
        for region in fleet.regions:
            targets.append(
                RunbookTarget(
                    delegation=delegation,
                    account_uid=delegation.managed_role.cloud_account.account_uid,
                    role_name=delegation.managed_role.role_name,
                    region=str(region),
                )
            )
    return targets
