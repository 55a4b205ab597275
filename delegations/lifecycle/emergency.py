"""Break-glass grants (issue 14): the lifecycle's part of an emergency activation. The
activation (`delegations.breakglass`) decides who may activate and records the review; this
module creates the delegation, already approved, so the normal worker path applies it at once.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import Organisation, User
from audit.actions import AuditAction
from delegations.lifecycle.services import (
    MIN_DURATION,
    create_delegation,
    validate_grantable,
)
from delegations.models import CatalogRole, Delegation
from delegations.outbox import outbox_enqueue_reconcile

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
