"""The trust scope is chosen as a catalogue role's default and at approve or offer time."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from delegations.lifecycle.services import delegation_approve
from delegations.lifecycle.starting import delegation_offer, delegation_request
from delegations.models import Delegation, TrustScope
from tests.fixtures.partner import PartnerWorld


def _offer(world: PartnerWorld, **kwargs) -> Delegation:
    return delegation_offer(
        owner=world.owner,
        offered_by=world.owner_admin,
        partner=world.partner,
        catalog_role=world.catalog_role,
        reason="Support contract",
        ends_at=None,
        with_mfa=True,
        **kwargs,
    )


def test_a_new_delegation_starts_with_the_roles_default(partner_world: PartnerWorld) -> None:
    world = partner_world
    world.catalog_role.default_trust_scope = TrustScope.NAMED_PARTNER_MANAGED
    world.catalog_role.save()
    assert _offer(world).trust_scope == TrustScope.NAMED_PARTNER_MANAGED


def test_the_offer_may_choose_otherwise_and_nothing_else(partner_world: PartnerWorld) -> None:
    world = partner_world
    with pytest.raises(ValidationError):
        _offer(world, trust_scope="everyone")
    assert not Delegation.objects.exists()
    assert _offer(world, trust_scope="named_owner").trust_scope == TrustScope.NAMED_OWNER_APPROVED


def test_approving_may_choose_the_scope(partner_world: PartnerWorld) -> None:
    world = partner_world
    from delegations.catalog.partner_links import partner_link_create

    link, _ = partner_link_create(owner=world.owner, created_by=world.owner_admin, label="B")
    requested = delegation_request(
        partner=world.partner,
        requested_by=world.partner_admin,
        partner_link=link,
        catalog_role=world.catalog_role,
        reason="Please",
        ends_at=None,
    )
    approved = delegation_approve(
        delegation=requested,
        approved_by=world.owner_admin,
        with_mfa=True,
        trust_scope=TrustScope.NAMED_OWNER_APPROVED,
    )
    approved.refresh_from_db()
    assert approved.trust_scope == TrustScope.NAMED_OWNER_APPROVED
