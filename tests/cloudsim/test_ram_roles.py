"""RAM roles through the official SDK: shapes, validations, error codes, paging, permissions."""

from __future__ import annotations

import json
import re

import pytest
from alibabacloud_ram20150501 import models as ram

from tests.cloudsim.conftest import error_of, permission_policy, trust_policy

DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_create_get_update_delete_role_shapes(sdk, new_account):
    owner = new_account()
    client = sdk.ram(owner)
    trust = trust_policy("acs:ram::12345678:root")
    created = client.create_role(
        ram.CreateRoleRequest(
            role_name="ecs-admin",
            assume_role_policy_document=trust,
            description="ops",
            max_session_duration=7200,
        )
    ).body
    assert created.request_id
    role = created.role
    assert role.role_name == "ecs-admin"
    assert role.arn == f"acs:ram::{owner.uid}:role/ecs-admin"
    assert re.fullmatch(r"3\d{18}", role.role_id)
    assert role.max_session_duration == 7200 and isinstance(role.max_session_duration, int)
    assert role.description == "ops"
    assert json.loads(role.assume_role_policy_document) == json.loads(trust)
    assert DATE_RE.match(role.create_date)

    fetched = client.get_role(ram.GetRoleRequest(role_name="ecs-admin")).body.role
    assert (fetched.role_id, fetched.arn) == (role.role_id, role.arn)
    assert fetched.is_service_linked_role is False
    assert fetched.role_principal_name == f"ecs-admin@role.{owner.uid}.onaliyunservice.com"
    assert DATE_RE.match(fetched.update_date)

    new_trust = trust_policy("acs:ram::12345678:user/Alice")
    updated = client.update_role(
        ram.UpdateRoleRequest(
            role_name="ecs-admin",
            new_assume_role_policy_document=new_trust,
            new_description="changed",
            new_max_session_duration=3600,
        )
    ).body.role
    assert (updated.description, updated.max_session_duration) == ("changed", 3600)
    assert updated.assume_role_policy_document == new_trust

    assert client.delete_role(ram.DeleteRoleRequest(role_name="ecs-admin")).body.request_id
    missing = error_of(client.get_role, ram.GetRoleRequest(role_name="ecs-admin"))
    assert (missing.code, missing.statusCode) == ("EntityNotExist.Role", 404)


def test_role_defaults(sdk, new_account):
    owner = new_account()
    role = sdk.create_role(owner, "plain", trust_policy("acs:ram::1:root")).body.role
    assert role.max_session_duration == 3600
    assert role.description == ""


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("x" * 65, "InvalidParameter.RoleName.Length"),
        ("has space", "InvalidParameter.RoleName.InvalidChars"),
        ("under_score", "InvalidParameter.RoleName.InvalidChars"),
        ("../x", "InvalidParameter.RoleName.InvalidChars"),
        ("rôle", "InvalidParameter.RoleName.InvalidChars"),
    ],
)
def test_role_name_validation(sdk, new_account, name, code):
    failure = error_of(sdk.create_role, new_account(), name, trust_policy("acs:ram::1:root"))
    assert (failure.code, failure.statusCode) == (code, 400)


def test_role_name_limits_that_pass(sdk, new_account):
    owner = new_account()
    for name in ("a", "x" * 64, "Role.With-Dots.1"):
        assert sdk.create_role(owner, name, trust_policy("acs:ram::1:root")).body.role


def test_missing_role_name(sdk, new_account):
    failure = error_of(sdk.ram(new_account()).get_role, ram.GetRoleRequest())
    assert (failure.code, failure.statusCode) == ("MissingParameter", 400)


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("not json", "MalformedPolicyDocument"),
        ("{}", "MalformedPolicyDocument"),
        ('{"Version":"2","Statement":[]}', "MalformedPolicyDocument"),
        (permission_policy("ecs:*"), "MalformedPolicyDocument"),
        (
            trust_policy("acs:ram::12:root") + " " * 5000,
            "InvalidParameter.AssumeRolePolicyDocument.Length",
        ),
    ],
)
def test_trust_document_validation(sdk, new_account, document, code):
    failure = error_of(sdk.create_role, new_account(), "r", document)
    assert (failure.code, failure.statusCode) == (code, 400)


