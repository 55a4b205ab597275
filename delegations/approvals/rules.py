"""The one pure function that reads the approval rules: given a request and the rules in
force, who may decide it, and how many distinct approvals it still needs.

No database, no clock: `services` gathers the facts (`RulesInForce`, `Candidate`) under the
delegation's row lock and acts on the answer, so the rules are tested as plain data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

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
