"""A Custom policy is one account's own. The catalogue offers a role in another of the owner's
accounts (listed, or all of them) only when each of its Custom policies exists there, and an
edit gives a role offered or granted in other accounts a Custom policy only when each of them
has it; the refusal names the policy and the account and saves nothing. An edit also judges
the high-privilege opt-in by those accounts' own documents of the name, as a grant there
does. Against cloudsim, through the services and the pages."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from cloud.client import CloudClient
from delegations.catalog.services import catalog_role_set_accounts, catalog_role_update
from delegations.models import CatalogRole, CloudAccount, OutboxMessage
from tests.delegations.fleet.test_worker import connect_another
from tests.delegations.lifecycle.test_high_privilege_recheck import HARMLESS, RAM_EVERYTHING
from tests.delegations.lifecycle.test_views import with_mfa
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


def edit(world: OwnerWorld, role: CatalogRole, keys: list[tuple[str, str]], **extra: object):
    return catalog_role_update(
        catalog_role=CatalogRole.objects.get(pk=role.pk),
        updated_by=world.admin,
        description=role.description,
        policy_keys=keys,
        max_session_duration=role.max_session_duration,
        keep_role_when_empty=role.keep_role_when_empty,
        **extra,
    )


def test_an_edit_adds_a_custom_policy_only_where_the_role_is_offered_it_exists(
    owner_world: OwnerWorld, role: CatalogRole, staging: tuple[CloudAccount, CloudClient]
) -> None:
    """Delegations already granted follow an edit (the worker attaches the new policy): in
    an account without it, that attach would fail where no decision is pending to show it."""
    account, client = staging
    client.create_policy(policy_name="OpsHelper", document=HARMLESS)
    role.extra_accounts.set([account])
    owner_world.client().create_policy(policy_name="LogReader", document=HARMLESS)
    keys = [ECS, ("Custom", "OpsHelper"), ("Custom", "LogReader")]
    with pytest.raises(ValidationError) as refused:
        edit(owner_world, role, keys)
    assert refused.value.message_dict == {"policies": [missing(account, "LogReader")]}
    assert CatalogRole.objects.get(pk=role.pk).policies == role.policies
    assert not OutboxMessage.objects.exists()

    client.create_policy(policy_name="LogReader", document=HARMLESS)
    assert edit(owner_world, role, keys).changed


def test_an_edit_checks_an_account_the_role_is_granted_in_but_no_longer_offered(
    owner_world: OwnerWorld, role: CatalogRole, staging: tuple[CloudAccount, CloudClient]
) -> None:
    from delegations.lifecycle.starting import delegation_offer

    account, client = staging
    client.create_policy(policy_name="OpsHelper", document=HARMLESS)
    role.extra_accounts.set([account])
    delegation_offer(
        owner=owner_world.organisation,
        offered_by=owner_world.admin,
        partner=owner_world.partner(),
        catalog_role=role,
        reason="Patch staging",
        ends_at=None,
        with_mfa=True,
        cloud_account=account,
    )
    role.extra_accounts.set([])  # offered no more; what was granted stays
    owner_world.client().create_policy(policy_name="LogReader", document=HARMLESS)
    with pytest.raises(ValidationError) as refused:
        edit(owner_world, role, [ECS, ("Custom", "OpsHelper"), ("Custom", "LogReader")])
    assert refused.value.message_dict == {"policies": [missing(account, "LogReader")]}


def test_an_edit_judges_high_privilege_by_each_accounts_own_document(
    owner_world: OwnerWorld, role: CatalogRole, staging: tuple[CloudAccount, CloudClient]
) -> None:
    """Staging's OpsHelper grants ram:*, the home account's does not: the role's grants in
    staging attach staging's, so an edit needs the opt-in, as a grant there does."""
    account, client = staging
    client.create_policy(policy_name="OpsHelper", document=RAM_EVERYTHING)
    role.extra_accounts.set([account])
    keys = [("Custom", "OpsHelper")]
    with pytest.raises(ValidationError) as refused:
        edit(owner_world, role, keys)
    message = refused.value.message_dict["high_privilege_confirmed"][0]
    assert f"OpsHelper in the account {account.label} can hand roles" in message
    assert CatalogRole.objects.get(pk=role.pk).policies == role.policies

    saved = edit(owner_world, role, keys, high_privilege_confirmed=True)
    assert saved.changed and saved.allows_high_privilege


def test_the_edit_page_asks_for_the_opt_in_another_account_needs(
    owner_world: OwnerWorld,
    role: CatalogRole,
    staging: tuple[CloudAccount, CloudClient],
    client: Client,
) -> None:
    account, staging_client = staging
    staging_client.create_policy(policy_name="OpsHelper", document=RAM_EVERYTHING)
    role.extra_accounts.set([account])
    client.force_login(owner_world.admin)
    with_mfa(client, owner_world.admin)
    page = client.post(
        reverse("delegations:catalog_role_edit", args=[role.pk]),
        {
            "description": "Operate ECS",
            "policies": ["Custom:OpsHelper"],
            "max_session_duration": 3600,
            "default_trust_scope": role.default_trust_scope,
        },
    )
    assert page.status_code == 400
    assert "Tick the box to confirm" in page.content.decode()
    assert CatalogRole.objects.get(pk=role.pk).policies == role.policies
