"""Fleet grants: one catalogue role for one partner across several owner accounts x regions,
decided once, applied account by account under a rate control.

A fleet owns one delegation per account and every decision goes through the lifecycle's own
services (`delegations.lifecycle.services`): the same approver groups, quorum, step-up,
segregation of duties, high-privilege check, audit events and notices as a single
delegation. The fleet's part is what is common to its accounts, in one transaction so the
fleet is decided whole or not at all:

- `fleet_request` / `fleet_offer`: the partner asks (through one use of a partner link) or
  the owner offers; an offer is approved at once.
- `fleet_approve` / `fleet_reject`: one decision for every account; `fleet_approval_withdraw`:
  an approver's own approval taken back from every account while the quorum is not reached.
- `fleet_advance`: the rate control. Approved accounts wait as scheduled delegations; the
  fleet starts at most `concurrency` at a time (scheduled → approved, and the worker
  reconciles each account's role as usual). Each account that becomes active or fails, or
  ends while waiting for its turn, enqueues the next advance (`Delegation.fleet`,
  `OutboxMessage.Kind.ADVANCE_FLEET`), which finishes the run once nothing is left. When
  more than `max_errors` accounts of a run failed the fleet stops: the accounts still
  waiting are "not attempted" until `fleet_continue`.
- `fleet_account_retry`, `fleet_account_revoke`: one account, without touching the others.
- `fleet_revoke`: every account. Expiry needs nothing here: each account's delegation
  carries the fleet's end and the scheduler ends it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organisation, User
from audit.actions import AuditAction
from audit.services import audit_record
from delegations.approvals.selectors import approval_tally, rules_in_force
from delegations.catalog.partner_links import partner_link_use
from delegations.catalog.selectors import catalog_role_accounts
from delegations.lifecycle import services as lifecycle
from delegations.lifecycle.automatic import delegation_start_fleet_turn
from delegations.lifecycle.starting import delegation_offer, delegation_request
from delegations.lifecycle.transitions import (
    DelegationConflict,
    IllegalTransition,
    clean_reason,
    require_admin,
)
from delegations.models import (
    FINAL_STATUSES,
    MAX_FLEET_ACCOUNTS,
    MAX_FLEET_CONCURRENCY,
    MAX_FLEET_REGIONS,
    CatalogRole,
    CloudAccount,
    Delegation,
    FleetGrant,
    PartnerLink,
    validate_region,
)
from delegations.notices import fleet_announce, fleet_digest, fleet_run_announce
from delegations.versioned import version_bump
from notifications.events import NotificationEvent

Status = Delegation.Status
Event = NotificationEvent
IN_FLIGHT = (Status.APPROVED, Status.APPLYING)

FleetConflict = DelegationConflict


# --- validation ------------------------------------------------------------------------------


def fleet_validate_targets(
    *,
    catalog_role: CatalogRole,
    accounts: Sequence[CloudAccount],
    regions: Sequence[str],
    concurrency: int,
    max_errors: int,
) -> tuple[list[CloudAccount], list[str]]:
    """Every rule for a fleet's accounts x regions and rate control that needs no cloud call;
    returns the accounts and the regions as given. Raises ValidationError (field → message)."""
    catalog_role = _fresh(catalog_role)
    errors: dict[str, str] = {}
    accounts = list(accounts)
    if not accounts:
        errors["accounts"] = _("Choose at least one of the owner's accounts.")
    elif len(accounts) > MAX_FLEET_ACCOUNTS:
        errors["accounts"] = _("A fleet covers at most %(n)d accounts.") % {"n": MAX_FLEET_ACCOUNTS}
    elif len({account.pk for account in accounts}) != len(accounts):
        errors["accounts"] = _("Each account may be chosen once.")
    else:
        offered = {account.pk for account in catalog_role_accounts(catalog_role=catalog_role)}
        outside = [account for account in accounts if account.pk not in offered]
        if outside:
            errors["accounts"] = _(
                "%(role)s is not offered in %(accounts)s. Choose among the owner's accounts "
                "the role is offered in."
            ) % {
                "role": catalog_role.role_name,
                "accounts": ", ".join(account.account_uid for account in outside),
            }
    regions = [region.strip() if isinstance(region, str) else region for region in regions]
    if not regions:
        errors["regions"] = _("Choose at least one region, e.g. cn-shanghai.")
    elif len(regions) > MAX_FLEET_REGIONS:
        errors["regions"] = _("A fleet covers at most %(n)d regions.") % {"n": MAX_FLEET_REGIONS}
    else:
        bad = []
        for region in regions:
            try:
                validate_region(region)
            except ValidationError:
                bad.append(str(region))
        if bad:
            errors["regions"] = _(
                "%(regions)s does not look like a region id (like cn-hangzhou or ap-southeast-1)."
            ) % {"regions": ", ".join(bad)}
        elif len(set(regions)) != len(regions):
            errors["regions"] = _("Each region may be chosen once.")
    if not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_FLEET_CONCURRENCY:
        errors["concurrency"] = _("Apply between 1 and %(n)d accounts at a time.") % {
            "n": MAX_FLEET_CONCURRENCY
        }
    if not isinstance(max_errors, int) or max_errors < 0:
        errors["max_errors"] = _("MaxErrors is 0 or more.")
    if errors:
        raise ValidationError(errors)
    return accounts, [str(region) for region in regions]


def _fresh(catalog_role: CatalogRole) -> CatalogRole:
    """The role as stored now: where it is offered may have changed since the caller read it."""
    return CatalogRole.objects.select_related("cloud_account").get(pk=catalog_role.pk)


def _fleet_public(fleet: FleetGrant, accounts: Sequence[CloudAccount]) -> dict[str, Any]:
    return {
        "role_name": fleet.catalog_role.role_name,
        "partner_account_uid": fleet.partner_account_uid,
        "accounts": [account.account_uid for account in accounts],
        "regions": list(fleet.regions),
        "concurrency": fleet.concurrency,
        "max_errors": fleet.max_errors,
        "ends_at": fleet.ends_at,
    }


def _audit(
    *,
    fleet: FleetGrant,
    action: AuditAction,
    actor: User | None,
    actor_organisation: Organisation | None,
    metadata: dict[str, Any] | None = None,
    outcome: str = "success",
) -> None:
    audit_record(
        action=action,
        actor=actor,
        organisation=fleet.owner,
        related_organisations=[fleet.partner],
        actor_organisation=actor_organisation if actor is not None else None,
        target=fleet,
        metadata={
            "role_name": fleet.catalog_role.role_name,
            "partner_account_uid": fleet.partner_account_uid,
            **(metadata or {}),
        },
        outcome=outcome,
    )


def _members(fleet: FleetGrant) -> list[Delegation]:
    """The fleet's delegations in the order their accounts were chosen."""
    return list(
        Delegation.objects.filter(fleet=fleet)
        .select_related("managed_role__cloud_account", "catalog_role")
        .order_by("created_at", "pk")
    )


