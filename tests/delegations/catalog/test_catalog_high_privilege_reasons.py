"""Issue 18 item 6: a Custom policy that lets a partner assume roles (the way back into a role
it was revoked from), pass roles, write RAM or do anything is high privilege: it needs the
explicit opt-in, and the catalogue page says why."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from delegations.catalog.account_policies import catalog_role_policies_now
from delegations.catalog.services import catalog_role_create
from delegations.models import CatalogRole, CloudAccount
from tests.delegations.catalog.test_catalog_services import root_client

# The catalogue views' fixtures, shared rather than repeated.
from tests.delegations.catalog.test_catalog_views import owner_account, owner_client  # noqa: F401
from tests.delegations.cloud_fixtures import SimAccount

pytestmark = pytest.mark.django_db


def custom_policy(account: SimAccount, name: str, *actions: str, resource: str = "*") -> None:
    root_client(account).create_policy(
        policy_name=name,
        document={
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}],
        },
    )


def create(
    account: SimAccount, policy: str, role_name: str = "hopper", **extra: object
) -> CatalogRole:
    return catalog_role_create(
        owner=account.organisation,
        created_by=account.admin,
        role_name=role_name,
        description="",
        policy_keys=[("Custom", policy)],
        max_session_duration=3600,
        **extra,
    )


@pytest.mark.parametrize(
    ("actions", "why"),
    [
        (("sts:AssumeRole",), "can assume other roles"),
        (("sts:*",), "can assume other roles"),
        (("ram:PassRole",), "can hand roles to cloud services"),
        (("ram:UpdateRole",), "can change RAM users, roles"),
        (("*:*",), "grants every action"),
    ],
)
def test_a_custom_policy_that_can_reach_other_roles_needs_the_opt_in(
    sim_owner: SimAccount,
    owner_account: CloudAccount,  # noqa: F811
    actions: tuple[str, ...],
    why: str,
) -> None:
    custom_policy(sim_owner, "Hop", *actions, resource=f"acs:ram::{sim_owner.uid}:role/*")
    with pytest.raises(ValidationError) as refused:
        create(sim_owner, "Hop")
    message = refused.value.message_dict["high_privilege_confirmed"][0]
    assert "Hop" in message and why in message
    assert not CatalogRole.objects.exists()
    role = create(sim_owner, "Hop", high_privilege_confirmed=True)
    assert role.allows_high_privilege
    assert catalog_role_policies_now(catalog_role=role).high_privilege == ["Hop"]


def test_the_catalogue_page_says_why_a_role_is_high_privilege(
    sim_owner: SimAccount,
    owner_account: CloudAccount,  # noqa: F811
    owner_client: Client,  # noqa: F811
) -> None:
    custom_policy(sim_owner, "ChainAnywhere", "sts:AssumeRole")
    custom_policy(sim_owner, "EcsLooker", "ecs:Describe*")
    create(sim_owner, "ChainAnywhere", high_privilege_confirmed=True)
    create(sim_owner, "EcsLooker", role_name="looker")
    response = owner_client.get(reverse("delegations:catalog"))
    body = response.content.decode()
    assert body.count('data-testid="high-privilege-reasons"') == 1
    assert "can assume other roles (sts:AssumeRole)" in body
    assert "ChainAnywhere</span>" in body
