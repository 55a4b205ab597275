"""The RAM policies the README gives operators for the portal's keys (docs/ram-policies/) are
exactly what the portal calls, against cloudsim's policy evaluation: the owner's key creates,
grows, shrinks and deletes the role; the partner's broker grants and removes staff's
AssumeRole, issues their credentials, sets up OOSServiceRole on the partner admin's consent,
checks a run's instance ids through the owner role, and runs, follows and cancels runbooks
through OOS. Nothing here uses a root key or AliyunRAMFullAccess for the portal.

Exactly: no call either key made was refused for want of permission (an action missing from a
policy fails here, whatever the code does with the refusal), and every action a policy lists
was called, or is named below with the flow that calls it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as ecs_models

from cloud.client import CloudClient
from delegations.connection.services import cloud_account_replace_key
from delegations.models import Delegation
from delegations.partner.credentials import credentials_issue
from runbooks import services as runbooks
from runbooks import tasks as runbook_tasks
from runbooks import worker as runbook_worker
from runbooks.models import OosConsent, RunbookInstanceResult, RunbookRun
from runbooks.oos_template import OOS_SERVICE_ROLE
from tests.fixtures.partner import (
    OWNER_UID,
    PARTNER_UID,
    PartnerWorld,
    ecs_client,
    sdk_client,
)
from tests.runbooks.conftest import capture_publishes

POLICIES = Path(__file__).resolve().parents[2] / "docs" / "ram-policies"
REGION = "cn-hangzhou"
# Listed in a policy, called by a flow this test does not walk.
CALLED_ELSEWHERE = {
    "owner-portal.json": {
        "ram:UpdateRole": "a grant whose trust changes (another partner, a named person)",
        "ram:DetachPolicyFromRole": "a catalogue role that loses a policy",
        "ram:ListPolicies": "connecting the key (its read check) and the catalogue's policy list",
        "ram:GetPolicy": "the catalogue reading a custom policy's document",
        "ram:CreatePolicy": "proposing a narrower role from what partners used (Activity)",
        "actiontrail:LookupEvents": "the Activity page's ingestion",
    },
    "partner-broker.json": {
        "ram:ListUsers": "connecting the key (its read check) and linking staff to RAM users",
        "ram:UpdateRole": "repairing an OOSServiceRole whose trust lacks OOS",
        "oos:UpdateTemplate": "a portal release that changes the MultiAccount template",
        # The emulator outlives each test: a user's portal-assume policy is created on its
        # first grant and gets a new version on later ones; which of the two runs here
        # depends on the tests before.
        "ram:CreatePolicy": "a user's first grant",
        "ram:CreatePolicyVersion": "a user's later grants",
        "ram:ListPolicyVersions": "a portal-assume policy with five versions already",
        "ram:DeletePolicyVersion": "a portal-assume policy with five versions already",
    },
}
# Refusals for want of permission, in RAM's, STS's, ECS's and OOS's words.
DENIED = re.compile(r"NoPermission|Forbidden|NotAuthorized|AccessDenied", re.IGNORECASE)


def ram_user_with(world: PartnerWorld, root: CloudClient, uid: str, document_file: str):
    """A fresh RAM user in `uid` holding only the documented policy; its AccessKey."""
    name = f"portal-least-{secrets.token_hex(3)}"
    user = world.sim.create_user(uid, name)
    document = json.loads((POLICIES / document_file).read_text())
    root.create_policy(policy_name=name, document=document)
    root.attach_policy_to_user(user_name=name, policy_type="Custom", policy_name=name)
    return name, (user["access_key_id"], user["access_key_secret"])


@pytest.mark.django_db
def test_the_documented_ram_policies_are_exactly_what_the_whole_flow_calls(
    partner_world: PartnerWorld, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = partner_world
    first_call = world.sim.last_call_seq()
    owner_user, owner_key = ram_user_with(world, world.owner_root(), OWNER_UID, "owner-portal.json")
    broker, partner_key = ram_user_with(
        world, world.partner_root(), PARTNER_UID, "partner-broker.json"
    )
    for account, key, admin in (
        (world.owner_account, owner_key, world.owner_admin),
        (world.partner_account, partner_key, world.partner_admin),
    ):
        cloud_account_replace_key(
            cloud_account=account,
            replaced_by=admin,
            access_key_id=key[0],
            access_key_secret=key[1],
        )

    # Owner side: the role is created with its policies and the partner in its trust.
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")  # the broker's key lists company-b's RAM users
    assignment = world.assign(delegation, world.alice)
    world.drain()
    # Partner side: Alice's RAM user and the broker got AssumeRole on exactly that role.
    assert world.user_may_assume("Alice")
    issued = credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    assert issued.credentials.access_key_id.startswith("STS.")
    as_alice = sdk_client(
        world.sim,
        (
            issued.credentials.access_key_id,
            issued.credentials.access_key_secret,
            issued.credentials.security_token,
        ),
    )
    assert as_alice.get_caller_identity().arn.endswith(f"/{issued.issuance.session_name}")

    running = running_instance(world, issued.credentials)
    runbooks_with_the_broker_key(world, delegation, running, settings, monkeypatch)

    # Revoking removes everything again: the role is deleted, the policies go.
    world.revoke(Delegation.objects.get(pk=delegation.pk))
    world.drain()
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.REVOKED, delegation.last_error_message
    assert not world.user_may_assume("Alice")
    assert world.managed_policy_document("Alice") is None
    assert world.managed_policy_document(broker) is None

    calls = world.sim.calls(first_call)
    for document_file, user in (("owner-portal.json", owner_user), ("partner-broker.json", broker)):
        exactly_what_the_policy_lists(document_file, [c for c in calls if by_user(c, user)])


def by_user(call: dict[str, Any], user: str) -> bool:
    return str(call.get("caller_arn") or "").endswith(f":user/{user}") and not call.get("via")


def documented_actions(document_file: str) -> set[str]:
    document = json.loads((POLICIES / document_file).read_text())
    actions: set[str] = set()
    for statement in document["Statement"]:
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def exactly_what_the_policy_lists(document_file: str, calls: list[dict[str, Any]]) -> None:
    denied = [
        f"{c['product']}:{c['action']} ({c['error_code']})"
        for c in calls
        if DENIED.search(str(c.get("error_code") or ""))
    ]
    assert not denied, f"{document_file} lacks what the portal calls: {denied}"
    called = {f"{c['product']}:{c['action']}" for c in calls}
    if "oos:StartExecution" in called:
        called.add("ram:PassRole")  # checked by OOS within StartExecution, not a call
    # What needs no permission: who the key is, and the AssumeRole the portal grants itself.
    called -= {"sts:GetCallerIdentity", "sts:AssumeRole"}
    documented = documented_actions(document_file)
    assert called <= documented, f"{document_file} lacks {sorted(called - documented)}"
    unexercised = documented - called - set(CALLED_ELSEWHERE[document_file])
    assert not unexercised, f"{document_file} lists what nothing calls: {sorted(unexercised)}"


def running_instance(world: PartnerWorld, credentials: Any) -> str:
    """A running instance of company-a in REGION, as Alice's session sees it."""
    client = ecs_client(
        world.sim,
        credentials.access_key_id,
        credentials.access_key_secret,
        credentials.security_token,
    )
    found = client.describe_instances(ecs_models.DescribeInstancesRequest(region_id=REGION))
    return next(i.instance_id for i in found.body.instances.instance if i.status == "Running")


