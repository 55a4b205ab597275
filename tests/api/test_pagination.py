"""Every paged list of the API walks its rows in one total order: a client reading page after
page (`offset` += `limit`) sees each row exactly once, even when many rows tie on every
column the list sorts by. Without a unique last sort key the database may order tied rows
differently in each query (PostgreSQL's top-N sort does), so a row would show on two pages
and another on none."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Organisation, User
from delegations.models import CatalogRole, CloudAccount, Delegation, StaffAssignment
from tests.api.test_api import problem
from tests.delegations.factories import (
    CatalogRoleFactory,
    CloudAccountFactory,
    DelegationFactory,
)
from tests.personas import make_member

pytestmark = pytest.mark.django_db

# Enough tied rows, read in pages small enough, that a sort without a tiebreaker is a top-N
# heap sort on PostgreSQL, whose order among equal keys changes with the page's bound.
TIED = 60
PAGE = 7


def assert_each_row_on_one_page(client: Any, path: str, expected: set[str]) -> None:
    """Reading the list a page at a time from the start to the end shows every row of
    `expected` (ids) exactly once."""
    seen: list[str] = []
    offset = 0
    while offset < TIED:
        body = client.get(path, limit=PAGE, offset=offset).json()
        assert body["count"] == TIED, body
        seen += [row["id"] for row in body["results"]]
        offset += PAGE
    assert len(seen) == len(set(seen)) == TIED
    assert set(seen) == expected


def tied_delegations(ecs_admin: CatalogRole, company_b: Organisation) -> set[str]:
    """Delegations alike in everything the lists sort by: partner, owner, role, creation."""
    rows = [DelegationFactory(catalog_role=ecs_admin, partner=company_b) for _ in range(TIED)]
    moment = timezone.now() - dt.timedelta(days=1)
    Delegation.objects.filter(pk__in=[row.pk for row in rows]).update(created_at=moment)
    return {str(row.pk) for row in rows}


@pytest.mark.parametrize("side", ["owner", "partner"])
def test_delegations_tied_on_every_sort_column_are_each_on_exactly_one_page(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    partner_admin: User,
    ecs_admin: CatalogRole,
    company_b: Organisation,
    side: str,
) -> None:
    expected = tied_delegations(ecs_admin, company_b)
    reader = owner_admin if side == "owner" else partner_admin
    client = api(make_token(reader, scopes=("read",)))
    assert_each_row_on_one_page(client, "/api/v1/delegations/", expected)


def test_catalogue_roles_of_the_same_name_in_several_accounts_are_each_on_one_page(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    company_a: Organisation,
) -> None:
    # A role name is unique per cloud account, not per owner: each account has its "ops".
    accounts: list[CloudAccount] = [
        CloudAccountFactory(organisation=company_a, account_uid=f"9{n:07d}", is_primary=False)
        for n in range(TIED)
    ]
    roles = {
        str(CatalogRoleFactory(cloud_account=account, role_name="ops").pk) for account in accounts
    }
    client = api(make_token(owner_admin, scopes=("read",)))
    assert_each_row_on_one_page(client, "/api/v1/catalog-roles/", roles)


def test_staff_assignments_tied_on_every_sort_column_are_each_on_exactly_one_page(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    ecs_admin: CatalogRole,
    company_b: Organisation,
) -> None:
    # One person on many delegations of one role: owner, role and email are all equal.
    person = make_member(company_b, "staff", email="same@company-b.example")
    assignments = {
        str(
            StaffAssignment.objects.create(
                delegation=DelegationFactory(
                    catalog_role=ecs_admin, partner=company_b, status=Delegation.Status.ACTIVE
                ),
                partner=company_b,
                user=person,
                assigned_by=partner_admin,
            ).pk
        )
        for _ in range(TIED)
    }
    client = api(make_token(partner_admin, scopes=("read",)))
    assert_each_row_on_one_page(client, "/api/v1/assignments/", assignments)


# (list, the persona whose list it is)
PAGED = [
    ("/api/v1/delegations/", "owner_admin"),
    ("/api/v1/catalog-roles/", "owner_admin"),
    ("/api/v1/assignments/", "partner_admin"),
]


@pytest.mark.parametrize(("path", "persona"), PAGED)
@pytest.mark.parametrize(
    ("query", "name"),
    [
        # Found by the schema fuzz: each was read as absent, and the first page answered.
        ("offset=null", "offset"),
        ("limit=null", "limit"),
        ("offset=true", "offset"),
        ("limit=", "limit"),
        ("offset=-1", "offset"),
        ("limit=0", "limit"),
        ("limit=1.5", "limit"),
        ("offset=²", "offset"),
        ("offset=" + "9" * 30, "offset"),
    ],
)
def test_a_malformed_page_is_a_400_naming_the_parameter_not_the_first_page(
    request: pytest.FixtureRequest,
    api: Callable,
    make_token: Callable,
    path: str,
    persona: str,
    query: str,
    name: str,
) -> None:
    client = api(make_token(request.getfixturevalue(persona), scopes=("read",)))
    response = client.client.get(f"{path}?{query}", headers=client.headers)
    assert list(problem(response, 400, "validation")["errors"]) == [name]


@pytest.mark.parametrize(("path", "persona"), PAGED)
def test_a_page_larger_than_the_largest_is_the_largest(
    request: pytest.FixtureRequest, api: Callable, make_token: Callable, path: str, persona: str
) -> None:
    client = api(make_token(request.getfixturevalue(persona), scopes=("read",)))
    body = client.get(path, limit=10_000, offset=0).json()
    assert body["results"] == [] and body["count"] == 0 and body["next"] is None


def test_an_empty_audit_cursor_or_page_size_is_a_400_too(
    api: Callable, make_token: Callable, owner_admin: User
) -> None:
    # Found by the schema fuzz: `limit=` read as the default page size.
    client = api(make_token(owner_admin, scopes=("audit",)))
    for query in ("limit=", "before="):
        response = client.client.get(f"/api/v1/audit/events/?{query}", headers=client.headers)
        assert list(problem(response, 400, "validation")["errors"]) == [query[:-1]]
