"""Two of an owner's accounts may each hold a catalogue role of one name (a role's home is
the primary when it is added; the primary can change). Wherever a catalogue role is chosen
or listed, it says its account: a quorum, an approver group or an emergency role set on the
wrong one of two identical names is a rule on the wrong account."""

from typing import Any

import pytest
from django.urls import reverse

from accounts.models import Organisation, User
from delegations.approvals.forms import ApproverGroupForm
from delegations.breakglass.forms import BreakGlassRoleForm
from delegations.lifecycle import selectors
from delegations.lifecycle.forms import OfferForm, RequestAccessForm
from delegations.models import CatalogRole
from tests.delegations.factories import CatalogRoleFactory, CloudAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_roles(company_a: Organisation, ecs_admin: CatalogRole) -> list[CatalogRole]:
    staging = CloudAccountFactory(
        organisation=company_a, account_uid="11223355", alias="", is_primary=False
    )
    return [ecs_admin, CatalogRoleFactory(cloud_account=staging, role_name="ecs-admin")]


def _labels(field: Any) -> list[str]:
    return [str(label) for value, label in field.choices if value]


def test_every_form_that_chooses_a_role_says_its_account(
    company_a: Organisation, two_roles: list[CatalogRole]
) -> None:
    home, staging = (role.cloud_account.account_uid for role in two_roles)
    roles = selectors.catalog_roles_grantable(owner=company_a)
    forms = [
        RequestAccessForm(roles=roles).fields["catalog_role"],
        OfferForm(partners=Organisation.objects.none(), roles=roles).fields["catalog_role"],
        ApproverGroupForm(owner=company_a).fields["catalog_roles"],
        BreakGlassRoleForm(owner=company_a).fields["catalog_role"],
    ]
    for field in forms:
        labels = _labels(field)
        assert len(labels) == 2 and len(set(labels)) == 2, labels
        assert labels[0].startswith(f"ecs-admin ({home})")
        assert labels[1].startswith(f"ecs-admin ({staging})")


def test_the_pages_that_list_roles_say_each_ones_account(
    login: Any, owner_admin: User, auditor: User, two_roles: list[CatalogRole]
) -> None:
    client = login(owner_admin)
    record = login(auditor).get(reverse("audit:rules")).content.decode()
    catalogue = client.get(reverse("delegations:catalog")).content.decode()
    rules = client.get(reverse("delegations:approval_rules")).content.decode()
    delegations = client.get(reverse("delegations:list")).content.decode()
    for role in two_roles:
        uid = role.cloud_account.account_uid
        edit = reverse("delegations:catalog_role_edit", args=[role.pk])
        row = catalogue[catalogue.rindex("<tr", 0, catalogue.index(edit)) :]
        assert f"account {uid}" in row[: row.index("</tr>")]
        quorum = reverse("delegations:approval_quorum_set", args=[role.pk])
        row = rules[rules.rindex("<tr", 0, rules.index(quorum)) :]
        assert f"ecs-admin ({uid})" in row[: row.index("</tr>")]
        assert f'<option value="{role.pk}">ecs-admin ({uid})</option>' in delegations
        assert f'<tr data-role="ecs-admin"><td class="mono">ecs-admin ({uid})</td>' in record


def test_two_catalogue_roles_of_one_name_are_never_offered_in_one_account(
    company_a: Organisation, ecs_admin: CatalogRole
) -> None:
    """In one account a name is one RAM role: two catalogue roles of that name granted there
    would share it, each with its own policies, and partners of one would get the other's."""
    from django.core.exceptions import ValidationError

    from delegations.catalog.services import (
        catalog_role_validate,
        catalog_role_validate_set_accounts,
    )
    from delegations.models import CloudAccount

    primary = ecs_admin.cloud_account
    staging = CloudAccountFactory(
        organisation=company_a, account_uid="11223355", alias="", is_primary=False
    )
    ecs_admin.extra_accounts.set([staging])
    # The primary moves to staging; a new ecs-admin would be homed where the first is offered.
    CloudAccount.objects.filter(pk=primary.pk).update(is_primary=False)
    CloudAccount.objects.filter(pk=staging.pk).update(is_primary=True)
    with pytest.raises(ValidationError) as refused:
        catalog_role_validate(
            owner=company_a,
            role_name="ECS-admin",
            description="",
            policy_keys=[("System", "AliyunECSReadOnlyAccess")],
            max_session_duration=3600,
        )
    assert "role_name" in refused.value.message_dict
    ecs_admin.extra_accounts.set([])
    second = CatalogRoleFactory(cloud_account=staging, role_name="ecs-admin")
    for role, into in ((ecs_admin, staging), (second, primary)):
        for choice in ({"accounts": [into]}, {"all_accounts": True}):
            with pytest.raises(ValidationError) as refused:
                catalog_role_validate_set_accounts(
                    catalog_role=role,
                    all_accounts=choice.get("all_accounts", False),
                    accounts=choice.get("accounts", []),
                )
            assert "accounts" in refused.value.message_dict