def test_update_role_validations(sdk, new_account):
    owner = new_account()
    sdk.create_role(owner, "r", trust_policy("acs:ram::1:root"))
    client = sdk.ram(owner)
    too_long = error_of(
        client.update_role,
        ram.UpdateRoleRequest(
            role_name="r", new_assume_role_policy_document="{" + " " * 5000 + "}"
        ),
    )
    assert too_long.code == "InvalidParameter.NewAssumeRolePolicyDocument.Length"
    malformed = error_of(
        client.update_role,
        ram.UpdateRoleRequest(role_name="r", new_assume_role_policy_document="["),
    )
    assert malformed.code == "MalformedPolicyDocument"
    missing = error_of(
        client.update_role, ram.UpdateRoleRequest(role_name="nope", new_description="x")
    )
    assert (missing.code, missing.statusCode) == ("EntityNotExist.Role", 404)


@pytest.mark.parametrize("duration", [3599, 43201, 0, -5])
def test_max_session_duration_range(sdk, new_account, duration):
    failure = error_of(
        sdk.create_role,
        new_account(),
        "r",
        trust_policy("acs:ram::1:root"),
        max_session_duration=duration,
    )
    assert (failure.code, failure.statusCode) == ("InvalidParameter.MaxSessionDuration", 400)


def test_max_session_duration_bounds_accepted(sdk, new_account):
    owner = new_account()
    assert sdk.create_role(owner, "low", trust_policy("acs:ram::1:root"), max_session_duration=3600)
    role = sdk.create_role(
        owner, "high", trust_policy("acs:ram::1:root"), max_session_duration=43200
    ).body.role
    assert role.max_session_duration == 43200


def test_description_length(sdk, new_account):
    owner = new_account()
    assert sdk.create_role(owner, "ok", trust_policy("acs:ram::1:root"), description="d" * 1024)
    failure = error_of(
        sdk.create_role, owner, "long", trust_policy("acs:ram::1:root"), description="d" * 1025
    )
    assert (failure.code, failure.statusCode) == ("InvalidParameter.Description.Length", 400)


def test_role_names_are_unique_case_insensitively(sdk, new_account):
    owner = new_account()
    sdk.create_role(owner, "Ops", trust_policy("acs:ram::1:root"))
    for name in ("Ops", "ops", "OPS"):
        failure = error_of(sdk.create_role, owner, name, trust_policy("acs:ram::1:root"))
        assert (failure.code, failure.statusCode) == ("EntityAlreadyExists.Role", 409)
        assert failure.data["Message"] == "The role does already EXIST."
    # Lookups find the role whatever the case, and report its own spelling.
    assert sdk.ram(owner).get_role(ram.GetRoleRequest(role_name="oPs")).body.role.role_name == "Ops"


def test_roles_are_per_account(sdk, new_account):
    first, second = new_account(), new_account()
    sdk.create_role(first, "same", trust_policy("acs:ram::1:root"))
    assert sdk.create_role(second, "same", trust_policy("acs:ram::1:root")).body.role.arn == (
        f"acs:ram::{second.uid}:role/same"
    )
    failure = error_of(sdk.ram(second).delete_role, ram.DeleteRoleRequest(role_name="nope"))
    assert failure.code == "EntityNotExist.Role"


