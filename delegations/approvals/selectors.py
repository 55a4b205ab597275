"""Reads for the approval rules, scoped to the owner organisation: its approver groups, the
quorum of its catalogue roles, and the rules that apply to one request.

Another organisation's ids raise Http404 exactly like missing ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext as _

from accounts.models import Membership, Organisation, User
from core.web import get_or_404, parse_uuid
from delegations.approvals.rules import (
    Candidate,
    DeciderPool,
    GroupCover,
    RulesInForce,
    Tally,
    decision_refusal,
    tally,
)
from delegations.models import (
    CATALOG_ROLE_ORDER,
    ApprovalRule,
    ApprovalSettings,
    ApproverGroup,
    CatalogRole,
    Delegation,
    DelegationApproval,
    DelegationExtension,
    PartnerAllowance,
    RuleProposal,
)
from delegations.proposals import proposal_is_outdated, proposal_second_admin_refusal


def owner_admins(*, owner: Organisation) -> QuerySet[User]:
    """The people who may be approvers: the owner's admins (auditors never approve)."""
    return User.objects.filter(
        memberships__organisation=owner, memberships__role=Membership.Role.ADMIN
    ).order_by("email")


def approver_groups_for_owner(*, owner: Organisation) -> QuerySet[ApproverGroup]:
    return ApproverGroup.objects.filter(organisation=owner).prefetch_related(
        Prefetch("members", queryset=User.objects.order_by("email")),
        Prefetch("catalog_roles", queryset=CatalogRole.objects.select_related("cloud_account")),
        "partner_allowances",
    )


def approver_group_get_for_owner(*, owner: Organisation, group_id: object) -> ApproverGroup:
    return get_or_404(approver_groups_for_owner(owner=owner), pk=parse_uuid(group_id))


def approval_rules_by_role(*, owner: Organisation) -> dict[object, ApprovalRule]:
    """The owner's quorum rules, by catalogue role id (a role without one needs 1)."""
    return {
        rule.catalog_role_id: rule
        for rule in ApprovalRule.objects.filter(catalog_role__organisation=owner)
    }


def _groups_covering(
    *, owner_id: uuid.UUID, catalog_role_id: uuid.UUID, partner_account_uid: str | None
) -> list[ApproverGroup]:
    covering = Q(catalog_roles=catalog_role_id)
    if partner_account_uid is not None:
        covering |= Q(
            partner_allowances__in=PartnerAllowance.objects.filter(
                organisation_id=owner_id, partner_account_uid=partner_account_uid
            )
        )
    return list(
        ApproverGroup.objects.filter(organisation_id=owner_id)
        .filter(covering)
        .distinct()
        .order_by("name")
    )


def grant_rules(
    *, owner_id: uuid.UUID, catalog_role_id: uuid.UUID, partner_account_uid: str | None
) -> RulesInForce:
    """The approver groups and quorum a request of the owner's catalogue role from the partner
    account is decided under now (and what a grant made ahead of any request, an emergency
    role, must meet). `partner_account_uid` None: only the groups attached to the role itself,
    which govern it for every partner (a second admin confirming a change of the role)."""
    rule = ApprovalRule.objects.filter(catalog_role_id=catalog_role_id).first()
    groups = _groups_covering(
        owner_id=owner_id, catalog_role_id=catalog_role_id, partner_account_uid=partner_account_uid
    )
    approver_ids: frozenset[object] | None = None
    if groups:
        approver_ids = frozenset(
            User.objects.filter(
                approver_groups__in=[group.pk for group in groups],
                memberships__organisation_id=owner_id,
                memberships__role=Membership.Role.ADMIN,
            ).values_list("pk", flat=True)
        )
    return RulesInForce(
        approvals_required=rule.approvals_required if rule else 1,
        approver_ids=approver_ids,
        group_names=tuple(group.name for group in groups),
        rule_version=rule.version if rule else None,
        auto_approve_max_hours=rule.auto_approve_max_hours if rule else None,
    )