def _lock_fleet(fleet: FleetGrant) -> FleetGrant:
    return FleetGrant.objects.locked_for_change().get(pk=fleet.pk)


def _check_version(fleet: FleetGrant, expected_version: int | None) -> None:
    if expected_version is not None and fleet.version != expected_version:
        raise FleetConflict(
            _("This fleet changed while you were looking at it. Reload the page and try again.")
        )


def _bump(fleet: FleetGrant, **changes: Any) -> None:
    version_bump(fleet, changes)
    fleet.changed = True


def _for_owner_admin(fleet: FleetGrant, *, by: User, doing: str) -> FleetGrant:
    """`fleet` as it is now, with both sides and its role, once `by` is found to be an admin
    of its owner (who alone decides it, or takes a decision back)."""
    current = FleetGrant.objects.select_related("owner", "partner", "catalog_role").get(pk=fleet.pk)
    require_admin(user=by, organisation=current.owner, doing=doing)
    return current


@contextmanager
def _owner_deciding(fleet: FleetGrant, *, by: User, doing: str) -> Iterator[FleetGrant]:
    """The owner's one decision on a requested fleet: `by` must be an owner admin, and the
    decision is made on the locked fleet in one transaction. A decision the lifecycle refuses
    (PermissionDenied) is recorded on the fleet too, in its own transaction once the
    decision's has rolled back, so it survives the refusal."""
    current = _for_owner_admin(fleet, by=by, doing=doing)
    try:
        with transaction.atomic():
            yield _lock_fleet(current)
    except PermissionDenied as denial:
        with transaction.atomic():
            _audit(
                fleet=current,
                action=AuditAction.FLEET_APPROVE_DENIED,
                actor=by,
                actor_organisation=current.owner,
                metadata={"denied_because": str(denial)},
                outcome="denied",
            )
        raise


