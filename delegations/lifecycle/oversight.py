"""The lifecycle's part of the owner's oversight:

- break-glass grants: the activation (`delegations.breakglass`) decides who may activate and
  records the review; `delegation_break_glass_grant` creates the delegation, already approved,
  so the normal worker path applies it at once;
- access reviews (`delegations.reviews`): `delegation_shorten` (an approver's "shorten") and
  `delegation_revoke_by_rule` (a review's deadline configured to revoke).
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Organisation, User
from audit.actions import AuditAction
from delegations.lifecycle.starting import create_delegation
from delegations.lifecycle.transitions import (
    MIN_DURATION,
    IllegalTransition,
    audit_delegation,
    clean_reason,
    lock_delegation,
    transition,
    validate_ends_at,
    validate_grantable,
)
from delegations.models import ALLOWED_TRANSITIONS, CatalogRole, Delegation
from delegations.outbox import outbox_enqueue_reconcile
from delegations.versioned import version_bump

Status = Delegation.Status


def delegation_break_glass_grant(
    *,
    owner: Organisation,
    partner: Organisation,
    catalog_role: CatalogRole,
    activated_by: User,
    reason: str,
    ends_at: dt.datetime,
    with_mfa: bool,
    metadata: dict[str, object],
) -> Delegation:
    """Create an approved, time-bound delegation for an emergency activation and ask the
    worker to apply it. Runs inside the activation's transaction: the activation row and the
    grant commit together or not at all."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("A break-glass grant is created inside its activation's transaction.")
    now = timezone.now()
    if ends_at < now + MIN_DURATION:
        raise ValueError("A break-glass window lasts at least an hour.")
    validate_grantable(owner=owner, partner=partner, catalog_role=catalog_role)
    delegation = create_delegation(
        owner=owner,
        partner=partner,
        catalog_role=catalog_role,
        # The role's own account (one account per emergency role), and no fleet.
        cloud_account=None,
        fleet=None,
        created_by=activated_by,
        actor_organisation=partner,
        action=AuditAction.BREAK_GLASS_ACTIVATED,
        reason=reason,
        ends_at=ends_at,
        fields={
            "status": Status.APPROVED,
            "origin": Delegation.Origin.BREAK_GLASS,
            "starts_at": now,
            "decided_at": now,
            "decision_reason": "Break-glass: activated by a person the owner named in advance.",
            "approved_with_mfa": with_mfa,
        },
        metadata={"with_mfa": with_mfa, "break_glass": True, **metadata},
    )
    outbox_enqueue_reconcile(managed_role=delegation.managed_role)
    return delegation


# --- access reviews (`delegations.reviews`) ------------------------------------------------

# Statuses whose end an approver may still move earlier.
SHORTENABLE_STATUSES = frozenset(
    {Status.SCHEDULED, Status.APPROVED, Status.APPLYING, Status.ACTIVE}
)


@transaction.atomic
def delegation_shorten(
    *, delegation: Delegation, shortened_by: User, ends_at: dt.datetime, reason: str
) -> Delegation:
    """An owner's approver ends a delegation earlier than planned (an access review's
    "shorten"): never later, never within 5 minutes. The worker rewrites the fail-safe end in
    the trust policy; the scheduler ends the access at the new end."""
    locked = lock_delegation(delegation)
    if locked.status not in SHORTENABLE_STATUSES:
        raise IllegalTransition(
            f"This delegation is {locked.get_status_display().lower()}; its end cannot move."
        )
    now = timezone.now()
    validate_ends_at(ends_at, now=now)
    if ends_at < locked.starts_at + MIN_DURATION:
        raise ValidationError(
            {"new_ends_at": "The end must be at least 5 minutes after the start."}
        )
    if locked.ends_at is not None and ends_at >= locked.ends_at:
        raise ValidationError(
            {"new_ends_at": "Shortening moves the end earlier; to keep it, choose Keep."}
        )
    reason = clean_reason(reason, field="note", required=False)
    before = {"status": locked.status, "ends_at": locked.ends_at, "version": locked.version}
    previous = locked.ends_at
    version_bump(locked, {"ends_at": ends_at})
    locked.changed = True
    audit_delegation(
        delegation=locked,
        action=AuditAction.DELEGATION_SHORTENED,
        actor=shortened_by,
        actor_organisation=locked.owner,
        before=before,
        metadata={"previous_ends_at": previous, "ends_at": ends_at, "reason": reason},
    )
    if locked.status != Status.SCHEDULED:
        outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked


@transaction.atomic
def delegation_revoke_by_rule(*, delegation: Delegation, reason: str, rule: str) -> Delegation:
    """The portal revokes a delegation because a rule says so (an access review nobody
    answered by its deadline, configured to revoke): like an owner's revoke, with the rule
    as the actor."""
    locked = lock_delegation(delegation)
    if locked.end_cause == Delegation.EndCause.REVOKED or locked.is_final:
        return locked
    now = timezone.now()
    changes = {
        "end_cause": Delegation.EndCause.REVOKED,
        "revoke_requested_at": now,
        "revoke_reason": reason,
    }
    if locked.status == Status.SCHEDULED:
        return transition(
            locked,
            to=Status.REVOKED,
            action=AuditAction.DELEGATION_REVOKED,
            actor=None,
            actor_organisation=None,
            changes={**changes, "ended_at": now},
            metadata={"reason": reason, "rule": rule, "before_its_start": True},
        )
    if Status.REVOKING not in ALLOWED_TRANSITIONS[locked.status]:
        return locked  # failed while revoking already, or revoking: the worker finishes it
    transition(
        locked,
        to=Status.REVOKING,
        action=AuditAction.DELEGATION_REVOKE_REQUESTED,
        actor=None,
        actor_organisation=None,
        changes=changes,
        metadata={"reason": reason, "rule": rule},
    )
    outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked
