"""A cut-off on a shared role, seen from each side (tenant isolation, AZ-03).

One cloud role serves every partner granted the same catalogue role, so cutting it off for
one partner stops the others' credentials too, and each partner's page lists it. The name of
the partner it was made for and the owner's reason stay with the owner and that partner."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from accounts.models import Membership
from delegations.models import Delegation, RoleCutOff
from tests.delegations.factories import CatalogRoleFactory, CloudAccountFactory, DelegationFactory
from tests.factories import OrganisationFactory
from tests.personas import make_member

pytestmark = pytest.mark.django_db

REASON = "Echo staff copied snapshots out"


@pytest.fixture
def shared_role_cut_off(company_a, company_b, owner_admin):
    account = CloudAccountFactory(organisation=company_a)
    role = CatalogRoleFactory(cloud_account=account, organisation=company_a, role_name="shared-ops")
    mine = DelegationFactory(catalog_role=role, partner=company_b, status=Delegation.Status.ACTIVE)
    echo = OrganisationFactory(name="Echo Partner", slug="echo", kind="partner", account_uid="5555")
    theirs = DelegationFactory(catalog_role=role, partner=echo, status=Delegation.Status.REVOKING)
    assert mine.managed_role_id == theirs.managed_role_id
    RoleCutOff.objects.create(
        managed_role=theirs.managed_role, delegation=theirs, reason=REASON, cut_off_by=owner_admin
    )
    return mine, theirs


def _cut_offs_section(client, delegation: Delegation) -> str:
    response = client.get(reverse("delegations:issuances", args=[delegation.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    return html[html.index('id="cutoffs-title"') :]


def test_another_partner_sees_the_cut_off_but_not_whom_it_was_for_nor_why(
    shared_role_cut_off, partner_admin, login
) -> None:
    mine, _ = shared_role_cut_off
    section = _cut_offs_section(login(partner_admin), mine)
    assert "on another partner's access to this shared role" in unescape(section), section[:600]
    assert "in force" in section
    assert "Echo Partner" not in section
    assert "snapshots" not in section


def test_the_owner_and_the_partner_it_was_for_read_name_and_reason(
    shared_role_cut_off, owner_admin, login
) -> None:
    mine, theirs = shared_role_cut_off
    owner_view = _cut_offs_section(login(owner_admin), mine)
    assert "Echo Partner" in owner_view and REASON in owner_view
    echo_admin = make_member(theirs.partner, Membership.Role.ADMIN)
    their_view = _cut_offs_section(login(echo_admin), theirs)
    assert "Echo Partner" in their_view and REASON in their_view
