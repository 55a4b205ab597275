"""Approval rules as state changes: approver groups, the quorum of a catalogue role, and the
approvals given to a request.

The lifecycle stays the one place a delegation changes status: `delegation_approve` asks
`approval_refusal` whether the person may decide at all (before any lock, so a refusal is
audited in its own transaction), then, under the delegation's row lock, `approval_record`
writes this person's approval and answers whether the quorum is reached. Only then does the
lifecycle move the request to approved. Rejections go through `approval_refusal` too: one
rejection by anyone who may decide ends the request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Organisation, User
from audit.actions import AuditAction
from audit.services import audit_record
from core.db import conflict_as_validation_error
from delegations.approvals import selectors
from delegations.approvals.rules import (
    GroupCover,
    RulesInForce,
    Shortfall,
    Tally,
    decision_refusal,
    quorum_shortfalls,
    shortfalls_made,
)
from delegations.catalog.allow_list import partner_allowance_check_register
from delegations.catalog.services import catalog_role_lock
from delegations.delegation_audit import delegation_audit_record
from delegations.models import (
    APPROVER_GROUP_NAME_MAX_LENGTH,
    MAX_APPROVALS_REQUIRED,
    MAX_AUTO_APPROVE_HOURS,
    MAX_BREAK_GLASS_QUORUM,
    ApprovalRule,
    ApprovalSettings,
    ApproverGroup,
    BreakGlassRole,
    CatalogRole,
    Delegation,
    DelegationApproval,
    DelegationExtension,
    PartnerAllowance,
    RuleProposal,
    narrowest_trust_scope,
)
from delegations.notices import decision_announce
from delegations.versioned import version_bump, versioned_save

# --- deciding a request ------------------------------------------------------------------------


def decision_write(
    locked: RuleProposal | DelegationExtension,
    status: str,
    *,
    by: User,
    reason: str = "",
    also: Sequence[str] = (),
) -> None:
    """Write the decision on a locked request that somebody else decides (a `Decision`: a
    four-eyes proposal, an extension): its status, who, when and why, with the `also` fields
    the caller already set on it."""
    locked.status = status
    locked.decided_by = by
    locked.decided_at = timezone.now()
    locked.decision_reason = reason
    locked.save(update_fields=[*also, "status", "decided_by", "decided_at", "decision_reason"])


def approval_refusal(*, delegation: Delegation, user: User, approving: bool) -> str | None:
    """Why `user` may not approve (or, with `approving=False`, reject) `delegation` under the
    rules in force now, or None. Reads only; callers audit the refusal."""
    rules = selectors.rules_in_force(delegation=delegation)
    already = selectors.approver_ids(delegation=delegation) if approving else ()
    return decision_refusal(
        rules, selectors.candidate(delegation=delegation, user=user), already_approved=already
    )


def proposal_decision_refusal(
    *, delegation: Delegation, user: User, proposed_by_id: object
) -> str | None:
    """Why `user` may not decide on something the partner proposed for `delegation` (a named
    person), or None: the people who may decide the delegation, with the proposal's author in
    the requester's place (the delegation's own requester may be the owner admin who offered
    it, whose offer was their decision). Reads only; callers audit the refusal."""
    candidate = replace(
        selectors.candidate(delegation=delegation, user=user),
        is_requester=user.pk == proposed_by_id,
    )
    return decision_refusal(selectors.rules_in_force(delegation=delegation), candidate)


def approval_record(
    *,
    delegation: Delegation,
    approver: User,
    with_mfa: bool,
    note: str,
    trust_scope: str,
    ends_at: dt.datetime | None = None,
) -> Tally:
    """Record `approver`'s approval of `delegation`, which the caller has locked (its row lock
    serialises approvers, so the count below is exact), and answer where the quorum stands.
    `trust_scope` is whom this approver agrees the trust policy names; `ends_at` an earlier
    end they set.

    An approval that does not complete the quorum is audited here; the one that completes it
    is the lifecycle's `delegation.approved` event, whose metadata names every approver."""
    rules = selectors.rules_in_force(delegation=delegation)
    already = selectors.approver_ids(delegation=delegation)
    refusal = decision_refusal(
        rules, selectors.candidate(delegation=delegation, user=approver), already_approved=already
    )
    if refusal is not None:
        raise PermissionDenied(refusal)
    DelegationApproval.objects.create(
        delegation=delegation,
        approver=approver,
        with_mfa=with_mfa,
        note=note,
        approvals_required=rules.approvals_required,
        rule_version=rules.rule_version,
        ends_at=ends_at,
        trust_scope=trust_scope,
    )
    result = selectors.approval_tally(delegation=delegation, rules=rules)
    if not result.reached:
        delegation_audit_record(
            delegation,
            AuditAction.DELEGATION_APPROVAL_RECORDED,
            actor=approver,
            actor_organisation=delegation.owner,
            metadata={
                "with_mfa": with_mfa,
                "note": note,
                "approvals_counted": result.counted,
                "approvals_required": result.required,
                "rule_version": rules.rule_version,
                "approver_groups": list(rules.group_names),
            },
        )
    return result


