"""The partner side against a real cloudsim process, through the official SDKs.

company-a (11223344) grants a role to company-b (12345678). company-b's admin links Alice to
her RAM user and assigns her: the worker gives her RAM user `sts:AssumeRole` on exactly that
role (one portal-managed policy), her own demo AccessKey can then assume it, and credentials
the portal issues for her carry her session name and list company-a's ECS instances. Bob,
unassigned, is refused both ways; unassigning or revoking makes the next AssumeRole fail; a
session policy narrows what the credentials can do; the owner's cut-off stops credentials
already issued.
"""

from __future__ import annotations

import json

import pytest

from cloud import policies
from cloud.client import CloudClient, CloudCredentials
from cloud.errors import CloudError
from delegations.models import (
    CloudCall,
    CredentialIssuance,
    Delegation,
    OutboxMessage,
    PartnerUserPolicy,
    StaffAssignment,
)
from delegations.partner import services
from delegations.partner.credentials import CredentialRefused, credentials_issue
from tests.fixtures.partner import (
    BROKER,
    PartnerWorld,
    ecs_client,
    ecs_instance_names,
)

DEMO_INSTANCES = ["web-1", "web-2", "batch-1"]


def _denied(error: BaseException) -> bool:
    """ECS refused for lack of permission (cloudsim answers Forbidden.RAM, like ECS)."""
    code = str(getattr(error, "code", ""))
    return code in ("Forbidden.RAM", "NoPermission") or code.startswith("NoPermission")


def _issue(world: PartnerWorld, assignment: StaffAssignment, seconds: int = 900):
    return credentials_issue(assignment=assignment, user=assignment.user, duration_seconds=seconds)


def test_alice_assigned_can_assume_with_her_own_key_and_portal_credentials_name_her(
    partner_world: PartnerWorld,
) -> None:
    world = partner_world
    delegation = world.active_delegation()
    # Becoming active granted the portal's broker in B AssumeRole on the role, nobody else.
    assert world.managed_policy_document(BROKER) == policies.assume_role_policy_for(
        [world.role_arn]
    )
    assert not world.user_may_assume("Alice")

    world.link(world.alice, "alice")  # matched case-insensitively against ListUsers
    assignment = world.assign(delegation, world.alice)
    world.drain()

    document = world.managed_policy_document("Alice")
    assert document == policies.assume_role_policy_for([world.role_arn])
    assert ("Custom", "portal-assume-Alice") in world.attached_to_user("Alice")
    assert ("System", "AliyunSTSAssumeRoleAccess") not in world.attached_to_user("Alice")
    assert world.user_may_assume("Alice")
    assert not world.user_may_assume("Bob")

    issued = _issue(world, assignment)
    assert issued.issuance.session_name == "alice@company-b"
    ecs = ecs_client(
        world.sim,
        issued.credentials.access_key_id,
        issued.credentials.access_key_secret,
        issued.credentials.security_token,
    )
    assert ecs_instance_names(ecs) == sorted(DEMO_INSTANCES)
    assumed = [
        c
        for c in world.sim.calls(0)
        if c.get("action") == "AssumeRole"
        and c.get("parameters", {}).get("RoleSessionName") == "alice@company-b"
    ]
    assert assumed, "cloudsim's log shows the AssumeRole with Alice's session name"
    assert issued.credentials.assumed_role_arn.endswith(f"/{world.role_name}/alice@company-b")
    identity = CloudClient(
        CloudCredentials(
            issued.credentials.access_key_id,
            issued.credentials.access_key_secret,
            issued.credentials.security_token,
        ),
        ram_endpoint=world.sim.endpoint,
        sts_endpoint=world.sim.endpoint,
        protocol="http",
    ).get_caller_identity()
    assert identity.arn == f"acs:ram::11223344:assumed-role/{world.role_name}/alice@company-b"

    # Every cloud mutation of the partner side has its CloudCall row, intent then result.
    calls = CloudCall.objects.filter(partner_user_policy__isnull=False, mutating=True)
    assert {c.action for c in calls} >= {"CreatePolicyVersion", "AttachPolicyToUser"} or {
        c.action for c in calls
    } >= {"CreatePolicy", "AttachPolicyToUser"}
    assert all(c.outcome == CloudCall.Outcome.OK for c in calls)
    assert not OutboxMessage.objects.filter(done_at__isnull=True).exists()


