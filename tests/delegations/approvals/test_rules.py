"""The pure rules function, as properties: the requester never counts, N distinct approvals
are needed, only the attached groups' members (owner admins) may decide, and an approval
counts only while its approver could still decide."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from delegations.approvals.rules import (
    Candidate,
    DeciderPool,
    GroupCover,
    RulesInForce,
    auto_approves,
    decision_refusal,
    quorum_shortfalls,
    shortfalls_made,
    tally,
)
from delegations.models import TRUST_SCOPES_WIDEST_FIRST, TrustScope, narrowest_trust_scope

people = st.integers(min_value=1, max_value=12)


def admin(user_id: int, *, requester: bool = False, partner: bool = False) -> Candidate:
    return Candidate(
        user_id=user_id,
        is_owner_admin=True,
        is_requester=requester,
        in_requesting_organisation=partner,
    )


@given(
    required=st.integers(min_value=1, max_value=5),
    approvals=st.lists(people, max_size=20),
    requester=people,
)
def test_the_count_is_distinct_people_never_the_requester(
    required: int, approvals: list[int], requester: int
) -> None:
    result = tally(
        RulesInForce(approvals_required=required),
        [admin(user) for user in approvals],
        requester_id=requester,
    )
    assert result.counted == len(set(approvals) - {requester})
    assert result.reached == (len(set(approvals) - {requester}) >= required)
    assert result.missing == max(required - result.counted, 0)


@given(
    required=st.integers(min_value=1, max_value=5),
    group=st.frozensets(people, min_size=1),
    approvals=st.lists(people, max_size=20),
)
def test_only_group_members_count(
    required: int, group: frozenset[int], approvals: list[int]
) -> None:
    rules = RulesInForce(approvals_required=required, approver_ids=frozenset(group))
    result = tally(rules, [admin(user) for user in approvals], requester_id=0)
    assert result.counted == len(set(approvals) & group)


@given(
    approvals=st.lists(people, max_size=12, unique=True),
    no_longer_admins=st.frozensets(people),
    joined_partner=st.frozensets(people),
)
def test_approvers_who_could_no_longer_decide_never_count(
    approvals: list[int], no_longer_admins: frozenset[int], joined_partner: frozenset[int]
) -> None:
    approvers = [
        Candidate(
            user,
            is_owner_admin=user not in no_longer_admins,
            is_requester=False,
            in_requesting_organisation=user in joined_partner,
        )
        for user in approvals
    ]
    result = tally(RulesInForce(), approvers, requester_id=0)
    assert result.counted_ids == frozenset(approvals) - no_longer_admins - joined_partner


@given(user=people, group=st.frozensets(people), already=st.lists(people, max_size=5))
def test_who_may_decide(user: int, group: frozenset[int], already: list[int]) -> None:
    rules = RulesInForce(approver_ids=frozenset(group), group_names=("Ops approvers",))
    refusal = decision_refusal(rules, admin(user), already_approved=already)
    assert (refusal is None) == (user in group and user not in already)


@given(user=people, already=st.lists(people, max_size=5))
def test_without_a_group_any_owner_admin_decides_once(user: int, already: list[int]) -> None:
    assert (decision_refusal(RulesInForce(), admin(user), already_approved=already) is None) == (
        user not in already
    )


@given(user=people, in_group=st.booleans())
def test_auditors_requesters_and_partner_members_never_decide(user: int, in_group: bool) -> None:
    rules = RulesInForce(approver_ids=frozenset({user}) if in_group else None)
    auditor = Candidate(
        user, is_owner_admin=False, is_requester=False, in_requesting_organisation=False
    )
    assert decision_refusal(rules, auditor) is not None
    assert decision_refusal(rules, admin(user, requester=True)) is not None
    assert decision_refusal(rules, admin(user, partner=True)) is not None


@given(
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=24)),
    minutes=st.one_of(st.none(), st.integers(min_value=1, max_value=60 * 48)),
)
def test_auto_approval_only_within_its_limit(limit: int | None, minutes: int | None) -> None:
    start = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    end = None if minutes is None else start + dt.timedelta(minutes=minutes)
    decided = auto_approves(
        RulesInForce(auto_approve_max_hours=limit), starts_at=start, ends_at=end
    )
    assert decided == (limit is not None and minutes is not None and minutes <= limit * 60)


def test_the_narrowest_trust_scope_trusts_the_fewest_people() -> None:
    assert narrowest_trust_scope([]) is None
    assert narrowest_trust_scope(["", TrustScope.PARTNER_ACCOUNT]) == TrustScope.PARTNER_ACCOUNT
    assert (
        narrowest_trust_scope([TrustScope.NAMED_PARTNER_MANAGED, TrustScope.PARTNER_ACCOUNT])
        == TrustScope.NAMED_PARTNER_MANAGED
    )
    assert narrowest_trust_scope(TrustScope.values) == TrustScope.NAMED_OWNER_APPROVED
    assert set(TRUST_SCOPES_WIDEST_FIRST) == set(TrustScope)


# (members, attached to the role, attached to the partner) of each approver group.
group_specs = st.lists(
    st.tuples(st.frozensets(people, min_size=1), st.booleans(), st.booleans()), max_size=4
)


def pool_of(admins: frozenset[int], groups: list, in_partner: frozenset[int]) -> DeciderPool:
    return DeciderPool(
        admin_ids=admins,
        groups={
            index: GroupCover(
                member_ids=members,
                catalog_role_ids=frozenset({"role"} if on_role else ()),
                allowance_ids=frozenset({"partner"} if on_partner else ()),
            )
            for index, (members, on_role, on_partner) in enumerate(groups)
        },
        partner_member_ids={"partner": in_partner},
    )


@given(
    admins=st.frozensets(people, min_size=1), groups=group_specs, in_partner=st.frozensets(people)
)
def test_the_quorum_check_counts_exactly_who_the_rules_let_decide(
    admins: frozenset[int], groups: list, in_partner: frozenset[int]
) -> None:
    """The people the quorum check counts for a role and partner are exactly those
    `decision_refusal` lets decide such a request (groups on the role or the partner, owner
    admins only, never a member of the partner)."""
    covering = [members for members, on_role, on_partner in groups if on_role or on_partner]
    rules = RulesInForce(approver_ids=frozenset().union(*covering) if covering else None)
    may_decide = {
        user
        for user in range(1, 13)
        if decision_refusal(
            rules,
            Candidate(
                user_id=user,
                is_owner_admin=user in admins,
                is_requester=False,
                in_requesting_organisation=user in in_partner,
            ),
        )
        is None
    }
    pool = pool_of(admins, groups, in_partner)
    assert pool.deciders(catalog_role_id="role", allowance_id="partner") == may_decide
    # A quorum is out of reach for these requests exactly when fewer people may decide them.
    for quorum in range(1, 6):
        short = {
            (s.catalog_role_id, s.allowance_id) for s in quorum_shortfalls(pool, {"role": quorum})
        }
        assert (("role", "partner") in short) == (len(may_decide) < quorum)


@given(
    admins=st.frozensets(people, min_size=1),
    groups=group_specs.filter(bool),
    extra=st.frozensets(people),
    quorum=st.integers(min_value=1, max_value=5),
)
def test_giving_a_group_more_members_never_makes_a_shortfall(
    admins: frozenset[int], groups: list, extra: frozenset[int], quorum: int
) -> None:
    before = pool_of(admins, groups, frozenset())
    members, on_role, on_partner = groups[0]
    after = before.with_group(
        0,
        GroupCover(
            member_ids=members | extra,
            catalog_role_ids=frozenset({"role"} if on_role else ()),
            allowance_ids=frozenset({"partner"} if on_partner else ()),
        ),
    )
    assert shortfalls_made(before, after, {"role": quorum}) == []
    # Deleting it makes one exactly where fewer people are left than the quorum needs.
    gone = before.with_group(0, None)
    for made in shortfalls_made(before, gone, {"role": quorum}):
        assert made.possible < quorum
        assert made.possible < len(
            before.deciders(catalog_role_id="role", allowance_id=made.allowance_id)
        )
