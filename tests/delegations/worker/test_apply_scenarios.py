"""The product's scenarios through the worker, with the official SDKs against cloudsim."""

from __future__ import annotations

import pytest

from cloud import policies
from cloud.client import CloudClient, CloudCredentials
from cloud.errors import CloudError
from delegations.catalog.partner_links import partner_link_create
from delegations.lifecycle.services import delegation_approve, delegation_retry
from delegations.lifecycle.starting import delegation_request
from delegations.models import CloudCall, Delegation, DriftFinding
from delegations.worker.engine import ReconcileOutcome
from tests.fixtures.worker import build_owner_world, random_uid

Status = Delegation.Status


def _client(sim, key: tuple[str, str]) -> CloudClient:
    return CloudClient(CloudCredentials(*key), ram_endpoint=sim.endpoint, sts_endpoint=sim.endpoint)


def test_company_a_grants_ecs_admin_to_company_b_and_revokes_it(
    cloudsim, db, monkeypatch, settings
) -> None:
    """company-a grants `ecs-admin` (AliyunECSFullAccess) to company-b: Alice at company-b can
    assume it while the delegation is active and cannot once it is revoked."""
    from tests.factories import OrganisationFactory
    from tests.personas import make_member

    world = build_owner_world(
        cloudsim,
        monkeypatch,
        settings,
        uid="11223344",
        key=cloudsim.root_key("company-a"),
        name="Company A",
    )
    company_b = OrganisationFactory(
        name="Company B", slug="company-b", kind="partner", account_uid="12345678"
    )
    partner_admin = make_member(company_b, "admin")
    approver = make_member(world.organisation, "admin")
    from tests.delegations.factories import PartnerAllowanceFactory

    PartnerAllowanceFactory(organisation=world.organisation, partner_account_uid="12345678")
    link, _code = partner_link_create(
        owner=world.organisation, created_by=world.admin, label="Company B"
    )
    company_b_root = _client(cloudsim, cloudsim.root_key("company-b"))
    alice = _client(cloudsim, cloudsim.user_key("company-b", "Alice"))
    role_arn = "acs:ram::11223344:role/ecs-admin"
    company_b_root.attach_policy_to_user(
        user_name="Alice", policy_type="System", policy_name="AliyunSTSAssumeRoleAccess"
    )
    try:
        with pytest.raises(CloudError):
            alice.assume_role(role_arn=role_arn, session_name="alice", duration_seconds=900)

        delegation = delegation_request(
            partner=company_b,
            requested_by=partner_admin,
            partner_link=link,
            catalog_role=world.catalog_role,
            reason="Operate the web fleet",
            ends_at=None,
        )
        delegation_approve(delegation=delegation, approved_by=approver, with_mfa=True)
        assert world.reconcile().outcome == ReconcileOutcome.CONVERGED
        assert world.status(delegation) == Status.ACTIVE
        assert world.trusted() == {"acs:ram::12345678:root"}
        assert world.attached() == {("System", "AliyunECSFullAccess")}

        session = alice.assume_role(role_arn=role_arn, session_name="alice", duration_seconds=900)
        as_alice = CloudClient(
            CloudCredentials(
                session.access_key_id, session.access_key_secret, session.security_token
            ),
            ram_endpoint=cloudsim.endpoint,
            sts_endpoint=cloudsim.endpoint,
        )
        identity = as_alice.get_caller_identity()
        assert identity.account_id == "11223344"
        assert identity.arn == "acs:ram::11223344:assumed-role/ecs-admin/alice"

        world.revoke(Delegation.objects.get(pk=delegation.pk))
        assert world.reconcile().outcome == ReconcileOutcome.CONVERGED
        assert world.status(delegation) == Status.REVOKED
        assert world.role() is None
        with pytest.raises(CloudError) as refused:
            alice.assume_role(role_arn=role_arn, session_name="alice2", duration_seconds=900)
        assert refused.value.code in ("EntityNotExist.Role", "NoPermission")
    finally:
        company_b_root.detach_policy_from_user(
            user_name="Alice", policy_type="System", policy_name="AliyunSTSAssumeRoleAccess"
        )


