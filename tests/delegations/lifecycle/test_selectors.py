"""Reads behind the pages: tenancy, and the cloud-versus-portal comparison of a role."""

import pytest
from django.http import Http404
from django.utils import timezone

from accounts.models import Organisation, User
from cloud import policies
from delegations.lifecycle import selectors
from delegations.lifecycle.automatic import delegation_mark_active, delegation_mark_revoked
from delegations.lifecycle.services import delegation_approve, delegation_revoke
from delegations.models import CatalogRole, Delegation, ManagedRole
from tests.delegations.factories import CloudAccountFactory

pytestmark = pytest.mark.django_db
B_ROOT = "acs:ram::12345678:root"
STRANGER = "acs:ram::55555555:root"


def test_a_delegation_is_visible_to_its_two_organisations_only(
    requested: Delegation, company_a: Organisation, company_b: Organisation, company_c: Organisation
) -> None:
    for organisation in (company_a, company_b):
        assert (
            selectors.delegation_get_for_organisation(
                organisation=organisation, delegation_id=requested.pk
            )
            == requested
        )
    for bad in (requested.pk, "not-a-uuid", None, 2**63):
        with pytest.raises(Http404):
            selectors.delegation_get_for_organisation(organisation=company_c, delegation_id=bad)


def test_offerable_partners_are_those_on_the_allow_list(
    company_a: Organisation, company_b: Organisation, company_d: Organisation, allow_b: None
) -> None:
    assert list(selectors.partners_offerable(owner=company_a)) == [company_b]


def test_a_partner_under_another_of_the_owners_accounts_is_not_offerable(
    company_a: Organisation, company_b: Organisation, allow_b: None
) -> None:
    """An owner cannot offer access to itself: not under the UID it registered with, nor under
    another account it connected (its staging account, say), even one put on the allow-list
    before it was connected."""
    CloudAccountFactory(organisation=company_a, account_uid="11223344")
    CloudAccountFactory(
        organisation=company_a, account_uid=company_b.account_uid, alias="", is_primary=False
    )
    assert list(selectors.partners_offerable(owner=company_a)) == []


def _seen(role: ManagedRole, principals: list[str], *, marked: bool = True) -> None:
    role.last_seen_at = timezone.now()
    role.last_seen_exists = True
    role.last_seen_description = policies.description_with_marker("x") if marked else "hand-made"
    role.last_seen_trust_policy = {
        "Version": "1",
        "Statement": [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"RAM": principals}}
        ],
    }
    role.last_seen_policies = [{"type": "System", "name": "AliyunECSFullAccess"}]
    role.save()


@pytest.fixture
def approved(requested: Delegation, owner_admin: User) -> Delegation:
    return delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)


def test_comparison_shows_pending_addition_and_keeps_unmanaged_principals(
    approved: Delegation,
) -> None:
    role = approved.managed_role
    _seen(role, [STRANGER])
    comparison = selectors.role_comparison(managed_role=role)
    rows = {row.principal: row for row in comparison.principals}
    assert rows[B_ROOT].state == "pending_add" and not rows[B_ROOT].in_cloud
    assert rows[STRANGER].state == "unmanaged" and rows[STRANGER].label == "not managed here"
    assert B_ROOT in comparison.wanted_document and STRANGER in comparison.wanted_document
    assert STRANGER in comparison.cloud_document and B_ROOT not in comparison.cloud_document
    assert not comparison.refusal


def test_comparison_flags_drift_when_an_active_partner_is_missing(
    approved: Delegation,
) -> None:
    delegation_mark_active(delegation=approved)
    role = approved.managed_role
    _seen(role, [STRANGER])
    comparison = selectors.role_comparison(managed_role=role)
    row = next(r for r in comparison.principals if r.principal == B_ROOT)
    assert row.state == "missing" and comparison.has_drift


def test_comparison_flags_a_revoked_partner_that_came_back(
    approved: Delegation, owner_admin: User
) -> None:
    delegation_mark_active(delegation=approved)
    delegation_revoke(delegation=approved, revoked_by=owner_admin, reason="end")
    delegation_mark_revoked(delegation=approved)
    role = approved.managed_role
    role.known_principals = [B_ROOT]
    _seen(role, [B_ROOT])
    row = selectors.role_comparison(managed_role=role).principals[0]
    assert row.state == "unexpected" and row.is_drift


def test_comparison_shows_the_parking_principal_and_refusals(
    approved: Delegation, ecs_admin: CatalogRole
) -> None:
    role = approved.managed_role
    _seen(role, ["acs:ram::11223344:root", B_ROOT])
    rows = {row.principal: row for row in selectors.role_comparison(managed_role=role).principals}
    assert rows["acs:ram::11223344:root"].state == "parking"
    _seen(role, [B_ROOT], marked=False)
    # A same-named role the portal did not create: the page says the portal will not touch it.
    refused = selectors.role_comparison(managed_role=role)
    assert refused.refusal and refused.wanted_document == ""


def test_comparison_before_the_worker_looked(approved: Delegation) -> None:
    comparison = selectors.role_comparison(managed_role=approved.managed_role)
    assert not comparison.seen and comparison.cloud_document == ""
    assert comparison.principals[0].state == "pending_add"
