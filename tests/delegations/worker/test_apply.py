"""The worker applies and revokes delegations by reconciling the role in a real cloudsim."""

from __future__ import annotations

from audit.models import AuditEvent
from delegations.models import CloudCall, Delegation, ManagedRole
from delegations.worker.engine import ReconcileOutcome

Status = Delegation.Status
ECS = ("System", "AliyunECSFullAccess")


def test_first_approval_creates_the_role_with_marker_trust_and_policy(owner_world) -> None:
    partner = owner_world.partner()
    delegation = owner_world.offer(partner)

    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.CONVERGED
    assert owner_world.status(delegation) == Status.ACTIVE
    role = owner_world.role()
    assert "[managed-by:partner-access-portal]" in role.description
    assert owner_world.trusted() == {f"acs:ram::{partner.account_uid}:root"}
    assert owner_world.attached() == {ECS}
    managed = ManagedRole.objects.get(pk=owner_world.managed_role().pk)
    assert managed.created_by_portal
    assert managed.locked_by == ""
    assert managed.applied_version == managed.desired_version
    assert f"acs:ram::{partner.account_uid}:root" in managed.known_principals


def test_running_twice_makes_no_mutating_call_the_second_time(owner_world) -> None:
    owner_world.offer()
    owner_world.reconcile()
    seq = owner_world.last_seq()

    second = owner_world.reconcile(force=True)

    assert second.outcome == ReconcileOutcome.CONVERGED
    assert second.mutating_calls == 0
    assert owner_world.cloud_calls(seq, mutating=True) == []
    assert {c["action"] for c in owner_world.cloud_calls(seq)} == {
        "GetRole",
        "ListPoliciesForRole",
    }


def test_nothing_pending_means_no_cloud_call_at_all(owner_world) -> None:
    owner_world.offer()
    owner_world.reconcile()
    seq = owner_world.last_seq()

    assert owner_world.reconcile().outcome == ReconcileOutcome.NOTHING_TO_DO
    assert owner_world.cloud_calls(seq) == []


def test_every_mutating_call_has_an_intent_row_and_a_result_event(owner_world) -> None:
    delegation = owner_world.offer()
    owner_world.reconcile()

    mutations = CloudCall.objects.filter(managed_role=owner_world.managed_role(), mutating=True)
    assert [c.action for c in mutations] == ["CreateRole", "AttachPolicyToRole"]
    for call in mutations:
        assert call.outcome == CloudCall.Outcome.OK
        assert call.request_id
        assert call.finished_at >= call.intent_at
        assert list(call.delegations.all()) == [delegation]
        events = AuditEvent.objects.filter(target_id=str(call.pk)).order_by("sequence")
        assert [e.action for e in events] == ["cloud.call_intent", "cloud.call_result"]
    reads = CloudCall.objects.filter(managed_role=owner_world.managed_role(), mutating=False)
    assert {c.action for c in reads} == {"GetRole", "ListPoliciesForRole"}
    assert all(c.outcome == CloudCall.Outcome.OK for c in reads)


def test_each_transition_writes_exactly_one_audit_event(owner_world) -> None:
    delegation = owner_world.offer()
    owner_world.reconcile()
    owner_world.reconcile(force=True)
    owner_world.revoke(delegation)
    owner_world.reconcile()
    owner_world.reconcile(force=True)

    actions = list(
        AuditEvent.objects.filter(target_id=str(delegation.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions == [
        "delegation.offered",
        "delegation.applying",
        "delegation.activated",
        "delegation.revoke_requested",
        "delegation.revoked",
    ]


def test_revoking_the_last_partner_detaches_then_deletes_the_role(owner_world) -> None:
    delegation = owner_world.offer()
    owner_world.reconcile()
    seq = owner_world.last_seq()

    owner_world.revoke(delegation)
    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.CONVERGED
    assert owner_world.status(delegation) == Status.REVOKED
    assert owner_world.role() is None
    assert [c["action"] for c in owner_world.cloud_calls(seq, mutating=True)] == [
        "DetachPolicyFromRole",
        "DeleteRole",
    ]
    managed = ManagedRole.objects.get(pk=owner_world.managed_role().pk)
    assert managed.last_seen_exists is False
    assert not managed.created_by_portal


def test_keep_role_when_empty_parks_the_trust_policy_on_the_owner(owner_world) -> None:
    owner_world.catalog_role.keep_role_when_empty = True
    owner_world.catalog_role.save()
    delegation = owner_world.offer()
    owner_world.reconcile()

    owner_world.revoke(delegation)
    owner_world.reconcile()

    assert owner_world.status(delegation) == Status.REVOKED
    assert owner_world.trusted() == {f"acs:ram::{owner_world.uid}:root"}
    assert owner_world.attached() == {ECS}