def approval_withdraw(*, delegation: Delegation, approver: User) -> bool:
    """Take back `approver`'s own approval of `delegation`, which the caller has locked and
    found still waiting for its quorum: the request needs one more approval again, and the
    end or trust scope this approver set no longer applies. Audited, and the owner's other
    admins are told, in this transaction. False when `approver` has no approval on it (nothing
    changes): nobody takes back anyone else's."""
    approval = DelegationApproval.objects.filter(delegation=delegation, approver=approver).first()
    if approval is None:
        return False
    approval_id = approval.pk
    approval.delete()
    rules = selectors.rules_in_force(delegation=delegation)
    approval_withdrawal_record(
        delegation=delegation,
        action=AuditAction.DELEGATION_APPROVAL_WITHDRAWN,
        approver=approver,
        rules=rules,
        result=selectors.approval_tally(delegation=delegation, rules=rules),
        decision_id=approval_id,
        metadata={
            "approval": str(approval_id),
            "approved_at": approval.created_at,
            "with_mfa": approval.with_mfa,
            "ends_at": approval.ends_at,
            "trust_scope": approval.trust_scope,
        },
    )
    return True


def approval_withdrawal_record(
    *,
    delegation: Delegation,
    action: AuditAction,
    approver: User,
    rules: RulesInForce,
    result: Tally,
    decision_id: object,
    metadata: dict[str, Any],
) -> None:
    """Audit `approver` taking back their own approval of a decision on `delegation` still
    waiting for its quorum (the request itself, or an extension of it), with what the approval
    was (`metadata`) and where the quorum stands without it (`result` under `rules`), and tell
    the owner's other admins: in the caller's transaction, under the delegation's row lock the
    approvals are counted under. `decision_id` names the approval taken back, so that each
    withdrawal is told once."""
    delegation_audit_record(
        delegation,
        action,
        actor=approver,
        actor_organisation=delegation.owner,
        metadata={
            **metadata,
            "approvals_counted": result.counted,
            "approvals_required": result.required,
            "rule_version": rules.rule_version,
            "approver_groups": list(rules.group_names),
        },
    )
    decision_announce(delegation=delegation, decision_id=decision_id, action=action, actor=approver)


def approved_end(*, delegation: Delegation) -> dt.datetime | None:
    """The earliest end an approver of `delegation` set, if any."""
    ends = [
        end
        for end in DelegationApproval.objects.filter(delegation=delegation).values_list(
            "ends_at", flat=True
        )
        if end is not None
    ]
    return min(ends) if ends else None