def _decision_told(
    locked: FleetGrant,
    *,
    by: User,
    event: NotificationEvent,
    members: Sequence[Delegation],
    action: AuditAction,
    metadata: dict[str, Any],
) -> None:
    """Tell both sides of the owner's decision on `members` and audit it. The notice is keyed
    by the version the decision bumped, so a later decision of the same kind is told again."""
    fleet_announce(fleet=locked, event=event, members=members, occasion=locked.version, actor=by)
    _audit(
        fleet=locked, action=action, actor=by, actor_organisation=locked.owner, metadata=metadata
    )


def _account_uids(members: Sequence[Delegation]) -> list[str]:
    return [member.managed_role.cloud_account.account_uid for member in members]


# --- asking and offering ---------------------------------------------------------------------


def _create_fleet(
    owner: Organisation,
    partner: Organisation,
    catalog_role: CatalogRole,
    *,
    regions: Sequence[str],
    concurrency: int,
    max_errors: int,
    requested_by: User,
    reason: str,
    ends_at: dt.datetime | None,
    **fields: Any,
) -> FleetGrant:
    """The fleet row of a request or an offer: who, the role, the regions and rate control
    (already validated), the cleaned reason, and what differs by origin (`fields`)."""
    return FleetGrant.objects.create(
        owner=owner,
        partner=partner,
        catalog_role=catalog_role,
        partner_account_uid=partner.account_uid,
        regions=regions,
        concurrency=concurrency,
        max_errors=max_errors,
        requested_by=requested_by,
        reason=clean_reason(reason, field="reason"),
        ends_at=ends_at,
        **fields,
    )


def _accounts_opened(
    fleet: FleetGrant,
    accounts: Sequence[CloudAccount],
    open_account: Callable[[CloudAccount], Delegation],
    *,
    by: User,
    acting_for: Organisation,
    event: NotificationEvent,
    action: AuditAction,
    metadata: dict[str, Any] | None = None,
) -> None:
    """A new fleet's accounts: one delegation each, opened by `open_account` through the
    lifecycle (a request or an offer) with their own notices left to the fleet; then one
    notice for the fleet and its audit event, naming what it covers."""
    with fleet_digest():
        members = [open_account(account) for account in accounts]
    fleet_announce(fleet=fleet, event=event, members=members, actor=by)
    _audit(
        fleet=fleet,
        action=action,
        actor=by,
        actor_organisation=acting_for,
        metadata={**_fleet_public(fleet, accounts), "reason": fleet.reason, **(metadata or {})},
    )


def fleet_request(
    *,
    partner: Organisation,
    requested_by: User,
    partner_link: PartnerLink,
    catalog_role: CatalogRole,
    accounts: Sequence[CloudAccount],
    regions: Sequence[str],
    reason: str,
    ends_at: dt.datetime | None,
    concurrency: int = 5,
    max_errors: int = 0,
) -> FleetGrant:
    """A partner admin asks an owner (found through `partner_link`, used once for the whole
    fleet) for `catalog_role` in `accounts` x `regions`: one request per account, decided
    together."""
    require_admin(user=requested_by, organisation=partner, doing=_("request access"))
    catalog_role = _fresh(catalog_role)
    accounts, regions = fleet_validate_targets(
        catalog_role=catalog_role,
        accounts=accounts,
        regions=regions,
        concurrency=concurrency,
        max_errors=max_errors,
    )
    with transaction.atomic():
        link = partner_link_use(link=partner_link, partner=partner, used_by=requested_by)
        owner = link.organisation
        if catalog_role.organisation_id != owner.pk:
            raise ValidationError({"catalog_role": _("This role is not in the owner's catalogue.")})
        fleet = _create_fleet(
            owner,
            partner,
            catalog_role,
            regions=regions,
            concurrency=concurrency,
            max_errors=max_errors,
            requested_by=requested_by,
            reason=reason,
            ends_at=ends_at,
            origin=FleetGrant.Origin.REQUEST,
            partner_link=link,
        )
        _accounts_opened(
            fleet,
            accounts,
            lambda account: delegation_request(
                partner=partner,
                requested_by=requested_by,
                partner_link=link,
                catalog_role=catalog_role,
                reason=fleet.reason,
                ends_at=ends_at,
                cloud_account=account,
                fleet=fleet,
            ),
            by=requested_by,
            acting_for=partner,
            event=Event.DELEGATION_REQUESTED,
            action=AuditAction.FLEET_REQUESTED,
        )
    return fleet


