"""Extensions: a partner asks for more time on a time-bound delegation, and the owner's
approvers decide it like a request (approver groups, quorum, step-up, nobody twice, one
rejection ends it). Approved, the delegation's end moves later with no gap, and the worker
rewrites the fail-safe end in the trust policy; rejected or undecided, access ends as planned.

Every function locks the delegation row first (the same lock the expiry takes), so an
extension racing the expiry ends with exactly one of them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Organisation, User
from accounts.permissions import require_admin_member, require_mfa
from audit.actions import AuditAction
from audit.models import AuditEvent
from delegations.approvals import selectors as approval_selectors
from delegations.approvals.rules import decision_refusal
from delegations.approvals.services import approval_withdrawal_record, decision_write
from delegations.delegation_audit import delegation_audit_record
from delegations.lifecycle.transitions import (
    MAX_DURATION,
    MIN_DURATION,
    DelegationConflict,
    clean_reason,
    grant_precheck,
    grant_recheck,
    lock_delegation,
    require_admin,
)
from delegations.models import Delegation, DelegationExtension
from delegations.notices import decision_announce
from delegations.outbox import outbox_enqueue_reconcile
from delegations.versioned import version_bump

Status = Delegation.Status
ExtensionStatus = DelegationExtension.Status

# Statuses whose end can still move: the access is granted, or about to be.
EXTENDABLE_STATUSES = frozenset({Status.SCHEDULED, Status.APPROVED, Status.APPLYING, Status.ACTIVE})


def _audit(
    *,
    extension: DelegationExtension,
    delegation: Delegation,
    action: AuditAction,
    actor: User,
    actor_organisation: Organisation,
    metadata: dict[str, Any],
    outcome: str = AuditEvent.Outcome.SUCCESS,
) -> None:
    delegation_audit_record(
        delegation,
        action,
        actor=actor,
        actor_organisation=actor_organisation,
        metadata={**_extension_facts(extension), **metadata},
        outcome=outcome,
    )
    if outcome == AuditEvent.Outcome.SUCCESS:
        decision_announce(
            delegation=delegation, decision_id=extension.pk, action=action, actor=actor
        )


def _extension_facts(extension: DelegationExtension) -> dict[str, Any]:
    """What every event about an extension says of it."""
    return {
        "extension": str(extension.pk),
        "previous_ends_at": extension.previous_ends_at,
        "new_ends_at": extension.new_ends_at,
    }


def extension_request(
    *, delegation: Delegation, requested_by: User, new_ends_at: dt.datetime, reason: str
) -> DelegationExtension:
    """A partner admin asks to move `delegation`'s end to `new_ends_at`."""
    with transaction.atomic():
        locked = lock_delegation(delegation)
        require_admin_member(
            requested_by,
            locked.partner,
            refusal=gettext("Only an admin of %(partner)s can ask for more time.")
            % {"partner": locked.partner},
        )
        if locked.status not in EXTENDABLE_STATUSES or locked.ends_at is None:
            state = locked.get_status_display().lower()
            raise ValidationError(
                (
                    gettext(
                        "Only granted, time-bound access can be extended; this delegation is "
                        "%(state)s."
                    )
                    if locked.ends_at
                    else gettext(
                        "Only granted, time-bound access can be extended; this delegation is "
                        "%(state)s and open-ended."
                    )
                )
                % {"state": state}
            )
        reason = clean_reason(reason, field="reason")
        now = timezone.now()
        if new_ends_at is None or timezone.is_naive(new_ends_at):
            raise ValidationError({"new_ends_at": gettext("Choose the new end, with a time zone.")})
        if new_ends_at < locked.ends_at + MIN_DURATION:
            raise ValidationError(
                {
                    "new_ends_at": gettext(
                        "The new end must be at least 5 minutes after the current one."
                    )
                }
            )
        if new_ends_at > now + MAX_DURATION:
            raise ValidationError(
                {"new_ends_at": gettext("The new end is more than 5 years away.")}
            )
        if DelegationExtension.objects.filter(
            delegation=locked, status=ExtensionStatus.REQUESTED
        ).exists():
            raise ValidationError(
                gettext("An extension of this access is already waiting for a decision.")
            )
        extension = DelegationExtension.objects.create(
            delegation=locked,
            requested_by=requested_by,
            reason=reason,
            previous_ends_at=locked.ends_at,
            new_ends_at=new_ends_at,
        )
        _audit(
            extension=extension,
            delegation=locked,
            action=AuditAction.DELEGATION_EXTENSION_REQUESTED,
            actor=requested_by,
            actor_organisation=locked.partner,
            metadata={"reason": reason},
        )
        return extension