def test_bob_unassigned_is_refused_both_ways(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.bob, "Bob")
    world.drain()
    assert not world.user_may_assume("Bob")
    with pytest.raises(Exception) as refused:
        from delegations.partner.selectors import my_assignment_get

        my_assignment_get(user=world.bob, organisation=world.partner, delegation_id=delegation.pk)
    assert refused.type.__name__ == "Http404"
    assert not CredentialIssuance.objects.exists()


def test_unassign_then_the_next_assume_role_fails(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    assignment = world.assign(delegation, world.alice)
    world.drain()
    assert world.user_may_assume("Alice")

    services.staff_unassign(assignment=assignment, unassigned_by=world.partner_admin)
    world.drain()
    assert not world.user_may_assume("Alice")
    # Nothing left for Alice: the policy is detached and deleted.
    assert ("Custom", "portal-assume-Alice") not in world.attached_to_user("Alice")
    assert world.managed_policy_document("Alice") is None
    policy = PartnerUserPolicy.objects.get(ram_user_name="Alice")
    assert policy.applied_role_arns == [] and not policy.policy_attached
    with pytest.raises(CredentialRefused) as refused:
        _issue(world, StaffAssignment.objects.get(pk=assignment.pk))
    assert refused.value.code == "NotAssigned"


def test_a_policy_with_older_versions_is_deleted_once_nothing_is_wanted(
    partner_world: PartnerWorld,
) -> None:
    from delegations.catalog.services import catalog_role_create
    from delegations.lifecycle.starting import delegation_offer

    world = partner_world
    root = world.partner_root()
    first = world.active_delegation()
    world.link(world.alice, "Alice")
    on_first = world.assign(first, world.alice)
    world.drain()
    # A second role for Alice rewrites her policy: it now has an older, non-default version.
    second_role = catalog_role_create(
        owner=world.owner,
        created_by=world.owner_admin,
        role_name=f"ecs-read-{world.role_name[-6:]}",
        description="Read the ECS fleet",
        policy_keys=[("System", "AliyunECSFullAccess")],
        max_session_duration=3600,
    )
    second = delegation_offer(
        owner=world.owner,
        offered_by=world.owner_admin,
        partner=world.partner,
        catalog_role=second_role,
        reason="Read the ECS fleet under the support contract",
        ends_at=None,
        with_mfa=True,
    )
    world.drain()
    on_second = world.assign(Delegation.objects.get(pk=second.pk), world.alice)
    world.drain()
    versions = root.list_policy_versions(policy_type="Custom", policy_name="portal-assume-Alice")
    assert len(versions) >= 2 and sum(1 for v in versions if not v.is_default) >= 1

    services.staff_unassign(assignment=on_first, unassigned_by=world.partner_admin)
    services.staff_unassign(assignment=on_second, unassigned_by=world.partner_admin)
    world.drain()
    # Nothing left for Alice: no policy at all, its older versions deleted first.
    assert root.get_policy(policy_type="Custom", policy_name="portal-assume-Alice") is None
    assert not world.user_may_assume("Alice")
    policy = PartnerUserPolicy.objects.get(ram_user_name="Alice")
    calls = list(
        CloudCall.objects.filter(partner_user_policy=policy, mutating=True)
        .order_by("id")
        .values_list("action", "outcome")
    )
    deletes = [action for action, _ in calls if action.startswith("Delete")]
    assert deletes[-1] == "DeletePolicy" and "DeletePolicyVersion" in deletes
    assert all(outcome == CloudCall.Outcome.OK for _, outcome in calls)
    assert not policy.policy_attached and policy.applied_role_arns == []


def test_revoke_then_the_next_assume_role_fails_both_ways(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    assignment = world.assign(delegation, world.alice)
    world.drain()
    issued = _issue(world, assignment)
    assert issued.credentials.access_key_id

    world.revoke(Delegation.objects.get(pk=delegation.pk))
    # Refused by the portal at once, before the worker has even run.
    with pytest.raises(CredentialRefused) as refused:
        _issue(world, StaffAssignment.objects.get(pk=assignment.pk))
    assert refused.value.code == "DelegationNotActive"
    world.drain()
    assert Delegation.objects.get(pk=delegation.pk).status == Delegation.Status.REVOKED
    assert not world.user_may_assume("Alice")
    # The broker's and Alice's grants are gone too.
    assert ("Custom", "portal-assume-Alice") not in world.attached_to_user("Alice")
    broker_doc = world.managed_policy_document(BROKER)
    attached = ("Custom", "portal-assume-portal-broker") in world.attached_to_user(BROKER)
    assert not attached or world.role_arn not in json.dumps(broker_doc)


def test_a_session_policy_narrows_what_the_credentials_can_do(partner_world: PartnerWorld) -> None:
    from alibabacloud_ecs20140526 import models as ecs_models

    world = partner_world
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice, session_policy_kind="read_only")
    world.drain()
    issued = _issue(world, assignment)
    assert issued.issuance.session_policy_kind == "read_only"
    ecs = ecs_client(
        world.sim,
        issued.credentials.access_key_id,
        issued.credentials.access_key_secret,
        issued.credentials.security_token,
    )
    response = ecs.describe_instances(ecs_models.DescribeInstancesRequest(region_id="cn-hangzhou"))
    instances = {i.instance_name: i.instance_id for i in response.body.instances.instance}
    assert sorted(instances) == sorted(DEMO_INSTANCES)
    with pytest.raises(Exception) as denied:
        ecs.stop_instance(ecs_models.StopInstanceRequest(instance_id=instances["web-1"]))
    assert _denied(denied.value)

    # Only listed instances: acting on the listed one passes authorisation, another does not.
    services.staff_assignment_change_policy(
        assignment=assignment,
        changed_by=world.partner_admin,
        session_policy_kind="ecs_instances",
        ecs_instance_ids=instances["batch-1"],
    )
    narrowed = _issue(world, StaffAssignment.objects.get(pk=assignment.pk))
    ecs = ecs_client(
        world.sim,
        narrowed.credentials.access_key_id,
        narrowed.credentials.access_key_secret,
        narrowed.credentials.security_token,
    )
    with pytest.raises(Exception) as other:
        ecs.reboot_instance(ecs_models.RebootInstanceRequest(instance_id=instances["web-2"]))
    assert _denied(other.value)
    # Allowed by the session policy: only the instance's own state may refuse it.
    try:
        ecs.start_instance(ecs_models.StartInstanceRequest(instance_id=instances["batch-1"]))
    except Exception as error:
        assert getattr(error, "code", "") == "IncorrectInstanceStatus", error


def test_a_narrowed_person_s_own_ram_user_is_not_granted_the_role(
    partner_world: PartnerWorld,
) -> None:
    """Switching role in the console, or AssumeRole with the person's own AccessKey, cannot
    carry the session policy: a narrowed person uses the role only through the portal."""
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    for kind, extra in (("read_only", {}), ("ecs_instances", {"ecs_instance_ids": "i-web1"})):
        assignment = world.assign(delegation, world.alice, session_policy_kind=kind, **extra)
        world.drain()
        assert not world.user_may_assume("Alice"), kind
        policy = PartnerUserPolicy.objects.get(ram_user_name="Alice")
        assert world.role_arn not in (policy.applied_role_arns or [])
        # The portal's credentials, which carry the session policy, still work.
        issued = _issue(world, assignment)
        assert issued.issuance.session_policy_kind == kind
        services.staff_unassign(assignment=assignment, unassigned_by=world.partner_admin)
        world.drain()


def test_narrowing_an_assignment_takes_the_role_from_the_linked_ram_user(
    partner_world: PartnerWorld,
) -> None:
    from alibabacloud_ecs20140526 import models as ecs_models

    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    assignment = world.assign(delegation, world.alice)
    world.drain()
    assert world.user_may_assume("Alice")

    services.staff_assignment_change_policy(
        assignment=assignment, changed_by=world.partner_admin, session_policy_kind="read_only"
    )
    # The change itself asks the worker to reconcile Alice's policy.
    assert OutboxMessage.objects.filter(done_at__isnull=True).exists()
    world.drain()
    # Her own key no longer gets the full role (the exploit: stop an instance read-only).
    with pytest.raises(CloudError) as denied:
        world.as_ram_user("Alice").assume_role(
            role_arn=world.role_arn, session_name="alice-own", duration_seconds=900
        )
    assert denied.value.code == "NoPermission"
    issued = _issue(world, StaffAssignment.objects.get(pk=assignment.pk))
    ecs = ecs_client(
        world.sim,
        issued.credentials.access_key_id,
        issued.credentials.access_key_secret,
        issued.credentials.security_token,
    )
    response = ecs.describe_instances(ecs_models.DescribeInstancesRequest(region_id="cn-hangzhou"))
    web_1 = next(
        i.instance_id for i in response.body.instances.instance if i.instance_name == "web-1"
    )
    with pytest.raises(Exception) as read_only:
        ecs.stop_instance(ecs_models.StopInstanceRequest(instance_id=web_1))
    assert _denied(read_only.value)

    # Another narrowing changes nothing in the cloud; widening back gives the role again.
    services.staff_assignment_change_policy(
        assignment=assignment,
        changed_by=world.partner_admin,
        session_policy_kind="ecs_instances",
        ecs_instance_ids=web_1,
    )
    world.drain()
    assert not world.user_may_assume("Alice")
    services.staff_assignment_change_policy(
        assignment=assignment, changed_by=world.partner_admin, session_policy_kind=""
    )
    world.drain()
    assert world.user_may_assume("Alice")
    assert services.partner_user_policies_sync() == 0


def test_cut_off_stops_credentials_already_issued(partner_world: PartnerWorld) -> None:
    world = partner_world
    # A role the owner keeps when nobody is on it: revoking alone would leave issued
    # credentials working until they expire (the residual window).
    world.catalog_role.keep_role_when_empty = True
    world.catalog_role.save(update_fields=["keep_role_when_empty"])
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)
    world.drain()
    issued = _issue(world, assignment)
    ecs = ecs_client(
        world.sim,
        issued.credentials.access_key_id,
        issued.credentials.access_key_secret,
        issued.credentials.security_token,
    )
    assert ecs_instance_names(ecs) == sorted(DEMO_INSTANCES)

    cut = services.role_cut_off(
        delegation=delegation,
        cut_off_by=world.owner_admin,
        reason="Suspicious activity",
        with_mfa=True,
    )
    assert cut.in_force
    world.drain()
    assert world.owner_root().get_role(world.role_name) is not None
    assert world.owner_root().list_policies_for_role(world.role_name) == []
    with pytest.raises(Exception) as stopped:
        ecs_instance_names(ecs)
    assert _denied(stopped.value)
    assert Delegation.objects.get(pk=delegation.pk).status == Delegation.Status.REVOKED

    # Nobody is on the role any more: lifting attaches nothing (issue 18 item 3); the next
    # grant does, and the credentials issued before the cut-off work again only then.
    lift = services.role_cut_off_lift(cut_off=cut, lifted_by=world.owner_admin, with_mfa=True)
    assert lift.changed and not lift.occupancy.anyone
    assert world.drain() == []
    assert world.owner_root().list_policies_for_role(world.role_name) == []
    world.active_delegation()
    assert {p.key for p in world.owner_root().list_policies_for_role(world.role_name)} == {
        ("System", "AliyunECSFullAccess")
    }