def rules_in_force(*, delegation: Delegation) -> RulesInForce:
    """The approver groups and quorum that apply to `delegation` now."""
    return grant_rules(
        owner_id=delegation.owner_id,
        catalog_role_id=delegation.catalog_role_id,
        partner_account_uid=delegation.partner_account_uid,
    )


def candidates(*, delegation: Delegation, user_ids: Iterable[object]) -> list[Candidate]:
    """The people with `user_ids`, as the rules see them for `delegation` now (in that order):
    a deciding person, or approvers whose earlier approvals are counted again."""
    ids = list(user_ids)
    roles: dict[object, dict[object, str]] = {user_id: {} for user_id in ids}
    for user_id, organisation_id, role in Membership.objects.filter(
        user_id__in=ids, organisation_id__in=[delegation.owner_id, delegation.partner_id]
    ).values_list("user_id", "organisation_id", "role"):
        roles[user_id][organisation_id] = role
    return [
        Candidate(
            user_id=user_id,
            is_owner_admin=roles[user_id].get(delegation.owner_id) == Membership.Role.ADMIN,
            is_requester=delegation.requested_by_id == user_id,
            in_requesting_organisation=delegation.partner_id in roles[user_id],
        )
        for user_id in ids
    ]


def candidate(*, delegation: Delegation, user: User) -> Candidate:
    """`user` as the rules see them for `delegation`."""
    return candidates(delegation=delegation, user_ids=[user.pk])[0]


def proposal_deciders(*, delegation: Delegation) -> list[User]:
    """The owner admins who may decide on what the partner proposes for `delegation` (a named
    person) under the rules in force now, for pages that tell the others who can."""
    rules = rules_in_force(delegation=delegation)
    admins = list(owner_admins(owner=delegation.owner))
    seen = candidates(delegation=delegation, user_ids=[admin.pk for admin in admins])
    return [
        admin
        for admin, candidate in zip(admins, seen, strict=True)
        if decision_refusal(rules, replace(candidate, is_requester=False)) is None
    ]


def approval_tally(*, delegation: Delegation, rules: RulesInForce) -> Tally:
    """The approvals given to `delegation` that count under `rules` now."""
    return tally(
        rules,
        candidates(delegation=delegation, user_ids=approver_ids(delegation=delegation)),
        requester_id=delegation.requested_by_id,
    )


def approver_ids(*, delegation: Delegation) -> list[object]:
    return list(
        DelegationApproval.objects.filter(delegation=delegation).values_list(
            "approver_id", flat=True
        )
    )


def extension_approver_ids(*, extension: DelegationExtension) -> list[object]:
    """Who approved `extension` so far, in the order they did."""
    return [entry["approver"] for entry in extension.approvals]


def extension_tally(*, extension: DelegationExtension, rules: RulesInForce) -> Tally:
    """The approvals given to `extension` that count under `rules` now: as a request's, with
    the partner admin who asked for the extension in the requester's place."""
    return tally(
        rules,
        candidates(
            delegation=extension.delegation, user_ids=extension_approver_ids(extension=extension)
        ),
        requester_id=extension.requested_by_id,
    )


def approval_standing(*, delegation: Delegation) -> Tally | None:
    """Where a request still waiting for the owner's decision stands under the rules in force
    now (the approvals given that count, and how many it needs); None once it is decided."""
    if delegation.status != Delegation.Status.REQUESTED:
        return None
    return approval_tally(delegation=delegation, rules=rules_in_force(delegation=delegation))


def extension_standing(*, extension: DelegationExtension) -> Tally | None:
    """The same for an extension still waiting for its decision."""
    if extension.status != DelegationExtension.Status.REQUESTED:
        return None
    rules = rules_in_force(delegation=extension.delegation)
    return extension_tally(extension=extension, rules=rules)


