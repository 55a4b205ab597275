"""A partner organisation whose founder never confirmed their email is nobody yet: an owner
cannot offer it access or name it for break-glass, so nothing of another organisation's hangs
off a sign-up that may lapse (accounts.services.organisation_signups_expire)."""

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Organisation, User
from delegations.breakglass import selectors as breakglass_selectors
from delegations.breakglass.services import break_glass_role_set
from delegations.lifecycle import selectors
from delegations.lifecycle.starting import delegation_offer
from delegations.models import BreakGlassRole, CatalogRole, Delegation
from tests.delegations.factories import PartnerAllowanceFactory
from tests.factories import unconfirmed_signup

pytestmark = pytest.mark.django_db

SQUATTED_UID = "7777000011112222"


@pytest.fixture
def squatted(company_a: Organisation) -> Organisation:
    """A partner sign-up for an account on A's allow-list that nobody confirmed."""
    PartnerAllowanceFactory(organisation=company_a, partner_account_uid=SQUATTED_UID)
    return unconfirmed_signup(kind=Organisation.Kind.PARTNER, account_uid=SQUATTED_UID)


def test_an_unconfirmed_partner_is_not_offered(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    ecs_admin: CatalogRole,
    allow_b: None,
    squatted: Organisation,
) -> None:
    assert list(selectors.partners_offerable(owner=company_a)) == [company_b]
    assert list(breakglass_selectors.partner_choices(owner=company_a)) == [company_b]
    with pytest.raises(ValidationError, match="not confirmed"):
        delegation_offer(
            owner=company_a,
            offered_by=owner_admin,
            partner=squatted,
            catalog_role=ecs_admin,
            reason="Managed service contract",
            ends_at=None,
            with_mfa=True,
        )
    founder = squatted.memberships.get().user
    with pytest.raises(ValidationError, match="not confirmed"):
        break_glass_role_set(
            owner=company_a,
            set_by=owner_admin,
            catalog_role=ecs_admin,
            partner=squatted,
            people=[founder],
            max_hours=4,
        )
    assert not Delegation.objects.exists()
    assert not BreakGlassRole.objects.exists()