def fleet_offer(
    *,
    owner: Organisation,
    offered_by: User,
    partner: Organisation,
    catalog_role: CatalogRole,
    accounts: Sequence[CloudAccount],
    regions: Sequence[str],
    reason: str,
    ends_at: dt.datetime | None,
    with_mfa: bool,
    concurrency: int = 5,
    max_errors: int = 0,
) -> FleetGrant:
    """An owner admin grants `catalog_role` to a partner in `accounts` x `regions` at once:
    the offer is the owner's decision (the lifecycle's offer rules apply to every account),
    and the first accounts start applying after the commit."""
    require_admin(user=offered_by, organisation=owner, doing=_("offer access"))
    catalog_role = _fresh(catalog_role)
    if catalog_role.organisation_id != owner.pk:
        raise ValidationError({"catalog_role": _("This role is not in your catalogue.")})
    accounts, regions = fleet_validate_targets(
        catalog_role=catalog_role,
        accounts=accounts,
        regions=regions,
        concurrency=concurrency,
        max_errors=max_errors,
    )
    # The offers read the cloud (the high-privilege check, cached per account and policy)
    # inside this transaction: a fleet is offered whole or not at all.
    with transaction.atomic():
        now = timezone.now()
        fleet = _create_fleet(
            owner,
            partner,
            catalog_role,
            regions=regions,
            concurrency=concurrency,
            max_errors=max_errors,
            requested_by=offered_by,
            reason=reason,
            ends_at=ends_at,
            origin=FleetGrant.Origin.OFFER,
            decided_by=offered_by,
            decided_at=now,
            run_started_at=now,
        )
        _accounts_opened(
            fleet,
            accounts,
            lambda account: delegation_offer(
                owner=owner,
                offered_by=offered_by,
                partner=partner,
                catalog_role=catalog_role,
                reason=fleet.reason,
                ends_at=ends_at,
                with_mfa=with_mfa,
                cloud_account=account,
                fleet=fleet,
            ),
            by=offered_by,
            acting_for=owner,
            event=Event.DELEGATION_OFFERED,
            action=AuditAction.FLEET_OFFERED,
            metadata={"with_mfa": with_mfa},
        )
        _advance_locked(_lock_fleet(fleet))
    return fleet


# --- deciding --------------------------------------------------------------------------------


def fleet_approve(
    *,
    fleet: FleetGrant,
    approved_by: User,
    with_mfa: bool,
    note: str = "",
    expected_version: int | None = None,
) -> FleetGrant:
    """An owner admin approves every account of a requested fleet at once, under the
    lifecycle's rules for each (approver groups, quorum: with more approvals needed the fleet
    stays requested with this one recorded). The first accounts start after the commit."""
    with _owner_deciding(fleet, by=approved_by, doing=_("approve access")) as locked:
        pending = [m for m in _members(locked) if m.status == Status.REQUESTED]
        if not pending:
            if locked.decided_by_id == approved_by.pk and locked.run_started_at is not None:
                return locked.unchanged()  # a double click
            raise FleetConflict(_("This fleet was already decided; nothing is left to approve."))
        _check_version(locked, expected_version)
        with fleet_digest():
            results = [
                lifecycle.delegation_approve(
                    delegation=member,
                    approved_by=approved_by,
                    with_mfa=with_mfa,
                    note=note,
                    as_fleet_account=True,
                )
                for member in pending
            ]
        if any(result.status == Status.REQUESTED for result in results):
            # A quorum needs more approvers; each account recorded (and audited) this
            # approval, and the fleet waits for the next, on its own record too (as a
            # withdrawal of it is).
            _bump(locked)
            standing = approval_tally(
                delegation=pending[0], rules=rules_in_force(delegation=pending[0])
            )
            _audit(
                fleet=locked,
                action=AuditAction.FLEET_APPROVAL_RECORDED,
                actor=approved_by,
                actor_organisation=locked.owner,
                metadata={
                    "with_mfa": with_mfa,
                    "note": note,
                    "accounts": _account_uids(pending),
                    "approvals_counted": standing.counted,
                    "approvals_required": standing.required,
                },
            )
            return locked
        now = timezone.now()
        _bump(locked, decided_by=approved_by, decided_at=now, run_started_at=now)
        _decision_told(
            locked,
            by=approved_by,
            event=Event.DELEGATION_APPROVED,
            members=pending,
            action=AuditAction.FLEET_APPROVED,
            metadata={
                "with_mfa": with_mfa,
                "note": note,
                "accounts": _account_uids(pending),
                "regions": list(locked.regions),
            },
        )
        _advance_locked(locked)
        return locked