@dataclass(frozen=True)
class ApprovalProgress:
    """What the request page shows: the rules, the approvals so far, and whether the person
    looking may approve (None) or why not."""

    rules: RulesInForce
    # `tally.counted_ids`: whose approvals count now (the others' approvers can no longer
    # decide it).
    tally: Tally
    approvals: list[DelegationApproval]
    refusal: str | None
    # The person's own approval, which they may withdraw while the quorum is not complete.
    own_approval: DelegationApproval | None = None


def approval_progress(*, delegation: Delegation, user: User) -> ApprovalProgress:
    rules = rules_in_force(delegation=delegation)
    approvals = list(
        DelegationApproval.objects.filter(delegation=delegation).select_related("approver")
    )
    ids = [approval.approver_id for approval in approvals]
    return ApprovalProgress(
        rules=rules,
        tally=approval_tally(delegation=delegation, rules=rules),
        approvals=approvals,
        refusal=decision_refusal(
            rules, candidate(delegation=delegation, user=user), already_approved=ids
        ),
        own_approval=next(
            (approval for approval in approvals if approval.approver_id == user.pk), None
        ),
    )


def decider_pool(*, owner: Organisation) -> DeciderPool:
    """Everyone who could decide `owner`'s requests now, for the quorum check: its admins,
    its approver groups and, per allow-listed partner, the admins who belong to that partner."""
    admin_ids = frozenset(owner_admins(owner=owner).values_list("pk", flat=True))
    groups = {
        group.pk: GroupCover(
            member_ids=frozenset(member.pk for member in group.members.all()),
            catalog_role_ids=frozenset(role.pk for role in group.catalog_roles.all()),
            allowance_ids=frozenset(allowance.pk for allowance in group.partner_allowances.all()),
        )
        for group in approver_groups_for_owner(owner=owner)
    }
    allowances = dict(
        PartnerAllowance.objects.filter(organisation=owner).values_list("pk", "partner_account_uid")
    )
    in_partner: dict[str, set[object]] = {}
    for account_uid, user_id in Membership.objects.filter(
        organisation__kind=Organisation.Kind.PARTNER,
        organisation__account_uid__in=set(allowances.values()),
        user_id__in=admin_ids,
    ).values_list("organisation__account_uid", "user_id"):
        in_partner.setdefault(account_uid, set()).add(user_id)
    return DeciderPool(
        admin_ids=admin_ids,
        groups=groups,
        partner_member_ids={
            pk: frozenset(in_partner.get(account_uid, ())) for pk, account_uid in allowances.items()
        },
    )


def owner_admins_in_partner(*, owner: Organisation, partner_account_uid: str) -> QuerySet[User]:
    """`owner`'s admins who are members of the partner registered with `partner_account_uid`
    (nobody when no partner is): they would never decide that partner's requests."""
    return owner_admins(owner=owner).filter(
        memberships__organisation__kind=Organisation.Kind.PARTNER,
        memberships__organisation__account_uid=partner_account_uid,
    )


def owners_administered_by(*, user: User) -> QuerySet[Organisation]:
    """The owners `user` is an admin of, in the order their rules locks are taken."""
    return Organisation.objects.filter(
        kind=Organisation.Kind.OWNER,
        memberships__user=user,
        memberships__role=Membership.Role.ADMIN,
    ).order_by("pk")


def allowances_deciding_admin(*, user: User, partner: Organisation) -> QuerySet[PartnerAllowance]:
    """The allow-list entries for `partner` of the owners `user` is an admin of: each owner
    whose decisions on that partner's requests `user` takes part in (owner by owner)."""
    return (
        PartnerAllowance.objects.filter(
            partner_account_uid=partner.account_uid,
            organisation__kind=Organisation.Kind.OWNER,
            organisation__memberships__user=user,
            organisation__memberships__role=Membership.Role.ADMIN,
        )
        .select_related("organisation")
        .order_by("organisation_id")
    )


