"""RAM policies, users, AccessKeys and the account alias through the official SDK."""

from __future__ import annotations

import json
import re

import pytest
from alibabacloud_ram20150501 import models as ram

from cloudsim.catalog import SYSTEM_POLICIES
from tests.cloudsim.conftest import Keys, error_of, permission_policy

DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# --- policies -----------------------------------------------------------------------------------


def test_create_get_and_list_custom_policy(sdk, new_account):
    owner = new_account()
    client = sdk.ram(owner)
    document = permission_policy(["ecs:Describe*"], "*")
    created = client.create_policy(
        ram.CreatePolicyRequest(policy_name="ecs-view", policy_document=document, description="v")
    ).body.policy
    assert (created.policy_name, created.policy_type, created.default_version) == (
        "ecs-view",
        "Custom",
        "v1",
    )
    assert created.description == "v" and DATE_RE.match(created.create_date)

    fetched = client.get_policy(
        ram.GetPolicyRequest(policy_name="ecs-view", policy_type="Custom")
    ).body
    assert fetched.policy.policy_document == document
    assert fetched.policy.attachment_count == 0
    assert fetched.default_policy_version.version_id == "v1"
    assert fetched.default_policy_version.is_default_version is True

    system = client.get_policy(
        ram.GetPolicyRequest(policy_name="AliyunECSFullAccess", policy_type="System")
    ).body.policy
    assert system.policy_type == "System"
    assert system.create_date == SYSTEM_POLICIES["AliyunECSFullAccess"]["CreateDate"]
    assert "ecs:*" in json.dumps(json.loads(system.policy_document))

    custom_only = client.list_policies(ram.ListPoliciesRequest(policy_type="Custom")).body
    assert [p.policy_name for p in custom_only.policies.policy] == ["ecs-view"]
    system_names = set()
    marker = None
    while True:
        page = client.list_policies(
            ram.ListPoliciesRequest(policy_type="System", max_items=5, marker=marker)
        ).body
        system_names |= {p.policy_name for p in page.policies.policy}
        if not page.is_truncated:
            break
        marker = page.marker
    assert {
        "AliyunECSFullAccess",
        "AliyunSTSAssumeRoleAccess",
        "AdministratorAccess",
        "AliyunRAMReadOnlyAccess",
        "AliyunECSReadOnlyAccess",
        "AliyunOOSFullAccess",
    } <= system_names
    everything = client.list_policies(ram.ListPoliciesRequest(max_items=1000)).body
    assert len(everything.policies.policy) == len(system_names) + 1


@pytest.mark.parametrize(
    ("name", "document", "description", "code"),
    [
        ("x" * 129, permission_policy("ecs:*"), None, "InvalidParameter.PolicyName.Length"),
        ("bad_name", permission_policy("ecs:*"), None, "InvalidParameter.PolicyName.InvalidChars"),
        (
            "p",
            permission_policy("ecs:*") + " " * 6200,
            None,
            "InvalidParameter.PolicyDocument.Length",
        ),
        (
            "p",
            '{"Version":"1","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}',
            None,
            "MalformedPolicyDocument",
        ),
        ("p", "{not json", None, "MalformedPolicyDocument"),
        ("p", permission_policy("ecs:*"), "d" * 1025, "InvalidParameter.Description.Length"),
    ],
)
def test_create_policy_validation(sdk, new_account, name, document, description, code):
    failure = error_of(
        sdk.ram(new_account()).create_policy,
        ram.CreatePolicyRequest(
            policy_name=name, policy_document=document, description=description
        ),
    )
    assert (failure.code, failure.statusCode) == (code, 400)


def test_policy_name_conflicts(sdk, new_account):
    client = sdk.ram(new_account())
    client.create_policy(
        ram.CreatePolicyRequest(policy_name="Mine", policy_document=permission_policy("ecs:*"))
    )
    for name in ("Mine", "mine", "AliyunECSFullAccess"):
        failure = error_of(
            client.create_policy,
            ram.CreatePolicyRequest(policy_name=name, policy_document=permission_policy("ecs:*")),
        )
        assert (failure.code, failure.statusCode) == ("EntityAlreadyExists.Policy", 409)


