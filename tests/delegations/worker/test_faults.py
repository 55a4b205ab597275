"""Cloud faults injected by cloudsim: the worker converges with no duplicated effect."""

from __future__ import annotations

import itertools
import json

import pytest

from audit.models import AuditEvent
from cloud import policies
from delegations.models import CloudCall, Delegation
from delegations.worker.engine import ReconcileOutcome

Status = Delegation.Status
ECS = ("System", "AliyunECSFullAccess")


def _principal(partner) -> str:
    return f"acs:ram::{partner.account_uid}:root"


def _actions(calls: list[dict]) -> list[str]:
    return [c["action"] for c in calls]


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("CreateRole", "throttle"),
        ("AttachPolicyToRole", "internal"),
        ("GetRole", "badgateway"),
        ("ListPoliciesForRole", "drop"),
        ("CreateRole", "internal"),
    ],
)
def test_transient_faults_on_first_apply_are_retried_to_convergence(
    owner_world, action: str, kind: str
) -> None:
    owner_world.sim.set_faults({"action": action, "kind": kind, "count": 2})
    partner = owner_world.partner()
    delegation = owner_world.offer(partner)
    seq = owner_world.last_seq()

    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.CONVERGED
    assert owner_world.status(delegation) == Status.ACTIVE
    assert owner_world.trusted() == {_principal(partner)}
    assert owner_world.attached() == {ECS}
    calls = owner_world.cloud_calls(seq)
    faulted = [c for c in calls if c["action"] == action and c.get("fault") == kind]
    assert len(faulted) == 2
    effects = [c for c in calls if c["mutating"] and c["outcome"] == "success"]
    assert _actions(effects) == ["CreateRole", "AttachPolicyToRole"]


def test_throttling_429_waits_at_least_the_retry_after(owner_world) -> None:
    owner_world.sim.set_faults(
        {"action": "UpdateRole", "kind": "throttle429", "arg": "400", "count": 2}
    )
    owner_world.offer()
    owner_world.reconcile()
    delegation = owner_world.offer()

    owner_world.reconcile()

    assert owner_world.status(delegation) == Status.ACTIVE
    attempts = list(CloudCall.objects.filter(action="UpdateRole").order_by("id"))
    assert [a.outcome for a in attempts] == ["error", "error", "ok"]
    assert {a.error_code for a in attempts[:2]} == {"Throttling.User"}
    for failed, retried in itertools.pairwise(attempts):
        assert (retried.intent_at - failed.finished_at).total_seconds() >= 0.4


def test_a_hang_past_the_read_timeout_is_retried(owner_world, settings) -> None:
    settings.ALIBABA_CLOUD_READ_TIMEOUT_MS = 800
    owner_world.sim.set_faults(
        {"action": "AttachPolicyToRole", "kind": "hang", "arg": "2", "count": 1}
    )
    delegation = owner_world.offer()

    assert owner_world.reconcile().outcome == ReconcileOutcome.CONVERGED
    assert owner_world.status(delegation) == Status.ACTIVE
    assert owner_world.attached() == {ECS}


@pytest.mark.parametrize("action", ["CreateRole", "AttachPolicyToRole"])
def test_applied_but_response_lost_on_create_counts_as_done(owner_world, action: str) -> None:
    owner_world.sim.set_faults({"action": action, "kind": "lost", "count": 1})
    partner = owner_world.partner()
    delegation = owner_world.offer(partner)
    seq = owner_world.last_seq()

    assert owner_world.reconcile().outcome == ReconcileOutcome.CONVERGED

    assert owner_world.status(delegation) == Status.ACTIVE
    assert owner_world.trusted() == {_principal(partner)}
    assert owner_world.attached() == {ECS}
    again = [c for c in owner_world.cloud_calls(seq) if c["action"] == action]
    # The lost one (applied), then the repeat the cloud answers with "already exists".
    assert [c["outcome"] for c in again] == ["success", "error"]
    assert again[1]["error_code"].startswith("EntityAlreadyExists")
    answered = CloudCall.objects.filter(action=action).order_by("id").last()
    assert answered.outcome == CloudCall.Outcome.OK
    assert answered.note == "already done" or action == "CreateRole"