def without_oos_service_role(world: PartnerWorld) -> None:
    """The emulator outlives each test: the consent below creates the role anew."""
    root = world.partner_root()
    if root.get_role(OOS_SERVICE_ROLE) is None:
        return
    for attached in root.list_policies_for_role(OOS_SERVICE_ROLE):
        root.detach_policy_from_role(
            role_name=OOS_SERVICE_ROLE,
            policy_type=attached.policy_type,
            policy_name=attached.policy_name,
        )
    root.delete_role(OOS_SERVICE_ROLE)


def follow(run: RunbookRun, world: PartnerWorld) -> RunbookRun:
    client = runbook_tasks.oos_client_for(world.partner.pk)
    deadline = time.monotonic() + 60
    while runbook_worker.run_follow(run_id=run.pk, client=client).more:
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.1)
    return RunbookRun.objects.get(pk=run.pk)


def runbooks_with_the_broker_key(
    world: PartnerWorld, delegation: Delegation, running: str, settings: Any, monkeypatch: Any
) -> None:
    """Consent, a run by instance id to its end and a run cancelled, each task as the worker
    runs it (with the partner's connected key: the broker's)."""
    for name in ("OOS", "ECS"):
        setattr(settings, f"ALIBABA_{name}_ENDPOINT", world.sim.endpoint)
    settings.PORTAL_RUNBOOK_REGIONS = [REGION]
    capture_publishes(monkeypatch)
    without_oos_service_role(world)

    consent = runbooks.oos_consent_give(partner=world.partner, given_by=world.partner_admin)
    assert runbook_tasks.ensure_oos_service_role(str(consent.pk)) == OosConsent.Status.READY
    world.drain()  # a named-people trust admits the partner's OOSServiceRole
    role = world.partner_root().get_role(OOS_SERVICE_ROLE)
    assert role is not None and "oos.aliyuncs.com" in role.trust_document

    def start(**choice: Any) -> RunbookRun:
        return runbooks.run_start(
            partner=world.partner,
            started_by=world.alice,
            choice=runbooks.RunChoice(
                targets=[(delegation, REGION)],
                command_type="RunShellScript",
                timeout_seconds=600,
                **choice,
            ),
        )

    run = start(command_content="echo hello", target_type="ResourceIds", instance_ids=[running])
    assert runbook_tasks.submit_run(str(run.pk)) == RunbookRun.Status.RUNNING
    run = follow(run, world)
    assert run.status == RunbookRun.Status.SUCCEEDED, run.status_message
    result = RunbookInstanceResult.objects.get(run=run)
    assert (result.instance_id, result.output.strip()) == (running, "hello")

    run = start(command_content="sleep 2000", target_type="All")
    assert runbook_tasks.submit_run(str(run.pk)) == RunbookRun.Status.RUNNING
    runbooks.run_cancel(run=run, cancelled_by=world.alice)
    assert runbook_tasks.cancel_run(str(run.pk)) == "cancelling"
    assert follow(run, world).status == RunbookRun.Status.CANCELLED
