"""Hypothesis properties of the planner: convergence, preservation, ordering, refusal."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.policies import canonical_policy, description_with_marker
from delegations.role_plan import (
    ActualRole,
    CreateRole,
    DeleteRole,
    DesiredRole,
    DetachPolicy,
    Plan,
    Refusal,
    expected_state_after,
    plan_role_reconciliation,
)
from tests.cloud.strategies import ram_principals, roots, statements

OWNER = "11223344"
PARKING = f"acs:ram::{OWNER}:root"
POLICY_POOL = [
    ("System", "AliyunECSFullAccess"),
    ("System", "AliyunECSReadOnlyAccess"),
    ("System", "AliyunRDSFullAccess"),
    ("Custom", "ops-extra"),
    ("Custom", "hand-attached"),
]
policy_sets = st.sets(st.sampled_from(POLICY_POOL)).map(frozenset)
durations = st.sampled_from([3600, 7200, 43200])


def allow_ram(document) -> set[str]:
    found = set()
    for statement in canonical_policy(document, trust=True)["Statement"]:
        if statement["Effect"] == "Allow":
            found.update(statement["Principal"].get("RAM", ()))
    return found


def allow_statements(document) -> list[dict]:
    return [
        s for s in canonical_policy(document, trust=True)["Statement"] if s["Effect"] == "Allow"
    ]


@st.composite
def cases(draw):
    """(actual, desired, unmanaged principals) for one role."""
    known = draw(st.sets(roots.filter(lambda arn: arn != PARKING), max_size=5))
    wanted = set(draw(st.lists(st.sampled_from(sorted(known)), unique=True))) if known else set()
    unmanaged = draw(st.sets(ram_principals, max_size=3)) - known - {PARKING}
    desired = DesiredRole(
        role_name="ecs-admin",
        owner_account_uid=OWNER,
        managed_principals_wanted=frozenset(wanted),
        managed_principals_known=frozenset(known),
        policies_wanted=draw(policy_sets),
        managed_policies_known=draw(policy_sets),
        max_session_duration=draw(durations),
        description=draw(st.sampled_from(["ECS for partners", "", "other words"])),
        delete_when_empty=draw(st.booleans()),
    )
    if draw(st.integers(0, 5)) == 0:
        return None, desired, unmanaged
    pool = sorted(known | unmanaged | ({PARKING} if draw(st.booleans()) else set()))
    # Services are rare here so that "nobody else is trusted" (deletion) happens often.
    body = draw(st.lists(statements(pool, service_odds=6), max_size=4))
    marked = draw(st.integers(0, 6)) > 0
    actual = ActualRole(
        description=description_with_marker(draw(st.sampled_from(["ECS for partners", "x"])))
        if marked
        else draw(st.sampled_from([None, "", "created by hand"])),
        trust_document=json.dumps({"Version": "1", "Statement": body}),
        attached_policies=draw(policy_sets),
        max_session_duration=draw(durations),
    )
    return actual, desired, unmanaged


@given(cases())
@settings(max_examples=100)
def test_a_role_without_the_marker_is_always_refused_and_only_then(case) -> None:
    actual, desired, _ = case
    result = plan_role_reconciliation(actual=actual, desired=desired)
    refused = actual is not None and not actual.created_by_portal
    assert isinstance(result, Refusal) == refused


@given(cases())
@settings(max_examples=100)
def test_applying_the_plan_converges_and_replanning_is_empty(case) -> None:
    actual, desired, _ = case
    plan = plan_role_reconciliation(actual=actual, desired=desired)
    if isinstance(plan, Refusal):
        return
    after = expected_state_after(actual, plan)  # raises if RAM would refuse the sequence
    replan = plan_role_reconciliation(actual=after, desired=desired)
    assert isinstance(replan, Plan) and replan.is_empty, replan
    if after is not None:
        assert canonical_policy(after.trust_document, trust=True) == canonical_policy(
            plan.trust_document, trust=True
        )


@given(cases())
@settings(max_examples=100)
def test_unmanaged_principals_survive_every_plan(case) -> None:
    actual, desired, _ = case
    plan = plan_role_reconciliation(actual=actual, desired=desired)
    if isinstance(plan, Refusal) or actual is None:
        return
    managed = desired.managed_principals_known | desired.managed_principals_wanted | {PARKING}
    after = expected_state_after(actual, plan)
    if after is None:
        # Deleted only when nobody outside the portal was trusted through an Allow.
        assert not (allow_ram(actual.trust_document) - managed)
        assert all(set(s["Principal"]) <= {"RAM"} for s in allow_statements(actual.trust_document))
        return
    assert allow_ram(actual.trust_document) - managed <= allow_ram(after.trust_document)


@given(cases())
@settings(max_examples=100)
def test_managed_principals_end_up_exactly_as_wanted(case) -> None:
    actual, desired, _ = case
    plan = plan_role_reconciliation(actual=actual, desired=desired)
    if isinstance(plan, Refusal):
        return
    after = expected_state_after(actual, plan)
    if after is None:
        assert not desired.managed_principals_wanted
        return
    managed = desired.managed_principals_known | desired.managed_principals_wanted | {PARKING}
    present = allow_ram(after.trust_document) & managed
    if desired.managed_principals_wanted:
        assert present == desired.managed_principals_wanted
    else:
        assert present <= {PARKING}
        assert allow_statements(after.trust_document), "a kept role trusts someone"


@given(cases())
@settings(max_examples=100)
def test_operation_order_is_safe(case) -> None:
    actual, desired, _ = case
    plan = plan_role_reconciliation(actual=actual, desired=desired)
    if isinstance(plan, Refusal):
        return
    kinds = [type(op) for op in plan.operations]
    if DeleteRole in kinds:
        assert kinds[-1] is DeleteRole and kinds.count(DeleteRole) == 1
        assert all(kind is DetachPolicy for kind in kinds[:-1])
        detached = {(op.policy_type, op.policy_name) for op in plan.operations[:-1]}
        assert detached == actual.attached_policies
    if CreateRole in kinds:
        assert actual is None and kinds[0] is CreateRole and kinds.count(CreateRole) == 1
    assert all(op.role_name == desired.role_name for op in plan.operations)
    assert sum(1 for op in plan.operations if op.action == "UpdateRole") <= 1


@given(cases())
@settings(max_examples=100)
def test_policies_outside_the_portal_are_left_alone_unless_deleting(case) -> None:
    actual, desired, _ = case
    plan = plan_role_reconciliation(actual=actual, desired=desired)
    if isinstance(plan, Refusal) or actual is None or plan.deletes_role:
        return
    after = expected_state_after(actual, plan)
    foreign = actual.attached_policies - desired.managed_policies_known - desired.policies_wanted
    assert foreign <= after.attached_policies
    assert desired.policies_wanted <= after.attached_policies
    assert not (
        (after.attached_policies & desired.managed_policies_known) - desired.policies_wanted
    )
