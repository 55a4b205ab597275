"""The partner-side worker against cloudsim's faults: throttling and server errors are retried
with backoff, an applied-but-lost answer is read as done, a duplicate delivery changes
nothing, a busy lease is left to its holder, the task retries transient failures and records
the last one visibly, and every mutation has its intent row before the call."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from cloud import policies
from delegations.models import CloudCall, OutboxMessage, PartnerUserPolicy
from delegations.worker import engine
from delegations.worker import partner_policy as apply
from delegations.worker.engine import ReconcileOutcome, TransientCloudFailure
from delegations.worker.partner_policy import partner_user_policy_reconcile
from tests.fixtures.partner import PartnerWorld


@pytest.fixture
def alice_policy(partner_world: PartnerWorld, settings) -> PartnerUserPolicy:
    """An active delegation, Alice linked and assigned; her policy not yet reconciled."""
    settings.PORTAL_RECONCILE_RETRY_BASE_SECONDS = 0.01
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    world.assign(delegation, world.alice)
    return PartnerUserPolicy.objects.get(ram_user_name="Alice")


def mutations(policy: PartnerUserPolicy) -> list[tuple[str, str, str]]:
    return list(
        CloudCall.objects.filter(partner_user_policy=policy, mutating=True)
        .order_by("id")
        .values_list("action", "outcome", "note")
    )


def test_throttling_and_server_errors_are_retried(
    partner_world: PartnerWorld, alice_policy: PartnerUserPolicy
) -> None:
    world = partner_world
    world.sim.set_faults(
        {"action": "AttachPolicyToUser", "kind": "throttle", "count": 1},
        {"action": "GetPolicy", "kind": "internal", "count": 1},
    )
    report = partner_user_policy_reconcile(policy_id=alice_policy.pk)
    assert report.outcome == ReconcileOutcome.CONVERGED
    assert world.user_may_assume("Alice")
    attaches = [m for m in mutations(alice_policy) if m[0] == "AttachPolicyToUser"]
    assert [m[1] for m in attaches] == ["error", "ok"]


def test_an_applied_but_lost_answer_is_read_as_done(
    partner_world: PartnerWorld, alice_policy: PartnerUserPolicy
) -> None:
    world = partner_world
    world.sim.set_faults({"action": "AttachPolicyToUser", "kind": "lost", "count": 1})
    report = partner_user_policy_reconcile(policy_id=alice_policy.pk)
    assert report.outcome == ReconcileOutcome.CONVERGED
    attaches = [m for m in mutations(alice_policy) if m[0] == "AttachPolicyToUser"]
    assert attaches[-1] == ("AttachPolicyToUser", "ok", "already done")
    assert world.attached_to_user("Alice") >= {("Custom", "portal-assume-Alice")}


def test_every_mutation_has_its_intent_before_the_call(
    partner_world: PartnerWorld, alice_policy: PartnerUserPolicy
) -> None:
    partner_user_policy_reconcile(policy_id=alice_policy.pk)
    for call in CloudCall.objects.filter(partner_user_policy=alice_policy, mutating=True):
        intent = AuditEvent.objects.get(action="cloud.call_intent", target_id=str(call.pk))
        result = AuditEvent.objects.get(action="cloud.call_result", target_id=str(call.pk))
        assert intent.sequence < result.sequence
        assert intent.organisation == partner_world.partner
        assert intent.metadata["ram_user_name"] == "Alice"


def test_a_second_delivery_changes_nothing(
    partner_world: PartnerWorld, alice_policy: PartnerUserPolicy
) -> None:
    world = partner_world
    world.drain()
    before = len(mutations(alice_policy))
    since = world.sim.last_call_seq()
    message = OutboxMessage.objects.filter(object_id=str(alice_policy.pk)).last()
    from delegations.worker.tasks import run_outbox_message

    assert run_outbox_message.apply(args=[message.pk]).result == "done"
    assert partner_user_policy_reconcile(policy_id=alice_policy.pk).outcome == "converged"
    assert len(mutations(alice_policy)) == before
    assert not [c for c in world.sim.calls(since) if c.get("mutating")]


def test_a_held_lease_is_left_to_its_holder(
    partner_world: PartnerWorld, alice_policy: PartnerUserPolicy
) -> None:
    held = apply.PartnerUserPolicyLease(alice_policy.pk)
    assert held.claim()
    assert partner_user_policy_reconcile(policy_id=alice_policy.pk).outcome == "busy"
    held.release()
    assert partner_user_policy_reconcile(policy_id=alice_policy.pk).outcome == "converged"


def test_the_task_retries_then_shows_the_failure(
    partner_world: PartnerWorld, alice_policy: PartnerUserPolicy, settings
) -> None:
    from delegations.worker.tasks import reconcile_partner_user_policy

    settings.PORTAL_RECONCILE_INLINE_ATTEMPTS = 1
    partner_world.sim.set_faults("GetPolicy:internal:1")
    with pytest.raises(TransientCloudFailure):
        apply.partner_user_policy_reconcile(policy_id=alice_policy.pk)
    # The last retry records the error on the policy and closes its outbox rows.
    task = reconcile_partner_user_policy
    result = task.apply(args=[str(alice_policy.pk)], retries=task.max_retries)
    assert result.result == ReconcileOutcome.FAILED.value
    alice_policy.refresh_from_db()
    assert alice_policy.last_error_code == "InternalError"
    assert "gave up after repeated retries" in alice_policy.last_error_message
    assert not OutboxMessage.objects.filter(
        object_id=str(alice_policy.pk), done_at__isnull=True
    ).exists()
    assert AuditEvent.objects.filter(action="partner_policy.failed").exists()
    partner_world.sim.clear_faults()


def test_a_give_up_leaves_a_policy_whose_lease_is_held_to_its_holder(
    partner_world: PartnerWorld, alice_policy: PartnerUserPolicy, monkeypatch
) -> None:
    # Another task chain of the same policy holds the lease, mid-run, when this chain gives
    # up after its last retry: the holder settles the policy; no failure is shown for it.
    real_verify = engine.verify
    gave_up: list = []

    def verify_while_the_other_chain_gives_up(subject, **kwargs):
        if not gave_up:
            gave_up.append(
                apply.partner_user_policy_reconcile(policy_id=alice_policy.pk, last_try=True)
            )
        return real_verify(subject, **kwargs)

    monkeypatch.setattr(engine, "verify", verify_while_the_other_chain_gives_up)

    assert partner_user_policy_reconcile(policy_id=alice_policy.pk).outcome == "converged"

    assert [report.outcome for report in gave_up] == [ReconcileOutcome.BUSY]
    assert partner_world.user_may_assume("Alice")
    alice_policy.refresh_from_db()
    assert alice_policy.last_error_code == ""
    assert not AuditEvent.objects.filter(action="partner_policy.failed").exists()


def test_a_broker_without_ram_rights_fails_visibly(partner_world: PartnerWorld) -> None:
    world = partner_world
    root = world.partner_root()
    root.detach_policy_from_user(
        user_name="portal-broker", policy_type="System", policy_name="AliyunRAMFullAccess"
    )
    try:
        delegation = world.offer()
        world.drain()
        broker = PartnerUserPolicy.objects.get(ram_user_name="portal-broker")
        assert broker.last_error_code == "NoPermission"
        delegation.refresh_from_db()
        assert delegation.status == "active"  # the owner side is not blocked by it
    finally:
        root.attach_policy_to_user(
            user_name="portal-broker", policy_type="System", policy_name="AliyunRAMFullAccess"
        )


def test_role_arns_are_read_back_only_from_plain_grants() -> None:
    arn = "acs:ram::11223344:role/ops"
    plain = policies.policy_to_text(policies.assume_role_policy_for([arn]))
    assert apply.role_arns_in(plain) == frozenset({arn})
    widened = (
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
        '"Resource":"acs:ram::11223344:role/ops"},{"Effect":"Allow","Action":"ecs:*",'
        '"Resource":"*"}]}'
    )
    assert apply.role_arns_in(widened) is None
    assert apply.role_arns_in("not json") is None


def test_a_worker_that_died_after_its_intent_is_resolved_by_the_next_run(
    partner_world: PartnerWorld, alice_policy: PartnerUserPolicy, monkeypatch
) -> None:
    """The first run dies right after AttachPolicyToUser was sent (the cloud applied it, the
    answer was never recorded); the next run closes the dangling intent and converges."""
    world = partner_world

    class Died(BaseException):
        pass

    real = apply.make_partner_client

    def dying_client(policy):
        client = real(policy)
        send = client.attach_policy_to_user

        def attach_then_die(**kwargs):
            send(**kwargs)
            raise Died()

        client.attach_policy_to_user = attach_then_die
        return client

    monkeypatch.setattr(apply, "make_partner_client", dying_client)
    with pytest.raises(Died):
        partner_user_policy_reconcile(policy_id=alice_policy.pk)
    monkeypatch.setattr(apply, "make_partner_client", real)
    pending = CloudCall.objects.get(partner_user_policy=alice_policy, action="AttachPolicyToUser")
    assert pending.outcome == CloudCall.Outcome.PENDING
    assert partner_user_policy_reconcile(policy_id=alice_policy.pk).outcome == "converged"
    pending.refresh_from_db()
    assert (pending.outcome, pending.note) == (CloudCall.Outcome.UNKNOWN, "resolved by reconcile")
    assert world.user_may_assume("Alice")


def test_older_versions_are_deleted_before_the_policy_and_a_lost_answer_is_done(
    partner_world: PartnerWorld, alice_policy: PartnerUserPolicy
) -> None:
    from delegations.models import StaffAssignment
    from delegations.partner.services import staff_unassign

    world = partner_world
    assert partner_user_policy_reconcile(policy_id=alice_policy.pk).outcome == "converged"
    root = world.partner_root()
    document = policies.assume_role_policy_for([world.role_arn])
    for _ in range(2):  # older, non-default versions the policy picked up along the way
        root.create_policy_version(
            policy_name=alice_policy.policy_name,
            document=document,
            set_as_default=False,
            rotate=True,  # the emulator outlives the test: the policy may have versions already
        )
    old = [
        v.version_id
        for v in root.list_policy_versions(
            policy_type="Custom", policy_name=alice_policy.policy_name
        )
        if not v.is_default
    ]
    assert len(old) >= 2
    staff_unassign(
        assignment=StaffAssignment.objects.get(user=world.alice),
        unassigned_by=world.partner_admin,
    )
    world.sim.set_faults({"action": "DeletePolicyVersion", "kind": "lost", "count": 1})
    report = partner_user_policy_reconcile(policy_id=alice_policy.pk)
    assert report.outcome == ReconcileOutcome.CONVERGED
    assert root.get_policy(policy_type="Custom", policy_name=alice_policy.policy_name) is None
    deletes = [m for m in mutations(alice_policy) if m[0].startswith("Delete")]
    # One DeletePolicyVersion per older version, the first sent twice (its answer was lost).
    assert [m[0] for m in deletes] == ["DeletePolicyVersion"] * (len(old) + 1) + ["DeletePolicy"]
    assert deletes[1] == ("DeletePolicyVersion", "ok", "already done")
    assert all(m[1] == "ok" for m in deletes[1:])
    world.sim.clear_faults()