def approved_trust_scope(*, delegation: Delegation) -> str | None:
    """The narrowest trust scope an approver of `delegation` agreed to, if any recorded one:
    access trusts no more people than every approver accepted."""
    return narrowest_trust_scope(
        DelegationApproval.objects.filter(delegation=delegation).values_list(
            "trust_scope", flat=True
        )
    )


def approval_summary(*, delegation: Delegation) -> dict[str, Any]:
    """What the lifecycle's `delegation.approved` event adds about the approvals behind it:
    the approvers whose approvals counted."""
    rules = selectors.rules_in_force(delegation=delegation)
    counted = selectors.approval_tally(delegation=delegation, rules=rules).counted_ids
    return {
        "approvals_required": rules.approvals_required,
        "approvers": [
            str(approver_id)
            for approver_id in selectors.approver_ids(delegation=delegation)
            if approver_id in counted
        ],
        "rule_version": rules.rule_version,
        "approver_groups": list(rules.group_names),
    }


# --- approver groups -----------------------------------------------------------------------------


def _group_snapshot(group: ApproverGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "members": sorted(user.email for user in group.members.all()),
        "catalog_roles": sorted(role.role_name for role in group.catalog_roles.all()),
        "partners": sorted(a.partner_account_uid for a in group.partner_allowances.all()),
        "version": group.version,
    }


def approver_group_validate(**arguments: Any) -> None:
    """The checks a group create or update makes before it saves (a proposal makes them
    too); takes `_clean_group`'s arguments."""
    _clean_group(**arguments)


def _clean_group(
    *,
    owner: Organisation,
    name: str,
    members: Iterable[User],
    catalog_roles: Iterable[CatalogRole],
    partner_allowances: Iterable[PartnerAllowance],
    exclude_group: ApproverGroup | None = None,
) -> tuple[str, list[User], list[CatalogRole], list[PartnerAllowance]]:
    if not owner.is_owner:
        raise ValidationError(_("Only resource owner organisations keep approver groups."))
    name = (name or "").strip()
    members, roles, allowances = list(members), list(catalog_roles), list(partner_allowances)
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = _("Give the group a name.")
    elif len(name) > APPROVER_GROUP_NAME_MAX_LENGTH:
        errors["name"] = _("A name is at most %(n)d characters.") % {
            "n": APPROVER_GROUP_NAME_MAX_LENGTH
        }
    else:
        same = ApproverGroup.objects.filter(organisation=owner, name__iexact=name)
        if exclude_group is not None:
            same = same.exclude(pk=exclude_group.pk)
        if same.exists():
            errors["name"] = _("There is already a group called %(name)s.") % {"name": name}
    admin_ids = set(selectors.owner_admins(owner=owner).values_list("pk", flat=True))
    if not members:
        errors["members"] = _("An approver group needs at least one member.")
    elif any(member.pk not in admin_ids for member in members):
        errors["members"] = _("Only admins of your organisation can approve (auditors never do).")
    if any(role.organisation_id != owner.pk for role in roles):
        errors["catalog_roles"] = _("Choose roles of your own catalogue.")
    if any(allowance.organisation_id != owner.pk for allowance in allowances):
        errors["partner_allowances"] = _("Choose partners on your own allow-list.")
    if errors:
        raise ValidationError(errors)
    _check_quorums_kept(
        owner=owner,
        group_id=exclude_group.pk if exclude_group is not None else None,
        cover=GroupCover(
            member_ids=frozenset(member.pk for member in members),
            catalog_role_ids=frozenset(role.pk for role in roles),
            allowance_ids=frozenset(allowance.pk for allowance in allowances),
        ),
    )
    return name, members, roles, allowances


def _lock_rules(owner: Organisation) -> None:
    """Take the owner's approval-settings row: one change of groups or quorums at a time per
    owner, so each one's quorum check sees the others' result (the same lock four eyes takes
    to approve a proposal)."""
    ApprovalSettings.objects.select_for_update().get_or_create(organisation=owner)