def test_get_policy_errors(sdk, new_account):
    client = sdk.ram(new_account())
    missing = error_of(
        client.get_policy, ram.GetPolicyRequest(policy_name="nope", policy_type="Custom")
    )
    assert (missing.code, missing.statusCode) == ("EntityNotExist.Policy", 404)
    bad_type = error_of(
        client.get_policy, ram.GetPolicyRequest(policy_name="nope", policy_type="Other")
    )
    assert (bad_type.code, bad_type.statusCode) == ("InvalidParameter.PolicyType", 400)
    bad_list = error_of(client.list_policies, ram.ListPoliciesRequest(policy_type="Other"))
    assert bad_list.code == "InvalidParameter.PolicyType"


def test_policy_versions(sdk, new_account):
    owner = new_account()
    client = sdk.ram(owner)
    client.create_policy(
        ram.CreatePolicyRequest(policy_name="p", policy_document=permission_policy("ecs:A"))
    )
    v2 = client.create_policy_version(
        ram.CreatePolicyVersionRequest(
            policy_name="p",
            policy_document=permission_policy("ecs:B"),
            set_as_default=True,
        )
    ).body.policy_version
    assert (v2.version_id, v2.is_default_version) == ("v2", True)
    v3 = client.create_policy_version(
        ram.CreatePolicyVersionRequest(
            policy_name="p",
            policy_document=permission_policy("ecs:C"),
            set_as_default=False,
        )
    ).body.policy_version
    assert (v3.version_id, v3.is_default_version) == ("v3", False)
    got = client.get_policy(ram.GetPolicyRequest(policy_name="p", policy_type="Custom")).body
    assert got.policy.default_version == "v2"
    assert (
        json.loads(got.default_policy_version.policy_document)["Statement"][0]["Action"] == "ecs:B"
    )

    for letter in "DE":
        client.create_policy_version(
            ram.CreatePolicyVersionRequest(
                policy_name="p",
                policy_document=permission_policy(f"ecs:{letter}"),
            )
        )
    full = error_of(
        client.create_policy_version,
        ram.CreatePolicyVersionRequest(
            policy_name="p",
            policy_document=permission_policy("ecs:F"),
        ),
    )
    assert (full.code, full.statusCode) == ("LimitExceeded.Policy.Version", 409)
    rotated = client.create_policy_version(
        ram.CreatePolicyVersionRequest(
            policy_name="p",
            policy_document=permission_policy("ecs:F"),
            rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded",
        )
    ).body.policy_version
    assert rotated.version_id == "v6"
    versions = client.list_policy_versions(
        ram.ListPolicyVersionsRequest(policy_name="p", policy_type="Custom")
    ).body.policy_versions.policy_version
    assert [v.version_id for v in versions] == ["v2", "v3", "v4", "v5", "v6"]
    assert [v.is_default_version for v in versions] == [True, False, False, False, False]

    system_versions = client.list_policy_versions(
        ram.ListPolicyVersionsRequest(policy_name="AdministratorAccess", policy_type="System")
    ).body.policy_versions.policy_version
    assert [v.version_id for v in system_versions] == ["v1"]

    missing = error_of(
        client.create_policy_version,
        ram.CreatePolicyVersionRequest(
            policy_name="ghost",
            policy_document=permission_policy("ecs:A"),
        ),
    )
    assert missing.code == "EntityNotExist.Policy"
    malformed = error_of(
        client.create_policy_version,
        ram.CreatePolicyVersionRequest(
            policy_name="p",
            policy_document="[]",
        ),
    )
    assert malformed.code == "MalformedPolicyDocument"


def test_new_default_version_changes_permissions_at_once(sdk, new_account, new_user):
    owner = new_account()
    client = sdk.ram(owner)
    erin = new_user(owner, "erin")
    client.create_policy(
        ram.CreatePolicyRequest(
            policy_name="grant", policy_document=permission_policy("ram:ListRoles")
        )
    )
    sdk.attach_to_user(owner, "erin", "grant", "Custom")
    assert sdk.ram(erin).list_roles(ram.ListRolesRequest()).body
    client.create_policy_version(
        ram.CreatePolicyVersionRequest(
            policy_name="grant",
            policy_document=permission_policy("ram:ListUsers"),
            set_as_default=True,
        )
    )
    assert error_of(sdk.ram(erin).list_roles, ram.ListRolesRequest()).code == "NoPermission"
    assert sdk.ram(erin).list_users(ram.ListUsersRequest()).body