def fleet_approval_withdraw(*, fleet: FleetGrant, withdrawn_by: User) -> FleetGrant:
    """An approver takes back their own approval of a requested fleet still waiting for its
    quorum, from every account at once (the lifecycle's `delegation_approval_withdraw` for
    each): the fleet needs one more approval again. Never someone else's approval, nor one
    that completed the quorum (the fleet is decided then). `changed` is False when this person
    has no approval on it (a double click).

    Under the fleet's row lock, which its approval takes too, then each account's, so a
    withdrawal racing the approval that would complete the quorum ends one way."""
    current = _for_owner_admin(fleet, by=withdrawn_by, doing=_("withdraw an approval"))
    # Not `_owner_deciding`, which records a refused decision as `fleet.approve_denied`: what
    # refuses a withdrawal is only this admin check (the lifecycle's own is the same one).
    with transaction.atomic():
        locked = _lock_fleet(current)
        pending = [m for m in _members(locked) if m.status == Status.REQUESTED]
        if not pending:
            raise FleetConflict(
                _("This fleet was already decided; there is no approval left to withdraw.")
            )
        with fleet_digest():
            withdrawn = [
                member
                for member in pending
                if lifecycle.delegation_approval_withdraw(
                    delegation=member, withdrawn_by=withdrawn_by, as_fleet_account=True
                ).changed
            ]
        if not withdrawn:
            return locked.unchanged()
        # Like an approval of the fleet, it moves the fleet's version: a decision made on the
        # page as it was before is made again.
        _bump(locked)
        rules = rules_in_force(delegation=withdrawn[0])
        standing = approval_tally(delegation=withdrawn[0], rules=rules)
        _decision_told(
            locked,
            by=withdrawn_by,
            event=Event.APPROVAL_WITHDRAWN,
            members=withdrawn,
            action=AuditAction.FLEET_APPROVAL_WITHDRAWN,
            metadata={
                "accounts": _account_uids(withdrawn),
                "approvals_counted": standing.counted,
                "approvals_required": standing.required,
            },
        )
        return locked


def fleet_reject(
    *,
    fleet: FleetGrant,
    rejected_by: User,
    reason: str,
    expected_version: int | None = None,
) -> FleetGrant:
    """An owner admin turns a requested fleet down, every account at once, saying why."""
    with _owner_deciding(fleet, by=rejected_by, doing=_("reject a request")) as locked:
        reason = clean_reason(reason, field="reason")
        members = _members(locked)
        pending = [m for m in members if m.status == Status.REQUESTED]
        if not pending:
            if locked.decided_by_id == rejected_by.pk and all(
                m.status == Status.REJECTED for m in members
            ):
                return locked.unchanged()
            raise FleetConflict(_("This fleet was already decided; nothing is left to reject."))
        _check_version(locked, expected_version)
        with fleet_digest():
            for member in pending:
                lifecycle.delegation_reject(
                    delegation=member,
                    rejected_by=rejected_by,
                    reason=reason,
                    as_fleet_account=True,
                )
        _bump(locked, decided_by=rejected_by, decided_at=timezone.now())
        _decision_told(
            locked,
            by=rejected_by,
            event=Event.DELEGATION_REJECTED,
            members=pending,
            action=AuditAction.FLEET_REJECTED,
            metadata={"reason": reason, "accounts": _account_uids(pending)},
        )
        return locked


