"""Role chaining as RAM evaluates it, and the portal's parked role against it (issue 18 item 6).

A chained AssumeRole is made by a role session: RAM checks the target's trust policy against
that session's role (`acs:ram::<uid>:role/<name>` names it; the account root names every RAM
user and role session of the account) and the session's own permissions (its role's policies
intersected with its session policy) for `sts:AssumeRole` on the target. A Deny in the trust
policy wins over any Allow.
"""

from __future__ import annotations

import json

import pytest
from alibabacloud_ram20150501 import models as ram
from alibabacloud_sts20150401 import models as sts

from cloud import policies
from delegations import role_plan
from tests.cloudsim.conftest import Keys, error_of, permission_policy, trust_policy, unique


def _assume_error(sdk, caller, role_arn: str, **fields):
    return error_of(
        sdk.sts(caller).assume_role,
        sts.AssumeRoleRequest(role_arn=role_arn, role_session_name="hop-again", **fields),
    )


def _custom_policy(sdk, owner, role: str, document: str) -> None:
    name = unique("p")
    sdk.ram(owner).create_policy(
        ram.CreatePolicyRequest(policy_name=name, policy_document=document)
    )
    sdk.attach_to_role(owner, role, name, "Custom")


@pytest.fixture
def chain(sdk, partner_pair):
    """Owner role `hop` trusts the partner's account and lets its sessions assume any of the
    owner's roles; Alice (partner) may assume roles. Returns the pair and Alice's hop session."""
    pair = partner_pair
    sdk.attach_to_user(pair.partner, "Alice", "AliyunSTSAssumeRoleAccess")
    sdk.create_role(pair.owner, "hop", trust_policy(pair.partner.root_arn))
    _custom_policy(
        sdk,
        pair.owner,
        "hop",
        permission_policy("sts:AssumeRole", f"acs:ram::{pair.owner.uid}:role/*"),
    )
    return pair, sdk.assume(pair.alice, f"acs:ram::{pair.owner.uid}:role/hop", "alice")


@pytest.mark.parametrize(
    ("principal", "admitted"),
    [
        ("acs:ram::{owner}:root", True),  # the whole account: its role sessions included
        ("acs:ram::{owner}:role/hop", True),  # the caller's role
        ("acs:ram::{owner}:role/HOP", True),  # role names compare case-insensitively
        ("acs:ram::{owner}:role/other", False),
        ("acs:ram::{owner}:user/hop", False),  # a user of the same name is not the role
        ("acs:ram::{partner}:root", False),  # the session acts as the owner's role, not Alice
        ("acs:ram::{partner}:user/Alice", False),
    ],
)
def test_a_chained_call_is_judged_as_the_sessions_role(sdk, chain, principal, admitted):
    pair, hop = chain
    text = principal.format(owner=pair.owner.uid, partner=pair.partner.uid)
    target = sdk.create_role(pair.owner, unique("target"), trust_policy(text)).body.role
    if admitted:
        identity = sdk.caller(sdk.assume(hop, target.arn, "chained"))
        assert identity.arn == f"acs:ram::{pair.owner.uid}:assumed-role/{target.role_name}/chained"
    else:
        refused = _assume_error(sdk, hop, target.arn)
        assert (refused.code, refused.statusCode) == ("NoPermission", 403)


def test_the_sessions_permissions_must_allow_assume_role_on_the_target(sdk, chain):
    pair, hop = chain
    elsewhere = sdk.create_role(pair.owner, unique("t"), trust_policy(pair.owner.root_arn))
    target_arn = elsewhere.body.role.arn
    narrowed = (
        sdk.sts(pair.alice)
        .assume_role(
            sts.AssumeRoleRequest(
                role_arn=f"acs:ram::{pair.owner.uid}:role/hop",
                role_session_name="narrow",
                policy=permission_policy("sts:AssumeRole", f"acs:ram::{pair.owner.uid}:role/x"),
            )
        )
        .body.credentials
    )
    narrow = Keys(narrowed.access_key_id, narrowed.access_key_secret, narrowed.security_token)
    assert _assume_error(sdk, narrow, target_arn).code == "NoPermission"
    assert sdk.caller(sdk.assume(hop, target_arn)).account_id == pair.owner.uid
    # A role session without any sts:AssumeRole allow is refused even by a trusting role.
    sdk.create_role(pair.owner, "plain", trust_policy(pair.partner.root_arn))
    sdk.attach_to_role(pair.owner, "plain", "AliyunECSReadOnlyAccess")
    plain = sdk.assume(pair.alice, f"acs:ram::{pair.owner.uid}:role/plain")
    assert _assume_error(sdk, plain, target_arn).code == "NoPermission"


