"""Four eyes, the ground floor: whether an owner's four-eyes setting is on, the one
way a rule proposal is written, and the appliers of proposals made by capabilities above the
approval rules (break-glass marking).

Every capability whose changes four eyes covers asks `four_eyes_on` and, when it is on,
validates the change and writes a proposal here instead of making it; a second owner admin
approves it through `approvals.four_eyes.rule_proposal_approve`, which applies it. Changes of
the approval rules and of the catalogue are applied there directly; a capability above them
registers its applier with `proposal_applier_register` when its module loads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy

from accounts.models import Organisation, User
from audit.actions import AuditAction
from audit.services import audit_record
from delegations.models import ApprovalSettings, RuleProposal

# What a page says when four eyes turned its change into a proposal: a second admin approves it
# on the approval-rules page, where every capability's proposals wait.
PROPOSED_MESSAGE = gettext_lazy(
    "Proposed. Four eyes is on: a second admin must approve it under Catalogue → Approval "
    "rules before it takes effect."
)

Applier = Callable[[RuleProposal], None]
_APPLIERS: dict[str, Applier] = {}


def four_eyes_on(*, owner: Organisation) -> bool:
    return ApprovalSettings.objects.filter(organisation=owner, four_eyes=True).exists()


def rule_proposal_create(
    *,
    owner: Organisation,
    user: User,
    kind: str,
    target_id: object,
    payload: dict[str, Any],
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> RuleProposal:
    """Write a pending proposal and its audit event (the caller validated the change)."""
    with transaction.atomic():
        proposal = RuleProposal.objects.create(
            organisation=owner,
            kind=kind,
            target_id=str(target_id or ""),
            payload=payload,
            before=before,
            after=after,
            proposed_by=user,
        )
        audit_record(
            action=AuditAction.RULE_PROPOSED,
            actor=user,
            organisation=owner,
            target=proposal,
            before=before,
            after=after,
            metadata={"kind": kind},
        )
    return proposal


def proposal_applier_register(kind: str, applier: Applier) -> None:
    """Say how proposals of `kind` take effect (a capability above the approval rules)."""
    _APPLIERS[kind] = applier


def proposal_applier(kind: str) -> Applier | None:
    return _APPLIERS.get(kind)