# --- the rate control ------------------------------------------------------------------------


def fleet_advance(*, fleet_id: Any) -> FleetGrant | None:
    """Start the fleet's next accounts within its rate control, or stop it after too many
    failures (the worker runs this whenever one of its accounts becomes active or fails).
    Idempotent: under the fleet's row lock it counts what is in flight and starts only what
    fits."""
    with transaction.atomic():
        fleet = FleetGrant.objects.locked_for_change().filter(pk=fleet_id).first()
        if fleet is None:
            return None
        _advance_locked(fleet)
        return fleet


def _run_failures(fleet: FleetGrant, members: Sequence[Delegation]) -> list[Delegation]:
    """The accounts of this run that failed while applying."""
    started = fleet.run_started_at
    return [
        m
        for m in members
        if m.status == Status.FAILED
        and m.failed_phase == Delegation.Phase.APPLYING
        and (started is None or (m.last_error_at is not None and m.last_error_at >= started))
    ]


def _member_states(fleet: FleetGrant) -> list[Delegation]:
    """The fleet's delegations with only what the rate control counts (status and failure),
    in `_members`' order: read under the fleet's row lock on every advance, so kept light."""
    return list(
        Delegation.objects.filter(fleet=fleet)
        .only("pk", "fleet_id", "status", "failed_phase", "last_error_at", "created_at")
        .order_by("created_at", "pk")
    )


def _advance_locked(fleet: FleetGrant) -> None:
    if fleet.decided_at is None or fleet.run_started_at is None:
        return  # requested or rejected: nothing is applied without an approval
    states = _member_states(fleet)
    waiting = [m for m in states if m.status == Status.SCHEDULED]
    in_flight = sum(1 for m in states if m.status in IN_FLIGHT)
    failures = _run_failures(fleet, states)
    members: list[Delegation] | None = None  # loaded in full only to stop or finish the run
    if fleet.stopped_at is None and len(failures) > fleet.max_errors and waiting:
        members = _members(fleet)
        waiting = [m for m in members if m.status == Status.SCHEDULED]
        failures = _run_failures(fleet, members)
        # MaxErrors: stop starting accounts; the ones still waiting are not attempted.
        fleet.stopped_at = timezone.now()
        fleet.save(update_fields=["stopped_at", "updated_at"])
        _audit(
            fleet=fleet,
            action=AuditAction.FLEET_STOPPED,
            actor=None,
            actor_organisation=None,
            metadata={
                "max_errors": fleet.max_errors,
                "failed_accounts": _account_uids(failures),
                "not_attempted_accounts": _account_uids(waiting),
            },
        )
    started = 0
    room = max(0, fleet.concurrency - in_flight) if fleet.stopped_at is None else 0
    for member in waiting:
        if started >= room:
            break
        # A turn the lifecycle refuses (the fleet's end passed: the expiry pass ends the
        # account, and its ending advances the fleet again) is not a turn started.
        if delegation_start_fleet_turn(delegation=member).changed:
            started += 1
    left_waiting = len(waiting) - started
    if (
        fleet.run_finished_at is None
        and in_flight + started == 0
        and (left_waiting == 0 or fleet.stopped_at is not None)
    ):
        _finish_run(fleet, members if members is not None else _members(fleet))


def _finish_run(fleet: FleetGrant, members: Sequence[Delegation]) -> None:
    """Every account of the run left the worker: one event with each account's outcome."""
    fleet.run_finished_at = timezone.now()
    fleet.save(update_fields=["run_finished_at", "updated_at"])
    outcomes: dict[str, list[str]] = {}
    for member in members:
        state = fleet_account_state(fleet=fleet, delegation=member)
        outcomes.setdefault(state, []).append(member.managed_role.cloud_account.account_uid)
    _audit(
        fleet=fleet,
        action=AuditAction.FLEET_RUN_FINISHED,
        actor=None,
        actor_organisation=None,
        metadata={"outcomes": outcomes, "stopped": fleet.stopped_at is not None},
    )
    fleet_run_announce(fleet=fleet, members=members)


NOT_ATTEMPTED = "not_attempted"
WAITING = "waiting"