def test_a_deny_in_the_trust_policy_stops_a_chained_session(sdk, chain):
    pair, hop = chain
    document = json.loads(trust_policy(pair.owner.root_arn))
    document["Statement"].append(
        {
            "Action": "sts:AssumeRole",
            "Effect": "Deny",
            "Principal": {"RAM": [f"acs:ram::{pair.owner.uid}:role/hop"]},
        }
    )
    target = sdk.create_role(pair.owner, unique("t"), json.dumps(document)).body.role
    assert _assume_error(sdk, hop, target.arn).code == "NoPermission"


# --- the portal's parked role ----------------------------------------------------------------
def _desired(owner_uid: str, partner_root: str, wanted: bool) -> role_plan.DesiredRole:
    return role_plan.DesiredRole(
        role_name="kept",
        owner_account_uid=owner_uid,
        managed_principals_wanted=frozenset({partner_root} if wanted else ()),
        managed_principals_known=frozenset({partner_root}),
        delete_when_empty=False,
    )


def _apply_trust_change(sdk, owner, plan: role_plan.Plan) -> None:
    (update,) = [op for op in plan.operations if isinstance(op, role_plan.UpdateRole)]
    sdk.ram(owner).update_role(
        ram.UpdateRoleRequest(
            role_name="kept", new_assume_role_policy_document=update.trust_document
        )
    )


def _actual(sdk, owner) -> role_plan.ActualRole:
    role = sdk.ram(owner).get_role(ram.GetRoleRequest(role_name="kept")).body.role
    return role_plan.ActualRole(
        description=role.description,
        trust_document=role.assume_role_policy_document,
        attached_policies=frozenset({("System", "AliyunECSReadOnlyAccess")}),
    )


def test_a_parked_role_is_assumable_by_nobody(sdk, chain, new_user):
    """Alice was revoked from `kept`; she still holds `hop`, whose policy allows
    sts:AssumeRole on every owner role. The owner's own administrator is refused too."""
    pair, hop = chain
    new_user(pair.owner, "admin")
    admin_keys = (
        sdk.ram(pair.owner)
        .create_access_key(ram.CreateAccessKeyRequest(user_name="admin"))
        .body.access_key
    )
    admin = Keys(admin_keys.access_key_id, admin_keys.access_key_secret)
    sdk.attach_to_user(pair.owner, "admin", "AdministratorAccess")
    kept_arn = f"acs:ram::{pair.owner.uid}:role/kept"
    sdk.create_role(
        pair.owner,
        "kept",
        policies.policy_to_text(policies.build_trust_policy([pair.partner.root_arn])),
        description=policies.description_with_marker(""),
    )
    sdk.attach_to_role(pair.owner, "kept", "AliyunECSReadOnlyAccess")
    sdk.assume(pair.alice, kept_arn)  # the delegation works

    # The revoke: the planner parks the role instead of deleting it.
    parked = role_plan.plan_role_reconciliation(
        actual=_actual(sdk, pair.owner),
        desired=_desired(pair.owner.uid, pair.partner.root_arn, wanted=False),
    )
    assert (
        policies.parking_lock_statement(pair.owner.root_arn)
        in json.loads(parked.trust_document)["Statement"]
    )
    _apply_trust_change(sdk, pair.owner, parked)

    for caller in (hop, admin, pair.alice):
        refused = _assume_error(sdk, caller, kept_arn)
        assert (refused.code, refused.statusCode) == ("NoPermission", 403)
        assert refused.accessDeniedDetail["PolicyType"] == "AssumeRolePolicy"
    # The owner's identities meet the lock; the partner's own users are named by nobody.
    for caller, kind in (
        (hop, "ExplicitDeny"),
        (admin, "ExplicitDeny"),
        (pair.alice, "ImplicitDeny"),
    ):
        assert _assume_error(sdk, caller, kept_arn).accessDeniedDetail["NoPermissionType"] == kind
    # Re-planning a parked role changes nothing: the lock is recognised as the portal's.
    again = role_plan.plan_role_reconciliation(
        actual=_actual(sdk, pair.owner),
        desired=_desired(pair.owner.uid, pair.partner.root_arn, wanted=False),
    )
    assert again.is_empty

    # A new grant lifts the parking and its lock: Alice is back, the chain still is not.
    granted = role_plan.plan_role_reconciliation(
        actual=_actual(sdk, pair.owner),
        desired=_desired(pair.owner.uid, pair.partner.root_arn, wanted=True),
    )
    _apply_trust_change(sdk, pair.owner, granted)
    assert sdk.caller(sdk.assume(pair.alice, kept_arn)).account_id == pair.owner.uid
    assert _assume_error(sdk, hop, kept_arn).code == "NoPermission"


def test_the_old_parking_let_the_owners_users_and_chained_sessions_in(sdk, chain):
    """What the lock closes: an Allow on the owner's root alone admitted both."""
    pair, hop = chain
    old_parking = policies.policy_to_text(policies.build_trust_policy([pair.owner.root_arn]))
    target = sdk.create_role(pair.owner, unique("old"), old_parking).body.role
    assert sdk.caller(sdk.assume(hop, target.arn)).account_id == pair.owner.uid