@pytest.mark.parametrize("action", ["UpdateRole", "DetachPolicyFromRole", "DeleteRole"])
def test_applied_but_response_lost_on_change_and_delete(owner_world, action: str) -> None:
    first = owner_world.offer()
    owner_world.reconcile()
    changing = owner_world.offer() if action == "UpdateRole" else owner_world.revoke(first)
    owner_world.sim.set_faults({"action": action, "kind": "lost", "count": 1})
    seq = owner_world.last_seq()

    assert owner_world.reconcile().outcome == ReconcileOutcome.CONVERGED

    if action == "UpdateRole":
        assert owner_world.status(changing) == Status.ACTIVE
        assert len(owner_world.trusted()) == 2
    else:
        assert owner_world.status(changing) == Status.REVOKED
        assert owner_world.role() is None
    effects = [
        c
        for c in owner_world.cloud_calls(seq, mutating=True)
        if c["outcome"] == "success" and c["action"] == action
    ]
    assert len(effects) <= 2  # the lost one, and at most one identical repeat


def test_stale_reads_after_a_write_are_waited_out_not_rewritten(owner_world) -> None:
    first = owner_world.offer()
    owner_world.reconcile()
    owner_world.sim.set_faults({"action": "GetRole", "kind": "stale", "arg": "1.5"})
    second = owner_world.offer()
    seq = owner_world.last_seq()

    assert owner_world.reconcile().outcome == ReconcileOutcome.CONVERGED

    assert owner_world.status(second) == Status.ACTIVE
    updates = [c for c in owner_world.cloud_calls(seq, mutating=True)]
    assert _actions(updates) == ["UpdateRole"]
    stale_reads = [c for c in owner_world.cloud_calls(seq) if c.get("stale_read")]
    assert stale_reads, "the fault should have served at least one stale read"
    owner_world.sim.clear_faults()
    assert owner_world.trusted() == {
        f"acs:ram::{Delegation.objects.get(pk=d.pk).partner_account_uid}:root"
        for d in (first, second)
    }


def test_stale_read_never_brings_a_revoked_partner_back(owner_world) -> None:
    keep, leave = owner_world.offer(), owner_world.offer()
    owner_world.reconcile()
    owner_world.revoke(leave)
    owner_world.sim.set_faults({"action": "GetRole", "kind": "stale", "arg": "1.5"})
    seq = owner_world.last_seq()

    owner_world.reconcile()
    third = owner_world.offer()
    owner_world.reconcile()

    revoked = f"acs:ram::{Delegation.objects.get(pk=leave.pk).partner_account_uid}:root"
    assert owner_world.status(leave) == Status.REVOKED
    for call in owner_world.cloud_calls(seq, mutating=True):
        document = call["parameters"].get("NewAssumeRolePolicyDocument")
        if document:
            assert revoked not in policies.trust_policy_principals(json.loads(document)).ram
    owner_world.sim.clear_faults()
    assert revoked not in owner_world.trusted()
    assert owner_world.status(keep) == owner_world.status(third) == Status.ACTIVE


