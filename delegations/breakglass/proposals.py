"""Four eyes on emergency roles: marking a role for a partner, or no longer offering it, is a
rule change like any other. With the owner's four-eyes setting on, or when the role's requests
from that partner need two approvals, it is a proposal, with a diff, that a second owner admin
approves (`approvals.four_eyes.rule_proposal_approve`, which applies it through
`breakglass.services` as its author, checking it again then).

A marking is the approval of the role's activations given ahead of time, so when the role's
quorum is two, the second admin's approval is the second approval: they must be one who may
approve the role for the partner too. Otherwise the second admin is four eyes on a rule
change, which any other owner admin gives.
"""

from __future__ import annotations

from collections.abc import Iterable

from accounts.models import Organisation, User
from delegations.breakglass.services import (
    break_glass_marking_refusal,
    break_glass_marking_require,
    break_glass_marking_view,
    break_glass_needs_second_admin,
    break_glass_role_remove,
    break_glass_role_set,
    break_glass_role_validate,
)
from delegations.models import BreakGlassRole, CatalogRole, RuleProposal
from delegations.proposals import (
    ProposalOutdated,
    four_eyes_on,
    proposal_applier_register,
    rule_proposal_create,
)

Kind = RuleProposal.Kind


def break_glass_role_set_or_propose(
    *,
    owner: Organisation,
    user: User,
    catalog_role: CatalogRole,
    partner: Organisation,
    people: Iterable[User],
    max_hours: int,
) -> BreakGlassRole | RuleProposal:
    """Mark an emergency role now, or, with four eyes on or a role whose requests need two
    approvals, propose it for a second admin (the proposer, as whom it is made, must be one who
    may mark it)."""
    if not four_eyes_on(owner=owner) and not break_glass_needs_second_admin(
        owner=owner, catalog_role=catalog_role, partner=partner
    ):
        return break_glass_role_set(
            owner=owner,
            set_by=user,
            catalog_role=catalog_role,
            partner=partner,
            people=people,
            max_hours=max_hours,
        )
    break_glass_marking_require(
        owner=owner, catalog_role=catalog_role, partner=partner, user=user, alone=False
    )
    people = break_glass_role_validate(
        owner=owner, catalog_role=catalog_role, partner=partner, people=people, max_hours=max_hours
    )
    current = BreakGlassRole.objects.filter(
        catalog_role=catalog_role, partner=partner, is_active=True
    ).first()
    return rule_proposal_create(
        owner=owner,
        user=user,
        kind=Kind.BREAK_GLASS_SET,
        target_id=catalog_role.pk,
        payload={
            "catalog_role": str(catalog_role.pk),
            "partner": str(partner.pk),
            "people": [person.pk for person in people],
            "max_hours": max_hours,
        },
        before=(
            break_glass_marking_view(catalog_role, partner, current.people.all(), current.max_hours)
            if current
            else None
        ),
        after=break_glass_marking_view(catalog_role, partner, people, max_hours),
    )


def break_glass_role_remove_or_propose(
    *, marking: BreakGlassRole, user: User
) -> BreakGlassRole | RuleProposal:
    owner = marking.organisation
    if not four_eyes_on(owner=owner) and not break_glass_needs_second_admin(
        owner=owner, catalog_role=marking.catalog_role, partner=marking.partner
    ):
        return break_glass_role_remove(marking=marking, removed_by=user)
    break_glass_marking_require(
        owner=owner,
        catalog_role=marking.catalog_role,
        partner=marking.partner,
        user=user,
        alone=False,
        removing=True,
    )
    return rule_proposal_create(
        owner=owner,
        user=user,
        kind=Kind.BREAK_GLASS_REMOVE,
        target_id=marking.pk,
        payload={},
        before=break_glass_marking_view(
            marking.catalog_role, marking.partner, marking.people.all(), marking.max_hours
        ),
        after=None,
    )


def _marking_proposed(proposal: RuleProposal) -> tuple[CatalogRole, Organisation] | None:
    """The role and partner a marking's proposal is about (None: gone since; approving it
    then finds it outdated)."""
    if proposal.kind == Kind.BREAK_GLASS_SET:
        data = proposal.payload
        role = CatalogRole.objects.filter(
            organisation=proposal.organisation, pk=data["catalog_role"]
        ).first()
        partner = Organisation.objects.filter(pk=data["partner"]).first()
        return (role, partner) if role is not None and partner is not None else None
    marking = (
        BreakGlassRole.objects.filter(organisation=proposal.organisation, pk=proposal.target_id)
        .select_related("catalog_role", "partner")
        .first()
    )
    return (marking.catalog_role, marking.partner) if marking is not None else None


def _second_admin_refusal(proposal: RuleProposal, user: User) -> str | None:
    """A marking of a role whose requests need two approvals counts its second admin's
    agreement as the second: they must be one who may approve it too. Otherwise the second
    admin is four eyes on a rule change, which any other owner admin gives."""
    proposed = _marking_proposed(proposal)
    if proposed is None:
        return None
    catalog_role, partner = proposed
    owner = proposal.organisation
    if not break_glass_needs_second_admin(owner=owner, catalog_role=catalog_role, partner=partner):
        return None
    return break_glass_marking_refusal(
        owner=owner,
        catalog_role=catalog_role,
        partner=partner,
        user=user,
        removing=proposal.kind == Kind.BREAK_GLASS_REMOVE,
    )


def _author_may_no_longer(proposal: RuleProposal) -> bool:
    """Whether the proposal's author, as whom it is made, may no longer make it (who has left
    the approver groups, or the owner's admins, since): it was written under rules no longer
    in force."""
    proposed = _marking_proposed(proposal)
    if proposed is None:
        return False
    catalog_role, partner = proposed
    return (
        break_glass_marking_refusal(
            owner=proposal.organisation,
            catalog_role=catalog_role,
            partner=partner,
            user=proposal.proposed_by,
            removing=proposal.kind == Kind.BREAK_GLASS_REMOVE,
        )
        is not None
    )


def _apply_set(proposal: RuleProposal) -> None:
    owner = proposal.organisation
    data = proposal.payload
    partner = Organisation.objects.get(pk=data["partner"])
    catalog_role = CatalogRole.objects.get(organisation=owner, pk=data["catalog_role"])
    if _author_may_no_longer(proposal):
        raise ProposalOutdated
    break_glass_role_set(
        owner=owner,
        set_by=proposal.proposed_by,
        catalog_role=catalog_role,
        partner=partner,
        people=list(User.objects.filter(pk__in=data["people"])),
        max_hours=data["max_hours"],
        second_admin=proposal.decided_by,
    )


def _apply_remove(proposal: RuleProposal) -> None:
    marking = BreakGlassRole.objects.filter(
        organisation=proposal.organisation, pk=proposal.target_id
    ).first()
    if marking is None:
        return
    if _author_may_no_longer(proposal):
        raise ProposalOutdated
    break_glass_role_remove(
        marking=marking, removed_by=proposal.proposed_by, second_admin=proposal.decided_by
    )


# Applied by `approvals.four_eyes.rule_proposal_approve`, which sits below this area.
for _kind, _applier in (
    (Kind.BREAK_GLASS_SET, _apply_set),
    (Kind.BREAK_GLASS_REMOVE, _apply_remove),
):
    proposal_applier_register(_kind, _applier, second_admin_refusal=_second_admin_refusal)
