"""Four eyes on approval-rule changes: with the owner's setting on, creating, changing or
deleting an approver group, changing a role's approvals (quorum, auto-approval) and turning
four eyes off are proposals, with a diff, that a second owner admin approves before they take
effect. Turning four eyes on is stricter and takes effect at once; nobody turns it off alone.

Each `*_or_propose` function applies the change at once when four eyes is off (returning what
the service returns) and otherwise validates it and returns a pending `RuleProposal`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict, TypeVar, Unpack

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils.translation import gettext as _

from accounts.models import Organisation, User
from accounts.permissions import is_admin_member
from audit.actions import AuditAction
from audit.services import audit_record, audit_refusal
from delegations.approvals import selectors, services
from delegations.approvals.selectors import CATALOG_ROLE_CHANGES
from delegations.catalog import allow_list
from delegations.catalog import services as catalog_services
from delegations.models import (
    ApprovalRule,
    ApprovalSettings,
    ApproverGroup,
    CatalogRole,
    CloudAccount,
    PartnerAllowance,
    RuleProposal,
)
from delegations.proposals import (
    OUTDATED_MESSAGE,
    ProposalOutdated,
    four_eyes_on,
    proposal_applier,
    proposal_is_outdated,
    rule_proposal_create,
)
from delegations.versioned import versioned_save

__all__ = ["four_eyes_on"]

Kind = RuleProposal.Kind
_M = TypeVar("_M", bound=Model)


def _require_admin(user: User, owner: Organisation) -> None:
    if not is_admin_member(user, owner):
        raise PermissionDenied(_("Only an admin of the owner organisation changes the rules."))


class GroupFields(TypedDict):
    """What an admin sets on an approver group (the form's fields, the services' arguments)."""

    name: str
    members: list[User]
    catalog_roles: list[CatalogRole]
    partner_allowances: list[PartnerAllowance]


def _group_view(
    name: str,
    members: Iterable[User],
    roles: Iterable[CatalogRole],
    allowances: Iterable[PartnerAllowance],
) -> dict[str, Any]:
    return {
        "name": name,
        "members": sorted(user.email for user in members),
        "catalog_roles": sorted(role.role_name for role in roles),
        "partners": sorted(allowance.partner_account_uid for allowance in allowances),
    }


def _group_proposal(
    *,
    owner: Organisation,
    user: User,
    kind: str,
    group: ApproverGroup | None,
    fields: GroupFields | None,
) -> RuleProposal:
    """A proposal to create (`group` None), change or delete (`fields` None) a group, with
    the diff a second admin reads before approving it."""
    before = after = None
    payload: dict[str, Any] = {}
    if group is not None:
        before = _group_view(
            group.name,
            group.members.all(),
            group.catalog_roles.all(),
            group.partner_allowances.all(),
        )
    if fields is not None:
        name = fields["name"].strip()
        members, roles, allowances = (
            fields["members"],
            fields["catalog_roles"],
            fields["partner_allowances"],
        )
        after = _group_view(name, members, roles, allowances)
        payload = {
            "name": name,
            "members": [member.pk for member in members],
            "catalog_roles": [str(role.pk) for role in roles],
            "partner_allowances": [str(allowance.pk) for allowance in allowances],
        }
    return rule_proposal_create(
        owner=owner,
        user=user,
        kind=kind,
        target_id=group.pk if group is not None else "",
        payload=payload,
        before=before,
        after=after,
    )


def approver_group_create_or_propose(
    *, owner: Organisation, user: User, **fields: Unpack[GroupFields]
) -> ApproverGroup | RuleProposal:
    if not four_eyes_on(owner=owner):
        return services.approver_group_create(owner=owner, created_by=user, **fields)
    _require_admin(user, owner)
    services.approver_group_validate(owner=owner, **fields)
    return _group_proposal(
        owner=owner, user=user, kind=Kind.GROUP_CREATE, group=None, fields=fields
    )


def approver_group_update_or_propose(
    *, group: ApproverGroup, user: User, **fields: Unpack[GroupFields]
) -> ApproverGroup | RuleProposal:
    owner = group.organisation
    if not four_eyes_on(owner=owner):
        return services.approver_group_update(group=group, updated_by=user, **fields)
    _require_admin(user, owner)
    services.approver_group_validate(owner=owner, exclude_group=group, **fields)
    return _group_proposal(
        owner=owner, user=user, kind=Kind.GROUP_UPDATE, group=group, fields=fields
    )


def approver_group_delete_or_propose(*, group: ApproverGroup, user: User) -> RuleProposal | None:
    owner = group.organisation
    if not four_eyes_on(owner=owner):
        services.approver_group_delete(group=group, deleted_by=user)
        return None
    _require_admin(user, owner)
    services.approver_group_delete_validate(group=group)
    return _group_proposal(owner=owner, user=user, kind=Kind.GROUP_DELETE, group=group, fields=None)


def approval_rule_set_or_propose(
    *,
    catalog_role: CatalogRole,
    user: User,
    approvals_required: int,
    auto_approve_max_hours: int | None,
) -> ApprovalRule | RuleProposal:
    owner = catalog_role.organisation
    if not four_eyes_on(owner=owner):
        return services.approval_rule_set(
            catalog_role=catalog_role,
            approvals_required=approvals_required,
            auto_approve_max_hours=auto_approve_max_hours,
            set_by=user,
        )
    _require_admin(user, owner)
    services.approval_rule_validate(
        catalog_role=catalog_role,
        approvals_required=approvals_required,
        auto_approve_max_hours=auto_approve_max_hours,
    )
    current = ApprovalRule.objects.filter(catalog_role=catalog_role).first()
    wanted = {
        "approvals_required": approvals_required,
        "auto_approve_max_hours": auto_approve_max_hours,
    }
    return rule_proposal_create(
        owner=owner,
        user=user,
        kind=Kind.RULE_SET,
        target_id=catalog_role.pk,
        payload=wanted,
        before={
            "role": catalog_role.role_name,
            "approvals_required": current.approvals_required if current else 1,
            "auto_approve_max_hours": current.auto_approve_max_hours if current else None,
        },
        after={"role": catalog_role.role_name, **wanted},
    )


def four_eyes_set(*, owner: Organisation, user: User, on: bool) -> ApprovalSettings | RuleProposal:
    """Turn four eyes on (at once) or off (a proposal when it is on: nobody turns it off
    alone)."""
    _require_admin(user, owner)
    if not on and four_eyes_on(owner=owner):
        return rule_proposal_create(
            owner=owner,
            user=user,
            kind=Kind.FOUR_EYES_OFF,
            target_id="",
            payload={"four_eyes": False},
            before={"four_eyes": True},
            after={"four_eyes": False},
        )
    return _four_eyes_apply(owner=owner, user=user, on=on)


def _four_eyes_apply(*, owner: Organisation, user: User, on: bool) -> ApprovalSettings:
    with transaction.atomic():
        settings_row, _created = ApprovalSettings.objects.select_for_update().get_or_create(
            organisation=owner
        )
        if settings_row.four_eyes == on:
            return settings_row
        versioned_save(settings_row, {"four_eyes": on}, by=user)
        audit_record(
            action=AuditAction.FOUR_EYES_CHANGED,
            actor=user,
            organisation=owner,
            target=settings_row,
            before={"four_eyes": not on},
            after={"four_eyes": on, "version": settings_row.version},
        )
        return settings_row


def _deny(proposal: RuleProposal, user: User, reason: str) -> None:
    audit_refusal(
        because=reason,
        action=AuditAction.RULE_PROPOSAL_DENIED,
        actor=user,
        organisation=proposal.organisation,
        target=proposal,
    )


def _all_found(found: QuerySet[_M], wanted: list[Any]) -> list[_M]:
    """The rows a proposal names, all of them: one gone since (a member who is no longer an
    owner admin, a deleted role) would silently leave the diff's "after" untrue."""
    rows = list(found)
    if len(rows) != len(set(wanted)):
        raise ProposalOutdated
    return rows