def _partner_name(allowance_id: Any) -> str:
    allowance = PartnerAllowance.objects.get(pk=allowance_id)
    if allowance.label:
        return f"{allowance.label} ({allowance.partner_account_uid})"
    return allowance.partner_account_uid


def _check_quorums_kept(*, owner: Organisation, group_id: object, cover: GroupCover | None) -> None:
    """Refuse a change of the group `group_id` (None: a new group) to `cover` (None: its
    deletion) that would leave some role's requests, from some partner, with fewer people who
    could decide them than the role's quorum: they would wait for ever."""
    before = selectors.decider_pool(owner=owner)
    made = shortfalls_made(
        before, before.with_group(group_id, cover), selectors.quorums_by_role(owner=owner)
    )
    if made:
        _refuse_shortfall(made[0])


def owner_admin_leaving_validate(*, owner: Organisation, user: User) -> None:
    """Refuse `user` leaving `owner`'s admins (removed from it, or given another role) when
    that would leave some role's requests, from some partner, with fewer people who could
    decide them than the role's quorum, as a change of the groups would be. Under the owner's
    rules lock, so a change of the groups or quorums made at the same moment sees it."""
    if not owner.is_owner:
        return
    _lock_rules(owner)
    before = selectors.decider_pool(owner=owner)
    made = shortfalls_made(
        before, before.without_admin(user.pk), selectors.quorums_by_role(owner=owner)
    )
    if made:
        # A partner by name says more than "partners without an approver group of their own".
        _refuse_shortfall(min(made, key=lambda found: (found.possible, found.allowance_id is None)))


def partner_member_joining_validate(*, partner: Organisation, user: User) -> None:
    """Refuse `user` joining `partner` when they are an admin of an owner that allow-lists it,
    and would leave, since a partner's members never decide its requests, some role's requests
    from it with fewer people who could decide them than the role's quorum. Under the rules
    lock of every owner `user` is an admin of (in a fixed order), taken before the allow-lists
    are read, so a change of the groups or quorums, or the partner's addition to an allow-list,
    made at the same moment sees the join or is seen by it."""
    if not partner.is_partner:
        return
    for owner in selectors.owners_administered_by(user=user):
        _lock_rules(owner)
    for allowance in selectors.allowances_deciding_admin(user=user, partner=partner):
        owner = allowance.organisation
        before = selectors.decider_pool(owner=owner)
        made = shortfalls_made(
            before,
            before.with_partner_member(allowance.pk, user.pk),
            selectors.quorums_by_role(owner=owner),
        )
        if made:
            shortfall = made[0]
            raise ValidationError(
                ngettext(
                    "%(person)s is an admin of %(owner)s, and a member of %(partner)s never "
                    "approves its requests: only %(possible)d person could then approve "
                    "%(role)s for %(partner)s, and %(owner)s needs a quorum of %(n)d. "
                    "%(owner)s must add approvers or lower the quorum first.",
                    "%(person)s is an admin of %(owner)s, and a member of %(partner)s never "
                    "approves its requests: only %(possible)d people could then approve "
                    "%(role)s for %(partner)s, and %(owner)s needs a quorum of %(n)d. "
                    "%(owner)s must add approvers or lower the quorum first.",
                    shortfall.possible,
                )
                % {
                    "person": user.email,
                    "owner": owner.name,
                    "partner": partner.name,
                    "possible": shortfall.possible,
                    "role": CatalogRole.objects.get(pk=shortfall.catalog_role_id).role_name,
                    "n": shortfall.required,
                }
            )


# The key a partner not on the allow-list yet stands under in the decider pool.
_NEW_ALLOWANCE = "new allowance"