def test_a_shared_role_keeps_every_partner_and_the_unmanaged_principal(owner_world) -> None:
    """Several partners on one role plus a principal someone added in the console: approving
    and revoking partners never drops anyone else."""
    first, second, third = (owner_world.partner() for _ in range(3))
    d1 = owner_world.offer(first)
    d2 = owner_world.offer(second)
    owner_world.reconcile()
    assert owner_world.trusted() == {f"acs:ram::{p.account_uid}:root" for p in (first, second)}

    outsider = f"acs:ram::{random_uid()}:root"
    role = owner_world.role()
    by_hand = policies.merge_trust_policy(
        role.trust_document, managed_wanted={outsider}, managed_all_known=set()
    )
    owner_world.client().update_role(owner_world.role_name, trust_document=by_hand)

    d3 = owner_world.offer(third)
    owner_world.reconcile()
    assert owner_world.trusted() == {
        f"acs:ram::{p.account_uid}:root" for p in (first, second, third)
    } | {outsider}

    owner_world.revoke(d1)
    owner_world.reconcile()
    owner_world.revoke(Delegation.objects.get(pk=d2.pk))
    owner_world.reconcile()
    assert owner_world.trusted() == {f"acs:ram::{third.account_uid}:root", outsider}
    assert [owner_world.status(d) for d in (d1, d2, d3)] == [
        Status.REVOKED,
        Status.REVOKED,
        Status.ACTIVE,
    ]

    owner_world.revoke(Delegation.objects.get(pk=d3.pk))
    owner_world.reconcile()
    # The last managed partner left, but the role still trusts someone: it stays.
    assert owner_world.trusted() == {outsider}
    assert owner_world.attached() == {("System", "AliyunECSFullAccess")}
    finding = DriftFinding.objects.get(kind=DriftFinding.Kind.UNMANAGED_PRINCIPAL_ADDED)
    assert finding.subject == outsider
    assert finding.is_open


def test_a_role_of_the_same_name_the_portal_did_not_create_is_never_adopted(owner_world) -> None:
    someone_else = f"acs:ram::{random_uid()}:root"
    owner_world.client().create_role(
        owner_world.role_name,
        trust_document=policies.build_trust_policy([someone_else]),
        description="Made by hand in the console",
        max_session_duration=3600,
    )
    delegation = owner_world.offer()
    seq = owner_world.last_seq()

    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.FAILED
    failed = Delegation.objects.get(pk=delegation.pk)
    assert failed.status == Status.FAILED
    assert failed.failed_phase == Delegation.Phase.APPLYING
    assert failed.last_error_code == "role_not_created_by_portal"
    assert "not created by the portal" in failed.last_error_message
    assert owner_world.cloud_calls(seq, mutating=True) == []
    assert owner_world.trusted() == {someone_else}
    assert owner_world.role().description == "Made by hand in the console"
    # Recorded, not hammered: nothing pending any more.
    assert owner_world.reconcile().outcome == ReconcileOutcome.NOTHING_TO_DO


def test_a_permanent_error_fails_the_delegation_visibly_and_cleans_up(owner_world) -> None:
    delegation = owner_world.offer()
    # A Custom policy the account does not have (deleted after the offer checked it).
    owner_world.catalog_role.policies = [{"type": "Custom", "name": "NoSuchPolicy"}]
    owner_world.catalog_role.save()

    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.FAILED
    failed = Delegation.objects.get(pk=delegation.pk)
    assert failed.status == Status.FAILED
    assert failed.last_error_code == "EntityNotExist.Policy"
    assert failed.last_error_request_id
    assert failed.last_error_message
    # The failed partner must not keep a way in: the half-made role is removed again.
    assert owner_world.role() is None
    attach = CloudCall.objects.get(action="AttachPolicyToRole")
    assert attach.outcome == CloudCall.Outcome.ERROR
    assert attach.error_code == "EntityNotExist.Policy"
    assert owner_world.reconcile().outcome == ReconcileOutcome.NOTHING_TO_DO


def test_retry_after_a_permanent_failure_applies_once_fixed(owner_world) -> None:
    delegation = owner_world.offer()
    owner_world.catalog_role.policies = [{"type": "Custom", "name": "NoSuchPolicy"}]
    owner_world.catalog_role.save()
    owner_world.reconcile()
    owner_world.catalog_role.policies = [{"type": "System", "name": "AliyunECSFullAccess"}]
    owner_world.catalog_role.save()

    delegation_retry(
        delegation=Delegation.objects.get(pk=delegation.pk), retried_by=owner_world.admin
    )
    owner_world.reconcile()

    assert owner_world.status(delegation) == Status.ACTIVE
    assert owner_world.attached() == {("System", "AliyunECSFullAccess")}


def test_partners_sharing_a_role_never_see_each_others_accounts_in_the_history(
    owner_world,
) -> None:
    """One UpdateRole can carry several partners' principals; its event is the owner's alone,
    so no partner learns which other accounts the role trusts."""
    from audit.selectors import audit_events_visible_to

    first, second = owner_world.partner(), owner_world.partner()
    owner_world.offer(first)
    owner_world.offer(second)
    owner_world.reconcile()
    assert owner_world.trusted() == {f"acs:ram::{p.account_uid}:root" for p in (first, second)}

    for partner, other in ((first, second), (second, first)):
        visible = audit_events_visible_to(organisation=partner)
        assert visible.exists()
        for event in visible:
            text = f"{event.before} {event.after} {event.metadata} {event.target_label}"
            assert other.account_uid not in text, event.action
    # The owner still sees every call, with every principal it changed.
    owner_calls = [
        e
        for e in audit_events_visible_to(organisation=owner_world.organisation)
        if e.target_type == "delegations.cloudcall"
    ]
    assert any(
        first.account_uid in str(e.metadata) and second.account_uid in str(e.metadata)
        for e in owner_calls
    )
