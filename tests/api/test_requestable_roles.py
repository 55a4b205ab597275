"""A partner reads the roles it may request of an owner, with the accounts each is offered
in (`GET /api/v1/owners/<owner>/catalog-roles/`), as the request page lists them once a
partner link code is entered: only an owner whose partner link the partner used for a
request and that is still valid for it (as `pap request --owner`), only the roles that
owner grants, and the same 404 for every other owner as for one that does not exist."""

from collections.abc import Callable

import pytest
from drf_spectacular.generators import SchemaGenerator

from accounts.models import Organisation, User
from delegations.catalog.partner_links import partner_link_create, partner_link_revoke
from delegations.models import CatalogRole, CloudAccount, Delegation, PartnerLink
from tests.api.test_api import problem

# Company B's CI pipeline: a service account that reads and requests.
from tests.api.test_service_accounts import pipeline  # noqa: F401
from tests.delegations.factories import (
    CatalogRoleFactory,
    CloudAccountFactory,
    PartnerAllowanceFactory,
)

pytestmark = pytest.mark.django_db

COMPANY_A = "/api/v1/owners/company-a/catalog-roles/"
# What the request page shows of a role (its name, account and policies), and where else it
# may be asked for; never the owner's own notes (description) or switches.
FIELDS = {"id", "role_name", "cloud_account_uid", "offered_in_account_uids", "policies"}


@pytest.fixture
def catalogue(ecs_admin: CatalogRole) -> dict[str, CatalogRole]:
    """Company A grants ecs-admin (also in staging 11223355) and ecs-viewer; it no longer
    grants ecs-old (deactivated) nor ecs-gone (its account is disconnected)."""
    staging = CloudAccountFactory(
        organisation=ecs_admin.organisation, account_uid="11223355", alias="", is_primary=False
    )
    ecs_admin.extra_accounts.add(staging)
    gone = CloudAccountFactory(
        organisation=ecs_admin.organisation, account_uid="11223366", alias="", is_primary=False
    )
    roles = {
        "ecs-admin": ecs_admin,
        "ecs-viewer": CatalogRoleFactory(
            cloud_account=ecs_admin.cloud_account, role_name="ecs-viewer"
        ),
        "ecs-old": CatalogRoleFactory(
            cloud_account=ecs_admin.cloud_account, role_name="ecs-old", is_active=False
        ),
        "ecs-gone": CatalogRoleFactory(cloud_account=gone, role_name="ecs-gone"),
    }
    CloudAccount.objects.filter(pk=gone.pk).update(is_active=False)
    return roles


@pytest.fixture
def partner(api: Callable, make_token: Callable, partner_admin: User) -> object:
    """Company B's admin, reading through the API."""
    return api(make_token(partner_admin, scopes=("read",)))


def test_a_partner_lists_the_roles_of_an_owner_it_reached_with_their_accounts(
    partner: object,
    catalogue: dict[str, CatalogRole],
    foreign_role: CatalogRole,
    requested: Delegation,
) -> None:
    response = partner.get(COMPANY_A)  # type: ignore[attr-defined]

    assert response.status_code == 200, response.content
    page = response.json()
    assert page["count"] == 2
    rows = {row["role_name"]: row for row in page["results"]}
    assert set(rows) == {"ecs-admin", "ecs-viewer"}
    assert rows["ecs-admin"]["offered_in_account_uids"] == ["11223344", "11223355"]
    assert rows["ecs-admin"]["id"] == str(catalogue["ecs-admin"].pk)
    assert rows["ecs-admin"]["policies"] == ["AliyunECSFullAccess"]
    assert rows["ecs-viewer"]["offered_in_account_uids"] == ["11223344"]
    assert all(set(row) == FIELDS for row in rows.values())


def test_a_partners_service_account_lists_them_too(
    api: Callable,
    pipeline: str,  # noqa: F811
    requested: Delegation,
) -> None:
    response = api(pipeline).get(COMPANY_A)
    assert response.status_code == 200, response.content
    assert [row["role_name"] for row in response.json()["results"]] == ["ecs-admin"]


def _not_found(client: object, path: str) -> dict:
    body = problem(client.get(path), 404, "not-found")  # type: ignore[attr-defined]
    body.pop("instance", None)
    body.pop("request_id", None)
    return body


def test_an_owner_the_partner_did_not_reach_is_the_same_404_as_none_at_all(
    api: Callable,
    make_token: Callable,
    partner: object,
    partner_admin_d: User,
    company_a: Organisation,
    company_c: Organisation,
    company_d: Organisation,
    owner_admin: User,
    ecs_admin: CatalogRole,
    foreign_role: CatalogRole,
    allow_b: None,
    link_a: tuple[PartnerLink, str],
) -> None:
    nobody = _not_found(partner, "/api/v1/owners/no-such-owner/catalog-roles/")
    # Allow-listed and holding a valid code, but never requested with it: the code is not in
    # a URL, so it is not a way to read the catalogue.
    assert _not_found(partner, COMPANY_A) == nobody
    # Another owner, whose catalogue company B never reached.
    assert _not_found(partner, f"/api/v1/owners/{company_c.slug}/catalog-roles/") == nobody
    # Another partner, even one on company A's allow-list, does not read B's way in.
    PartnerAllowanceFactory(organisation=company_a, partner_account_uid=company_d.account_uid)
    company_d = api(make_token(partner_admin_d, scopes=("read",)))
    assert _not_found(company_d, COMPANY_A) == nobody


def test_a_link_that_stopped_working_stops_the_listing(
    partner: object, owner_admin: User, requested: Delegation, link_a: tuple[PartnerLink, str]
) -> None:
    assert partner.get(COMPANY_A).status_code == 200  # type: ignore[attr-defined]
    partner_link_revoke(link=link_a[0], revoked_by=owner_admin)
    _not_found(partner, COMPANY_A)
    # A new code, used for a request, is a way in again.
    other, _code = partner_link_create(owner=requested.owner, created_by=owner_admin, label="B2")
    Delegation.objects.filter(pk=requested.pk).update(partner_link=other)
    assert partner.get(COMPANY_A).status_code == 200  # type: ignore[attr-defined]


def test_owners_and_partner_staff_are_refused(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    partner_staff: User,
    requested: Delegation,
) -> None:
    owner = api(make_token(owner_admin, scopes=("read",)))
    refused = problem(owner.get(COMPANY_A), 403, "forbidden")
    assert "/api/v1/catalog-roles/" in refused["detail"]
    staff = api(make_token(partner_staff, scopes=("read",)))
    problem(staff.get(COMPANY_A), 403, "forbidden")
    # And a partner asking for the owners' own list is told where its view is.
    partner = api(make_token(requested.requested_by, scopes=("read",)))
    refused = problem(partner.get("/api/v1/catalog-roles/"), 403, "forbidden")
    assert "/api/v1/owners/" in refused["detail"]


def test_the_schema_describes_the_partners_view() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/owners/{owner}/catalog-roles/"]["get"]
    assert "404" in operation["responses"]
    component = schema["components"]["schemas"]["RequestableRoleOutput"]
    assert set(component["properties"]) == FIELDS
