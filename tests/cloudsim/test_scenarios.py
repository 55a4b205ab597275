"""The product's scenarios end to end, through the unmodified official SDKs."""

from __future__ import annotations

import json

import pytest
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi import utils_models

from tests.cloudsim.conftest import Keys, error_of, permission_policy, trust_policy, unique
from tests.fixtures.cloudsim import CloudSimError


def test_partner_delegation_lifecycle_with_the_demo_accounts(cloudsim, sdk):
    """A creates ecs-admin trusting B; B lets Alice assume it; A revokes B."""
    company_a = cloudsim.account("company-a")
    company_b = cloudsim.account("company-b")
    a_root = _keys(company_a["root"])
    b_root = _keys(company_b["root"])
    alice = _keys(next(u for u in company_b["users"] if u["name"] == "Alice"))
    role_name = unique("ecs-admin")

    created = sdk.create_role(
        a_root,
        role_name,
        trust_policy("acs:ram::12345678:root"),
        description="ECS administration for company-b",
        max_session_duration=3600,
    ).body.role
    assert created.arn == f"acs:ram::11223344:role/{role_name}"
    assert created.max_session_duration == 3600
    sdk.attach_to_role(a_root, role_name, "AliyunECSFullAccess")

    # Before B grants Alice anything, her own policies do not allow sts:AssumeRole.
    denied = error_of(sdk.assume, alice, created.arn, "alice")
    assert (denied.code, denied.statusCode) == ("NoPermission", 403)

    sdk.attach_to_user(b_root, "Alice", "AliyunSTSAssumeRoleAccess")
    try:
        session = sdk.assume(alice, created.arn, "alice-at-b", duration_seconds=900)
        identity = sdk.caller(session)
        assert identity.identity_type == "AssumedRoleUser"
        assert identity.arn == f"acs:ram::11223344:assumed-role/{role_name}/alice-at-b"
        assert identity.account_id == "11223344"

        # Alice lists company-a's instances in both regions and stops one.
        ecs = EcsClient(sdk.config(session))
        names = {}
        for region in ("cn-hangzhou", "cn-shanghai"):
            listed = ecs.describe_instances(
                ecs_models.DescribeInstancesRequest(region_id=region, page_size=100)
            ).body.instances.instance
            names[region] = {i.instance_name: i for i in listed}
        assert {"web-1", "web-2"} <= set(names["cn-hangzhou"])
        assert "db-1" in names["cn-shanghai"]
        target = names["cn-shanghai"]["db-1"]
        assert target.status == "Running"
        ecs.stop_instance(ecs_models.StopInstanceRequest(instance_id=target.instance_id))
        after = ecs.describe_instances(
            ecs_models.DescribeInstancesRequest(
                region_id="cn-shanghai", instance_ids=json.dumps([target.instance_id])
            )
        ).body.instances.instance
        assert [i.status for i in after] in (["Stopping"], ["Stopped"])
        # With her own keys Alice has no ECS permission at all.
        own = error_of(
            EcsClient(sdk.config(alice)).describe_instances,
            ecs_models.DescribeInstancesRequest(region_id="cn-shanghai"),
        )
        assert (own.code, own.statusCode) == ("Forbidden.RAM", 403)

        # A removes B from the trust policy: Alice's next AssumeRole fails ...
        sdk.ram(a_root).update_role(
            ram_models.UpdateRoleRequest(
                role_name=role_name,
                new_assume_role_policy_document=trust_policy("acs:ram::99999999:root"),
            )
        )
        revoked = error_of(sdk.assume, alice, created.arn, "alice-again")
        assert (revoked.code, revoked.statusCode) == ("NoPermission", 403)
        # ... while the credentials already issued keep working until they expire.
        assert sdk.caller(session).arn.endswith(f"{role_name}/alice-at-b")
    finally:
        sdk.ram(b_root).detach_policy_from_user(
            ram_models.DetachPolicyFromUserRequest(
                policy_type="System", policy_name="AliyunSTSAssumeRoleAccess", user_name="Alice"
            )
        )


def test_detaching_a_policy_from_the_role_cuts_off_issued_credentials(sdk, partner_pair):
    owner, partner = partner_pair.owner, partner_pair.partner
    role = sdk.create_role(owner, "reader", trust_policy(partner.root_arn)).body.role
    sdk.attach_to_role(owner, "reader", "AliyunRAMReadOnlyAccess")
    sdk.attach_to_user(partner, "Alice", "AliyunSTSAssumeRoleAccess")
    session = sdk.assume(partner_pair.alice, role.arn)

    listed = sdk.ram(session).list_roles(ram_models.ListRolesRequest()).body
    assert [r.role_name for r in listed.roles.role] == ["reader"]

    sdk.ram(owner).detach_policy_from_role(
        ram_models.DetachPolicyFromRoleRequest(
            policy_type="System", policy_name="AliyunRAMReadOnlyAccess", role_name="reader"
        )
    )
    cut_off = error_of(sdk.ram(session).list_roles, ram_models.ListRolesRequest())
    assert (cut_off.code, cut_off.statusCode) == ("NoPermission", 403)


def test_a_single_user_trust_admits_alice_and_not_bob(sdk, partner_pair):
    owner, partner = partner_pair.owner, partner_pair.partner
    role = sdk.create_role(
        owner, "alice-only", trust_policy(f"acs:ram::{partner.uid}:user/Alice")
    ).body.role
    for user in ("Alice", "Bob"):
        sdk.attach_to_user(partner, user, "AliyunSTSAssumeRoleAccess")

    session = sdk.assume(partner_pair.alice, role.arn, "alice")
    assert sdk.caller(session).arn == f"acs:ram::{owner.uid}:assumed-role/alice-only/alice"
    refused = error_of(sdk.assume, partner_pair.bob, role.arn, "bob")
    assert (refused.code, refused.statusCode) == ("NoPermission", 403)