def _refusal(extension: DelegationExtension, user: User, *, approving: bool) -> str | None:
    delegation = extension.delegation
    rules = approval_selectors.rules_in_force(delegation=delegation)
    candidate = approval_selectors.candidate(delegation=delegation, user=user)
    if candidate.user_id == extension.requested_by_id:
        return gettext("You cannot decide an extension you asked for yourself.")
    already = approval_selectors.extension_approver_ids(extension=extension) if approving else []
    return decision_refusal(rules, candidate, already_approved=already)


def _deny(extension: DelegationExtension, user: User, reason: str) -> None:
    """Record a refused decision in its own transaction, so it survives the refusal."""
    delegation = Delegation.objects.select_related("owner", "partner", "catalog_role").get(
        pk=extension.delegation_id
    )
    with transaction.atomic():
        _audit(
            extension=extension,
            delegation=delegation,
            action=AuditAction.DELEGATION_EXTENSION_DENIED,
            actor=user,
            actor_organisation=delegation.owner,
            metadata={"denied_because": reason},
            outcome=AuditEvent.Outcome.DENIED,
        )


def _checked(extension: DelegationExtension, user: User, *, approving: bool) -> DelegationExtension:
    """The extension with its delegation, once `user` passed the decider's check. The check
    runs before the lock so that a refusal is recorded in its own transaction and survives;
    it runs again under the lock, where the decision is made."""
    current = DelegationExtension.objects.select_related(
        "delegation__owner",
        "delegation__partner",
        "delegation__catalog_role",
        "delegation__managed_role__cloud_account",
    ).get(pk=extension.pk)
    if current.status == ExtensionStatus.REQUESTED:
        refusal = _refusal(current, user, approving=approving)
        if refusal is not None:
            _deny(current, user, refusal)
            raise PermissionDenied(refusal)
    return current


def _already_decided(locked: DelegationExtension) -> DelegationConflict:
    return DelegationConflict(
        gettext("This extension was already decided: it is %(status)s.")
        % {"status": locked.get_status_display().lower()}
    )


def _locked(extension: DelegationExtension) -> tuple[Delegation, DelegationExtension]:
    delegation = lock_delegation(Delegation(pk=extension.delegation_id))
    fresh = DelegationExtension.objects.select_for_update().get(pk=extension.pk)
    fresh.delegation = delegation
    return delegation, fresh


def _still_extendable(delegation: Delegation, extension: DelegationExtension) -> bool:
    return (
        delegation.status in EXTENDABLE_STATUSES
        and delegation.ends_at == extension.previous_ends_at
        and delegation.ends_at is not None
        and delegation.ends_at > timezone.now()
    )


