"""STS AssumeRole and GetCallerIdentity through the official SDK."""

from __future__ import annotations

import time
from calendar import timegm

import pytest
from alibabacloud_ram20150501 import models as ram
from alibabacloud_sts20150401 import models as sts

from tests.cloudsim.conftest import Keys, error_of, permission_policy, trust_policy


@pytest.fixture
def delegation(sdk, partner_pair):
    """Owner role "deleg" (max 2 h) trusting the partner; Alice may assume roles."""
    owner, partner = partner_pair.owner, partner_pair.partner
    role = sdk.create_role(
        owner, "deleg", trust_policy(partner.root_arn), max_session_duration=7200
    ).body.role
    sdk.attach_to_role(owner, "deleg", "AliyunRAMReadOnlyAccess")
    sdk.attach_to_user(partner, "Alice", "AliyunSTSAssumeRoleAccess")
    return partner_pair, role


def _assume_error(sdk, caller, **fields):
    fields.setdefault("role_session_name", "session")
    return error_of(sdk.sts(caller).assume_role, sts.AssumeRoleRequest(**fields))


def test_assume_role_response_shape(sdk, delegation):
    pair, role = delegation
    before = time.time()
    body = (
        sdk.sts(pair.alice)
        .assume_role(
            sts.AssumeRoleRequest(
                role_arn=role.arn,
                role_session_name="alice@partner",
                duration_seconds=1800,
            )
        )
        .body
    )
    credentials = body.credentials
    assert credentials.access_key_id.startswith("STS.")
    assert credentials.access_key_secret and credentials.security_token.startswith("CAIS")
    expires = timegm(time.strptime(credentials.expiration, "%Y-%m-%dT%H:%M:%SZ"))
    assert before + 1800 - 2 <= expires <= time.time() + 1800 + 1
    assert body.assumed_role_user.arn == f"{role.arn}/alice@partner"
    assert body.assumed_role_user.assumed_role_id == f"{role.role_id}:alice@partner"


def test_get_caller_identity_for_every_identity_type(sdk, delegation):
    pair, role = delegation
    root = sdk.caller(pair.owner)
    assert (root.identity_type, root.arn, root.account_id) == (
        "Account",
        f"acs:ram::{pair.owner.uid}:root",
        pair.owner.uid,
    )
    assert root.user_id is None
    user = sdk.caller(pair.alice)
    assert (user.identity_type, user.arn) == ("RAMUser", f"acs:ram::{pair.partner.uid}:user/Alice")
    assert user.user_id and user.principal_id == user.user_id
    session = sdk.caller(sdk.assume(pair.alice, role.arn, "s1"))
    assert (session.identity_type, session.arn, session.account_id) == (
        "AssumedRoleUser",
        f"acs:ram::{pair.owner.uid}:assumed-role/deleg/s1",
        pair.owner.uid,
    )
    assert (session.role_id, session.principal_id) == (role.role_id, f"{role.role_id}:s1")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::1:role/x",
        "acs:ram::123:role/",
        "acs:ram::abc:role/x",
        "acs:ram::1:user/x",
        "acs:ram::1:role/a b",
    ],
)
def test_role_arn_format(sdk, delegation, arn):
    pair, _ = delegation
    failure = _assume_error(sdk, pair.alice, role_arn=arn)
    assert (failure.code, failure.statusCode) == ("InvalidParameter.RoleArn", 400)
    assert failure.data["Message"] == "The parameter RoleArn is wrongly formed."


@pytest.mark.parametrize(
    "name", ["a", "x" * 65, "has space", "new\nline", "emoji-😀", "semi;colon"]
)
def test_role_session_name_rules(sdk, delegation, name):
    pair, role = delegation
    failure = _assume_error(sdk, pair.alice, role_arn=role.arn, role_session_name=name)
    assert (failure.code, failure.statusCode) == ("InvalidParameter.RoleSessionName", 400)


@pytest.mark.parametrize("name", ["ab", "x" * 64, "a.b@c_d-e"])
def test_role_session_names_that_pass(sdk, delegation, name):
    pair, role = delegation
    assert sdk.assume(pair.alice, role.arn, name)


@pytest.mark.parametrize("duration", [899, 7201, 0, -1])
def test_duration_seconds_range(sdk, delegation, duration):
    pair, role = delegation
    failure = _assume_error(sdk, pair.alice, role_arn=role.arn, duration_seconds=duration)
    assert (failure.code, failure.statusCode) == ("InvalidParameter.DurationSeconds", 400)


def test_duration_bounds_accepted(sdk, delegation):
    pair, role = delegation
    assert sdk.assume(pair.alice, role.arn, duration_seconds=900)
    assert sdk.assume(pair.alice, role.arn, duration_seconds=7200)


def test_session_policy_size_and_grammar(sdk, delegation):
    pair, role = delegation
    too_big = permission_policy(["ram:GetRole"] * 200)
    assert len(too_big) > 2048
    size = _assume_error(sdk, pair.alice, role_arn=role.arn, policy=too_big)
    assert (size.code, size.statusCode) == ("InvalidParameter.PolicySize", 400)
    grammar = _assume_error(sdk, pair.alice, role_arn=role.arn, policy='{"Version":"1"}')
    assert (grammar.code, grammar.statusCode) == ("InvalidParameter.PolicyGrammar", 400)
    not_json = _assume_error(sdk, pair.alice, role_arn=role.arn, policy="allow everything")
    assert not_json.code == "InvalidParameter.PolicyGrammar"