def test_attach_detach_list_and_delete_conflict(sdk, new_account):
    owner = new_account()
    client = sdk.ram(owner)
    sdk.create_role(owner, "r", trust_policy("acs:ram::1:root"))
    sdk.attach_to_role(owner, "r", "AliyunECSFullAccess")

    again = error_of(sdk.attach_to_role, owner, "r", "AliyunECSFullAccess")
    assert (again.code, again.statusCode) == ("EntityAlreadyExists.Role.Policy", 409)

    listed = client.list_policies_for_role(ram.ListPoliciesForRoleRequest(role_name="r")).body
    [entry] = listed.policies.policy
    assert (entry.policy_name, entry.policy_type, entry.default_version) == (
        "AliyunECSFullAccess",
        "System",
        "v1",
    )
    assert DATE_RE.match(entry.attach_date)

    conflict = error_of(client.delete_role, ram.DeleteRoleRequest(role_name="r"))
    assert (conflict.code, conflict.statusCode) == ("DeleteConflict.Role.Policy", 409)
    assert conflict.data["Message"] == (
        "The role CAN NOT has any attached policy while deleting the role."
    )

    detach = ram.DetachPolicyFromRoleRequest(
        policy_type="System", policy_name="AliyunECSFullAccess", role_name="r"
    )
    client.detach_policy_from_role(detach)
    not_attached = error_of(client.detach_policy_from_role, detach)
    assert (not_attached.code, not_attached.statusCode) == ("EntityNotExist.Role.Policy", 404)
    client.delete_role(ram.DeleteRoleRequest(role_name="r"))


def test_attach_errors(sdk, new_account):
    owner = new_account()
    sdk.create_role(owner, "r", trust_policy("acs:ram::1:root"))
    bad_type = error_of(sdk.attach_to_role, owner, "r", "AliyunECSFullAccess", "Builtin")
    assert (bad_type.code, bad_type.statusCode) == ("InvalidParameter.PolicyType", 400)
    no_policy = error_of(sdk.attach_to_role, owner, "r", "NoSuchPolicy")
    assert (no_policy.code, no_policy.statusCode) == ("EntityNotExist.Policy", 404)
    wrong_case = error_of(sdk.attach_to_role, owner, "r", "aliyunecsfullaccess")
    assert wrong_case.code == "EntityNotExist.Policy"
    custom_as_system = error_of(sdk.attach_to_role, owner, "r", "AliyunECSFullAccess", "Custom")
    assert custom_as_system.code == "EntityNotExist.Policy"
    no_role = error_of(sdk.attach_to_role, owner, "ghost", "AliyunECSFullAccess")
    assert (no_role.code, no_role.statusCode) == ("EntityNotExist.Role", 404)


def test_policy_quotas_per_role(sdk, new_account):
    owner = new_account()
    client = sdk.ram(owner)
    sdk.create_role(owner, "r", trust_policy("acs:ram::1:root"))
    for index in range(6):
        client.create_policy(
            ram.CreatePolicyRequest(
                policy_name=f"p{index}", policy_document=permission_policy("ecs:*")
            )
        )
    for index in range(5):
        sdk.attach_to_role(owner, "r", f"p{index}", "Custom")
    over = error_of(sdk.attach_to_role, owner, "r", "p5", "Custom")
    assert (over.code, over.statusCode) == ("LimitExceeded.Role.Policy", 409)


def test_list_roles_paging(sdk, new_account):
    owner = new_account()
    names = [f"role-{index:02d}" for index in range(7)]
    for name in names:
        sdk.create_role(owner, name, trust_policy("acs:ram::1:root"))
    client = sdk.ram(owner)
    seen, marker, pages = [], None, 0
    while True:
        page = client.list_roles(ram.ListRolesRequest(max_items=3, marker=marker)).body
        pages += 1
        seen += [role.role_name for role in page.roles.role]
        if not page.is_truncated:
            assert page.marker is None
            break
        assert page.is_truncated is True and page.marker
        marker = page.marker
    assert seen == names and pages == 3
    everything = client.list_roles(ram.ListRolesRequest()).body
    assert [r.role_name for r in everything.roles.role] == names
    assert everything.is_truncated is False


@pytest.mark.parametrize(
    ("field", "value"), [("max_items", 0), ("max_items", 1001), ("marker", "%%%")]
)
def test_list_roles_bad_paging(sdk, new_account, field, value):
    failure = error_of(sdk.ram(new_account()).list_roles, ram.ListRolesRequest(**{field: value}))
    assert failure.statusCode == 400
    assert failure.code in ("InvalidParameter.MaxItems", "InvalidParameter.Marker")