def extension_approve(
    *, extension: DelegationExtension, approved_by: User, with_mfa: bool, note: str = ""
) -> DelegationExtension:
    """An approver approves an extension; the one that completes the quorum moves the end.
    An extension whose delegation has already ended (or changed its end) lapses instead.
    Prolonging access is granting it for longer, so each approval makes the checks an
    approval of the request makes (allow-list, active catalogue role, high privilege now)."""
    current = _checked(extension, approved_by, approving=True)
    checked = None
    if current.status == ExtensionStatus.REQUESTED and _still_extendable(
        current.delegation, current
    ):
        checked = grant_precheck(
            delegation=current.delegation,
            audit_refusal=lambda problem: _deny(current, approved_by, problem),
        )
    with transaction.atomic():
        delegation, locked = _locked(current)
        if locked.status != ExtensionStatus.REQUESTED:
            if locked.status == ExtensionStatus.APPROVED and approved_by.pk in (
                approval_selectors.extension_approver_ids(extension=locked)
            ):
                return locked
            raise _already_decided(locked)
        if not _still_extendable(delegation, locked):
            return _close(locked, delegation, ExtensionStatus.LAPSED, by=approved_by, reason="")
        refusal = _refusal(locked, approved_by, approving=True)
        if refusal is not None:
            raise PermissionDenied(refusal)
        if checked is None:
            raise DelegationConflict(
                gettext("This request changed; reload the page and decide again.")
            )
        grant_recheck(locked=delegation, checked=checked)
        require_mfa(with_mfa=with_mfa)
        note = clean_reason(note, field="note", required=False)
        locked.approvals = [
            *locked.approvals,
            {
                "approver": approved_by.pk,
                "with_mfa": with_mfa,
                "at": timezone.now().isoformat(),
            },
        ]
        rules = approval_selectors.rules_in_force(delegation=delegation)
        result = approval_selectors.extension_tally(extension=locked, rules=rules)
        if not result.reached:
            locked.save(update_fields=["approvals"])
            _audit(
                extension=locked,
                delegation=delegation,
                action=AuditAction.DELEGATION_EXTENSION_APPROVAL_RECORDED,
                actor=approved_by,
                actor_organisation=delegation.owner,
                metadata={
                    "with_mfa": with_mfa,
                    "approvals_counted": result.counted,
                    "approvals_required": result.required,
                },
            )
            return locked
        before = delegation.ends_at
        version_bump(delegation, {"ends_at": locked.new_ends_at})
        decision_write(
            locked, ExtensionStatus.APPROVED, by=approved_by, reason=note, also=["approvals"]
        )
        _audit(
            extension=locked,
            delegation=delegation,
            action=AuditAction.DELEGATION_EXTENDED,
            actor=approved_by,
            actor_organisation=delegation.owner,
            metadata={
                "with_mfa": with_mfa,
                "note": note,
                "ends_at_before": before,
                "approvers": [
                    approver
                    for approver in approval_selectors.extension_approver_ids(extension=locked)
                    if approver in result.counted_ids
                ],
                "approvals_required": result.required,
            },
        )
        if delegation.status != Status.SCHEDULED:
            # The fail-safe end in the trust policy moves with it.
            outbox_enqueue_reconcile(managed_role=delegation.managed_role)
        return locked


def _close(
    locked: DelegationExtension,
    delegation: Delegation,
    status: str,
    *,
    by: User,
    reason: str,
) -> DelegationExtension:
    decision_write(locked, status, by=by, reason=reason)
    _audit(
        extension=locked,
        delegation=delegation,
        action=AuditAction.DELEGATION_EXTENSION_REJECTED,
        actor=by,
        actor_organisation=delegation.owner,
        metadata={"reason": reason, "outcome": status},
    )
    return locked


def extension_reject(
    *, extension: DelegationExtension, rejected_by: User, reason: str
) -> DelegationExtension:
    """An approver turns an extension down: access ends as planned."""
    current = _checked(extension, rejected_by, approving=False)
    with transaction.atomic():
        delegation, locked = _locked(current)
        if locked.status != ExtensionStatus.REQUESTED:
            raise _already_decided(locked)
        reason = clean_reason(reason, field="reason")
        return _close(locked, delegation, ExtensionStatus.REJECTED, by=rejected_by, reason=reason)


def extension_approval_withdraw(
    *, extension: DelegationExtension, withdrawn_by: User
) -> DelegationExtension:
    """An approver takes back their own approval of an extension still waiting for its quorum,
    as of a request (`lifecycle.services.delegation_approval_withdraw`): it needs one more
    approval again. Never someone else's approval, nor one that completed the quorum (the
    extension is decided then). `changed` is False when this person has no approval on it (a
    double click).

    Under the delegation's row lock, like the approvals themselves, so a withdrawal racing the
    approval that would complete the quorum ends one way: counted without it, or decided
    before it."""
    with transaction.atomic():
        delegation, locked = _locked(extension)
        require_admin(
            user=withdrawn_by, organisation=delegation.owner, doing=gettext("withdraw an approval")
        )
        if locked.status != ExtensionStatus.REQUESTED:
            raise _already_decided(locked)
        mine = next(
            (entry for entry in locked.approvals if entry["approver"] == withdrawn_by.pk), None
        )
        if mine is None:
            return locked.unchanged()
        locked.approvals = [entry for entry in locked.approvals if entry is not mine]
        locked.save(update_fields=["approvals"])
        rules = approval_selectors.rules_in_force(delegation=delegation)
        approval_withdrawal_record(
            delegation=delegation,
            action=AuditAction.DELEGATION_EXTENSION_APPROVAL_WITHDRAWN,
            approver=withdrawn_by,
            rules=rules,
            result=approval_selectors.extension_tally(extension=locked, rules=rules),
            # An approver may approve and withdraw again: each approval is its own.
            decision_id=f"{locked.pk}:{mine['at']}",
            metadata={
                **_extension_facts(locked),
                "approved_at": mine["at"],
                "with_mfa": mine["with_mfa"],
            },
        )
        locked.changed = True
        return locked