def quorums_by_role(*, owner: Organisation) -> dict[object, int]:
    """The approvals each of `owner`'s catalogue roles needs (1 without a rule)."""
    rules = approval_rules_by_role(owner=owner)
    return {
        role_id: rules[role_id].approvals_required if role_id in rules else 1
        for role_id in CatalogRole.objects.filter(organisation=owner).values_list("pk", flat=True)
    }


def catalog_role_choices(*, owner: Organisation) -> QuerySet[CatalogRole]:
    return (
        CatalogRole.objects.filter(organisation=owner)
        .select_related("cloud_account")
        .order_by(*CATALOG_ROLE_ORDER)
    )


def partner_allowance_choices(*, owner: Organisation) -> QuerySet[PartnerAllowance]:
    return PartnerAllowance.objects.filter(organisation=owner)


def approval_settings_of(*, owner: Organisation) -> ApprovalSettings | None:
    return ApprovalSettings.objects.filter(organisation=owner).select_related("updated_by").first()


def rule_proposals_waiting(*, owner: Organisation, reader: User) -> list[RuleProposal]:
    """The proposals waiting for a second admin, each with `outdated`: whether its target
    changed or went since it was written (approving it would be refused), and, for `reader`,
    `refusal`: why they may not approve it (None: they may), then `deciders`: the emails of
    the owner admins who may."""
    waiting = list(
        RuleProposal.objects.filter(
            organisation=owner, status=RuleProposal.Status.PENDING
        ).select_related("proposed_by")
    )
    admins = list(owner_admins(owner=owner))
    for proposal in waiting:
        proposal.outdated = proposal_is_outdated(proposal)
        proposal.refusal = rule_proposal_approval_refusal(proposal=proposal, user=reader)
        if proposal.refusal is not None:
            proposal.deciders = tuple(
                admin.email
                for admin in admins
                if rule_proposal_approval_refusal(proposal=proposal, user=admin) is None
            )
    return waiting


# Proposals about a catalogue role already there: the approver groups attached to the role
# govern who confirms them.
CATALOG_ROLE_CHANGES = frozenset(
    {
        RuleProposal.Kind.CATALOG_ROLE_UPDATE,
        RuleProposal.Kind.CATALOG_ROLE_DEACTIVATE,
        RuleProposal.Kind.CATALOG_ROLE_REACTIVATE,
        RuleProposal.Kind.CATALOG_ROLE_SET_ACCOUNTS,
    }
)


def rule_proposal_approval_refusal(*, proposal: RuleProposal, user: User) -> str | None:
    """Why `user`, an owner admin, may not be the second admin of `proposal`, or None. Never
    its author. A change of a catalogue role that approver groups are attached to is confirmed
    by one of their members, as deciding the role's requests is; a capability above says for
    its own kinds. Reads only; callers audit the refusal."""
    if proposal.proposed_by_id == user.pk:
        return _("A proposal needs a second admin: its author cannot approve it.")
    if proposal.kind not in CATALOG_ROLE_CHANGES:
        return proposal_second_admin_refusal(proposal, user)
    role = CatalogRole.objects.filter(
        organisation_id=proposal.organisation_id, pk=proposal.target_id
    ).first()
    if role is None:
        return None  # gone since: the proposal is outdated
    rules = grant_rules(
        owner_id=proposal.organisation_id, catalog_role_id=role.pk, partner_account_uid=None
    )
    if rules.approver_ids is None or user.pk in rules.approver_ids:
        return None
    return _(
        "Only members of %(groups)s, the approver groups of %(role)s, may approve a change of it."
    ) % {"groups": ", ".join(rules.group_names), "role": role.role_name}


def rule_proposals_for(*, owner: Organisation) -> QuerySet[RuleProposal]:
    """Every proposal (four eyes), newest first, with its author and second approver."""
    return RuleProposal.objects.filter(organisation=owner).select_related(
        "proposed_by", "decided_by"
    )