def test_ram_user_needs_policies_for_role_calls(sdk, new_account, new_user):
    owner = new_account()
    sdk.create_role(owner, "r", trust_policy("acs:ram::1:root"))
    carol = new_user(owner, "carol")
    denied = error_of(sdk.ram(carol).get_role, ram.GetRoleRequest(role_name="r"))
    assert (denied.code, denied.statusCode) == ("NoPermission", 403)

    sdk.attach_to_user(owner, "carol", "AliyunRAMReadOnlyAccess")
    assert sdk.ram(carol).get_role(ram.GetRoleRequest(role_name="r")).body.role.role_name == "r"
    write_denied = error_of(sdk.create_role, carol, "mine", trust_policy("acs:ram::1:root"))
    assert write_denied.code == "NoPermission"


def test_resource_scoped_custom_policy_and_explicit_deny(sdk, new_account, new_user):
    owner = new_account()
    sdk.create_role(owner, "team-a", trust_policy("acs:ram::1:root"))
    sdk.create_role(owner, "team-b", trust_policy("acs:ram::1:root"))
    dave = new_user(owner, "dave")
    client = sdk.ram(owner)
    client.create_policy(
        ram.CreatePolicyRequest(
            policy_name="team-a-admin",
            policy_document=permission_policy("ram:*", f"acs:ram:*:{owner.uid}:role/team-a"),
        )
    )
    client.create_policy(
        ram.CreatePolicyRequest(
            policy_name="no-delete",
            policy_document=permission_policy("ram:DeleteRole", "*", effect="Deny"),
        )
    )
    sdk.attach_to_user(owner, "dave", "team-a-admin", "Custom")
    sdk.attach_to_user(owner, "dave", "AdministratorAccess")
    sdk.attach_to_user(owner, "dave", "no-delete", "Custom")

    as_dave = sdk.ram(dave)
    assert as_dave.get_role(ram.GetRoleRequest(role_name="team-b")).body.role
    denied = error_of(as_dave.delete_role, ram.DeleteRoleRequest(role_name="team-a"))
    assert (denied.code, denied.statusCode) == ("NoPermission", 403)


def test_source_ip_condition(sdk, new_account, new_user):
    owner = new_account()
    sdk.create_role(owner, "r", trust_policy("acs:ram::1:root"))
    client = sdk.ram(owner)
    for name, network in (("from-loopback", "127.0.0.0/8"), ("from-elsewhere", "10.0.0.0/8")):
        client.create_policy(
            ram.CreatePolicyRequest(
                policy_name=name,
                policy_document=permission_policy(
                    "ram:GetRole", "*", condition={"IpAddress": {"acs:SourceIp": [network]}}
                ),
            )
        )
    inside, outside = new_user(owner, "inside"), new_user(owner, "outside")
    sdk.attach_to_user(owner, "inside", "from-loopback", "Custom")
    sdk.attach_to_user(owner, "outside", "from-elsewhere", "Custom")
    assert sdk.ram(inside).get_role(ram.GetRoleRequest(role_name="r")).body.role
    denied = error_of(sdk.ram(outside).get_role, ram.GetRoleRequest(role_name="r"))
    assert denied.code == "NoPermission"


def test_role_quota(sdk, new_account):
    """LimitExceeded.Role at 1000 roles per account (creating 1000 takes a few seconds)."""
    owner = new_account()
    client = sdk.ram(owner)
    trust = trust_policy("acs:ram::1:root")
    for index in range(1000):
        client.create_role(
            ram.CreateRoleRequest(role_name=f"r{index}", assume_role_policy_document=trust)
        )
    over = error_of(sdk.create_role, owner, "one-too-many", trust)
    assert (over.code, over.statusCode) == ("LimitExceeded.Role", 409)
