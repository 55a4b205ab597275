"""Four eyes, the ground floor: whether an owner's four-eyes setting is on, the one
way a rule proposal is written, and the appliers of proposals made by capabilities above the
approval rules (break-glass marking).

Every capability whose changes four eyes covers asks `four_eyes_on` and, when it is on,
validates the change and writes a proposal here instead of making it; a second owner admin
approves it through `approvals.four_eyes.rule_proposal_approve`, which applies it. Changes of
the approval rules and of the catalogue (a role added, edited, deactivated or reactivated, the
accounts it is offered in, the allow-list) are applied there directly; a capability above them
registers its applier with `proposal_applier_register` when its module loads.

A proposal is written against its target as it is then: the diff its second admin reads says
what changes from that. It records a fingerprint of the target's state
(`proposal_target_fingerprint`); once the target changed or went, approving it would apply a
change nobody reviewed against what is in force now, so it is outdated and must be proposed
again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy

from accounts.models import Organisation, User
from audit.actions import AuditAction
from audit.services import audit_record
from delegations.models import (
    CATALOG_ROLE_EDITABLE_FIELDS,
    ApprovalRule,
    ApprovalSettings,
    ApproverGroup,
    BreakGlassRole,
    CatalogRole,
    CloudAccount,
    PartnerAllowance,
    RuleProposal,
)

# What a page says when four eyes turned its change into a proposal: a second admin approves it
# on the approval-rules page, where every capability's proposals wait.
PROPOSED_MESSAGE = gettext_lazy(
    "Proposed. Four eyes is on: a second admin must approve it under Catalogue → Approval "
    "rules before it takes effect."
)

OUTDATED_MESSAGE = gettext_lazy(
    "This proposal was written against a rule that has changed since; propose it again."
)

Applier = Callable[[RuleProposal], None]
_APPLIERS: dict[str, Applier] = {}
# Why a person may not be the second admin of a proposal of some kind (None: they may).
SecondAdminRefusal = Callable[[RuleProposal, User], str | None]
_SECOND_ADMIN_REFUSALS: dict[str, SecondAdminRefusal] = {}


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
        proposal = RuleProposal(
            organisation=owner,
            kind=kind,
            target_id=str(target_id or ""),
            payload=payload,
            before=before,
            after=after,
            proposed_by=user,
        )
        proposal.target_fingerprint = proposal_target_fingerprint(proposal)
        proposal.save(force_insert=True)
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


def proposal_applier_register(
    kind: str, applier: Applier, *, second_admin_refusal: SecondAdminRefusal | None = None
) -> None:
    """Say how proposals of `kind` take effect (a capability above the approval rules) and,
    when not every other owner admin may approve one, who may not."""
    _APPLIERS[kind] = applier
    if second_admin_refusal is not None:
        _SECOND_ADMIN_REFUSALS[kind] = second_admin_refusal


def proposal_applier(kind: str) -> Applier | None:
    return _APPLIERS.get(kind)


def proposal_second_admin_refusal(proposal: RuleProposal, user: User) -> str | None:
    """What the capability that registered `proposal`'s kind says of `user` approving it."""
    refusal = _SECOND_ADMIN_REFUSALS.get(proposal.kind)
    return refusal(proposal, user) if refusal is not None else None


class ProposalOutdated(Exception):
    """The proposal's target changed or went since it was written (or something it names
    did): it cannot be applied as reviewed."""


def _ids(related: Any) -> list[str]:
    return sorted(str(pk) for pk in related.values_list("pk", flat=True))


M = TypeVar("M", bound=Model)


def _owners(model: type[M], proposal: RuleProposal, **lookup: Any) -> QuerySet[M]:
    """The proposing owner's rows of `model` found by `lookup`: what a proposal is written
    against is always one of its own organisation's rows."""
    return model._default_manager.filter(organisation_id=proposal.organisation_id, **lookup)


def _target(model: type[M], proposal: RuleProposal) -> M | None:
    """The owner's row the proposal is about (its `target_id`), or None when it is gone."""
    return _owners(model, proposal, pk=proposal.target_id).first()


def _row(model: type[Model], proposal: RuleProposal, *fields: str, **lookup: Any) -> Any:
    """The values of `fields` of the owner's row found by `lookup`, or None when it is gone."""
    return _owners(model, proposal, **lookup).values(*fields).first()


def _no_target(_proposal: RuleProposal) -> None:
    """Creating something changes nothing in force; the service validates it when applied."""
    return None


