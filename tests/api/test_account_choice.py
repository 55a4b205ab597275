"""A request or an offer through the API chooses which of the owner's connected accounts the
role is granted in (`account_uid`), as the pages' "Owner account" does: absent, the role's
home account; an account the role is not offered in, or one that is not the owner's, is a
400 on `account_uid` and nothing is filed."""

from collections.abc import Callable

import pytest
from drf_spectacular.generators import SchemaGenerator

from accounts.models import Organisation, User
from api.problems import PROBLEM_CONTENT_TYPE
from delegations.models import CatalogRole, CloudAccount, Delegation, PartnerLink
from tests.delegations.factories import CatalogRoleFactory, CloudAccountFactory

pytestmark = pytest.mark.django_db

DELEGATIONS = "/api/v1/delegations/"
OFFER = "/api/v1/delegations/offer/"


@pytest.fixture
def staging(ecs_admin: CatalogRole) -> CloudAccount:
    """Company A's second connected account, where ecs-admin is offered too."""
    account = CloudAccountFactory(
        organisation=ecs_admin.organisation, account_uid="11223355", alias="", is_primary=False
    )
    ecs_admin.extra_accounts.add(account)
    return account


@pytest.fixture
def sandbox(ecs_admin: CatalogRole) -> CloudAccount:
    """Company A's third connected account, where ecs-admin is not offered."""
    return CloudAccountFactory(
        organisation=ecs_admin.organisation, account_uid="11223366", alias="", is_primary=False
    )


@pytest.fixture
def ask(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    owner_admin: User,
    allow_b: None,
    link_a: tuple[PartnerLink, str],
    decisions_on: None,
) -> Callable[..., object]:
    """`ask(door, **fields)`: company B's admin requests ecs-admin, or company A's admin
    offers it to company B; the answer."""
    requester = api(make_token(partner_admin, scopes=("read", "request")))
    offerer = api(make_token(owner_admin, scopes=("read", "decide"), with_mfa=True))

    def call(door: str, **fields: str) -> object:
        body = {"catalog_role": "ecs-admin", "reason": "Patch the staging fleet", **fields}
        if door == "request":
            return requester.post(DELEGATIONS, {"partner_link_code": link_a[1], **body})
        return offerer.post(OFFER, {"partner": "company-b", **body})

    return call


def refused_on_account_uid(response: object) -> str:
    assert response.status_code == 400, response.content  # type: ignore[attr-defined]
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE  # type: ignore[index]
    body = response.json()  # type: ignore[attr-defined]
    assert body["type"] == "/api/v1/problems/validation"
    assert list(body["errors"]) == ["account_uid"], body
    assert not Delegation.objects.exists()
    return " ".join(body["errors"]["account_uid"])


DOORS = ["request", "offer"]


@pytest.mark.parametrize("door", DOORS)
def test_a_request_or_an_offer_in_the_owners_second_account_is_granted_there(
    ask: Callable, ecs_admin: CatalogRole, staging: CloudAccount, door: str
) -> None:
    response = ask(door, account_uid="11223355")

    assert response.status_code == 201, response.content  # type: ignore[attr-defined]
    answer = response.json()  # type: ignore[attr-defined]
    assert answer["account_uid"] == "11223355"
    assert answer["role_arn"] == "acs:ram::11223355:role/ecs-admin"
    delegation = Delegation.objects.get(pk=answer["id"])
    assert delegation.catalog_role == ecs_admin
    assert delegation.managed_role.cloud_account == staging


@pytest.mark.parametrize("door", DOORS)
def test_without_an_account_or_with_the_home_one_it_is_the_roles_home_account(
    ask: Callable, ecs_admin: CatalogRole, staging: CloudAccount, door: str
) -> None:
    home = ecs_admin.cloud_account
    first = ask(door)
    assert first.status_code == 201, first.content  # type: ignore[attr-defined]
    assert first.json()["account_uid"] == home.account_uid  # type: ignore[attr-defined]
    Delegation.objects.all().delete()
    named = ask(door, account_uid=home.account_uid)
    assert named.status_code == 201, named.content  # type: ignore[attr-defined]
    assert Delegation.objects.get().managed_role.cloud_account == home


@pytest.mark.parametrize("door", DOORS)
def test_an_account_the_role_is_not_offered_in_is_refused_as_on_the_page(
    ask: Callable, staging: CloudAccount, sandbox: CloudAccount, door: str
) -> None:
    said = refused_on_account_uid(ask(door, account_uid="11223366"))
    # The words of the service the pages call, not a second wording of the rule.
    assert said == "ecs-admin is not offered in the account 11223366."


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(
    "uid",
    [
        pytest.param("5566778899001122", id="another organisation's connected account"),
        pytest.param("12345678", id="the partner's own account"),
        pytest.param("99999999", id="no account at all"),
    ],
)
def test_a_uid_that_is_not_one_of_the_owners_connected_accounts_is_refused(
    ask: Callable,
    staging: CloudAccount,
    cloud_account_c: CloudAccount,
    company_b: Organisation,
    door: str,
    uid: str,
) -> None:
    CloudAccountFactory(organisation=company_b)
    said = refused_on_account_uid(ask(door, account_uid=uid))
    assert "Company A has no connected cloud account with this UID." in said
    # A disconnected account of the owner is no longer one of its accounts either.
    CloudAccount.objects.filter(pk=staging.pk).update(is_active=False)
    refused_on_account_uid(ask(door, account_uid="11223355"))


@pytest.mark.parametrize("door", DOORS)
def test_a_name_two_accounts_hold_means_the_one_offered_in_the_chosen_account(
    ask: Callable, ecs_admin: CatalogRole, staging: CloudAccount, door: str
) -> None:
    """Two catalogue roles named ecs-admin, one homed in each account: the name alone is
    ambiguous; with `account_uid` it names the one that may be granted there (the catalogue
    never offers two roles of one name in one account), whether that account is its home or
    one it is offered in."""
    ecs_admin.extra_accounts.remove(staging)
    other = CatalogRoleFactory(cloud_account=staging, role_name="ecs-admin")
    dr = CloudAccountFactory(
        organisation=ecs_admin.organisation, account_uid="11223377", alias="", is_primary=False
    )
    ecs_admin.extra_accounts.add(dr)

    ambiguous = ask(door)
    assert ambiguous.status_code == 400, ambiguous.content  # type: ignore[attr-defined]
    assert "Several are named 'ecs-admin'" in ambiguous.json()["detail"]  # type: ignore[attr-defined]
    for uid, role in (("11223355", other), ("11223377", ecs_admin), ("11223344", ecs_admin)):
        response = ask(door, account_uid=uid)
        assert response.status_code == 201, response.content  # type: ignore[attr-defined]
        delegation = Delegation.objects.get(pk=response.json()["id"])  # type: ignore[attr-defined]
        assert (delegation.catalog_role, delegation.managed_role.cloud_account.account_uid) == (
            role,
            uid,
        )


def test_the_schema_shows_the_optional_account_uid_on_both_inputs() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for name in ("RequestAccessInputRequest", "OfferInputRequest"):
        component = schema["components"]["schemas"][name]
        field = component["properties"]["account_uid"]
        assert field["type"] == "string"
        assert "home account" in field["description"]
        assert "account_uid" not in component.get("required", [])
        assert "account_uid" in component["properties"]["catalog_role"]["description"]
