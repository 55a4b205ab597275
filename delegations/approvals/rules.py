"""The pure functions that read the approval rules: given a request and the rules in force,
who may decide it, and how many distinct approvals it still needs; given an owner's admins and
groups, whether each role's quorum can be met at all, for every partner.

No database, no clock: `services` gathers the facts (`RulesInForce`, `Candidate`,
`DeciderPool`) under the delegation's row lock (or the owner's rules lock) and acts on the
answer, so the rules are tested as plain data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.utils.translation import gettext as _


@dataclass(frozen=True)
class RulesInForce:
    """The rules that apply to one request.

    `approver_ids` is the union of the members of every approver group attached to the
    request's catalogue role or partner; None when no group is attached, and then any owner
    admin may decide (the behaviour before approver groups)."""

    approvals_required: int = 1
    approver_ids: frozenset[object] | None = None
    group_names: tuple[str, ...] = ()
    rule_version: int | None = None
    # Auto-approval: requests of at most this many hours, with an end date (None: never).
    auto_approve_max_hours: int | None = None


@dataclass(frozen=True)
class Candidate:
    """A person about to decide a request, as the rules see them."""

    user_id: object
    is_owner_admin: bool
    is_requester: bool
    in_requesting_organisation: bool


@dataclass(frozen=True)
class Tally:
    """Where a request stands: the approvers whose approvals count, and how many are needed."""

    counted_ids: frozenset[object]
    required: int

    @property
    def counted(self) -> int:
        return len(self.counted_ids)

    @property
    def reached(self) -> bool:
        return self.counted >= self.required

    @property
    def missing(self) -> int:
        return max(self.required - self.counted, 0)


def decision_refusal(
    rules: RulesInForce, candidate: Candidate, *, already_approved: Iterable[object] = ()
) -> str | None:
    """Why `candidate` may not decide (approve or reject) this request, or None.

    Only owner admins decide (auditors and partner people never do); the requester and any
    member of the requesting organisation never do; when groups are attached, only their
    members do; and an approver who already approved cannot approve again."""
    if not candidate.is_owner_admin:
        return _("Only an admin of the owner organisation can decide requests.")
    if candidate.is_requester:
        return _("You cannot decide a request you made yourself.")
    if candidate.in_requesting_organisation:
        return _("You are a member of the requesting partner; another owner admin must decide.")
    if rules.approver_ids is not None and candidate.user_id not in rules.approver_ids:
        return _("Only members of %(groups)s may decide this request.") % {
            "groups": ", ".join(rules.group_names) or _("its approver group")
        }
    if candidate.user_id in set(already_approved):
        return _("You already approved this request; another approver must give the next one.")
    return None


def tally(rules: RulesInForce, approvers: Iterable[Candidate], *, requester_id: object) -> Tally:
    """Count the approvals that stand: each person once, never the requester, and only from
    people who could still decide it now. An approval stops counting when its approver is no
    longer an owner admin, has joined the requesting partner, or has left the attached groups
    since approving."""
    counted = frozenset(
        approver.user_id
        for approver in approvers
        if approver.user_id != requester_id and decision_refusal(rules, approver) is None
    )
    return Tally(counted_ids=counted, required=max(rules.approvals_required, 1))


def auto_approves(
    rules: RulesInForce, *, starts_at: dt.datetime, ends_at: dt.datetime | None
) -> bool:
    """Whether the rule in force approves this request by itself: only a time-bound request
    no longer than the rule's limit (the allow-list and the high-privilege opt-in are checked
    by the lifecycle like for any grant)."""
    limit = rules.auto_approve_max_hours
    if limit is None or ends_at is None:
        return False
    return dt.timedelta(0) < ends_at - starts_at <= dt.timedelta(hours=limit)


# --- whether a quorum can be met -----------------------------------------------------------------


@dataclass(frozen=True)
class GroupCover:
    """An approver group as the quorum check sees it: its members and what it is attached to."""

    member_ids: frozenset[object]
    catalog_role_ids: frozenset[object] = frozenset()
    allowance_ids: frozenset[object] = frozenset()


@dataclass(frozen=True)
class DeciderPool:
    """Everyone who could decide an owner's requests: its admins, its approver groups (by id;
    None for a group not saved yet) and, per allow-listed partner (by allowance id), the owner
    admins who also belong to that partner, who never decide its requests."""

    admin_ids: frozenset[object]
    groups: Mapping[Any, GroupCover]
    partner_member_ids: Mapping[Any, frozenset[object]]

    def deciders(
        self, *, catalog_role_id: object, allowance_id: object | None
    ) -> frozenset[object]:
        """Who could decide a request for the role from the partner, as `rules_in_force` and
        `decision_refusal` would say. `allowance_id` None: a partner no group is attached to
        (one added to the allow-list later among them)."""
        covering = [
            group.member_ids
            for group in self.groups.values()
            if catalog_role_id in group.catalog_role_ids
            or (allowance_id is not None and allowance_id in group.allowance_ids)
        ]
        people = frozenset().union(*covering) & self.admin_ids if covering else self.admin_ids
        return people - self.partner_member_ids.get(allowance_id, frozenset())

    def with_group(self, group_id: object, cover: GroupCover | None) -> DeciderPool:
        """The pool once the group `group_id` is `cover` (None: deleted)."""
        groups = {key: value for key, value in self.groups.items() if key != group_id}
        if cover is not None:
            groups[group_id] = cover
        return replace(self, groups=groups)

    def without_admin(self, user_id: object) -> DeciderPool:
        """The pool once `user_id` is no longer an owner admin (removed, or given another
        role): their groups keep them as a member, but they decide nothing any more."""
        return replace(self, admin_ids=self.admin_ids - {user_id})

    def with_partner_member(self, allowance_id: object, user_id: object) -> DeciderPool:
        """The pool once `user_id` belongs to the partner of `allowance_id` too: they decide
        nothing of that partner's any more."""
        members = dict(self.partner_member_ids)
        members[allowance_id] = members.get(allowance_id, frozenset()) | {user_id}
        return replace(self, partner_member_ids=members)

    def with_partner(self, allowance_id: object, member_ids: frozenset[object]) -> DeciderPool:
        """The pool once a partner joins the allow-list as `allowance_id` (no group attached to
        it yet), `member_ids` being the owner's admins who belong to it: they decide nothing of
        that partner's."""
        return replace(
            self, partner_member_ids={**self.partner_member_ids, allowance_id: member_ids}
        )


