"""A narrower role proposed from what a role's sessions used is a new catalogue role, whose
home is the owner's primary account (`catalog_role_create`). Its Custom policy is made there,
even when the role it narrows lives in another of the owner's accounts (the primary can change):
made in that one, the new role's policy would not exist where the role is."""

import json

import pytest

from activity import services
from activity.selectors import RightSizing
from delegations.models import CatalogRole
from tests.delegations.factories import (
    CatalogRoleFactory,
    CloudAccountFactory,
    DelegationFactory,
)

pytestmark = pytest.mark.django_db


class Client:
    def __init__(self, account, made_in: list[str]) -> None:
        self.account, self.made_in = account, made_in

    def get_policy(self, **_: object) -> None:
        return None

    def create_policy(self, **_: object) -> None:
        self.made_in.append(self.account.account_uid)


def test_the_policy_is_made_in_the_account_the_new_role_lives_in(
    company_a, owner_admin, monkeypatch
) -> None:
    primary = CloudAccountFactory(organisation=company_a)
    former = CloudAccountFactory(
        organisation=company_a, account_uid="11223355", alias="", is_primary=False
    )
    delegation = DelegationFactory(
        catalog_role=CatalogRoleFactory(cloud_account=former, role_name="ecs-ops"),
        status="active",
    )
    made_in: list[str] = []
    refreshed: list[str] = []
    monkeypatch.setattr(
        services, "cloud_account_client", lambda *, cloud_account: Client(cloud_account, made_in)
    )
    monkeypatch.setattr(
        services,
        "cloud_account_policies",
        lambda *, cloud_account, refresh: refreshed.append(cloud_account.account_uid),
    )
    monkeypatch.setattr(
        services,
        "activity_right_sizing",
        lambda **_: RightSizing(
            days=30,
            used_actions=["ecs:DescribeInstances"],
            granted_policies=["AliyunECSFullAccess"],
            draft_policy=json.dumps({"Version": "1", "Statement": []}),
        ),
    )

    def create(*, owner, role_name, **_: object) -> CatalogRole:
        return CatalogRoleFactory(cloud_account=primary, organisation=owner, role_name=role_name)

    monkeypatch.setattr(services, "catalog_role_create", create)

    role = services.activity_propose_narrower_role(delegation=delegation, proposed_by=owner_admin)

    assert made_in == refreshed == [role.cloud_account.account_uid] == [primary.account_uid]