def _apply(proposal: RuleProposal) -> None:
    """Make the proposed change, as its author (the services re-validate it now)."""
    owner = proposal.organisation
    author = proposal.proposed_by
    data = proposal.payload
    if proposal.kind == Kind.FOUR_EYES_OFF:
        _four_eyes_apply(owner=owner, user=author, on=False)
        return
    if proposal.kind == Kind.RULE_SET:
        role = CatalogRole.objects.get(organisation=owner, pk=proposal.target_id)
        services.approval_rule_set(
            catalog_role=role,
            approvals_required=data["approvals_required"],
            auto_approve_max_hours=data["auto_approve_max_hours"],
            set_by=author,
        )
        return
    if proposal.kind in _CATALOG_KINDS:
        _apply_catalog(proposal)
        return
    applier = proposal_applier(proposal.kind)
    if applier is not None:
        applier(proposal)
        return
    if proposal.kind == Kind.GROUP_DELETE:
        group = ApproverGroup.objects.get(organisation=owner, pk=proposal.target_id)
        services.approver_group_delete(group=group, deleted_by=author)
        return
    arguments = {
        "name": data["name"],
        "members": _all_found(
            selectors.owner_admins(owner=owner).filter(pk__in=data["members"]), data["members"]
        ),
        "catalog_roles": _all_found(
            CatalogRole.objects.filter(organisation=owner, pk__in=data["catalog_roles"]),
            data["catalog_roles"],
        ),
        "partner_allowances": _all_found(
            PartnerAllowance.objects.filter(organisation=owner, pk__in=data["partner_allowances"]),
            data["partner_allowances"],
        ),
    }
    if proposal.kind == Kind.GROUP_CREATE:
        services.approver_group_create(owner=owner, created_by=author, **arguments)
    else:
        group = ApproverGroup.objects.get(organisation=owner, pk=proposal.target_id)
        services.approver_group_update(group=group, updated_by=author, **arguments)


