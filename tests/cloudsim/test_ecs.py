"""ECS 2014-05-26 through the official SDK: shapes, paging, filters, state, permissions.

These tests run their own emulator (demo data, 1-second power transitions) because they change
the demo instances' state; the session's shared emulator stays as the demo seeded it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from alibabacloud_ecs20140526 import models as ecs
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_ram20150501 import models as ram

from tests.cloudsim.conftest import Keys, Sdk, error_of, permission_policy, trust_policy
from tests.fixtures.cloudsim import CloudSim

TRANSITION_SECONDS = 0.5
A_UID, B_UID = "11223344", "12345678"


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Iterator[CloudSim]:
    emulator = CloudSim(
        data_dir=tmp_path_factory.mktemp("cloudsim-ecs"),
        env={"CLOUDSIM_ECS_TRANSITION_SECONDS": str(TRANSITION_SECONDS)},
    ).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def sdk(sim) -> Sdk:
    return Sdk(sim)


def keys(sim: CloudSim, alias: str, user: str | None = None) -> Keys:
    return Keys(*(sim.user_key(alias, user) if user else sim.root_key(alias)))


def client(sdk: Sdk, who: Keys) -> EcsClient:
    return EcsClient(sdk.config(who))


def describe(sdk: Sdk, who: Keys, region: str = "cn-hangzhou", **fields):
    return (
        client(sdk, who)
        .describe_instances(ecs.DescribeInstancesRequest(region_id=region, **fields))
        .body
    )


def instance_named(sdk: Sdk, who: Keys, name: str):
    for region in ("cn-hangzhou", "cn-shanghai"):
        for instance in describe(sdk, who, region, page_size=100).instances.instance:
            if instance.instance_name == name:
                return instance
    raise LookupError(name)


def wait_for_status(sdk: Sdk, who: Keys, instance, status: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = describe(
            sdk, who, instance.region_id, instance_ids=json.dumps([instance.instance_id])
        ).instances.instance
        if found[0].status == status:
            return
        assert time.monotonic() < deadline, f"{instance.instance_name} stuck in {found[0].status}"
        time.sleep(0.1)


# --- reads -----------------------------------------------------------------------------------


def test_root_lists_its_instances_in_both_demo_regions(sim, sdk):
    root = keys(sim, "company-a")
    hangzhou = describe(sdk, root)
    assert hangzhou.request_id
    assert (hangzhou.total_count, hangzhou.page_number, hangzhou.page_size) == (3, 1, 10)
    names = sorted(i.instance_name for i in hangzhou.instances.instance)
    assert names == ["batch-1", "web-1", "web-2"]
    web = next(i for i in hangzhou.instances.instance if i.instance_name == "web-1")
    assert web.instance_id.startswith("i-")
    assert (web.region_id, web.zone_id) == ("cn-hangzhou", "cn-hangzhou-h")
    assert web.status in ("Running", "Stopping", "Stopped", "Starting")
    assert isinstance(web.cpu, int) and isinstance(web.memory, int)
    assert web.io_optimized is True and web.instance_network_type == "vpc"
    assert web.vpc_attributes.private_ip_address.ip_address == ["172.16.0.11"]
    assert web.vpc_attributes.vpc_id.startswith("vpc-")
    assert web.security_group_ids.security_group_id[0].startswith("sg-")
    assert web.network_interfaces.network_interface[0].primary_ip_address == "172.16.0.11"
    assert len(web.creation_time) == len("2024-01-02T03:04Z") and web.creation_time.endswith("Z")
    assert web.instance_type_family == "ecs.g7"

    shanghai = describe(sdk, root, "cn-shanghai")
    assert sorted(i.instance_name for i in shanghai.instances.instance) == ["db-1", "reporting-1"]
    beijing = describe(sdk, root, "cn-beijing")
    assert sorted(i.instance_name for i in beijing.instances.instance) == ["api-1", "api-2"]
    assert describe(sdk, root, "cn-qingdao").total_count == 0


def test_paging_with_page_number_and_with_tokens(sim, sdk):
    root = keys(sim, "company-a")
    pages = [describe(sdk, root, page_size=2, page_number=n) for n in (1, 2, 3)]
    assert [len(p.instances.instance) for p in pages] == [2, 1, 0]
    assert all(p.total_count == 3 and p.page_size == 2 for p in pages)
    seen = [i.instance_id for p in pages for i in p.instances.instance]
    assert len(set(seen)) == 3

    first = describe(sdk, root, max_results=1)  # clamped up to 10, as ECS documents
    assert len(first.instances.instance) == 3 and first.next_token == ""
    bad = error_of(describe, sdk, root, next_token="not-a-token")
    assert (bad.code, bad.statusCode) == ("InvalidParameter", 400)


def test_filters(sim, sdk):
    root = keys(sim, "company-a")
    everything = describe(sdk, root).instances.instance
    ids = [i.instance_id for i in everything]
    picked = describe(sdk, root, instance_ids=json.dumps(ids[:2])).instances.instance
    assert sorted(i.instance_id for i in picked) == sorted(ids[:2])
    assert describe(sdk, root, instance_ids=json.dumps(["i-missing"])).total_count == 0

    statuses = {i.instance_id: i.status for i in everything}
    for status in set(statuses.values()):
        found = describe(sdk, root, status=status).instances.instance
        assert {i.instance_id for i in found} == {k for k, v in statuses.items() if v == status}

    named = describe(sdk, root, instance_name="web-*").instances.instance
    assert sorted(i.instance_name for i in named) == ["web-1", "web-2"]
    assert [
        i.instance_name for i in describe(sdk, root, zone_id="cn-hangzhou-i").instances.instance
    ] == ["batch-1"]


@pytest.mark.parametrize(
    ("fields", "code", "status"),
    [
        ({"region_id": None}, "MissingParameter", 400),
        ({"region_id": "mars-north-1"}, "InvalidRegionId.NotFound", 404),
        ({"instance_ids": "i-1,i-2"}, "InvalidInstanceIds.Malformed", 400),
        ({"instance_ids": json.dumps([1, 2])}, "InvalidInstanceIds.Malformed", 400),
        (
            {"instance_ids": json.dumps([f"i-{n}" for n in range(101)])},
            "InvalidInstanceIds.Malformed",
            400,
        ),
        ({"status": "Exploded"}, "InvalidParameter", 400),
        ({"page_size": 101}, "InvalidParameter", 400),
        ({"page_number": 0}, "InvalidParameter", 400),
    ],
)
def test_describe_instances_rejects_bad_parameters(sim, sdk, fields, code, status):
    request = {"region_id": "cn-hangzhou", **fields}
    error = error_of(
        client(sdk, keys(sim, "company-a")).describe_instances,
        ecs.DescribeInstancesRequest(**request),
    )
    assert (error.code, error.statusCode) == (code, status)
    assert error.data["RequestId"] and error.data["HostId"] == "ecs.aliyuncs.com"


def test_describe_regions_in_both_languages(sim, sdk):
    ecs_client = client(sdk, keys(sim, "company-a"))
    chinese = ecs_client.describe_regions(ecs.DescribeRegionsRequest()).body.regions.region
    english = ecs_client.describe_regions(
        ecs.DescribeRegionsRequest(accept_language="en-US")
    ).body.regions.region
    hangzhou = next(r for r in chinese if r.region_id == "cn-hangzhou")
    assert hangzhou.local_name == "华东1（杭州）"  # noqa: RUF001 - Alibaba's own punctuation
    assert hangzhou.region_endpoint == "ecs.cn-hangzhou.aliyuncs.com"
    assert hangzhou.status == "available"
    assert next(r for r in english if r.region_id == "cn-hangzhou").local_name == (
        "China (Hangzhou)"
    )
    assert {"cn-hangzhou", "cn-shanghai", "ap-southeast-1"} <= {r.region_id for r in chinese}


def test_another_accounts_instances_do_not_exist_for_the_caller(sim, sdk):
    a_instance = instance_named(sdk, keys(sim, "company-a"), "reporting-1")
    b_root = keys(sim, "company-b")
    assert describe(sdk, b_root, "cn-shanghai").total_count == 0
    error = error_of(
        client(sdk, b_root).start_instance,
        ecs.StartInstanceRequest(instance_id=a_instance.instance_id),
    )
    assert (error.code, error.statusCode) == ("InvalidInstanceId.NotFound", 404)


# --- state -----------------------------------------------------------------------------------


def test_stop_start_and_reboot_move_through_the_documented_states(sim, sdk):
    root = keys(sim, "company-a")
    ecs_client = client(sdk, root)
    web = instance_named(sdk, root, "web-2")
    wait_for_status(sdk, root, web, "Running")

    dry = error_of(
        ecs_client.stop_instance, ecs.StopInstanceRequest(instance_id=web.instance_id, dry_run=True)
    )
    assert (dry.code, dry.statusCode) == ("DryRunOperation", 400)
    assert instance_named(sdk, root, "web-2").status == "Running"

    assert ecs_client.stop_instance(ecs.StopInstanceRequest(instance_id=web.instance_id)).body
    assert instance_named(sdk, root, "web-2").status == "Stopping"
    again = error_of(ecs_client.stop_instance, ecs.StopInstanceRequest(instance_id=web.instance_id))
    assert (again.code, again.statusCode) == ("IncorrectInstanceStatus", 403)
    wait_for_status(sdk, root, web, "Stopped")
    reboot_stopped = error_of(
        ecs_client.reboot_instance, ecs.RebootInstanceRequest(instance_id=web.instance_id)
    )
    assert reboot_stopped.code == "IncorrectInstanceStatus"

    ecs_client.start_instance(ecs.StartInstanceRequest(instance_id=web.instance_id))
    assert instance_named(sdk, root, "web-2").status == "Starting"
    wait_for_status(sdk, root, web, "Running")
    started_again = error_of(
        ecs_client.start_instance, ecs.StartInstanceRequest(instance_id=web.instance_id)
    )
    assert (started_again.code, started_again.statusCode) == ("IncorrectInstanceStatus", 403)

    ecs_client.reboot_instance(ecs.RebootInstanceRequest(instance_id=web.instance_id))
    assert instance_named(sdk, root, "web-2").status == "Starting"
    wait_for_status(sdk, root, web, "Running")

    missing = error_of(ecs_client.stop_instance, ecs.StopInstanceRequest(instance_id="i-nope"))
    assert (missing.code, missing.statusCode) == ("InvalidInstanceId.NotFound", 404)
    absent = error_of(ecs_client.stop_instance, ecs.StopInstanceRequest())
    assert (absent.code, absent.statusCode) == ("MissingParameter", 400)


def test_power_changes_are_in_the_call_log(sim, sdk):
    root = keys(sim, "company-a")
    batch = instance_named(sdk, root, "batch-1")
    wait_for_status(sdk, root, batch, "Stopped")
    since = sim.last_call_seq()
    client(sdk, root).start_instance(ecs.StartInstanceRequest(instance_id=batch.instance_id))
    wait_for_status(sdk, root, batch, "Running")
    entry = next(c for c in sim.calls(since) if c["action"] == "StartInstance")
    assert entry["product"] == "ecs" and entry["outcome"] == "success"
    assert entry["resource"] == f"acs:ecs:cn-hangzhou:{A_UID}:instance/{batch.instance_id}"
    assert entry["mutating"] is True


# --- permissions -----------------------------------------------------------------------------


def test_alice_manages_company_a_instances_only_while_the_role_allows(sim, sdk):
    """The product's scenario: A's ecs-admin trusts B; Alice assumes it and stops A's instance."""
    a_root, b_root = keys(sim, "company-a"), keys(sim, "company-b")
    alice = keys(sim, "company-b", "Alice")

    own = error_of(describe, sdk, alice)  # Alice's own account grants her nothing
    assert (own.code, own.statusCode) == ("Forbidden.RAM", 403)

    role = sdk.create_role(a_root, "ecs-admin", trust_policy(f"acs:ram::{B_UID}:root"))
    sdk.attach_to_role(a_root, "ecs-admin", "AliyunECSFullAccess")
    sdk.attach_to_user(b_root, "Alice", "AliyunSTSAssumeRoleAccess")
    session = sdk.assume(alice, role.body.role.arn, "alice")

    listed = {
        i.instance_name: i
        for region in ("cn-hangzhou", "cn-shanghai")
        for i in describe(sdk, session, region).instances.instance
    }
    assert set(listed) == {"web-1", "web-2", "batch-1", "db-1", "reporting-1"}
    db = listed["db-1"]
    wait_for_status(sdk, session, db, "Running")
    client(sdk, session).stop_instance(ecs.StopInstanceRequest(instance_id=db.instance_id))
    wait_for_status(sdk, session, db, "Stopped")

    # Read-only instead of full access: listing works, stopping is refused at once.
    ram_client = sdk.ram(a_root)
    ram_client.detach_policy_from_role(
        ram.DetachPolicyFromRoleRequest(
            policy_type="System", policy_name="AliyunECSFullAccess", role_name="ecs-admin"
        )
    )
    sdk.attach_to_role(a_root, "ecs-admin", "AliyunECSReadOnlyAccess")
    assert describe(sdk, session, "cn-shanghai").total_count == 2
    refused = error_of(
        client(sdk, session).start_instance, ecs.StartInstanceRequest(instance_id=db.instance_id)
    )
    assert (refused.code, refused.statusCode) == ("Forbidden.RAM", 403)
    assert f"instance/{db.instance_id}" in refused.data["Message"]

    # Revoked: with nothing attached, the credentials already issued can do nothing.
    ram_client.detach_policy_from_role(
        ram.DetachPolicyFromRoleRequest(
            policy_type="System", policy_name="AliyunECSReadOnlyAccess", role_name="ecs-admin"
        )
    )
    revoked = error_of(describe, sdk, session, "cn-shanghai")
    assert (revoked.code, revoked.statusCode) == ("Forbidden.RAM", 403)