def partner_allowance_quorum_validate(*, owner: Organisation, partner_account_uid: str) -> None:
    """Refuse putting `partner_account_uid` on `owner`'s allow-list when some of `owner`'s
    admins are members of that partner and, since a partner's members never decide its
    requests, some role's requests from it would have fewer people who could decide them than
    the role's quorum. Under the owner's rules lock, held until the caller's transaction ends,
    so a change of the groups or quorums, or an admin joining the partner, made at the same
    moment sees the addition or is seen by it."""
    with transaction.atomic():
        _lock_rules(owner)
        members = list(
            selectors.owner_admins_in_partner(owner=owner, partner_account_uid=partner_account_uid)
        )
        if not members:
            return
        before = selectors.decider_pool(owner=owner)
        after = before.with_partner(_NEW_ALLOWANCE, frozenset(member.pk for member in members))
        made = shortfalls_made(before, after, selectors.quorums_by_role(owner=owner))
    if not made:
        return
    shortfall = made[0]
    partner = Organisation.objects.get(
        kind=Organisation.Kind.PARTNER, account_uid=partner_account_uid
    )
    raise ValidationError(
        ngettext(
            "Of the admins of %(owner)s, %(people)s belong to %(partner)s, and a member of "
            "%(partner)s never approves its requests: only %(possible)d person could then "
            "approve %(role)s for %(partner)s, and %(owner)s needs a quorum of %(n)d. Add "
            "approvers or lower the quorum first.",
            "Of the admins of %(owner)s, %(people)s belong to %(partner)s, and a member of "
            "%(partner)s never approves its requests: only %(possible)d people could then "
            "approve %(role)s for %(partner)s, and %(owner)s needs a quorum of %(n)d. Add "
            "approvers or lower the quorum first.",
            shortfall.possible,
        )
        % {
            "owner": owner.name,
            "people": ", ".join(member.email for member in members),
            "partner": partner.name,
            "possible": shortfall.possible,
            "role": CatalogRole.objects.get(pk=shortfall.catalog_role_id).role_name,
            "n": shortfall.required,
        }
    )


partner_allowance_check_register(
    lambda owner, partner_account_uid: partner_allowance_quorum_validate(
        owner=owner, partner_account_uid=partner_account_uid
    )
)


def _refuse_shortfall(shortfall: Shortfall) -> None:
    names = {
        "possible": shortfall.possible,
        "role": CatalogRole.objects.get(pk=shortfall.catalog_role_id).role_name,
        "n": shortfall.required,
    }
    if shortfall.allowance_id is None:
        message = ngettext(
            "After this change only %(possible)d person could approve %(role)s for partners "
            "without an approver group of their own, and it needs a quorum of %(n)d: those "
            "requests would wait for ever. Keep enough people deciding them, or lower the "
            "quorum first.",
            "After this change only %(possible)d people could approve %(role)s for partners "
            "without an approver group of their own, and it needs a quorum of %(n)d: those "
            "requests would wait for ever. Keep enough people deciding them, or lower the "
            "quorum first.",
            shortfall.possible,
        )
    else:
        names["partner"] = _partner_name(shortfall.allowance_id)
        message = ngettext(
            "After this change only %(possible)d person could approve %(role)s for "
            "%(partner)s, and it needs a quorum of %(n)d: those requests would wait for ever. "
            "Keep enough people deciding them, or lower the quorum first.",
            "After this change only %(possible)d people could approve %(role)s for "
            "%(partner)s, and it needs a quorum of %(n)d: those requests would wait for ever. "
            "Keep enough people deciding them, or lower the quorum first.",
            shortfall.possible,
        )
    raise ValidationError(message % names)