def test_a_ram_user_name_that_does_not_exist_is_refused(partner_world: PartnerWorld) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        partner_world.link(partner_world.alice, "Mallory")
    assert "no RAM user called Mallory" in str(refused.value)
    assert not PartnerUserPolicy.objects.exists()


def test_a_same_named_policy_the_portal_did_not_create_is_left_alone(
    partner_world: PartnerWorld,
) -> None:
    world = partner_world
    root = world.partner_root()
    # The session's tests share one cloudsim: an earlier one may have left the portal's own
    # policy of this name behind, and this test needs a hand-made one in its place.
    try:
        root.delete_policy("portal-assume-AAA", cascade=True)
    except CloudError as error:
        assert error.code == "EntityNotExist.Policy"
    root.create_policy(
        policy_name="portal-assume-AAA",
        document={
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"}],
        },
        description="made by hand",
    )
    staff = world.bob
    delegation = world.active_delegation()
    world.link(staff, "AAA")
    world.assign(delegation, staff)
    world.drain()
    policy = PartnerUserPolicy.objects.get(ram_user_name="AAA")
    assert policy.last_error_code == "PolicyNotManagedByPortal"
    assert "not created by the portal" in policy.last_error_message
    assert (
        json.loads(root.get_policy(policy_type="Custom", policy_name="portal-assume-AAA").document)[
            "Statement"
        ][0]["Action"]
        == "ecs:Describe*"
    )
