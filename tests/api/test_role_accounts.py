"""The API says which of the owner's accounts each delegation, access and assignment is in:
a fleet puts one role name in several accounts, and `owner` and `role_name` alone read the
same for each of them."""

from collections.abc import Callable

import pytest

from accounts.models import User
from delegations.models import CatalogRole, Delegation, PartnerLink, StaffAssignment
from tests.delegations.factories import (
    CatalogRoleFactory,
    CloudAccountFactory,
    DelegationFactory,
    ManagedRoleFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_two_accounts(
    requested: Delegation, partner_staff: User, partner_admin: User
) -> list[Delegation]:
    """company B holds ecs-admin in company A's own account and in its second one, and its
    staff member is assigned to both."""
    Delegation.objects.filter(pk=requested.pk).update(status=Delegation.Status.ACTIVE)
    staging = CloudAccountFactory(
        organisation=requested.owner, account_uid="11223355", alias="", is_primary=False
    )
    elsewhere = DelegationFactory(
        catalog_role=requested.catalog_role,
        partner=requested.partner,
        managed_role=ManagedRoleFactory(cloud_account=staging, role_name="ecs-admin"),
        status=Delegation.Status.ACTIVE,
    )
    for delegation in (requested, elsewhere):
        StaffAssignment.objects.create(
            delegation=delegation,
            partner=requested.partner,
            user=partner_staff,
            assigned_by=partner_admin,
        )
    return [requested, elsewhere]


def _accounts(rows: list[dict], key: str) -> dict[str, str]:
    return {row[key]: row["account_uid"] for row in rows}


def test_each_delegation_access_and_assignment_names_its_account(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    partner_staff: User,
    owner_admin: User,
    in_two_accounts: list[Delegation],
) -> None:
    home, elsewhere = in_two_accounts
    expected = {
        str(home.pk): home.managed_role.cloud_account.account_uid,
        str(elsewhere.pk): "11223355",
    }
    for person in (owner_admin, partner_admin):
        listed = api(make_token(person, scopes=("read",))).get("/api/v1/delegations/").json()
        assert _accounts(listed["results"], "id") == expected
        one = api(make_token(person, scopes=("read",))).get(f"/api/v1/delegations/{elsewhere.pk}/")
        assert one.json()["account_uid"] == "11223355"
    admin = api(make_token(partner_admin, scopes=("read",)))
    assert _accounts(admin.get("/api/v1/assignments/").json()["results"], "delegation") == expected
    staff = api(make_token(partner_staff, scopes=("read",)))
    assert _accounts(staff.get("/api/v1/access/").json(), "delegation") == expected


def test_a_role_name_two_accounts_hold_is_refused_by_name_and_taken_by_id(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    allow_b: None,
    ecs_admin: CatalogRole,
    link_a: tuple[PartnerLink, str],
) -> None:
    """Each of the owner's accounts may hold a catalogue role of its own named ecs-admin: a
    request by that name cannot tell which is meant, so it is refused with the id and account
    of each, rather than filed for whichever the database returned first."""
    staging = CloudAccountFactory(
        organisation=ecs_admin.organisation, account_uid="11223355", alias="", is_primary=False
    )
    other = CatalogRoleFactory(cloud_account=staging, role_name="ecs-admin")
    client = api(make_token(partner_admin, scopes=("read", "request")))
    body = {"partner_link_code": link_a[1], "reason": "Patching"}

    refused = client.post("/api/v1/delegations/", {**body, "catalog_role": "ecs-admin"})

    assert refused.status_code == 400, refused.content
    detail = refused.json()["detail"]
    for role in (ecs_admin, other):
        assert f"{role.pk} (account {role.cloud_account.account_uid})" in detail
    assert not Delegation.objects.exists()
    taken = client.post("/api/v1/delegations/", {**body, "catalog_role": str(other.pk)})
    assert taken.status_code == 201, taken.content
    assert taken.json()["account_uid"] == "11223355"