def approver_group_create(
    *,
    owner: Organisation,
    created_by: User,
    name: str,
    members: Iterable[User],
    catalog_roles: Iterable[CatalogRole] = (),
    partner_allowances: Iterable[PartnerAllowance] = (),
) -> ApproverGroup:
    """Create an approver group: from now on only its members decide the requests for the
    catalogue roles and partners it is attached to."""
    with transaction.atomic():
        if owner.is_owner:
            _lock_rules(owner)
        name, members, roles, allowances = _clean_group(
            owner=owner,
            name=name,
            members=members,
            catalog_roles=catalog_roles,
            partner_allowances=partner_allowances,
        )
        taken = {"name": _("There is already a group called %(name)s.") % {"name": name}}
        with conflict_as_validation_error(taken):
            group = ApproverGroup.objects.create(
                organisation=owner, name=name, created_by=created_by
            )
        group.members.set(members)
        group.catalog_roles.set(roles)
        group.partner_allowances.set(allowances)
        audit_record(
            action=AuditAction.APPROVER_GROUP_CREATED,
            actor=created_by,
            organisation=owner,
            target=group,
            after=_group_snapshot(group),
        )
    return group


def approver_group_update(
    *,
    group: ApproverGroup,
    updated_by: User,
    name: str,
    members: Iterable[User],
    catalog_roles: Iterable[CatalogRole] = (),
    partner_allowances: Iterable[PartnerAllowance] = (),
) -> ApproverGroup:
    """Change a group's name, members and what it is attached to, in one step."""
    with transaction.atomic():
        _lock_rules(group.organisation)
        locked = ApproverGroup.objects.select_for_update().get(pk=group.pk)
        name, members, roles, allowances = _clean_group(
            owner=locked.organisation,
            name=name,
            members=members,
            catalog_roles=catalog_roles,
            partner_allowances=partner_allowances,
            exclude_group=locked,
        )
        before = _group_snapshot(locked)
        taken = {"name": _("There is already a group called %(name)s.") % {"name": name}}
        with conflict_as_validation_error(taken):
            version_bump(locked, {"name": name})
        locked.members.set(members)
        locked.catalog_roles.set(roles)
        locked.partner_allowances.set(allowances)
        audit_record(
            action=AuditAction.APPROVER_GROUP_UPDATED,
            actor=updated_by,
            organisation=locked.organisation,
            target=locked,
            before=before,
            after=_group_snapshot(locked),
        )
    return locked


def approver_group_delete(*, group: ApproverGroup, deleted_by: User) -> None:
    """Delete a group: the requests it covered fall back to the other groups attached to
    them, or to any owner admin. Refused when that leaves a quorum out of reach."""
    with transaction.atomic():
        _lock_rules(group.organisation)
        locked = ApproverGroup.objects.select_for_update().filter(pk=group.pk).first()
        if locked is None:
            return
        approver_group_delete_validate(group=locked)
        audit_record(
            action=AuditAction.APPROVER_GROUP_DELETED,
            actor=deleted_by,
            organisation=locked.organisation,
            target=locked,
            before=_group_snapshot(locked),
        )
        locked.delete()


def approver_group_delete_validate(*, group: ApproverGroup) -> None:
    """The check `approver_group_delete` makes before it deletes (a proposal makes it too)."""
    _check_quorums_kept(owner=group.organisation, group_id=group.pk, cover=None)


# --- quorum ---------------------------------------------------------------------------------------


def approval_rule_validate(
    *, catalog_role: CatalogRole, approvals_required: int, auto_approve_max_hours: int | None
) -> None:
    """The checks `approval_rule_set` makes before it saves (a proposal makes them too)."""
    if not isinstance(approvals_required, int) or not (
        1 <= approvals_required <= MAX_APPROVALS_REQUIRED
    ):
        raise ValidationError(
            {
                "approvals_required": _("Choose between 1 and %(max)d approvals.")
                % {"max": MAX_APPROVALS_REQUIRED}
            }
        )
    if auto_approve_max_hours is not None and not (
        1 <= auto_approve_max_hours <= MAX_AUTO_APPROVE_HOURS
    ):
        raise ValidationError(
            {
                "auto_approve_max_hours": _("Auto-approve requests of 1 to %(max)d hours.")
                % {"max": MAX_AUTO_APPROVE_HOURS}
            }
        )
    if auto_approve_max_hours is not None and catalog_role.allows_high_privilege:
        raise ValidationError(
            {"auto_approve_max_hours": _("A high-privilege role is never approved automatically.")}
        )
    shortfalls = quorum_shortfalls(
        selectors.decider_pool(owner=catalog_role.organisation),
        {catalog_role.pk: approvals_required},
    )
    if shortfalls:
        raise ValidationError({"approvals_required": _quorum_refusal(catalog_role, shortfalls[0])})
    if approvals_required > MAX_BREAK_GLASS_QUORUM:
        _refuse_if_emergency_role(catalog_role, approvals_required)


