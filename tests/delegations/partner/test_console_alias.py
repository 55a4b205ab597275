"""Which account a switch-role link names: the account the role lives in, never another one
of the same owner's. An organisation's enterprise alias names its own (primary) account, so a
role in a second account (a fleet's, say) with no alias of its own goes by its UID."""

import pytest

from delegations.partner.selectors import owner_console_alias
from tests.delegations.factories import (
    CatalogRoleFactory,
    CloudAccountFactory,
    DelegationFactory,
)
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return OrganisationFactory(kind="owner", account_uid="11223344", enterprise_alias="company-a")


def _delegation_in(account):
    return DelegationFactory(catalog_role=CatalogRoleFactory(cloud_account=account))


def test_the_primary_account_goes_by_the_organisations_alias(owner) -> None:
    primary = CloudAccountFactory(organisation=owner, account_uid="11223344", alias="")
    assert owner_console_alias(_delegation_in(primary)) == "company-a"


def test_a_second_account_without_an_alias_goes_by_its_uid_not_the_primarys_alias(owner) -> None:
    staging = CloudAccountFactory(
        organisation=owner, account_uid="11223355", alias="", is_primary=False
    )
    assert owner_console_alias(_delegation_in(staging)) == "11223355"


def test_an_accounts_own_alias_comes_first(owner) -> None:
    staging = CloudAccountFactory(
        organisation=owner, account_uid="11223355", alias="a-staging", is_primary=False
    )
    assert owner_console_alias(_delegation_in(staging)) == "a-staging"