def test_root_may_not_assume_roles(sdk, delegation):
    pair, role = delegation
    failure = _assume_error(sdk, pair.partner, role_arn=role.arn)
    assert (failure.code, failure.statusCode) == ("NoPermission", 403)
    assert failure.data["Message"] == "Roles may not be assumed by root accounts."


def test_missing_role(sdk, delegation):
    pair, _ = delegation
    failure = _assume_error(sdk, pair.alice, role_arn=f"acs:ram::{pair.owner.uid}:role/ghost")
    assert (failure.code, failure.statusCode) == ("EntityNotExist.Role", 404)
    missing = _assume_error(sdk, pair.alice)
    assert (missing.code, missing.statusCode) == ("MissingParameter", 400)


def test_external_id_condition(sdk, partner_pair):
    owner, partner = partner_pair.owner, partner_pair.partner
    role = sdk.create_role(
        owner,
        "with-external-id",
        trust_policy(partner.root_arn, condition={"StringEquals": {"sts:ExternalId": "abc-123"}}),
    ).body.role
    sdk.attach_to_user(partner, "Alice", "AliyunSTSAssumeRoleAccess")
    assert sdk.assume(partner_pair.alice, role.arn, external_id="abc-123")
    wrong = _assume_error(sdk, partner_pair.alice, role_arn=role.arn, external_id="zzz-999")
    assert wrong.code == "NoPermission"
    absent = _assume_error(sdk, partner_pair.alice, role_arn=role.arn)
    assert absent.code == "NoPermission"
    malformed = _assume_error(sdk, partner_pair.alice, role_arn=role.arn, external_id="a")
    assert (malformed.code, malformed.statusCode) == ("InvalidParameter.ExternalId", 400)


def test_role_chaining_is_capped_at_an_hour(sdk, new_account):
    first, second = new_account(), new_account()
    hop_role = sdk.create_role(first, "hop", trust_policy(service="oos.aliyuncs.com")).body.role
    sdk.attach_to_role(first, "hop", "AliyunSTSAssumeRoleAccess")
    target = sdk.create_role(
        second,
        "target",
        trust_policy(f"acs:ram::{first.uid}:role/hop"),
        max_session_duration=43200,
    ).body.role
    hop = _service_session(sdk, hop_role.arn)
    too_long = _assume_error(sdk, hop, role_arn=target.arn, duration_seconds=3601)
    assert too_long.code == "InvalidParameter.DurationSeconds"
    assert sdk.caller(sdk.assume(hop, target.arn, duration_seconds=3600)).account_id == second.uid


def test_source_identity_follows_the_chain(sdk, new_account, new_user):
    first, second = new_account(), new_account()
    new_user(first, "Alice")
    alice_keys = (
        sdk.ram(first)
        .create_access_key(ram.CreateAccessKeyRequest(user_name="Alice"))
        .body.access_key
    )
    alice = Keys(alice_keys.access_key_id, alice_keys.access_key_secret)
    sdk.attach_to_user(first, "Alice", "AliyunSTSAssumeRoleAccess")
    middle = sdk.create_role(first, "middle", trust_policy(first.root_arn)).body.role
    sdk.attach_to_role(first, "middle", "AliyunSTSAssumeRoleAccess")
    end = sdk.create_role(
        second, "end", trust_policy(f"acs:ram::{first.uid}:role/middle")
    ).body.role
    response = (
        sdk.sts(alice)
        .assume_role(
            sts.AssumeRoleRequest(
                role_arn=middle.arn,
                role_session_name="mid",
                source_identity="alice.smith",
            )
        )
        .body
    )
    assert response.source_identity == "alice.smith"
    middle_keys = Keys(
        response.credentials.access_key_id,
        response.credentials.access_key_secret,
        response.credentials.security_token,
    )
    chained = (
        sdk.sts(middle_keys)
        .assume_role(sts.AssumeRoleRequest(role_arn=end.arn, role_session_name="end"))
        .body
    )
    assert chained.source_identity == "alice.smith"
    changed = _assume_error(sdk, middle_keys, role_arn=end.arn, source_identity="mallory")
    assert changed.code == "InvalidParameter.SourceIdentity"


def test_deleting_the_role_ends_its_sessions_permissions(sdk, delegation):
    pair, role = delegation
    session = sdk.assume(pair.alice, role.arn)
    assert sdk.ram(session).get_role(ram.GetRoleRequest(role_name="deleg")).body
    owner = sdk.ram(pair.owner)
    owner.detach_policy_from_role(
        ram.DetachPolicyFromRoleRequest(
            policy_type="System", policy_name="AliyunRAMReadOnlyAccess", role_name="deleg"
        )
    )
    owner.delete_role(ram.DeleteRoleRequest(role_name="deleg"))
    owner.create_role(
        ram.CreateRoleRequest(
            role_name="deleg", assume_role_policy_document=trust_policy(pair.partner.root_arn)
        )
    )
    owner.attach_policy_to_role(
        ram.AttachPolicyToRoleRequest(
            policy_type="System", policy_name="AliyunRAMReadOnlyAccess", role_name="deleg"
        )
    )
    # A role re-created under the same name is a different role (new RoleId): the old
    # session keeps its identity but gets none of the new role's permissions.
    denied = error_of(sdk.ram(session).get_role, ram.GetRoleRequest(role_name="deleg"))
    assert denied.code == "NoPermission"


def _service_session(sdk, role_arn: str):
    body = sdk.sim.request(
        "POST",
        "/_sim/service-assume-role",
        {
            "service": "oos.aliyuncs.com",
            "role_arn": role_arn,
            "session_name": "svc",
        },
    )["Credentials"]
    return Keys(body["AccessKeyId"], body["AccessKeySecret"], body["SecurityToken"])