# All of the catalogue's proposals.
_CATALOG_KINDS = CATALOG_ROLE_CHANGES | {
    Kind.CATALOG_ROLE_CREATE,
    Kind.ALLOWANCE_ADD,
    Kind.ALLOWANCE_REMOVE,
}


def _role_settings(data: dict[str, Any]) -> dict[str, Any]:
    """What a proposal to add or edit a role sets on it, as the catalogue's services take it."""
    return {
        "description": data["description"],
        "policy_keys": [tuple(key) for key in data["policy_keys"]],
        "max_session_duration": data["max_session_duration"],
        "keep_role_when_empty": data["keep_role_when_empty"],
        "high_privilege_confirmed": data["high_privilege_confirmed"],
        "default_trust_scope": data["default_trust_scope"],
    }


def _apply_catalog(proposal: RuleProposal) -> None:
    """The catalogue's proposals (`catalog.proposals`), applied through its services."""
    owner = proposal.organisation
    author = proposal.proposed_by
    data = proposal.payload
    if proposal.kind == Kind.CATALOG_ROLE_CREATE:
        catalog_services.catalog_role_create(
            owner=owner,
            created_by=author,
            role_name=data["role_name"],
            one_role_per_partner=data["one_role_per_partner"],
            **_role_settings(data),
        )
    elif proposal.kind in CATALOG_ROLE_CHANGES:
        role = CatalogRole.objects.select_related("cloud_account", "organisation").get(
            organisation=owner, pk=proposal.target_id
        )
        if proposal.kind == Kind.CATALOG_ROLE_DEACTIVATE:
            catalog_services.catalog_role_deactivate(catalog_role=role, deactivated_by=author)
        elif proposal.kind == Kind.CATALOG_ROLE_REACTIVATE:
            catalog_services.catalog_role_reactivate(catalog_role=role, reactivated_by=author)
        elif proposal.kind == Kind.CATALOG_ROLE_SET_ACCOUNTS:
            catalog_services.catalog_role_set_accounts(
                catalog_role=role,
                changed_by=author,
                all_accounts=data["all_accounts"],
                accounts=_all_found(
                    CloudAccount.objects.filter(organisation=owner, pk__in=data["accounts"]),
                    data["accounts"],
                ),
            )
        else:
            catalog_services.catalog_role_update(
                catalog_role=role, updated_by=author, **_role_settings(data)
            )
    elif proposal.kind == Kind.ALLOWANCE_ADD:
        allow_list.partner_allowance_add(
            owner=owner,
            added_by=author,
            partner_account_uid=data["partner_account_uid"],
            label=data["label"],
        )
    else:
        allowance = PartnerAllowance.objects.get(organisation=owner, pk=proposal.target_id)
        allow_list.partner_allowance_remove(allowance=allowance, removed_by=author)


