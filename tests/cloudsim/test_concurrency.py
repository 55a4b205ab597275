"""Concurrent SDK clients: one consistent state, no lost updates."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from alibabacloud_ram20150501 import models as ram
from Tea.exceptions import TeaException

from tests.cloudsim.conftest import permission_policy, trust_policy

THREADS = 12


def _outcome(call) -> str:
    try:
        call()
        return "ok"
    except TeaException as error:
        return error.code


def _run_all(calls) -> Counter:
    with ThreadPoolExecutor(THREADS) as pool:
        return Counter(pool.map(_outcome, calls))


def test_one_winner_for_the_same_role_name(sdk, new_account):
    account = new_account()
    client = sdk.ram(account)
    request = ram.CreateRoleRequest(
        role_name="contested", assume_role_policy_document=trust_policy("acs:ram::1:root")
    )
    outcomes = _run_all([lambda: client.create_role(request)] * 24)
    assert outcomes == Counter({"ok": 1, "EntityAlreadyExists.Role": 23})


def test_parallel_creates_are_all_kept(sdk, new_account):
    account = new_account()
    trust = trust_policy("acs:ram::1:root")

    def create(index: int):
        return lambda: sdk.ram(account).create_role(
            ram.CreateRoleRequest(role_name=f"r{index:03d}", assume_role_policy_document=trust)
        )

    assert _run_all([create(i) for i in range(60)]) == Counter({"ok": 60})
    listed = sdk.ram(account).list_roles(ram.ListRolesRequest(max_items=1000)).body.roles.role
    assert sorted(r.role_name for r in listed) == [f"r{i:03d}" for i in range(60)]


def test_attach_quota_holds_under_contention(sdk, new_account):
    from cloudsim.catalog import SYSTEM_POLICIES

    account = new_account()
    sdk.create_role(account, "busy", trust_policy("acs:ram::1:root"))
    names = list(SYSTEM_POLICIES)
    assert len(names) > 20
    client = sdk.ram(account)

    def attach(name: str):
        return lambda: client.attach_policy_to_role(
            ram.AttachPolicyToRoleRequest(policy_type="System", policy_name=name, role_name="busy")
        )

    outcomes = _run_all([attach(name) for name in names + names])
    assert outcomes["ok"] == 20
    assert outcomes["ok"] + outcomes["LimitExceeded.Role.Policy"] + outcomes[
        "EntityAlreadyExists.Role.Policy"
    ] == 2 * len(names)
    attached = client.list_policies_for_role(
        ram.ListPoliciesForRoleRequest(role_name="busy")
    ).body.policies.policy
    assert len(attached) == 20 and len({p.policy_name for p in attached}) == 20


def test_access_key_limit_under_contention(sdk, new_account):
    account = new_account()
    client = sdk.ram(account)
    client.create_user(ram.CreateUserRequest(user_name="keys"))
    outcomes = _run_all(
        [lambda: client.create_access_key(ram.CreateAccessKeyRequest(user_name="keys"))] * 16
    )
    assert outcomes == Counter({"ok": 2, "LimitExceeded.User.AccessKey": 14})


def test_policy_version_numbers_are_never_lost(sdk, new_account):
    """Every concurrent CreatePolicyVersion gets its own number; rotation keeps five."""
    account = new_account()
    client = sdk.ram(account)
    client.create_policy(
        ram.CreatePolicyRequest(policy_name="hot", policy_document=permission_policy("ecs:A"))
    )
    request = ram.CreatePolicyVersionRequest(
        policy_name="hot",
        policy_document=permission_policy("ecs:B"),
        rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded",
    )
    ids = []

    def create():
        ids.append(client.create_policy_version(request).body.policy_version.version_id)

    assert _run_all([create] * 30) == Counter({"ok": 30})
    assert sorted(ids, key=lambda v: int(v[1:])) == [f"v{n}" for n in range(2, 32)]
    versions = client.list_policy_versions(
        ram.ListPolicyVersionsRequest(policy_name="hot", policy_type="Custom")
    ).body.policy_versions.policy_version
    assert [v.version_id for v in versions] == ["v1", "v28", "v29", "v30", "v31"]


def test_assume_role_in_parallel_gives_distinct_sessions(sdk, partner_pair):
    owner, partner = partner_pair.owner, partner_pair.partner
    role = sdk.create_role(owner, "parallel", trust_policy(partner.root_arn)).body.role
    sdk.attach_to_user(partner, "Alice", "AliyunSTSAssumeRoleAccess")
    keys = []

    def assume():
        keys.append(sdk.assume(partner_pair.alice, role.arn, "parallel").access_key_id)

    assert _run_all([assume] * 24) == Counter({"ok": 24})
    assert len(set(keys)) == 24
