"""The aliyun CLI profile the credentials pages name: one per account a role is granted in.
A fleet puts one role name in several of the owner's accounts; were their profiles named
alike, configuring the second would overwrite the first, and `aliyun --profile …` would act
in whichever account was configured last."""

import pytest

from delegations.partner.credentials import credentials_uri_formats, profile_name_for
from tests.delegations.factories import (
    CatalogRoleFactory,
    CloudAccountFactory,
    DelegationFactory,
    ManagedRoleFactory,
)
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db

URI = "https://portal.example/partner/credentials-uri/pak_example/"


@pytest.fixture
def owner():
    return OrganisationFactory(
        kind="owner", slug="company-a", account_uid="11223344", enterprise_alias="company-a"
    )


def _in_account(role, account):
    managed = ManagedRoleFactory(cloud_account=account, role_name=role.role_name)
    return DelegationFactory(catalog_role=role, managed_role=managed)


def test_each_account_of_a_role_has_its_own_profile(owner) -> None:
    primary = CloudAccountFactory(organisation=owner, account_uid="11223344")
    staging = CloudAccountFactory(
        organisation=owner, account_uid="11223355", alias="", is_primary=False
    )
    role = CatalogRoleFactory(cloud_account=primary, role_name="ecs-fleet-operator")

    at_home, elsewhere = _in_account(role, primary), _in_account(role, staging)

    # The organisation's own account keeps the name it always had.
    assert profile_name_for(at_home) == "company-a-ecs-fleet-operator"
    assert profile_name_for(elsewhere) == "company-a-11223355-ecs-fleet-operator"
    assert (
        "--profile company-a-11223355-ecs-fleet-operator "
        in (credentials_uri_formats(url=URI, delegation=elsewhere)["cli"])
    )


def test_a_second_account_goes_by_its_own_alias(owner) -> None:
    primary = CloudAccountFactory(organisation=owner, account_uid="11223344")
    staging = CloudAccountFactory(
        organisation=owner, account_uid="11223355", alias="a-staging", is_primary=False
    )
    role = CatalogRoleFactory(cloud_account=primary, role_name="ecs-fleet-operator")

    assert profile_name_for(_in_account(role, staging)) == "company-a-a-staging-ecs-fleet-operator"
