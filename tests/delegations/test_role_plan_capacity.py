"""Packing a full trust policy (issue 19 item 1): what fits goes in, the rest waits in order."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.policies import canonical_policy, description_with_marker, policy_to_text
from delegations.role_plan import (
    ActualRole,
    CreateRole,
    DesiredRole,
    Plan,
    UpdateRole,
    expected_state_after,
    plan_role_reconciliation,
    trust_policy_chars,
)

OWNER = "11223344"
PARKING = f"acs:ram::{OWNER}:root"


def partner(n: int) -> str:
    return f"acs:ram::{1000000000000000 + n}:root"


def trusted(document) -> set[str]:
    found: set[str] = set()
    for statement in canonical_policy(document, trust=True)["Statement"]:
        if statement["Effect"] == "Allow":
            found.update(statement["Principal"].get("RAM", ()))
    return found


def role_with(principals, *, extra=()) -> ActualRole:
    statements = [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": sorted(principals)}}
    ]
    statements += list(extra)
    return ActualRole(
        description=description_with_marker("ECS"),
        trust_document=json.dumps({"Version": "1", "Statement": statements}),
    )


def desired(wanted_in_order, *, known=(), limit) -> DesiredRole:
    return DesiredRole(
        role_name="ecs-admin",
        owner_account_uid=OWNER,
        managed_principals_wanted=frozenset(wanted_in_order),
        managed_principals_known=frozenset(known) | frozenset(wanted_in_order),
        principals_in_order=tuple(wanted_in_order),
        description="ECS",
        max_trust_chars=limit,
    )


def test_a_batch_that_overflows_packs_what_fits_instead_of_failing() -> None:
    present = [partner(n) for n in range(3)]
    newcomers = [partner(n) for n in range(3, 40)]
    limit = trust_policy_chars(role_with(present + newcomers[:10]).trust_document)
    plan = plan_role_reconciliation(
        actual=role_with(present), desired=desired(present + newcomers, limit=limit)
    )
    assert isinstance(plan, Plan)
    (update,) = plan.operations
    assert isinstance(update, UpdateRole) and update.trust_document is not None
    assert len(update.trust_document) <= limit
    assert trusted(update.trust_document) == set(present + newcomers[:10])
    assert plan.waiting == tuple(newcomers[10:])


def test_without_a_limit_or_when_everything_fits_nothing_waits() -> None:
    wanted = [partner(n) for n in range(30)]
    for limit in (None, 4096):
        plan = plan_role_reconciliation(actual=None, desired=desired(wanted, limit=limit))
        assert isinstance(plan, Plan) and plan.waiting == ()
        assert isinstance(plan.operations[0], CreateRole)
        assert trusted(plan.trust_document) == set(wanted)


def test_a_new_role_is_created_with_the_first_that_fit() -> None:
    wanted = [partner(n) for n in range(20)]
    limit = len(policy_to_text(canonical_policy(role_with(wanted[:5]).trust_document, trust=True)))
    plan = plan_role_reconciliation(actual=None, desired=desired(wanted, limit=limit))
    assert isinstance(plan, Plan)
    assert trusted(plan.trust_document) == set(wanted[:5])
    assert plan.waiting == tuple(wanted[5:])


def test_a_full_role_is_never_deleted_or_emptied_for_those_who_wait() -> None:
    actual = role_with([PARKING])
    wanted = [partner(n) for n in range(5)]
    plan = plan_role_reconciliation(actual=actual, desired=desired(wanted, limit=10))
    assert isinstance(plan, Plan) and not plan.deletes_role
    assert plan.waiting == tuple(wanted)


def test_a_revoke_frees_room_for_the_first_waiting() -> None:
    present = [partner(n) for n in range(10)]
    waiting = [partner(n) for n in range(10, 15)]
    limit = trust_policy_chars(role_with(present).trust_document)
    first = plan_role_reconciliation(
        actual=role_with(present), desired=desired(present + waiting, limit=limit)
    )
    assert isinstance(first, Plan) and first.is_empty and first.waiting == tuple(waiting)
    # partner 0 is revoked: it is no longer wanted, and the first waiting one takes its place.
    second = plan_role_reconciliation(
        actual=role_with(present),
        desired=desired(present[1:] + waiting, known=present, limit=limit),
    )
    assert isinstance(second, Plan)
    assert trusted(second.trust_document) == set(present[1:] + waiting[:1])
    assert second.waiting == tuple(waiting[1:])


@given(
    present=st.integers(0, 15),
    newcomers=st.integers(0, 25),
    limit=st.integers(50, 1500),
    shuffle=st.randoms(use_true_random=False),
)
@settings(max_examples=80)
def test_packing_properties(present, newcomers, limit, shuffle) -> None:
    """Those already in stay; the newcomers get in in order, as many as fit; the written
    policy never exceeds the limit unless it already did; replanning is stable."""
    if present + newcomers == 0:
        return  # nobody wanted: the role is deleted (the other property tests)
    inside = [partner(n) for n in range(present)]
    queue = [partner(n) for n in range(100, 100 + newcomers)]
    shuffle.shuffle(queue)
    actual = role_with(inside or [PARKING])
    want = desired(inside + queue, limit=limit)
    plan = plan_role_reconciliation(actual=actual, desired=want)
    assert isinstance(plan, Plan)
    after = expected_state_after(actual, plan)
    assert after is not None
    now = trusted(after.trust_document)
    assert set(inside) <= now
    admitted = [p for p in queue if p in now]
    assert admitted == queue[: len(admitted)]  # in order, no one overtakes
    assert plan.waiting == tuple(queue[len(admitted) :])
    if admitted:
        assert trust_policy_chars(after.trust_document) <= limit
    if plan.waiting and PARKING not in now:  # the next one would not have fit
        bigger = role_with([*sorted(now - {PARKING}), plan.waiting[0]])
        assert trust_policy_chars(bigger.trust_document) > limit
    replan = plan_role_reconciliation(actual=after, desired=want)
    assert isinstance(replan, Plan) and replan.is_empty and replan.waiting == plan.waiting