def fleet_account_state(*, fleet: FleetGrant, delegation: Delegation) -> str:
    """An account's state as the fleet page shows it: the delegation's status, except that a
    scheduled account is waiting for its turn, or not attempted once the fleet stopped."""
    if delegation.status == Status.SCHEDULED:
        return NOT_ATTEMPTED if fleet.stopped_at is not None else WAITING
    return str(delegation.status)


# --- one account, or every account -----------------------------------------------------------


def _member(fleet: FleetGrant, delegation: Delegation) -> Delegation:
    """The fleet's account `delegation`, as it is now."""
    member = (
        Delegation.objects.select_related("managed_role__cloud_account")
        .filter(pk=delegation.pk, fleet_id=fleet.pk)
        .first()
    )
    if member is None:
        raise ValidationError(_("This account is not part of the fleet."))
    return member


def fleet_continue(*, fleet: FleetGrant, continued_by: User) -> FleetGrant:
    """Start a new run for the accounts a stopped fleet did not attempt (its failed accounts
    are retried one by one with `fleet_account_retry`)."""
    with transaction.atomic():
        locked = _lock_fleet(fleet)
        require_admin(user=continued_by, organisation=locked.owner, doing=_("retry"))
        waiting = [m for m in _members(locked) if m.status == Status.SCHEDULED]
        if locked.decided_at is None or not waiting:
            return locked.unchanged()
        now = timezone.now()
        _bump(locked, stopped_at=None, run_started_at=now, run_finished_at=None)
        _audit(
            fleet=locked,
            action=AuditAction.FLEET_CONTINUED,
            actor=continued_by,
            actor_organisation=locked.owner,
            metadata={"accounts": _account_uids(waiting)},
        )
        _advance_locked(locked)
        return locked


def fleet_account_retry(
    *, fleet: FleetGrant, delegation: Delegation, retried_by: User
) -> Delegation:
    """Try one account again without touching the others: a failed account goes back to the
    worker (the lifecycle's retry), one the fleet did not attempt starts now."""
    member = _member(fleet, delegation)
    if member.status == Status.FAILED:
        return lifecycle.delegation_retry(delegation=member, retried_by=retried_by)
    with transaction.atomic():
        locked = _lock_fleet(fleet)
        require_admin(user=retried_by, organisation=locked.owner, doing=_("retry"))
        if member.status != Status.SCHEDULED or locked.stopped_at is None:
            raise IllegalTransition(
                _("Only a failed account, or one the fleet did not attempt, can be retried.")
            )
        return delegation_start_fleet_turn(delegation=member, started_by=retried_by)


def fleet_account_revoke(
    *, fleet: FleetGrant, delegation: Delegation, revoked_by: User, reason: str
) -> Delegation:
    """End one account's access (the lifecycle's revoke); the fleet's other accounts stay."""
    return lifecycle.delegation_revoke(
        delegation=_member(fleet, delegation), revoked_by=revoked_by, reason=reason
    )


def fleet_revoke(*, fleet: FleetGrant, revoked_by: User, reason: str) -> FleetGrant:
    """End the access in every account of the fleet (accounts not applied yet end at once;
    the others go through revoking, as any delegation). A second click changes nothing."""
    reason = clean_reason(reason, field="reason")
    with transaction.atomic():
        locked = _lock_fleet(fleet)
        require_admin(user=revoked_by, organisation=locked.owner, doing=_("revoke access"))
        revocable = [
            m
            for m in _members(locked)
            if m.status not in FINAL_STATUSES
            and m.status not in (Status.REQUESTED, Status.REVOKING)
            and not (m.status == Status.FAILED and m.failed_phase == Delegation.Phase.REVOKING)
        ]
        if not revocable:
            return locked.unchanged()
        with fleet_digest():
            for member in revocable:
                lifecycle.delegation_revoke(delegation=member, revoked_by=revoked_by, reason=reason)
        _bump(locked, revoked_by=revoked_by, revoke_requested_at=timezone.now())
        _decision_told(
            locked,
            by=revoked_by,
            event=Event.DELEGATION_REVOKED,
            members=revocable,
            action=AuditAction.FLEET_REVOKE_REQUESTED,
            metadata={"reason": reason, "accounts": _account_uids(revocable)},
        )
        return locked