@dataclass(frozen=True)
class Shortfall:
    """Requests for a role from a partner (None: any partner no group names) that fewer
    people could decide than the role's quorum needs: they would wait for ever."""

    catalog_role_id: Any
    allowance_id: Any
    possible: int
    required: int


def quorum_shortfalls(pool: DeciderPool, quorums: Mapping[Any, int]) -> list[Shortfall]:
    """Every role (`quorums`: its approvals needed, by role id) and partner whose requests
    could never reach the quorum, fewest possible approvers first."""
    found = []
    for role_id, required in quorums.items():
        for allowance_id in (None, *pool.partner_member_ids):
            possible = len(pool.deciders(catalog_role_id=role_id, allowance_id=allowance_id))
            if possible < required:
                found.append(Shortfall(role_id, allowance_id, possible, required))
    return sorted(found, key=lambda shortfall: shortfall.possible)


def shortfalls_made(
    before: DeciderPool, after: DeciderPool, quorums: Mapping[Any, int]
) -> list[Shortfall]:
    """The shortfalls a change of the groups makes, or makes worse: one already there that
    the change leaves no worse does not stop it (so it can be mended a step at a time)."""
    return [
        shortfall
        for shortfall in quorum_shortfalls(after, quorums)
        if shortfall.possible
        < len(
            before.deciders(
                catalog_role_id=shortfall.catalog_role_id, allowance_id=shortfall.allowance_id
            )
        )
    ]
