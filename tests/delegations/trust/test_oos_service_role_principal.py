"""Runbooks through OOS: once the partner's OOSServiceRole is set up, a named-people trust
scope admits `acs:ram::<partner>:role/OOSServiceRole` next to the named people; before, and for
the account-wide scope (which already admits every partner role), nothing changes."""

from __future__ import annotations

import pytest
from django.utils import timezone

from delegations.models import Delegation, TrustedPerson, TrustScope
from delegations.role_state import delegation_principals, oos_service_role_principal
from tests.delegations.factories import CatalogRoleFactory, CloudAccountFactory, DelegationFactory

pytestmark = pytest.mark.django_db

OOS_ROLE = "acs:ram::12345678:role/OOSServiceRole"
ALICE = "acs:ram::12345678:user/Alice"


@pytest.fixture
def partner_account(company_b):
    return CloudAccountFactory(organisation=company_b)


def _grant(company_a, company_b, scope: str) -> Delegation:
    account = CloudAccountFactory(organisation=company_a)
    role = CatalogRoleFactory(cloud_account=account, organisation=company_a)
    delegation = DelegationFactory(
        catalog_role=role,
        partner=company_b,
        status=Delegation.Status.ACTIVE,
        trust_scope=scope,
        named_scope_trusts_broker=False,
    )
    TrustedPerson.objects.create(
        delegation=delegation,
        ram_user_name="Alice",
        status=TrustedPerson.Status.APPROVED,
        decided_at=timezone.now(),
    )
    return delegation


def test_a_named_scope_admits_the_oos_role_once_it_is_ready(company_a, company_b, partner_account):
    delegation = _grant(company_a, company_b, TrustScope.NAMED_OWNER_APPROVED)
    assert delegation_principals(delegation) == frozenset({ALICE})
    assert oos_service_role_principal(delegation) is None

    partner_account.oos_service_role_ready_at = timezone.now()
    partner_account.save()
    assert oos_service_role_principal(delegation) == OOS_ROLE
    assert delegation_principals(delegation) == frozenset({ALICE, OOS_ROLE})


def test_the_account_wide_scope_is_unchanged(company_a, company_b, partner_account):
    partner_account.oos_service_role_ready_at = timezone.now()
    partner_account.save()
    delegation = _grant(company_a, company_b, TrustScope.PARTNER_ACCOUNT)
    assert delegation_principals(delegation) == frozenset({"acs:ram::12345678:root"})


def test_another_accounts_oos_role_is_never_admitted(company_a, company_b, partner_account):
    delegation = _grant(company_a, company_b, TrustScope.NAMED_PARTNER_MANAGED)
    # A ready account of the partner's organisation, but not the one the grant names.
    partner_account.account_uid = "87654321"
    partner_account.oos_service_role_ready_at = timezone.now()
    partner_account.save()
    assert oos_service_role_principal(delegation) is None
