"""A Custom policy is one account's own. The catalogue offers a role in another of the owner's
accounts (listed, or all of them) only when each of its Custom policies exists there; the
refusal names the policy and the account and saves nothing. Against cloudsim, through the
services and the page."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from cloud.client import CloudClient
from delegations.catalog.services import catalog_role_set_accounts
from delegations.models import CatalogRole, CloudAccount
from tests.delegations.fleet.test_worker import connect_another
from tests.delegations.lifecycle.test_high_privilege_recheck import HARMLESS
from tests.fixtures.worker import OwnerWorld

pytestmark = pytest.mark.django_db
ECS = ("System", "AliyunECSFullAccess")


@pytest.fixture
def role(owner_world: OwnerWorld) -> CatalogRole:
    """ecs-admin with AliyunECSFullAccess and the home account's Custom OpsHelper."""
    owner_world.client().create_policy(policy_name="OpsHelper", document=HARMLESS)
    role = owner_world.catalog_role
    role.policies = [{"type": "System", "name": ECS[1]}, {"type": "Custom", "name": "OpsHelper"}]
    role.save()
    return role


@pytest.fixture
def staging(owner_world: OwnerWorld) -> tuple[CloudAccount, CloudClient]:
    return connect_another(owner_world, "staging")


def missing(account: CloudAccount, name: str = "OpsHelper") -> str:
    return (
        f"Custom policy {name} does not exist in the account {account.label}; create it "
        "there first."
    )


def offered_in(role: CatalogRole) -> tuple[bool, set[str]]:
    role = CatalogRole.objects.get(pk=role.pk)
    return role.offered_in_all_accounts, set(role.extra_accounts.values_list("pk", flat=True))


def test_offering_a_role_in_an_account_without_its_custom_policy_is_refused(
    owner_world: OwnerWorld, role: CatalogRole, staging: tuple[CloudAccount, CloudClient]
) -> None:
    account, client = staging
    with pytest.raises(ValidationError) as refused:
        catalog_role_set_accounts(
            catalog_role=role, changed_by=owner_world.admin, all_accounts=False, accounts=[account]
        )
    assert refused.value.message_dict == {"accounts": [missing(account)]}
    assert offered_in(role) == (False, set())
    assert not AuditEvent.objects.filter(action="catalog_role.accounts_changed").exists()

    # Created there a moment ago (the account's cached list still lacks it): offered.
    client.create_policy(policy_name="OpsHelper", document=HARMLESS)
    saved = catalog_role_set_accounts(
        catalog_role=role, changed_by=owner_world.admin, all_accounts=False, accounts=[account]
    )
    assert saved.changed and offered_in(role) == (False, {account.pk})


def test_all_accounts_names_each_connected_account_that_lacks_it(
    owner_world: OwnerWorld, role: CatalogRole, staging: tuple[CloudAccount, CloudClient]
) -> None:
    _account, client = staging
    client.create_policy(policy_name="OpsHelper", document=HARMLESS)
    dr, _dr_client = connect_another(owner_world, "dr")
    with pytest.raises(ValidationError) as refused:
        catalog_role_set_accounts(
            catalog_role=role, changed_by=owner_world.admin, all_accounts=True
        )
    assert refused.value.message_dict == {"accounts": [missing(dr)]}
    assert offered_in(role) == (False, set())


def test_a_role_of_system_policies_is_offered_anywhere_without_a_cloud_call(
    owner_world: OwnerWorld, staging: tuple[CloudAccount, CloudClient]
) -> None:
    account, _client = staging
    since = owner_world.sim.last_call_seq()
    catalog_role_set_accounts(
        catalog_role=owner_world.catalog_role,
        changed_by=owner_world.admin,
        all_accounts=False,
        accounts=[account],
    )
    assert owner_world.sim.calls(since) == []
    assert offered_in(owner_world.catalog_role) == (False, {account.pk})


def test_the_accounts_page_shows_the_refusal(
    owner_world: OwnerWorld,
    role: CatalogRole,
    staging: tuple[CloudAccount, CloudClient],
    client: Client,
) -> None:
    account, _client = staging
    client.force_login(owner_world.admin)
    page = client.post(
        reverse("delegations:catalog_role_accounts", args=[role.pk]),
        {"accounts": [str(account.pk)]},
        follow=True,
    )
    assert missing(account).replace("'", "&#x27;") in page.content.decode()
    assert offered_in(role) == (False, set())
