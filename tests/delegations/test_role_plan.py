"""Example tests for the role reconciliation planner."""

import json

import pytest

from cloud.client import AttachedPolicy, Role
from cloud.policies import (
    PORTAL_MARKER,
    PolicyError,
    build_trust_policy,
    description_with_marker,
    policy_to_text,
    trust_policy_principals,
)
from delegations.role_plan import (
    ActualRole,
    AttachPolicy,
    CreateRole,
    DeleteRole,
    DesiredRole,
    DetachPolicy,
    Plan,
    Refusal,
    UpdateRole,
    expected_state_after,
    plan_role_reconciliation,
)

OWNER = "11223344"
PARKING = f"acs:ram::{OWNER}:root"
B = "acs:ram::12345678:root"
C = "acs:ram::5138828231865461:root"
OPS_USER = "acs:ram::999:user/ops"
ECS = ("System", "AliyunECSFullAccess")
RDS = ("System", "AliyunRDSReadOnlyAccess")
EXTRA = ("Custom", "hand-attached")


def desired(**overrides) -> DesiredRole:
    values = {
        "role_name": "ecs-admin",
        "owner_account_uid": OWNER,
        "managed_principals_wanted": frozenset({B}),
        "managed_principals_known": frozenset({B}),
        "policies_wanted": frozenset({ECS}),
        "managed_policies_known": frozenset({ECS}),
        "max_session_duration": 3600,
        "description": "ECS operations for partners",
    }
    values.update(overrides)
    return DesiredRole(**values)


def actual(principals=(B,), *, attached=(ECS,), description=None, max_session=3600, trust=None):
    return ActualRole(
        description=description
        if description is not None
        else description_with_marker("ECS operations for partners"),
        trust_document=trust if trust is not None else json.dumps(build_trust_policy(principals)),
        attached_policies=frozenset(attached),
        max_session_duration=max_session,
    )


def test_a_missing_role_is_created_with_marker_trust_and_policies() -> None:
    plan = plan_role_reconciliation(actual=None, desired=desired(policies_wanted={RDS, ECS}))
    assert isinstance(plan, Plan)
    create, *attaches = plan.operations
    assert create == CreateRole(
        role_name="ecs-admin",
        trust_document=policy_to_text(build_trust_policy({B})),
        description=f"ECS operations for partners {PORTAL_MARKER}",
        max_session_duration=3600,
    )
    assert attaches == [AttachPolicy("ecs-admin", *ECS), AttachPolicy("ecs-admin", *RDS)]
    assert plan.trust_document == create.trust_document


def test_nothing_wanted_and_no_role_means_no_calls() -> None:
    plan = plan_role_reconciliation(actual=None, desired=desired(managed_principals_wanted=set()))
    assert plan == Plan(role_name="ecs-admin")
    assert plan.is_empty


def test_the_desired_state_needs_no_calls() -> None:
    plan = plan_role_reconciliation(actual=actual(), desired=desired())
    assert isinstance(plan, Plan) and plan.is_empty


def test_format_differences_alone_need_no_calls() -> None:
    pretty = json.dumps(
        {
            "Statement": [
                {"Principal": {"RAM": B}, "Effect": "Allow", "Action": ["sts:AssumeRole"]}
            ],
            "Version": "1",
        },
        indent=2,
    )
    assert plan_role_reconciliation(actual=actual(trust=pretty), desired=desired()).is_empty


@pytest.mark.parametrize("wanted", [{B}, set()])
def test_a_same_named_role_without_the_marker_is_refused(wanted) -> None:
    foreign = actual(description="made by hand in the console")
    result = plan_role_reconciliation(
        actual=foreign, desired=desired(managed_principals_wanted=wanted)
    )
    assert isinstance(result, Refusal)
    assert result.code == "role_not_created_by_portal"
    assert "ecs-admin" in result.reason and "not created by the portal" in result.reason


def test_adding_a_partner_is_one_update_that_keeps_everyone_else() -> None:
    current = actual(principals=(B, OPS_USER))
    plan = plan_role_reconciliation(
        actual=current,
        desired=desired(managed_principals_wanted={B, C}, managed_principals_known={B, C}),
    )
    assert [op.action for op in plan.operations] == ["UpdateRole"]
    update = plan.operations[0]
    assert update.description is None and update.max_session_duration is None
    assert trust_policy_principals(update.trust_document).ram == {B, C, OPS_USER}


def test_revoking_one_partner_removes_only_that_principal() -> None:
    current = actual(principals=(B, C, OPS_USER))
    plan = plan_role_reconciliation(
        actual=current,
        desired=desired(managed_principals_wanted={C}, managed_principals_known={B, C}),
    )
    (update,) = plan.operations
    assert trust_policy_principals(update.trust_document).ram == {C, OPS_USER}