def test_delete_policy_conflicts(sdk, new_account, new_user):
    owner = new_account()
    client = sdk.ram(owner)
    new_user(owner, "frank")
    client.create_policy(
        ram.CreatePolicyRequest(policy_name="p", policy_document=permission_policy("ecs:A"))
    )
    sdk.attach_to_user(owner, "frank", "p", "Custom")
    attached = error_of(client.delete_policy, ram.DeletePolicyRequest(policy_name="p"))
    assert (attached.code, attached.statusCode) == ("DeleteConflict.Policy.User", 409)
    client.detach_policy_from_user(
        ram.DetachPolicyFromUserRequest(policy_type="Custom", policy_name="p", user_name="frank")
    )
    client.create_policy_version(
        ram.CreatePolicyVersionRequest(policy_name="p", policy_document=permission_policy("ecs:B"))
    )
    versions = error_of(client.delete_policy, ram.DeletePolicyRequest(policy_name="p"))
    assert (versions.code, versions.statusCode) == ("DeleteConflict.Policy.Version", 409)
    sdk.attach_to_user(owner, "frank", "p", "Custom")
    client.delete_policy(ram.DeletePolicyRequest(policy_name="p", cascading_delete=True))
    assert (
        client.list_policies_for_user(
            ram.ListPoliciesForUserRequest(user_name="frank")
        ).body.policies.policy
        == []
    )
    gone = error_of(client.delete_policy, ram.DeletePolicyRequest(policy_name="p"))
    assert (gone.code, gone.statusCode) == ("EntityNotExist.Policy", 404)
    system = error_of(
        client.delete_policy, ram.DeletePolicyRequest(policy_name="AdministratorAccess")
    )
    assert system.code == "EntityNotExist.Policy"


def test_delete_policy_version(sdk, new_account, new_user):
    owner = new_account()
    client = sdk.ram(owner)
    client.create_policy(
        ram.CreatePolicyRequest(policy_name="p", policy_document=permission_policy("ecs:A"))
    )
    for letter in "BC":
        client.create_policy_version(
            ram.CreatePolicyVersionRequest(
                policy_name="p",
                policy_document=permission_policy(f"ecs:{letter}"),
                set_as_default=True,
            )
        )

    default = error_of(
        client.delete_policy_version,
        ram.DeletePolicyVersionRequest(policy_name="p", version_id="v3"),
    )
    assert (default.code, default.statusCode) == ("DeleteConflict.Policy.Version.Default", 409)
    client.delete_policy_version(ram.DeletePolicyVersionRequest(policy_name="p", version_id="v1"))
    versions = client.list_policy_versions(
        ram.ListPolicyVersionsRequest(policy_name="p", policy_type="Custom")
    ).body.policy_versions.policy_version
    assert [(v.version_id, v.is_default_version) for v in versions] == [
        ("v2", False),
        ("v3", True),
    ]
    gone = error_of(
        client.delete_policy_version,
        ram.DeletePolicyVersionRequest(policy_name="p", version_id="v1"),
    )
    assert (gone.code, gone.statusCode) == ("EntityNotExist.Policy.Version", 404)
    for bad in ("1", "v0", "V2", "v2x"):
        malformed = error_of(
            client.delete_policy_version,
            ram.DeletePolicyVersionRequest(policy_name="p", version_id=bad),
        )
        assert (malformed.code, malformed.statusCode) == ("InvalidParameter.VersionId.Format", 400)
    missing = error_of(
        client.delete_policy_version,
        ram.DeletePolicyVersionRequest(policy_name="ghost", version_id="v1"),
    )
    assert (missing.code, missing.statusCode) == ("EntityNotExist.Policy", 404)
    system = error_of(
        client.delete_policy_version,
        ram.DeletePolicyVersionRequest(policy_name="AdministratorAccess", version_id="v1"),
    )
    assert system.code == "EntityNotExist.Policy"

    # A RAM user needs ram:DeletePolicyVersion on the policy.
    judy = new_user(owner, "judy")
    denied = error_of(
        sdk.ram(judy).delete_policy_version,
        ram.DeletePolicyVersionRequest(policy_name="p", version_id="v2"),
    )
    assert denied.code == "NoPermission"
    client.create_policy(
        ram.CreatePolicyRequest(
            policy_name="prune",
            policy_document=permission_policy(
                "ram:DeletePolicyVersion", f"acs:ram:*:{owner.uid}:policy/p"
            ),
        )
    )
    sdk.attach_to_user(owner, "judy", "prune", "Custom")
    sdk.ram(judy).delete_policy_version(
        ram.DeletePolicyVersionRequest(policy_name="p", version_id="v2")
    )

    # With its old versions gone, the policy can be deleted.
    client.delete_policy(ram.DeletePolicyRequest(policy_name="p"))
    assert (
        error_of(
            client.get_policy, ram.GetPolicyRequest(policy_name="p", policy_type="Custom")
        ).code
        == "EntityNotExist.Policy"
    )