def rule_proposal_approve(*, proposal: RuleProposal, approved_by: User) -> RuleProposal:
    """A second owner admin approves a proposal: it takes effect now. Its author cannot, and
    nobody can once its target changed or went since it was written (it is outdated)."""
    current = RuleProposal.objects.select_related("organisation", "proposed_by").get(pk=proposal.pk)
    _require_admin(approved_by, current.organisation)
    refusal = selectors.rule_proposal_approval_refusal(proposal=current, user=approved_by)
    if refusal is not None:
        _deny(current, approved_by, refusal)
        raise PermissionDenied(refusal)
    try:
        return _approve(current, approved_by)
    except ProposalOutdated:
        _outdate(current, approved_by)
        raise ValidationError(OUTDATED_MESSAGE) from None
    except allow_list.AllowanceRefused as refused:
        # Recorded again once `_approve`'s rollback took the applier's record along.
        allow_list.partner_allowance_refusal_record(
            refused,
            owner=current.organisation,
            by=approved_by,
            partner_account_uid=current.payload["partner_account_uid"],
            label=current.payload["label"],
        )
        raise


def _approve(proposal: RuleProposal, approved_by: User) -> RuleProposal:
    with transaction.atomic():
        # One approval at a time per owner: two proposals written against the same target,
        # approved at once, would otherwise both find it as they saw it and both apply.
        ApprovalSettings.objects.select_for_update().get_or_create(
            organisation=proposal.organisation
        )
        locked = (
            RuleProposal.objects.select_for_update()
            .select_related("organisation", "proposed_by")
            .get(pk=proposal.pk)
        )
        if locked.status != RuleProposal.Status.PENDING:
            raise ValidationError(
                _("This proposal was already decided: %(status)s.")
                % {"status": locked.get_status_display().lower()}
            )
        if proposal_is_outdated(locked):
            raise ProposalOutdated
        # Again under the lock that changes of the groups take: one made meanwhile counts.
        refusal = selectors.rule_proposal_approval_refusal(proposal=locked, user=approved_by)
        if refusal is not None:
            raise PermissionDenied(refusal)
        # Set before applying: an applier may count the second admin's agreement (a marking
        # that the role's quorum wants two people for).
        locked.decided_by = approved_by
        try:
            _apply(locked)
        except ObjectDoesNotExist as gone:
            # Something the proposal names was deleted since (its target, a role it marks).
            raise ProposalOutdated from gone
        services.decision_write(locked, RuleProposal.Status.APPLIED, by=approved_by)
        audit_record(
            action=AuditAction.RULE_PROPOSAL_APPROVED,
            actor=approved_by,
            organisation=locked.organisation,
            target=locked,
            before=locked.before,
            after=locked.after,
            metadata={"kind": locked.kind, "proposed_by": str(locked.proposed_by_id)},
        )
        return locked


def _outdate(proposal: RuleProposal, approved_by: User) -> None:
    """Close an outdated proposal, on the record, after its approval was rolled back."""
    with transaction.atomic():
        locked = RuleProposal.objects.select_for_update().get(pk=proposal.pk)
        if locked.status != RuleProposal.Status.PENDING:
            return  # decided meanwhile by somebody else
        services.decision_write(locked, RuleProposal.Status.OUTDATED, by=approved_by)
        audit_refusal(
            because=str(OUTDATED_MESSAGE),
            action=AuditAction.RULE_PROPOSAL_OUTDATED,
            actor=approved_by,
            organisation=proposal.organisation,
            target=locked,
            before=locked.before,
            after=locked.after,
            metadata={"kind": locked.kind, "proposed_by": str(locked.proposed_by_id)},
        )


def rule_proposal_reject(
    *, proposal: RuleProposal, rejected_by: User, reason: str = ""
) -> RuleProposal:
    """Any owner admin (its author included: a withdrawal) turns a proposal down."""
    _require_admin(rejected_by, proposal.organisation)
    with transaction.atomic():
        locked = RuleProposal.objects.select_for_update().get(pk=proposal.pk)
        if locked.status != RuleProposal.Status.PENDING:
            raise ValidationError(_("This proposal was already decided."))
        services.decision_write(
            locked,
            RuleProposal.Status.REJECTED,
            by=rejected_by,
            reason=(reason or "").strip()[:2000],
        )
        audit_record(
            action=AuditAction.RULE_PROPOSAL_REJECTED,
            actor=rejected_by,
            organisation=locked.organisation,
            target=locked,
            metadata={"kind": locked.kind, "reason": locked.decision_reason},
        )
        return locked
