"""A give-up after a task's last retry: the failure is shown, nothing retries it in a tight
loop, and the cloud still converges on what the portal says once it answers again, even when
an earlier attempt of the retry chain wrote part of the change before the cloud went flaky."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from cloud.client import CloudClient, CloudCredentials
from cloud.errors import CloudError
from delegations.models import Delegation, OutboxMessage, PartnerUserPolicy
from delegations.partner.services import partner_user_policies_sync, staff_unassign
from delegations.worker import engine
from delegations.worker.owner_role import role_has_pending_work
from delegations.worker.periodic import managed_roles_periodic_pass
from delegations.worker.tasks import reconcile_role, run_outbox_message
from tests.fixtures.partner import PartnerWorld

Status = Delegation.Status


def _undone(kind: str | None = None) -> list[OutboxMessage]:
    messages = OutboxMessage.objects.filter(done_at__isnull=True)
    if kind is not None:
        messages = messages.filter(kind=kind)
    return list(messages)


def _run_undone() -> list[str]:
    return [run_outbox_message.apply(args=[m.pk]).get() for m in _undone()]


@pytest.fixture
def quick_retries(settings) -> None:
    settings.PORTAL_RECONCILE_INLINE_ATTEMPTS = 1
    settings.PORTAL_RECONCILE_RETRY_BASE_SECONDS = 0.001


def test_a_partner_failed_after_its_write_landed_loses_access_once_the_cloud_answers(
    owner_world, quick_retries, settings, monkeypatch
) -> None:
    world = owner_world
    settings.PORTAL_DRIFT_QUIET_AFTER_RECONCILE_SECONDS = 0
    first = world.offer()
    world.reconcile()
    assert world.status(first) == Status.ACTIVE
    OutboxMessage.objects.all().delete()

    # A second partner whose RAM user Bob may call AssumeRole on his side.
    partner_account = world.sim.create_account()
    partner_root = CloudClient(
        CloudCredentials(
            partner_account["root"]["access_key_id"], partner_account["root"]["access_key_secret"]
        ),
        ram_endpoint=world.sim.endpoint,
        sts_endpoint=world.sim.endpoint,
    )
    second = world.offer(world.partner(uid=partner_account["uid"]))
    bob = world.sim.create_user(partner_account["uid"], "bob")
    partner_root.attach_policy_to_user(
        user_name="bob", policy_type="System", policy_name="AliyunSTSAssumeRoleAccess"
    )
    bob_client = CloudClient(
        CloudCredentials(bob["access_key_id"], bob["access_key_secret"]),
        ram_endpoint=world.sim.endpoint,
        sts_endpoint=world.sim.endpoint,
    )
    (message,) = _undone()
    real_verify = engine.verify
    flaky: list[bool] = []

    def verify_then_the_cloud_goes_flaky(subject, **kwargs):
        # The UpdateRole trusting the second partner landed; from now on every GetRole fails
        # transiently (a sustained regional incident) until the faults are cleared.
        if not flaky:
            world.sim.set_faults("GetRole:internal")
            flaky.append(True)
        return real_verify(subject, **kwargs)

    monkeypatch.setattr(engine, "verify", verify_then_the_cloud_goes_flaky)
    published = len(world.published)

    assert run_outbox_message.apply(args=[message.pk]).get() == "failed"

    failed = Delegation.objects.get(pk=second.pk)
    assert failed.status == Status.FAILED
    assert failed.failed_phase == Delegation.Phase.APPLYING
    # Not hammered: the messages are done and nothing was published again, but the role is
    # left with pending work for the periodic pass.
    assert _undone() == [] and len(world.published) == published
    assert role_has_pending_work(world.managed_role())

    # The periodic pass asks again while the cloud still fails: that chain gives up too, and
    # the role stays pending (though it failed no delegation this time).
    counts = managed_roles_periodic_pass(check_drift=lambda managed_role_id: None)
    assert counts["reconcile_requested"] == 1
    assert _run_undone() == ["failed"]
    assert _undone() == []
    assert role_has_pending_work(world.managed_role())

    # The cloud answers again: the next periodic pass converges on the portal's truth.
    world.sim.clear_faults()
    assert second.principal_arn in world.trusted()
    assert managed_roles_periodic_pass(check_drift=lambda managed_role_id: None) == {
        "reconcile_requested": 1,
        "drift_checks": 0,
    }
    assert _run_undone() == ["converged"]

    assert world.trusted() == {first.principal_arn}
    assert world.status(first) == Status.ACTIVE
    assert world.status(second) == Status.FAILED
    assert not role_has_pending_work(world.managed_role())
    with pytest.raises(CloudError):
        bob_client.assume_role(
            role_arn=f"acs:ram::{world.uid}:role/{world.role_name}",
            session_name="after-failed",
            duration_seconds=900,
        )


def test_a_ram_user_unassigned_during_a_failing_chain_loses_assume_role_once_the_cloud_answers(
    partner_world: PartnerWorld, quick_retries, monkeypatch
) -> None:
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    assignment = world.assign(delegation, world.alice)
    policy = PartnerUserPolicy.objects.get(ram_user_name="Alice")
    (message,) = _undone(OutboxMessage.Kind.RECONCILE_PARTNER_USER)
    real_verify = engine.verify
    unassigned: list[bool] = []

    def verify_then_unassign_while_the_cloud_goes_flaky(subject, **kwargs):
        # Alice's policy landed; the cloud then fails every GetPolicy until the chain gives
        # up, and meanwhile her partner admin takes the delegation away from her.
        if not unassigned:
            world.sim.set_faults("GetPolicy:internal")
            staff_unassign(assignment=assignment, unassigned_by=world.partner_admin)
            unassigned.append(True)
        return real_verify(subject, **kwargs)

    monkeypatch.setattr(engine, "verify", verify_then_unassign_while_the_cloud_goes_flaky)

    assert run_outbox_message.apply(args=[message.pk]).get() == "failed"
    world.sim.clear_faults()

    policy.refresh_from_db()
    assert "gave up after repeated retries" in policy.last_error_message
    assert _undone() == []
    # The ledger wants nothing for Alice; the policy the chain wrote is still attached.
    assert world.user_may_assume("Alice")

    assert partner_user_policies_sync() == 1
    assert _run_undone() == ["converged"]

    assert not world.user_may_assume("Alice")
    policy.refresh_from_db()
    assert policy.desired_version == policy.applied_version
    assert policy.last_error_code == ""
    assert partner_user_policies_sync() == 0


def test_a_give_up_ends_the_revokes_its_chain_already_made(owner_world, quick_retries) -> None:
    """One change removes a partner and adds a policy to the role. The trust-policy write lands
    (its answer lost: cloudsim applies it and drops the connection), then the cloud throttles
    the policy's attachment past the task's last retry. The revoke went through: the give-up
    ends it as revoked, as a permanent failure would; only the change still to make waits."""
    world = owner_world
    keep, leave = world.offer(), world.offer()
    world.reconcile()
    world.catalog_role.policies = [
        {"type": "System", "name": "AliyunECSFullAccess"},
        {"type": "System", "name": "AliyunOSSReadOnlyAccess"},
    ]
    world.catalog_role.save()
    world.revoke(Delegation.objects.get(pk=leave.pk))
    world.sim.set_faults(
        {"action": "UpdateRole", "kind": "lost", "count": 1},
        {"action": "AttachPolicyToRole", "kind": "throttle"},
    )
    seq = world.last_seq()

    assert reconcile_role.apply(args=[str(world.managed_role().pk)]).get() == "failed"

    calls = world.cloud_calls(seq)
    assert [c["action"] for c in calls if c.get("fault") == "lost"] == ["UpdateRole"]
    assert len([c for c in calls if c["action"] == "AttachPolicyToRole"]) > 1
    ended = Delegation.objects.get(pk=leave.pk)
    assert ended.status == Status.REVOKED
    assert ended.last_error_code == ""
    assert not AuditEvent.objects.filter(
        target_id=str(leave.pk), action="delegation.failed"
    ).exists()
    assert world.status(keep) == Status.ACTIVE
    assert world.trusted() == {Delegation.objects.get(pk=keep.pk).principal_arn}
    # The policy still to attach is asked for again once the cloud answers.
    assert role_has_pending_work(world.managed_role())
    world.sim.clear_faults()
    world.reconcile()
    assert ("System", "AliyunOSSReadOnlyAccess") in world.attached()
    assert world.status(keep) == Status.ACTIVE