# --- users ----------------------------------------------------------------------------------------


def test_user_lifecycle(sdk, new_account):
    owner = new_account()
    client = sdk.ram(owner)
    created = client.create_user(
        ram.CreateUserRequest(
            user_name="grace",
            display_name="Grace H",
            email="grace@example.com",
            mobile_phone="86-18600008888",
            comments="ops",
        )
    ).body.user
    assert re.fullmatch(r"\d{16}", created.user_id)
    assert (created.user_name, created.display_name, created.email, created.mobile_phone) == (
        "grace",
        "Grace H",
        "grace@example.com",
        "86-18600008888",
    )
    fetched = client.get_user(ram.GetUserRequest(user_name="grace")).body.user
    assert fetched.user_id == created.user_id and DATE_RE.match(fetched.update_date)

    duplicate = error_of(client.create_user, ram.CreateUserRequest(user_name="GRACE"))
    assert (duplicate.code, duplicate.statusCode) == ("EntityAlreadyExists.User", 409)

    client.attach_policy_to_user(
        ram.AttachPolicyToUserRequest(
            policy_type="System", policy_name="AliyunECSReadOnlyAccess", user_name="grace"
        )
    )
    again = error_of(
        client.attach_policy_to_user,
        ram.AttachPolicyToUserRequest(
            policy_type="System", policy_name="AliyunECSReadOnlyAccess", user_name="grace"
        ),
    )
    assert (again.code, again.statusCode) == ("EntityAlreadyExists.User.Policy", 409)
    [policy] = client.list_policies_for_user(
        ram.ListPoliciesForUserRequest(user_name="grace")
    ).body.policies.policy
    assert policy.policy_name == "AliyunECSReadOnlyAccess"
    conflict = error_of(client.delete_user, ram.DeleteUserRequest(user_name="grace"))
    assert (conflict.code, conflict.statusCode) == ("DeleteConflict.User.Policy", 409)
    detach = ram.DetachPolicyFromUserRequest(
        policy_type="System", policy_name="AliyunECSReadOnlyAccess", user_name="grace"
    )
    client.detach_policy_from_user(detach)
    not_attached = error_of(client.detach_policy_from_user, detach)
    assert (not_attached.code, not_attached.statusCode) == ("EntityNotExist.User.Policy", 404)

    key = client.create_access_key(ram.CreateAccessKeyRequest(user_name="grace")).body.access_key
    key_conflict = error_of(client.delete_user, ram.DeleteUserRequest(user_name="grace"))
    assert key_conflict.code == "DeleteConflict.User.AccessKey"
    client.delete_access_key(
        ram.DeleteAccessKeyRequest(user_name="grace", user_access_key_id=key.access_key_id)
    )
    client.delete_user(ram.DeleteUserRequest(user_name="grace"))
    missing = error_of(client.get_user, ram.GetUserRequest(user_name="grace"))
    assert (missing.code, missing.statusCode) == ("EntityNotExist.User", 404)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"user_name": "x" * 65}, "InvalidParameter.UserName.Length"),
        ({"user_name": "bad name"}, "InvalidParameter.UserName.InvalidChars"),
        ({"user_name": "ok", "display_name": "d" * 129}, "InvalidParameter.DisplayName.Length"),
        ({"user_name": "ok", "email": "not-an-email"}, "InvalidParameter.Email.Format"),
        ({"user_name": "ok", "mobile_phone": "12345"}, "InvalidParameter.MobilePhone.Format"),
        ({"user_name": "ok", "comments": "c" * 129}, "InvalidParameter.Comments.Length"),
    ],
)
def test_create_user_validation(sdk, new_account, fields, code):
    failure = error_of(sdk.ram(new_account()).create_user, ram.CreateUserRequest(**fields))
    assert (failure.code, failure.statusCode) == (code, 400)