def test_random_faults_over_many_operations_converge(owner_world, settings) -> None:
    """G3 in small: a fifth of all calls fail (every kind, seeded); 12 approvals and 6
    revocations, one reconcile each (with the task's retries), end exactly as wanted."""
    from delegations.worker.tasks import reconcile_role

    settings.PORTAL_RECONCILE_RETRY_BASE_SECONDS = 0.01
    owner_world.sim.set_faults(
        "*:throttle:0.05",
        {"action": "*", "kind": "throttle429", "probability": 0.03, "arg": "50"},
        "*:internal:0.04",
        "*:badgateway:0.03",
        "*:drop:0.02",
        "*:lost:0.03",
        seed=20261125,
    )
    role_id = owner_world.managed_role().pk
    delegations = []
    for index in range(12):
        delegations.append(owner_world.offer())
        reconcile_role.apply(args=[str(role_id)])
        if index % 2 == 1:
            owner_world.revoke(Delegation.objects.get(pk=delegations[index // 2].pk))
            reconcile_role.apply(args=[str(role_id)])
    owner_world.sim.clear_faults()
    reconcile_role.apply(args=[str(role_id)])

    statuses = {d.pk: owner_world.status(d) for d in delegations}
    wanted = {
        f"acs:ram::{d.partner_account_uid}:root"
        for d in Delegation.objects.filter(pk__in=statuses, status=Status.ACTIVE)
    }
    assert sorted(statuses.values()).count(Status.REVOKED) == 6
    assert sorted(statuses.values()).count(Status.ACTIVE) == 6
    assert owner_world.trusted() == wanted
    assert owner_world.attached() == {ECS}
    assert not CloudCall.objects.filter(outcome=CloudCall.Outcome.PENDING).exists()


def test_a_permanent_failure_ends_the_revokes_its_round_already_made(owner_world) -> None:
    """A round removes one partner and adds another in one trust-policy write (its answer lost
    once: cloudsim applies it and drops the connection, the repeat succeeds), then the cloud
    refuses the role's new policy for good. The revoke landed: it ends as revoked. The newcomer
    did not get its access: it fails, and leaves the trust policy again."""
    keep, leave = owner_world.offer(), owner_world.offer()
    owner_world.reconcile()
    owner_world.revoke(Delegation.objects.get(pk=leave.pk))
    newcomer = owner_world.offer()
    # A Custom policy the account does not have (deleted after the offer checked it).
    owner_world.catalog_role.policies = [
        {"type": "System", "name": "AliyunECSFullAccess"},
        {"type": "Custom", "name": "NoSuchPolicy"},
    ]
    owner_world.catalog_role.save()
    owner_world.sim.set_faults({"action": "UpdateRole", "kind": "lost", "count": 1})
    seq = owner_world.last_seq()

    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.FAILED
    assert report.error_code == "EntityNotExist.Policy"
    lost = [c for c in owner_world.cloud_calls(seq) if c.get("fault") == "lost"]
    assert [c["action"] for c in lost] == ["UpdateRole"]
    ended = Delegation.objects.get(pk=leave.pk)
    assert ended.status == Status.REVOKED
    assert ended.last_error_code == ""
    assert str(leave.pk) in report.ended and str(leave.pk) not in report.failed
    assert owner_world.status(newcomer) == Status.FAILED
    assert report.failed == [str(newcomer.pk)]
    assert owner_world.status(keep) == Status.ACTIVE
    assert owner_world.trusted() == {_principal(Delegation.objects.get(pk=keep.pk).partner)}
    assert (
        AuditEvent.objects.filter(target_id=str(leave.pk), action="delegation.revoked").count() == 1
    )
    assert not AuditEvent.objects.filter(
        target_id=str(leave.pk), action="delegation.failed"
    ).exists()


def test_a_permanent_failure_before_the_revoke_landed_fails_it(owner_world) -> None:
    """The planner refuses the role (someone took the portal's marker off it by hand) before
    any write: the revoked partner is still trusted, so its revoke fails visibly."""
    keep, leave = owner_world.offer(), owner_world.offer()
    owner_world.reconcile()
    owner_world.client().update_role(owner_world.role_name, description="Ours now, by hand")
    owner_world.revoke(Delegation.objects.get(pk=leave.pk))
    seq = owner_world.last_seq()

    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.FAILED
    assert owner_world.cloud_calls(seq, mutating=True) == []
    failed = Delegation.objects.get(pk=leave.pk)
    assert failed.status == Status.FAILED
    assert failed.failed_phase == Delegation.Phase.REVOKING
    assert _principal(failed.partner) in owner_world.trusted()
    assert owner_world.status(keep) == Status.ACTIVE