def _group_state(proposal: RuleProposal) -> Any:
    group = _target(ApproverGroup, proposal)
    if group is None:
        return None
    # Besides the version, who is in it: a member leaving the owner leaves the group without
    # a change of the group.
    return {
        "version": group.version,
        "members": _ids(group.members),
        "catalog_roles": _ids(group.catalog_roles),
        "partner_allowances": _ids(group.partner_allowances),
    }


def _rule_state(proposal: RuleProposal) -> Any:
    role = _target(CatalogRole, proposal)
    if role is None:
        return None
    rule = ApprovalRule.objects.filter(catalog_role=role)
    return {"rule": rule.values("version", "approvals_required", "auto_approve_max_hours").first()}


def _four_eyes_state(proposal: RuleProposal) -> Any:
    return _row(ApprovalSettings, proposal, "version", "four_eyes")


def _catalog_role_state(proposal: RuleProposal) -> Any:
    return _row(
        CatalogRole, proposal, *CATALOG_ROLE_EDITABLE_FIELDS, "is_active", pk=proposal.target_id
    )


def _catalog_role_accounts_state(proposal: RuleProposal) -> Any:
    role = _target(CatalogRole, proposal)
    if role is None:
        return None
    return {
        "active": role.is_active,
        "offered_in_all_accounts": role.offered_in_all_accounts,
        "extra_accounts": _ids(role.extra_accounts),
    }


def _catalog_role_create_state(proposal: RuleProposal) -> Any:
    """A new role is written against the owner's primary account, its home, and a name free
    there: another primary account, or the name taken since (RAM names ignore case), and the
    diff no longer says what approving it would add."""
    home = _row(CloudAccount, proposal, "pk", "account_uid", is_active=True, is_primary=True)
    taken = home is not None and (
        CatalogRole.objects.filter(
            cloud_account_id=home["pk"], role_name__iexact=proposal.payload["role_name"]
        ).exists()
    )
    return {"home": home, "name_taken": taken}


def _allowance_state(proposal: RuleProposal) -> Any:
    return _row(PartnerAllowance, proposal, "partner_account_uid", "label", pk=proposal.target_id)


def _marking_state(marking: BreakGlassRole | None) -> Any:
    if marking is None:
        return None
    return {"version": marking.version, "active": marking.is_active, "people": _ids(marking.people)}


def _break_glass_set_state(proposal: RuleProposal) -> Any:
    return _marking_state(
        _owners(
            BreakGlassRole,
            proposal,
            catalog_role_id=proposal.payload["catalog_role"],
            partner_id=proposal.payload["partner"],
        ).first()
    )


def _break_glass_remove_state(proposal: RuleProposal) -> Any:
    return _marking_state(_target(BreakGlassRole, proposal))


Kind = RuleProposal.Kind
# What each kind of proposal is written against. Every target is a row of this app's models,
# so the states live here, beside the one way proposals are written, for every capability.
_TARGET_STATES: dict[str, Callable[[RuleProposal], Any]] = {
    Kind.GROUP_CREATE: _no_target,
    Kind.GROUP_UPDATE: _group_state,
    Kind.GROUP_DELETE: _group_state,
    Kind.RULE_SET: _rule_state,
    Kind.FOUR_EYES_OFF: _four_eyes_state,
    Kind.CATALOG_ROLE_CREATE: _catalog_role_create_state,
    Kind.CATALOG_ROLE_UPDATE: _catalog_role_state,
    Kind.CATALOG_ROLE_DEACTIVATE: _catalog_role_state,
    Kind.CATALOG_ROLE_REACTIVATE: _catalog_role_state,
    Kind.CATALOG_ROLE_SET_ACCOUNTS: _catalog_role_accounts_state,
    Kind.ALLOWANCE_ADD: _no_target,
    Kind.ALLOWANCE_REMOVE: _allowance_state,
    Kind.BREAK_GLASS_SET: _break_glass_set_state,
    Kind.BREAK_GLASS_REMOVE: _break_glass_remove_state,
}


def proposal_target_fingerprint(proposal: RuleProposal) -> str:
    """A digest of the state, now, of what `proposal` is about (its kind's target)."""
    state = _TARGET_STATES[proposal.kind](proposal)
    encoded = json.dumps(state, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


def proposal_is_outdated(proposal: RuleProposal) -> bool:
    """Whether the target changed or went since `proposal` was written (a proposal written
    before fingerprints were recorded has none, and is outdated: propose it again)."""
    return proposal_target_fingerprint(proposal) != proposal.target_fingerprint
