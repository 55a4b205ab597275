"""Drift findings: reported once, cleared when gone, and the owner's repair or accept."""

from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import User
from audit.models import AuditEvent
from delegations.lifecycle.automatic import delegation_mark_active
from delegations.lifecycle.drift import drift_clear, drift_record, drift_resolve
from delegations.lifecycle.services import delegation_approve
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import Delegation, DriftFinding, ManagedRole, OutboxMessage

pytestmark = pytest.mark.django_db
Kind = DriftFinding.Kind
B_ROOT = "acs:ram::12345678:root"
STRANGER = "acs:ram::55555555:root"


@pytest.fixture
def active(requested: Delegation, owner_admin: User) -> Delegation:
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    return delegation_mark_active(delegation=requested)


@pytest.fixture
def role(active: Delegation) -> ManagedRole:
    role = active.managed_role
    role.known_principals = [B_ROOT]
    role.save()
    return role


def drift_events(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


def test_record_is_idempotent_and_audited_once(role: ManagedRole) -> None:
    first = drift_record(managed_role=role, kind=Kind.UNMANAGED_PRINCIPAL_ADDED, subject=STRANGER)
    again = drift_record(managed_role=role, kind=Kind.UNMANAGED_PRINCIPAL_ADDED, subject=STRANGER)
    assert first.pk == again.pk
    assert drift_events("drift.detected") == 1
    event = AuditEvent.objects.get(action="drift.detected")
    assert event.organisation.slug == "company-a" and event.metadata["subject"] == STRANGER
    with pytest.raises(ValueError):
        drift_record(managed_role=role, kind="made_up", subject="x")


def test_clear_closes_the_finding_and_a_new_one_can_open(role: ManagedRole) -> None:
    finding = drift_record(managed_role=role, kind=Kind.ROLE_DELETED)
    cleared = drift_clear(finding=finding)
    assert cleared.resolution == "gone" and cleared.resolved_at is not None
    assert drift_clear(finding=finding).resolved_at == cleared.resolved_at
    assert drift_events("drift.cleared") == 1
    reopened = drift_record(managed_role=role, kind=Kind.ROLE_DELETED)
    assert reopened.pk != finding.pk


def test_repair_of_an_unmanaged_principal_makes_it_managed_so_the_worker_removes_it(
    role: ManagedRole, owner_admin: User
) -> None:
    finding = drift_record(managed_role=role, kind=Kind.UNMANAGED_PRINCIPAL_ADDED, subject=STRANGER)
    outbox_before = OutboxMessage.objects.count()
    version_before = role.desired_version
    resolved = drift_resolve(finding=finding, resolved_by=owner_admin, resolution="repair")
    assert resolved.resolution == "repair" and resolved.resolved_by == owner_admin
    role.refresh_from_db()
    assert STRANGER in role.known_principals
    # A reconcile is requested: the version moves, and a message waits (this one, or an
    # unpublished one it coalesced into).
    assert role.desired_version == version_before + 1
    assert OutboxMessage.objects.filter(
        kind="reconcile_role", object_id=str(role.pk), done_at__isnull=True
    ).exists()
    assert OutboxMessage.objects.count() in (outbox_before, outbox_before + 1)
    assert drift_events("drift.repaired") == 1


def test_accept_of_an_unmanaged_principal_keeps_it_untouched(
    role: ManagedRole, owner_admin: User
) -> None:
    finding = drift_record(managed_role=role, kind=Kind.UNMANAGED_PRINCIPAL_ADDED, subject=STRANGER)
    drift_resolve(finding=finding, resolved_by=owner_admin, resolution="accept")
    role.refresh_from_db()
    assert STRANGER not in role.known_principals
    assert drift_events("drift.accepted") == 1


def test_accept_of_a_revoked_partner_back_stops_managing_it(
    role: ManagedRole, owner_admin: User
) -> None:
    finding = drift_record(managed_role=role, kind=Kind.REVOKED_PRINCIPAL_BACK, subject=B_ROOT)
    drift_resolve(finding=finding, resolved_by=owner_admin, resolution="accept")
    role.refresh_from_db()
    assert B_ROOT not in role.known_principals


def test_accept_of_a_missing_principal_revokes_its_delegation(
    role: ManagedRole, active: Delegation, owner_admin: User
) -> None:
    finding = drift_record(managed_role=role, kind=Kind.MANAGED_PRINCIPAL_MISSING, subject=B_ROOT)
    drift_resolve(finding=finding, resolved_by=owner_admin, resolution="accept")
    active.refresh_from_db()
    assert active.status == Delegation.Status.REVOKING
    assert "accepted" in active.revoke_reason
    assert AuditEvent.objects.filter(action="delegation.revoke_requested").count() == 1


def test_accept_of_a_deleted_role_revokes_everything_on_it(
    role: ManagedRole, active: Delegation, owner_admin: User
) -> None:
    finding = drift_record(managed_role=role, kind=Kind.ROLE_DELETED)
    drift_resolve(finding=finding, resolved_by=owner_admin, resolution="accept")
    assert Delegation.objects.get(pk=active.pk).status == Delegation.Status.REVOKING


def test_accept_of_a_detached_policy_takes_it_out_of_the_catalogue(
    role: ManagedRole, active: Delegation, owner_admin: User
) -> None:
    finding = drift_record(
        managed_role=role, kind=Kind.POLICY_DETACHED, subject="System:AliyunECSFullAccess"
    )
    drift_resolve(finding=finding, resolved_by=owner_admin, resolution="accept")
    active.catalog_role.refresh_from_db()
    assert active.catalog_role.policies == []


def test_resolve_refusals(
    role: ManagedRole,
    owner_admin: User,
    owner_admin_2: User,
    auditor: User,
    foreign_owner_admin: User,
) -> None:
    finding = drift_record(managed_role=role, kind=Kind.ROLE_DELETED)
    for user in (auditor, foreign_owner_admin):
        with pytest.raises(PermissionDenied):
            drift_resolve(finding=finding, resolved_by=user, resolution="repair")
    with pytest.raises(ValidationError):
        drift_resolve(finding=finding, resolved_by=owner_admin, resolution="ignore")
    drift_resolve(finding=finding, resolved_by=owner_admin, resolution="repair")
    # The same click again changes nothing; a different decision afterwards is a conflict.
    drift_resolve(finding=finding, resolved_by=owner_admin, resolution="repair")
    assert drift_events("drift.repaired") == 1
    with pytest.raises(DelegationConflict):
        drift_resolve(finding=finding, resolved_by=owner_admin_2, resolution="accept")


def test_requested_fixture_is_used(make_request: Callable[..., Delegation]) -> None:
    # drift on a role whose only delegation is still a request: accept revokes nothing
    delegation = make_request()
    finding = drift_record(managed_role=delegation.managed_role, kind=Kind.ROLE_DELETED)
    assert finding.is_open


def test_a_finding_names_the_account_of_its_role(role: ManagedRole) -> None:
    """A fleet's role has one name in each of the owner's accounts: the History says which
    account's role changed outside the portal."""
    from auditor.presentation import describe_event

    drift_record(managed_role=role, kind=Kind.ROLE_DELETED)
    event = AuditEvent.objects.get(action="drift.detected")
    uid = role.cloud_account.account_uid
    assert event.metadata["account_uid"] == uid
    assert {fact.label: fact.value for fact in describe_event(event).facts}["Account"] == uid
