"""The owner's catalogue against a real cloudsim account: roles validated against the account's
live policy list, high-privilege policies behind an explicit opt-in, deactivation; every
refusal writes nothing and makes no mutating cloud call."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from cloud import policies
from cloud.client import CloudClient, CloudCredentials
from delegations.catalog.account_policies import (
    catalog_policies_high_privilege,
    cloud_account_policies,
)
from delegations.catalog.services import (
    catalog_role_create,
    catalog_role_deactivate,
    catalog_role_reactivate,
)
from delegations.connection.services import cloud_account_connect
from delegations.models import CatalogRole, CloudAccount, Delegation
from tests.delegations.cloud_fixtures import SimAccount
from tests.delegations.factories import DelegationFactory

pytestmark = pytest.mark.django_db

ECS_FULL = ("System", "AliyunECSFullAccess")


@pytest.fixture
def owner_account(sim_owner: SimAccount) -> CloudAccount:
    return cloud_account_connect(
        organisation=sim_owner.organisation,
        connected_by=sim_owner.admin,
        account_uid=sim_owner.uid,
        alias=sim_owner.alias,
        region="cn-hangzhou",
        access_key_id=sim_owner.root_key_id,
        access_key_secret=sim_owner.root_secret,
    )


def root_client(account: SimAccount) -> CloudClient:
    return CloudClient(CloudCredentials(account.root_key_id, account.root_secret))


def create(account: SimAccount, **overrides) -> CatalogRole:
    arguments = {
        "owner": account.organisation,
        "created_by": account.admin,
        "role_name": "ecs-admin",
        "description": "Operate the ECS fleet",
        "policy_keys": [ECS_FULL],
        "max_session_duration": 3600,
    }
    arguments.update(overrides)
    return catalog_role_create(**arguments)


def nothing_written() -> None:
    assert not CatalogRole.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="catalog_role.").exists()


def test_live_policy_list_has_system_and_custom_policies_and_is_cached(
    sim_owner: SimAccount, owner_account: CloudAccount
) -> None:
    root_client(sim_owner).create_policy(
        policy_name="ReadBuckets",
        document={
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": "oss:Get*", "Resource": "*"}],
        },
    )
    since = sim_owner.seq()
    listed = cloud_account_policies(cloud_account=owner_account, refresh=True)
    keys = {p.key for p in listed}
    assert ECS_FULL in keys and ("Custom", "ReadBuckets") in keys
    assert ("System", "AdministratorAccess") in keys
    assert listed[0].policy_type == "System" and listed[-1].policy_type == "Custom"
    cloud_account_policies(cloud_account=owner_account)
    assert [c["action"] for c in sim_owner.calls_since(since)] == ["ListPolicies"]


def test_create_a_role_writes_the_role_and_its_audit_event_and_touches_no_cloud_state(
    sim_owner: SimAccount, owner_account: CloudAccount
) -> None:
    since = sim_owner.seq()
    role = create(sim_owner, keep_role_when_empty=True, max_session_duration=7200)
    assert role.policies == [{"type": "System", "name": "AliyunECSFullAccess"}]
    assert role.cloud_account == owner_account and role.organisation == sim_owner.organisation
    assert role.keep_role_when_empty and role.max_session_duration == 7200
    assert not role.allows_high_privilege and role.is_active
    (event,) = AuditEvent.objects.filter(action="catalog_role.created")
    assert event.after["role_name"] == "ecs-admin" and event.after["policies"] == role.policies
    assert not [c for c in sim_owner.calls_since(since) if c["mutating"]]
    assert root_client(sim_owner).get_role("ecs-admin") is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"role_name": "ecs admin"}, "role_name"),
        ({"role_name": ""}, "role_name"),
        ({"role_name": "r" * 65}, "role_name"),
        ({"role_name": "ecs_admin"}, "role_name"),
        ({"max_session_duration": 3599}, "max_session_duration"),
        ({"max_session_duration": 43201}, "max_session_duration"),
        ({"max_session_duration": True}, "max_session_duration"),
        ({"policy_keys": []}, "policies"),
        ({"policy_keys": [("Managed", "AliyunECSFullAccess")]}, "policies"),
        ({"policy_keys": [("System", "Aliyun ECS")]}, "policies"),
        (
            {
                "policy_keys": ["System:AliyunECSFullAccess"] * 2
                + [f"System:P{n}" for n in range(10)]
            },
            "policies",
        ),
        ({"description": "d" * 1000}, "description"),
        ({"description": f"x {policies.PORTAL_MARKER}"}, "description"),
    ],
)
def test_bad_input_is_refused_without_any_cloud_call(
    sim_owner: SimAccount, owner_account: CloudAccount, overrides: dict, field: str
) -> None:
    since = sim_owner.seq()
    with pytest.raises(ValidationError) as refused:
        create(sim_owner, **overrides)
    assert field in refused.value.message_dict
    assert sim_owner.seq() == since
    nothing_written()


@pytest.mark.parametrize(
    "forged",
    [("System", "AliyunNoSuchAccess"), ("Custom", "AliyunECSFullAccess")],
    ids=["unknown-name", "wrong-type"],
)
def test_policies_not_in_the_accounts_list_are_refused(
    sim_owner: SimAccount, owner_account: CloudAccount, forged: tuple[str, str]
) -> None:
    since = sim_owner.seq()
    with pytest.raises(ValidationError) as refused:
        create(sim_owner, policy_keys=[ECS_FULL, forged])
    assert "Not in the account's policies" in refused.value.message_dict["policies"][0]
    assert not [c for c in sim_owner.calls_since(since) if c["mutating"]]
    nothing_written()


def test_role_names_are_unique_ignoring_case_even_when_deactivated(
    sim_owner: SimAccount, owner_account: CloudAccount
) -> None:
    role = create(sim_owner)
    catalog_role_deactivate(catalog_role=role, deactivated_by=sim_owner.admin)
    with pytest.raises(ValidationError) as refused:
        create(sim_owner, role_name="ECS-Admin")
    assert "already has a role named ECS-Admin" in refused.value.message_dict["role_name"][0]
    assert CatalogRole.objects.count() == 1


def test_a_same_named_role_the_portal_did_not_create_is_refused(
    sim_owner: SimAccount, owner_account: CloudAccount
) -> None:
    root_client(sim_owner).create_role(
        "legacy-ops",
        trust_document=policies.build_trust_policy(["acs:ram::1234567812345678:root"]),
        description="made by hand",
        max_session_duration=3600,
    )
    with pytest.raises(ValidationError) as refused:
        create(sim_owner, role_name="Legacy-Ops")
    assert "the portal did not create it" in refused.value.message_dict["role_name"][0]
    nothing_written()


@pytest.mark.parametrize("name", ["AdministratorAccess", "AliyunRAMFullAccess"])
def test_high_privilege_system_policies_need_the_opt_in(
    sim_owner: SimAccount, owner_account: CloudAccount, name: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        create(sim_owner, policy_keys=[ECS_FULL, ("System", name)])
    assert name in refused.value.message_dict["high_privilege_confirmed"][0]
    nothing_written()
    role = create(sim_owner, policy_keys=[("System", name)], high_privilege_confirmed=True)
    assert role.allows_high_privilege
    event = AuditEvent.objects.get(action="catalog_role.created")
    assert event.metadata["high_privilege_policies"] == [name]


def test_custom_policies_are_judged_by_their_document(
    sim_owner: SimAccount, owner_account: CloudAccount
) -> None:
    client = root_client(sim_owner)
    statement = {"Effect": "Allow", "Resource": "*"}
    client.create_policy(
        policy_name="RamEverything",
        document={"Version": "1", "Statement": [{**statement, "Action": "ram:*"}]},
    )
    client.create_policy(
        policy_name="AttachAnything",
        document={"Version": "1", "Statement": [{**statement, "Action": ["RAM:Attach*"]}]},
    )
    client.create_policy(
        policy_name="EcsLooker",
        document={"Version": "1", "Statement": [{**statement, "Action": "ecs:Describe*"}]},
    )
    cloud_account_policies(cloud_account=owner_account, refresh=True)
    flagged = catalog_policies_high_privilege(
        cloud_account=owner_account,
        policy_keys=[
            ("Custom", "RamEverything"),
            ("Custom", "AttachAnything"),
            ("Custom", "EcsLooker"),
            ("System", "AliyunECSReadOnlyAccess"),
        ],
    )
    assert flagged == ["RamEverything", "AttachAnything"]
    role = create(sim_owner, role_name="viewer", policy_keys=[("Custom", "EcsLooker")])
    assert not role.allows_high_privilege


def test_a_cloud_failure_while_listing_is_a_clear_message_and_writes_nothing(
    sim_owner: SimAccount, owner_account: CloudAccount
) -> None:
    sim_owner.sim.set_faults("ListPolicies:internal")
    with pytest.raises(ValidationError) as refused:
        create(sim_owner)
    assert "could not be reached" in " ".join(refused.value.messages)
    nothing_written()


def test_without_a_connected_account_roles_cannot_be_added(sim_owner: SimAccount) -> None:
    with pytest.raises(ValidationError, match="Connect your Alibaba Cloud account"):
        create(sim_owner)


def test_deactivate_and_reactivate_are_audited_idempotent_and_leave_delegations_alone(
    sim_owner: SimAccount, owner_account: CloudAccount
) -> None:
    role = create(sim_owner)
    delegation = DelegationFactory(catalog_role=role, status=Delegation.Status.ACTIVE)
    off = catalog_role_deactivate(catalog_role=role, deactivated_by=sim_owner.admin)
    assert off.changed and not off.is_active
    assert not catalog_role_deactivate(catalog_role=role, deactivated_by=sim_owner.admin).changed
    assert Delegation.objects.get(pk=delegation.pk).status == Delegation.Status.ACTIVE
    on = catalog_role_reactivate(catalog_role=role, reactivated_by=sim_owner.admin)
    assert on.changed and on.is_active
    actions = list(
        AuditEvent.objects.filter(action__startswith="catalog_role.")
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions == [
        "catalog_role.created",
        "catalog_role.deactivated",
        "catalog_role.reactivated",
    ]