def test_list_users_paging(sdk, new_account):
    owner = new_account()
    client = sdk.ram(owner)
    names = [f"user{index}" for index in range(5)]
    for name in names:
        client.create_user(ram.CreateUserRequest(user_name=name))
    first = client.list_users(ram.ListUsersRequest(max_items=2)).body
    assert first.is_truncated is True
    rest = client.list_users(ram.ListUsersRequest(max_items=10, marker=first.marker)).body
    assert rest.is_truncated is False
    assert [u.user_name for u in first.users.user + rest.users.user] == names


# --- AccessKeys -----------------------------------------------------------------------------------


def test_access_keys(sdk, new_account):
    owner = new_account()
    client = sdk.ram(owner)
    client.create_user(ram.CreateUserRequest(user_name="henry"))
    first = client.create_access_key(ram.CreateAccessKeyRequest(user_name="henry")).body.access_key
    assert first.access_key_id.startswith("LTAI") and len(first.access_key_secret) == 30
    assert first.status == "Active" and DATE_RE.match(first.create_date)
    client.create_access_key(ram.CreateAccessKeyRequest(user_name="henry"))
    limit = error_of(client.create_access_key, ram.CreateAccessKeyRequest(user_name="henry"))
    assert (limit.code, limit.statusCode) == ("LimitExceeded.User.AccessKey", 409)

    listed = client.list_access_keys(ram.ListAccessKeysRequest(user_name="henry")).body
    assert len(listed.access_keys.access_key) == 2
    assert first.access_key_id in {k.access_key_id for k in listed.access_keys.access_key}

    # The new key works at once and acts as the user.
    henry = Keys(first.access_key_id, first.access_key_secret)
    assert sdk.caller(henry).arn == f"acs:ram::{owner.uid}:user/henry"
    client.delete_access_key(
        ram.DeleteAccessKeyRequest(user_name="henry", user_access_key_id=first.access_key_id)
    )
    gone = error_of(sdk.caller, henry)
    assert (gone.code, gone.statusCode) == ("InvalidAccessKeyId.NotFound", 404)
    again = error_of(
        client.delete_access_key,
        ram.DeleteAccessKeyRequest(user_name="henry", user_access_key_id=first.access_key_id),
    )
    assert (again.code, again.statusCode) == ("EntityNotExist.User.AccessKey", 404)
    nobody = error_of(client.list_access_keys, ram.ListAccessKeysRequest(user_name="nobody"))
    assert nobody.code == "EntityNotExist.User"


def test_root_lists_its_own_keys(sdk, new_account):
    owner = new_account()
    keys = sdk.ram(owner).list_access_keys(ram.ListAccessKeysRequest()).body.access_keys.access_key
    assert [k.access_key_id for k in keys] == [owner.access_key_id]


def test_user_creates_own_key_only_with_permission(sdk, new_account, new_user):
    owner = new_account()
    ivan = new_user(owner, "ivan")
    denied = error_of(sdk.ram(ivan).create_access_key, ram.CreateAccessKeyRequest())
    assert denied.code == "NoPermission"


# --- account alias ------------------------------------------------------------------------------


def test_account_alias(sdk, new_account):
    owner = new_account()
    client = sdk.ram(owner)
    assert client.get_account_alias().body.account_alias == owner.alias
    client.set_account_alias(ram.SetAccountAliasRequest(account_alias="renamed-" + owner.uid[-6:]))
    assert client.get_account_alias().body.account_alias == "renamed-" + owner.uid[-6:]
    taken = error_of(
        client.set_account_alias, ram.SetAccountAliasRequest(account_alias="company-b")
    )
    assert (taken.code, taken.statusCode) == ("EntityAlreadyExists.AccountAlias", 409)
    for alias, code in (
        ("ab", "InvalidParameter.AccountAlias.Length"),
        ("Upper-Case", "InvalidParameter.AccountAlias.InvalidChars"),
        ("-dash", "InvalidParameter.AccountAlias.InvalidChars"),
    ):
        failure = error_of(
            client.set_account_alias, ram.SetAccountAliasRequest(account_alias=alias)
        )
        assert (failure.code, failure.statusCode) == (code, 400)