def _refuse_if_emergency_role(catalog_role: CatalogRole, approvals_required: int) -> None:
    """An emergency role's marking stands for the approval of its activations, agreed by at
    most two people: with a larger quorum it would approve, ahead of time, what a single
    request needs more people for, and could not be made again. Such a quorum waits until the
    role is no longer offered in an emergency (its marking withdrawn)."""
    partners = sorted(
        BreakGlassRole.objects.filter(catalog_role=catalog_role, is_active=True).values_list(
            "partner__name", flat=True
        )
    )
    if partners:
        raise ValidationError(
            {
                "approvals_required": _(
                    "%(role)s is an emergency role for %(partners)s, agreed by at most %(max)d "
                    "people: it cannot need %(n)d approvals. Stop offering it as an emergency "
                    "role first."
                )
                % {
                    "role": catalog_role.role_name,
                    "partners": ", ".join(partners),
                    "max": MAX_BREAK_GLASS_QUORUM,
                    "n": approvals_required,
                }
            }
        )


def _quorum_refusal(catalog_role: CatalogRole, shortfall: Shortfall) -> str:
    names = {
        "possible": shortfall.possible,
        "role": catalog_role.role_name,
        "n": shortfall.required,
    }
    if shortfall.allowance_id is None:
        return (
            ngettext(
                "Only %(possible)d person may approve %(role)s; a quorum of %(n)d could never be "
                "reached.",
                "Only %(possible)d people may approve %(role)s; a quorum of %(n)d could never be "
                "reached.",
                shortfall.possible,
            )
            % names
        )
    return ngettext(
        "Only %(possible)d person may approve %(role)s for %(partner)s (the approver groups "
        "attached to them); a quorum of %(n)d could never be reached.",
        "Only %(possible)d people may approve %(role)s for %(partner)s (the approver groups "
        "attached to them); a quorum of %(n)d could never be reached.",
        shortfall.possible,
    ) % {**names, "partner": _partner_name(shortfall.allowance_id)}


def approval_rule_set(
    *,
    catalog_role: CatalogRole,
    approvals_required: int,
    set_by: User,
    auto_approve_max_hours: int | None = None,
) -> ApprovalRule:
    """Require `approvals_required` distinct approvals (1 to 5) for requests of
    `catalog_role`. Requests already waiting are counted against the new number at their
    next approval."""
    owner = catalog_role.organisation
    with transaction.atomic():
        _lock_rules(owner)
        locked = catalog_role_lock(catalog_role_id=catalog_role.pk)
        approval_rule_validate(
            catalog_role=locked,
            approvals_required=approvals_required,
            auto_approve_max_hours=auto_approve_max_hours,
        )
        wanted = {
            "approvals_required": approvals_required,
            "auto_approve_max_hours": auto_approve_max_hours,
        }
        rule, created = ApprovalRule.objects.get_or_create(
            catalog_role=catalog_role, defaults={**wanted, "updated_by": set_by}
        )
        before = None
        if not created:
            before = {name: getattr(rule, name) for name in wanted}
            if before == wanted:
                return rule
            versioned_save(rule, wanted, by=set_by)
        audit_record(
            action=AuditAction.APPROVAL_RULE_CHANGED,
            actor=set_by,
            organisation=owner,
            target=catalog_role,
            before=before,
            after={**wanted, "version": rule.version},
        )
    return rule