def test_the_callers_own_policy_must_allow_assume_role_on_that_role(sdk, partner_pair):
    owner, partner = partner_pair.owner, partner_pair.partner
    allowed = sdk.create_role(owner, "allowed", trust_policy(partner.root_arn)).body.role
    other = sdk.create_role(owner, "other", trust_policy(partner.root_arn)).body.role
    sdk.ram(partner).create_policy(
        ram_models.CreatePolicyRequest(
            policy_name="assume-allowed-only",
            policy_document=permission_policy("sts:AssumeRole", allowed.arn),
        )
    )
    sdk.attach_to_user(partner, "Alice", "assume-allowed-only", "Custom")

    sdk.assume(partner_pair.alice, allowed.arn)
    refused = error_of(sdk.assume, partner_pair.alice, other.arn)
    assert refused.code == "NoPermission"


def test_a_session_policy_narrows_the_role(sdk, partner_pair):
    owner, partner = partner_pair.owner, partner_pair.partner
    role = sdk.create_role(owner, "wide", trust_policy(partner.root_arn)).body.role
    sdk.attach_to_role(owner, "wide", "AliyunRAMReadOnlyAccess")
    sdk.attach_to_user(partner, "Alice", "AliyunSTSAssumeRoleAccess")
    narrowed = sdk.assume(
        partner_pair.alice,
        role.arn,
        policy=permission_policy("ram:GetRole", f"acs:ram:*:{owner.uid}:role/wide"),
    )
    assert sdk.ram(narrowed).get_role(ram_models.GetRoleRequest(role_name="wide")).body.role
    refused = error_of(sdk.ram(narrowed).list_roles, ram_models.ListRolesRequest())
    assert refused.code == "NoPermission"


def test_oos_style_role_chain_across_accounts(cloudsim, sdk, new_account):
    """The OOS service assumes OOSServiceRole in A, which assumes OOSServiceRole in B."""
    account_a = new_account()
    account_b = new_account()
    sdk.create_role(account_a, "OOSServiceRole", trust_policy(service="oos.aliyuncs.com"))
    sdk.ram(account_a).create_policy(
        ram_models.CreatePolicyRequest(
            policy_name="assume-oos-roles",
            policy_document=permission_policy("sts:AssumeRole", "acs:ram:*:*:role/OOSServiceRole"),
        )
    )
    sdk.attach_to_role(account_a, "OOSServiceRole", "assume-oos-roles", "Custom")
    target = sdk.create_role(
        account_b, "OOSServiceRole", trust_policy(f"acs:ram::{account_a.uid}:role/OOSServiceRole")
    ).body.role
    sdk.attach_to_role(account_b, "OOSServiceRole", "AliyunECSReadOnlyAccess")

    first_hop = cloudsim.request(
        "POST",
        "/_sim/service-assume-role",
        {
            "service": "oos.aliyuncs.com",
            "role_arn": f"acs:ram::{account_a.uid}:role/OOSServiceRole",
            "session_name": "oos-execution",
        },
    )["Credentials"]
    hop_a = _keys(
        {
            "access_key_id": first_hop["AccessKeyId"],
            "access_key_secret": first_hop["AccessKeySecret"],
        }
    )
    hop_a.security_token = first_hop["SecurityToken"]
    assert sdk.caller(hop_a).arn == (
        f"acs:ram::{account_a.uid}:assumed-role/OOSServiceRole/oos-execution"
    )

    hop_b = sdk.assume(hop_a, target.arn, "oos-chain")
    identity = sdk.caller(hop_b)
    assert identity.account_id == account_b.uid
    assert identity.arn == f"acs:ram::{account_b.uid}:assumed-role/OOSServiceRole/oos-chain"
    assert identity.role_id == target.role_id

    # A role that does not trust the service refuses it.
    sdk.create_role(account_b, "NotForServices", trust_policy(account_a.root_arn))
    with pytest.raises(CloudSimError, match="NoPermission"):
        cloudsim.request(
            "POST",
            "/_sim/service-assume-role",
            {
                "service": "oos.aliyuncs.com",
                "role_arn": f"acs:ram::{account_b.uid}:role/NotForServices",
            },
        )


def test_credentials_library_ram_role_arn_provider(cloudsim, sdk, partner_pair):
    """alibabacloud-credentials' ram_role_arn provider (GET + v1 signature) against cloudsim."""
    owner, partner = partner_pair.owner, partner_pair.partner
    role = sdk.create_role(owner, "via-provider", trust_policy(partner.root_arn)).body.role
    sdk.attach_to_user(partner, "Alice", "AliyunSTSAssumeRoleAccess")
    credential = CredentialClient(
        CredentialConfig(
            type="ram_role_arn",
            access_key_id=partner_pair.alice.access_key_id,
            access_key_secret=partner_pair.alice.access_key_secret,
            role_arn=role.arn,
            role_session_name="provider-session",
            sts_endpoint=cloudsim.url,
        )
    )
    client = StsClient(
        utils_models.Config(credential=credential, endpoint=cloudsim.endpoint, protocol="http")
    )
    identity = client.get_caller_identity().body
    assert identity.arn == f"acs:ram::{owner.uid}:assumed-role/via-provider/provider-session"


def _keys(entry: dict) -> Keys:
    return Keys(entry["access_key_id"], entry["access_key_secret"])