def test_revoking_the_last_partner_detaches_everything_then_deletes() -> None:
    current = actual(principals=(B,), attached=(ECS, EXTRA))
    plan = plan_role_reconciliation(
        actual=current, desired=desired(managed_principals_wanted=set())
    )
    assert plan.operations == (
        DetachPolicy("ecs-admin", *EXTRA),
        DetachPolicy("ecs-admin", *ECS),
        DeleteRole("ecs-admin"),
    )
    assert plan.deletes_role and plan.trust_document is None
    assert expected_state_after(current, plan) is None


def test_a_role_still_trusting_someone_unmanaged_is_kept() -> None:
    current = actual(principals=(B, OPS_USER))
    plan = plan_role_reconciliation(
        actual=current, desired=desired(managed_principals_wanted=set())
    )
    assert not plan.deletes_role
    (update,) = plan.operations
    assert trust_policy_principals(update.trust_document).ram == {OPS_USER}


def test_a_kept_empty_role_is_parked_on_the_owner_and_unparked_later() -> None:
    keep = desired(managed_principals_wanted=set(), delete_when_empty=False)
    plan = plan_role_reconciliation(actual=actual(), desired=keep)
    (update,) = plan.operations
    assert trust_policy_principals(update.trust_document).ram == {PARKING}
    parked = expected_state_after(actual(), plan)
    assert plan_role_reconciliation(actual=parked, desired=keep).is_empty
    back = plan_role_reconciliation(actual=parked, desired=desired(delete_when_empty=False))
    (update,) = back.operations
    assert trust_policy_principals(update.trust_document).ram == {B}


def test_settings_changes_ride_in_the_same_update() -> None:
    current = actual(max_session=3600, description=description_with_marker("old words"))
    plan = plan_role_reconciliation(
        actual=current, desired=desired(max_session_duration=7200, description="new words")
    )
    assert plan.operations == (
        UpdateRole(
            "ecs-admin",
            trust_document=None,
            description=f"new words {PORTAL_MARKER}",
            max_session_duration=7200,
        ),
    )


def test_policy_catalogue_changes_attach_and_detach_only_managed_policies() -> None:
    current = actual(attached=(ECS, EXTRA))
    plan = plan_role_reconciliation(
        actual=current,
        desired=desired(policies_wanted={RDS}, managed_policies_known={ECS, RDS}),
    )
    assert plan.operations == (
        AttachPolicy("ecs-admin", *RDS),
        DetachPolicy("ecs-admin", *ECS),
    )
    assert expected_state_after(current, plan).attached_policies == {RDS, EXTRA}


def test_an_unreadable_trust_policy_is_refused_not_overwritten() -> None:
    result = plan_role_reconciliation(actual=actual(trust="{not json"), desired=desired())
    assert isinstance(result, Refusal) and result.code == "unreadable_trust_policy"


def test_actual_role_from_the_client_dataclasses() -> None:
    role = Role(
        name="ecs-admin",
        arn=f"acs:ram::{OWNER}:role/ecs-admin",
        role_id="1",
        description=description_with_marker("ECS operations for partners"),
        trust_document=json.dumps(build_trust_policy({B})),
        max_session_duration=3600,
    )
    state = ActualRole.from_cloud(role, [AttachedPolicy("System", "AliyunECSFullAccess")])
    assert state.created_by_portal and state.attached_policies == {ECS}
    assert plan_role_reconciliation(actual=state, desired=desired()).is_empty


def test_desired_role_validates_its_inputs() -> None:
    with pytest.raises(PolicyError):
        desired(role_name="../x")
    with pytest.raises(PolicyError):
        desired(owner_account_uid="1e5")
    with pytest.raises(PolicyError):
        desired(managed_principals_wanted={"ecs.aliyuncs.com"})
    with pytest.raises(PolicyError):
        desired(policies_wanted={("Managed", "x")})
    with pytest.raises(PolicyError):
        desired(max_session_duration=100)


def test_the_simulator_refuses_what_ram_refuses() -> None:
    with pytest.raises(ValueError, match="DeleteConflict"):
        expected_state_after(actual(), Plan("ecs-admin", (DeleteRole("ecs-admin"),)))
    with pytest.raises(ValueError, match="EntityAlreadyExists"):
        expected_state_after(
            actual(), Plan("ecs-admin", (CreateRole("ecs-admin", "{}", "d", 3600),))
        )
    with pytest.raises(ValueError, match="EntityNotExist"):
        expected_state_after(None, Plan("ecs-admin", (AttachPolicy("ecs-admin", *ECS),)))
