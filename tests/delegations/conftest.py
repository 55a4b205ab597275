"""The delegation world shared by this folder's tests: company A (owner, account 11223344)
with a connected cloud account, an `ecs-admin` catalogue role granting AliyunECSFullAccess,
company B's account on A's allow-list and a partner link; plus a second owner admin (the
approver must differ from the requester) and the foreign companies C and D."""

from collections.abc import Callable

import pytest

from accounts.models import Membership, Organisation, User
from delegations.catalog.partner_links import partner_link_create
from delegations.lifecycle.starting import delegation_request
from delegations.models import CatalogRole, CloudAccount, Delegation, PartnerLink

# Cloud-account and catalogue fixtures against the real cloudsim (see that module).
from tests.delegations.cloud_fixtures import (  # noqa: F401
    encryption_key,
    sim,
    sim_owner,
    sim_partner,
)
from tests.delegations.factories import (
    CatalogRoleFactory,
    CloudAccountFactory,
    PartnerAllowanceFactory,
)
from tests.personas import make_member


@pytest.fixture
def owner_admin_2(company_a: Organisation) -> User:
    return make_member(company_a, Membership.Role.ADMIN, email="second-admin@company-a.example")


@pytest.fixture
def partner_admin_d(company_d: Organisation) -> User:
    return make_member(company_d, Membership.Role.ADMIN, email="admin@delta-foreign.example")


@pytest.fixture
def cloud_account_a(company_a: Organisation) -> CloudAccount:
    return CloudAccountFactory(organisation=company_a)


@pytest.fixture
def cloud_account_c(company_c: Organisation) -> CloudAccount:
    return CloudAccountFactory(organisation=company_c)


@pytest.fixture
def ecs_admin(cloud_account_a: CloudAccount) -> CatalogRole:
    return CatalogRoleFactory(
        cloud_account=cloud_account_a,
        role_name="ecs-admin",
        description="Operate ECS instances",
        policies=[{"type": "System", "name": "AliyunECSFullAccess"}],
    )


@pytest.fixture
def foreign_role(cloud_account_c: CloudAccount) -> CatalogRole:
    return CatalogRoleFactory(cloud_account=cloud_account_c, role_name="foreign-ops")


@pytest.fixture
def allow_b(company_a: Organisation, company_b: Organisation) -> None:
    PartnerAllowanceFactory(
        organisation=company_a, partner_account_uid=company_b.account_uid, label="Company B"
    )


@pytest.fixture
def link_a(company_a: Organisation, owner_admin: User) -> tuple[PartnerLink, str]:
    return partner_link_create(owner=company_a, created_by=owner_admin, label="For B")


@pytest.fixture
def make_request(
    company_b: Organisation,
    partner_admin: User,
    ecs_admin: CatalogRole,
    allow_b: None,
    link_a: tuple[PartnerLink, str],
) -> Callable[..., Delegation]:
    """`make_request(**overrides)`: company B's admin requests ecs-admin through A's link."""

    def request(**overrides: object) -> Delegation:
        arguments: dict[str, object] = {
            "partner": company_b,
            "requested_by": partner_admin,
            "partner_link": link_a[0],
            "catalog_role": ecs_admin,
            "reason": "Nightly patching of the web fleet",
            "ends_at": None,
        }
        arguments.update(overrides)
        return delegation_request(**arguments)  # type: ignore[arg-type]

    return request


@pytest.fixture
def requested(make_request: Callable[..., Delegation]) -> Delegation:
    return make_request()