def test_resource_arns_and_conditions_scope_a_users_ecs_permissions(sim, sdk):
    a_root = keys(sim, "company-a")
    operator = sim.create_user(A_UID, "ops-bot")
    bot = Keys(operator["access_key_id"], operator["access_key_secret"])
    web1 = instance_named(sdk, a_root, "web-1")
    reporting = instance_named(sdk, a_root, "reporting-1")
    document = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": ["ecs:StopInstance", "ecs:StartInstance"],
                    "Resource": f"acs:ecs:*:{A_UID}:instance/{web1.instance_id}",
                },
                {
                    # Requests come from 127.0.0.1, so this Deny never applies to the bot ...
                    "Effect": "Deny",
                    "Action": "ecs:*",
                    "Resource": "*",
                    "Condition": {"NotIpAddress": {"acs:SourceIp": "127.0.0.0/8"}},
                },
            ],
        }
    )
    sdk.ram(a_root).create_policy(
        ram.CreatePolicyRequest(policy_name="web1-operator", policy_document=document)
    )
    sdk.attach_to_user(a_root, "ops-bot", "web1-operator", policy_type="Custom")

    wait_for_status(sdk, bot, web1, "Running")
    client(sdk, bot).stop_instance(ecs.StopInstanceRequest(instance_id=web1.instance_id))
    wait_for_status(sdk, bot, web1, "Stopped")
    client(sdk, bot).start_instance(ecs.StartInstanceRequest(instance_id=web1.instance_id))
    other = error_of(
        client(sdk, bot).start_instance,
        ecs.StartInstanceRequest(instance_id=reporting.instance_id),
    )
    assert (other.code, other.statusCode) == ("Forbidden.RAM", 403)

    # ... and this one, for every address, always does: explicit Deny wins.
    sdk.ram(a_root).create_policy(
        ram.CreatePolicyRequest(
            policy_name="no-stop", policy_document=permission_policy("ecs:Stop*", effect="Deny")
        )
    )
    sdk.attach_to_user(a_root, "ops-bot", "no-stop", policy_type="Custom")
    wait_for_status(sdk, bot, web1, "Running")
    denied = error_of(
        client(sdk, bot).stop_instance, ecs.StopInstanceRequest(instance_id=web1.instance_id)
    )
    assert (denied.code, denied.statusCode) == ("Forbidden.RAM", 403)


def test_the_v1_signature_sdk_reaches_ecs(sim):
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest

    access_key_id, secret = sim.root_key("company-a")
    acs = AcsClient(access_key_id, secret, "cn-hangzhou")
    request = CommonRequest(
        domain=sim.endpoint, version="2014-05-26", action_name="DescribeInstances"
    )
    request.set_protocol_type("http")
    request.set_method("POST")
    request.add_query_param("RegionId", "cn-shanghai")
    body = json.loads(acs.do_action_with_exception(request))
    assert body["TotalCount"] == 2
    assert {i["InstanceName"] for i in body["Instances"]["Instance"]} == {"db-1", "reporting-1"}
