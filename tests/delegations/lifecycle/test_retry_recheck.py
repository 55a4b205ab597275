"""Retrying a failed apply grants the role again, so it makes every check a fresh approval
makes (`grant_precheck` before the lock, `grant_recheck` under it): the partner is still on the
allow-list, the catalogue role is still offered, its cloud account still connected. A refused
retry leaves the delegation failed and enqueues nothing; retrying a failed *removal* grants
nothing and is never held back by them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import Organisation, User
from audit.models import AuditEvent
from delegations.catalog.services import catalog_role_deactivate
from delegations.lifecycle.automatic import delegation_mark_applying, delegation_mark_failed
from delegations.lifecycle.services import delegation_approve, delegation_retry, delegation_revoke
from delegations.models import (
    CatalogRole,
    CloudAccount,
    Delegation,
    OutboxMessage,
    PartnerAllowance,
)

pytestmark = pytest.mark.django_db
S = Delegation.Status


@pytest.fixture
def failed_apply(requested: Delegation, owner_admin: User) -> Delegation:
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    delegation_mark_applying(delegation=requested)
    return delegation_mark_failed(delegation=requested, error_code="Throttling", error_message="x")


def partner_off_the_allow_list(company_a: Organisation) -> None:
    PartnerAllowance.objects.filter(organisation=company_a).delete()


def role_no_longer_offered(company_a: Organisation) -> None:
    role = CatalogRole.objects.get(organisation=company_a)
    catalog_role_deactivate(catalog_role=role, deactivated_by=None)


def account_disconnected(company_a: Organisation) -> None:
    CloudAccount.objects.filter(organisation=company_a).update(is_active=False)


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (partner_off_the_allow_list, "allow-list"),
        (role_no_longer_offered, "not in the owner's catalogue"),
        (account_disconnected, "no longer connected"),
    ],
)
def test_a_retry_cannot_grant_what_an_approval_would_refuse(
    failed_apply: Delegation,
    company_a: Organisation,
    owner_admin: User,
    change: Callable[[Organisation], None],
    refusal: str,
) -> None:
    change(company_a)
    outbox_before = OutboxMessage.objects.count()
    with pytest.raises(ValidationError, match=refusal):
        delegation_retry(delegation=failed_apply, retried_by=owner_admin)
    after = Delegation.objects.get(pk=failed_apply.pk)
    assert after.status == S.FAILED and after.failed_phase == Delegation.Phase.APPLYING
    assert OutboxMessage.objects.count() == outbox_before


def test_retrying_a_failed_removal_is_never_held_back(
    failed_apply: Delegation, company_a: Organisation, owner_admin: User
) -> None:
    delegation_revoke(delegation=failed_apply, revoked_by=owner_admin, reason="Contract ended")
    delegation_mark_failed(delegation=failed_apply, error_code="Throttling", error_message="x")
    partner_off_the_allow_list(company_a)
    role_no_longer_offered(company_a)
    retried = delegation_retry(delegation=failed_apply, retried_by=owner_admin)
    assert retried.status == S.REVOKING


def test_a_retry_that_passes_the_checks_goes_back_to_approved(
    failed_apply: Delegation, owner_admin: User
) -> None:
    retried = delegation_retry(delegation=failed_apply, retried_by=owner_admin)
    assert retried.status == S.APPROVED


def test_a_retry_refused_for_high_privilege_is_on_the_record(
    failed_apply: Delegation, company_a: Organisation, owner_admin: User
) -> None:
    CatalogRole.objects.filter(organisation=company_a).update(
        policies=[{"type": "System", "name": "AdministratorAccess"}], allows_high_privilege=False
    )
    with pytest.raises(ValidationError, match="no opt-in for high privilege"):
        delegation_retry(delegation=failed_apply, retried_by=owner_admin)
    denied = AuditEvent.objects.get(action="delegation.retry_denied")
    assert denied.outcome == AuditEvent.Outcome.DENIED and denied.actor == owner_admin
    assert "AdministratorAccess" in denied.metadata["denied_because"]
    assert Delegation.objects.get(pk=failed_apply.pk).status == S.FAILED


def test_the_page_tells_why_a_retry_is_refused(
    failed_apply: Delegation, company_a: Organisation, owner_admin: User, login
) -> None:
    partner_off_the_allow_list(company_a)
    response = login(owner_admin).post(
        reverse("delegations:retry", args=[failed_apply.pk]),
        {"version": Delegation.objects.get(pk=failed_apply.pk).version},
        follow=True,
    )
    assert response.status_code == 200
    assert "allow-list" in response.content.decode()
    assert Delegation.objects.get(pk=failed_apply.pk).status == S.FAILED
