"""The API says which of the owner's connected accounts each catalogue role may be granted in
(`offered_in_account_uids`): a request or an offer may name any of them in `account_uid`,
and `cloud_account_uid` alone (the home account) does not tell them. The answer comes from
the selector the services check a chosen account against (`catalog_role_accounts`), for a
whole page of roles in a fixed number of queries."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from accounts.models import User
from delegations.catalog.selectors import catalog_role_accounts, catalog_roles_offered_accounts
from delegations.models import CatalogRole, CloudAccount
from tests.delegations.factories import CatalogRoleFactory, CloudAccountFactory

pytestmark = pytest.mark.django_db

CATALOG = "/api/v1/catalog-roles/"


@pytest.fixture
def accounts(ecs_admin: CatalogRole) -> dict[str, CloudAccount]:
    """Company A's accounts by UID: its primary 11223344 (ecs-admin's home), then staging
    11223355 and sandbox 11223366 connected after it, and 11223377 disconnected."""
    home = ecs_admin.cloud_account
    connected = timezone.now() - dt.timedelta(days=10)
    CloudAccount.objects.filter(pk=home.pk).update(created_at=connected)
    found = {home.account_uid: home}
    for days, uid in enumerate(("11223355", "11223366", "11223377"), start=1):
        found[uid] = CloudAccountFactory(
            organisation=home.organisation,
            account_uid=uid,
            alias="",
            is_primary=False,
            is_active=uid != "11223377",
            created_at=connected + dt.timedelta(days=days),
        )
    return found


@pytest.fixture
def roles(ecs_admin: CatalogRole, accounts: dict[str, CloudAccount]) -> dict[str, CatalogRole]:
    """ecs-admin offered in staging and in the disconnected account too; ecs-everywhere homed
    in sandbox and offered in every account; ecs-home only in its home account."""
    ecs_admin.extra_accounts.add(accounts["11223355"], accounts["11223377"])
    everywhere = CatalogRoleFactory(
        cloud_account=accounts["11223366"], role_name="ecs-everywhere", offered_in_all_accounts=True
    )
    home_only = CatalogRoleFactory(cloud_account=accounts["11223344"], role_name="ecs-home")
    return {"ecs-admin": ecs_admin, "ecs-everywhere": everywhere, "ecs-home": home_only}


@pytest.fixture
def owner(api: Callable, make_token: Callable, owner_admin: User) -> object:
    """Company A's admin, reading through the API."""
    return api(make_token(owner_admin, scopes=("read",)))


def offered(client: object) -> dict[str, list[str]]:
    listed = client.get(CATALOG).json()["results"]  # type: ignore[attr-defined]
    return {row["role_name"]: row["offered_in_account_uids"] for row in listed}


# Home first, then the others as every account list orders them (the primary, then as they
# were connected); never a disconnected account.
EXPECTED = {
    "ecs-admin": ["11223344", "11223355"],
    "ecs-everywhere": ["11223366", "11223344", "11223355"],
    "ecs-home": ["11223344"],
}


def test_the_owners_catalogue_says_which_accounts_each_role_is_offered_in(
    owner: object, roles: dict[str, CatalogRole]
) -> None:
    listed = owner.get(CATALOG).json()["results"]  # type: ignore[attr-defined]

    assert offered(owner) == EXPECTED
    for row in listed:
        # The home account leads, and is the one `cloud_account_uid` names.
        assert row["offered_in_account_uids"][0] == row["cloud_account_uid"]
        # What the services check a chosen account against, not a second reading of the rule.
        role = roles[row["role_name"]]
        assert row["offered_in_account_uids"] == [
            account.account_uid for account in catalog_role_accounts(catalog_role=role)
        ]


def test_a_role_whose_home_is_disconnected_is_offered_only_where_it_still_may_be(
    owner: object, roles: dict[str, CatalogRole], accounts: dict[str, CloudAccount]
) -> None:
    CloudAccount.objects.filter(pk=accounts["11223366"].pk).update(is_active=False)
    assert offered(owner)["ecs-everywhere"] == ["11223344", "11223355"]


def test_the_selector_reads_any_number_of_roles_in_two_queries(
    roles: dict[str, CatalogRole],
) -> None:
    with CaptureQueriesContext(connection) as queries:
        offered = catalog_roles_offered_accounts(list(roles.values()))
    assert len(queries.captured_queries) == 2
    assert {
        role.role_name: [account.account_uid for account in offered[role.pk]]
        for role in roles.values()
    } == EXPECTED
    assert catalog_roles_offered_accounts([]) == {}


def _queries(client: object, path: str) -> int:
    client.get(path)  # type: ignore[attr-defined]  # the token's first use is recorded once
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.content
    return len(queries.captured_queries)


def test_listing_the_catalogue_costs_the_same_queries_for_one_role_or_many(
    owner: object, roles: dict[str, CatalogRole], accounts: dict[str, CloudAccount]
) -> None:
    few = _queries(owner, CATALOG)
    for number in range(12):
        role = CatalogRoleFactory(cloud_account=accounts["11223355"], role_name=f"more-{number}")
        role.extra_accounts.add(accounts["11223344"], accounts["11223366"])
    many = _queries(owner, CATALOG)
    assert many == few
    assert len(offered(owner)) == len(roles) + 12


def test_the_schema_shows_the_offered_accounts_as_a_list_of_uids() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    field = schema["components"]["schemas"]["CatalogRoleOutput"]["properties"][
        "offered_in_account_uids"
    ]
    assert field["type"] == "array"
    assert field["items"]["type"] == "string"
    assert "account_uid" in field["description"]
