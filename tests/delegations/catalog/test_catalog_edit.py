"""Editing a catalogue role: the same rules as adding one (including the high-privilege
opt-in), audited with before and after, and access already granted follows the change in
the cloud through the reconciler (old policies detached, new ones attached)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts.models import Organisation, User
from audit.models import AuditEvent
from cloud import policies
from delegations.catalog.services import catalog_role_create, catalog_role_update
from delegations.connection.services import cloud_account_connect
from delegations.models import CatalogRole, CloudAccount, Delegation, ManagedRole, OutboxMessage
from tests.delegations.cloud_fixtures import SimAccount
from tests.delegations.connection.test_connect_views import confirmed
from tests.delegations.factories import CatalogRoleFactory
from tests.fixtures.worker import OwnerWorld
from tests.personas import make_member

pytestmark = pytest.mark.django_db
ECS_FULL = ("System", "AliyunECSFullAccess")
ECS_READ = ("System", "AliyunECSReadOnlyAccess")


def edit(role: CatalogRole, by: User | None, **overrides: object) -> CatalogRole:
    arguments: dict[str, object] = {
        "catalog_role": role,
        "updated_by": by,
        "description": role.description,
        "policy_keys": [(p["type"], p["name"]) for p in role.policies],
        "max_session_duration": role.max_session_duration,
        "keep_role_when_empty": role.keep_role_when_empty,
    }
    arguments.update(overrides)
    return catalog_role_update(**arguments)  # type: ignore[arg-type]


@pytest.fixture
def owner_account(sim_owner: SimAccount) -> CloudAccount:
    return cloud_account_connect(
        organisation=sim_owner.organisation,
        connected_by=sim_owner.admin,
        account_uid=sim_owner.uid,
        alias=sim_owner.alias,
        region="cn-hangzhou",
        access_key_id=sim_owner.root_key_id,
        access_key_secret=sim_owner.root_secret,
    )


@pytest.fixture
def role(sim_owner: SimAccount, owner_account: CloudAccount) -> CatalogRole:
    return catalog_role_create(
        owner=sim_owner.organisation,
        created_by=sim_owner.admin,
        role_name="ecs-admin",
        description="Operate the ECS fleet",
        policy_keys=[ECS_FULL],
        max_session_duration=3600,
    )


# --- the service -------------------------------------------------------------------------------


def test_an_edit_is_saved_and_audited_with_before_and_after(
    sim_owner: SimAccount, role: CatalogRole
) -> None:
    since = sim_owner.seq()
    edited = edit(
        role,
        sim_owner.admin,
        description="Look at the ECS fleet",
        policy_keys=[ECS_READ],
        max_session_duration=7200,
        keep_role_when_empty=True,
    )
    assert edited.changed
    fresh = CatalogRole.objects.get(pk=role.pk)
    assert fresh.role_name == "ecs-admin"
    assert fresh.description == "Look at the ECS fleet"
    assert fresh.policies == [{"type": "System", "name": "AliyunECSReadOnlyAccess"}]
    assert fresh.max_session_duration == 7200 and fresh.keep_role_when_empty
    event = AuditEvent.objects.get(action="catalog_role.updated")
    assert event.actor == sim_owner.admin
    assert event.before["policies"] == [{"type": "System", "name": "AliyunECSFullAccess"}]
    assert event.after["policies"] == fresh.policies
    assert (event.before["max_session_duration"], event.after["max_session_duration"]) == (
        3600,
        7200,
    )
    # No delegation ever used it: nothing for the worker, and no cloud change.
    assert not OutboxMessage.objects.exists()
    assert not [c for c in sim_owner.calls_since(since) if c["mutating"]]


def test_an_edit_that_changes_nothing_writes_nothing(
    sim_owner: SimAccount, role: CatalogRole
) -> None:
    assert not edit(role, sim_owner.admin).changed
    assert not AuditEvent.objects.filter(action="catalog_role.updated").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"max_session_duration": 3599}, "max_session_duration"),
        ({"max_session_duration": 43201}, "max_session_duration"),
        ({"policy_keys": []}, "policies"),
        ({"policy_keys": [("Managed", "AliyunECSFullAccess")]}, "policies"),
        ({"policy_keys": [("System", "AliyunNoSuchAccess")]}, "policies"),
        ({"policy_keys": [("Custom", "AliyunECSFullAccess")]}, "policies"),
        ({"description": "d" * 1000}, "description"),
        ({"description": f"x {policies.PORTAL_MARKER}"}, "description"),
    ],
)
def test_an_edit_is_validated_like_a_new_role_and_a_refusal_writes_nothing(
    sim_owner: SimAccount, role: CatalogRole, overrides: dict, field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        edit(role, sim_owner.admin, **overrides)
    assert field in refused.value.message_dict
    fresh = CatalogRole.objects.get(pk=role.pk)
    assert fresh.policies == role.policies and fresh.description == role.description
    assert fresh.max_session_duration == role.max_session_duration
    assert not AuditEvent.objects.filter(action="catalog_role.updated").exists()


def test_adding_a_high_privilege_policy_needs_the_opt_in(
    sim_owner: SimAccount, role: CatalogRole
) -> None:
    keys = [ECS_FULL, ("System", "AliyunRAMFullAccess")]
    with pytest.raises(ValidationError) as refused:
        edit(role, sim_owner.admin, policy_keys=keys)
    assert "AliyunRAMFullAccess" in refused.value.message_dict["high_privilege_confirmed"][0]
    assert not CatalogRole.objects.get(pk=role.pk).allows_high_privilege
    edited = edit(role, sim_owner.admin, policy_keys=keys, high_privilege_confirmed=True)
    assert edited.allows_high_privilege
    event = AuditEvent.objects.get(action="catalog_role.updated")
    assert event.metadata["high_privilege_policies"] == ["AliyunRAMFullAccess"]
    assert (event.before["allows_high_privilege"], event.after["allows_high_privilege"]) == (
        False,
        True,
    )
    # Taking the policy away again withdraws the opt-in with it.
    assert not edit(role, sim_owner.admin, policy_keys=[ECS_FULL]).allows_high_privilege


# --- granted access follows the edit in the cloud ----------------------------------------------


def test_changing_policies_of_a_role_in_use_is_applied_by_the_reconciler(
    owner_world: OwnerWorld,
) -> None:
    delegation = owner_world.offer()
    owner_world.reconcile()
    assert owner_world.status(delegation) == Delegation.Status.ACTIVE
    assert owner_world.attached() == {ECS_FULL}
    # Someone attached a policy by hand: not the portal's, it must stay.
    owner_world.client().attach_policy_to_role(
        role_name="ecs-admin", policy_type="System", policy_name="AliyunOSSReadOnlyAccess"
    )
    managed = owner_world.managed_role()
    desired_before = managed.desired_version
    outbox_before = OutboxMessage.objects.count()

    edit(
        owner_world.catalog_role,
        owner_world.admin,
        policy_keys=[ECS_READ],
        max_session_duration=7200,
        description="Look at the ECS fleet",
    )

    managed.refresh_from_db()
    assert managed.desired_version == desired_before + 1
    assert OutboxMessage.objects.count() == outbox_before + 1
    assert managed.known_policies == [list(ECS_FULL)]
    event = AuditEvent.objects.get(action="catalog_role.updated")
    assert event.metadata["reconciling_roles"] == ["ecs-admin"]

    owner_world.reconcile()
    assert owner_world.attached() == {ECS_READ, ("System", "AliyunOSSReadOnlyAccess")}
    cloud_role = owner_world.role()
    assert cloud_role.max_session_duration == 7200
    assert cloud_role.description.startswith("Look at the ECS fleet")
    assert owner_world.trusted() == {delegation.principal_arn}  # the partner keeps access
    assert owner_world.status(delegation) == Delegation.Status.ACTIVE
    # Converged: a second run makes no call that changes anything.
    seq = owner_world.last_seq()
    owner_world.reconcile()
    assert owner_world.cloud_calls(seq, mutating=True) == []


def test_a_role_only_requested_so_far_needs_no_reconcile(
    owner_world: OwnerWorld, company_a: Organisation
) -> None:
    ManagedRole.objects.create(cloud_account=owner_world.cloud_account, role_name="ecs-admin")
    edit(owner_world.catalog_role, owner_world.admin, policy_keys=[ECS_READ])
    assert not OutboxMessage.objects.exists()


# --- the page ----------------------------------------------------------------------------------


def url(name: str, *args: object) -> str:
    return reverse(f"delegations:{name}", args=args)


@pytest.fixture
def owner_client(
    sim_owner: SimAccount, owner_account: CloudAccount, login: Callable[..., Client]
) -> Client:
    return confirmed(login(sim_owner.admin), sim_owner.admin)


def test_the_edit_page_is_prefilled_and_saves(owner_client: Client, role: CatalogRole) -> None:
    page = owner_client.get(url("catalog_role_edit", role.pk))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'value="System:AliyunECSFullAccess" checked' in body
    assert 'name="role_name"' not in body
    assert "Operate the ECS fleet" in body
    catalogue = owner_client.get(url("catalog")).content.decode()
    assert url("catalog_role_edit", role.pk) in catalogue

    response = owner_client.post(
        url("catalog_role_edit", role.pk),
        {
            "role_name": "renamed",  # not a field of the edit form: ignored
            "description": "Look only",
            "policies": ["System:AliyunECSReadOnlyAccess"],
            "max_session_duration": "7200",
        },
    )
    assert response.status_code == 302
    fresh = CatalogRole.objects.get(pk=role.pk)
    assert fresh.role_name == "ecs-admin" and fresh.description == "Look only"
    assert fresh.policies == [{"type": "System", "name": "AliyunECSReadOnlyAccess"}]


def test_the_edit_page_refuses_forged_policies_and_high_privilege_without_the_box(
    owner_client: Client, role: CatalogRole
) -> None:
    data = {"description": "", "max_session_duration": "3600"}
    forged = owner_client.post(
        url("catalog_role_edit", role.pk), {**data, "policies": ["System:AliyunNoSuchAccess"]}
    )
    assert forged.status_code == 400
    unticked = owner_client.post(
        url("catalog_role_edit", role.pk), {**data, "policies": ["System:AdministratorAccess"]}
    )
    assert unticked.status_code == 400
    assert "AdministratorAccess" in unticked.context["form"].errors["high_privilege_confirmed"][0]
    assert CatalogRole.objects.get(pk=role.pk).policies == role.policies
    assert not AuditEvent.objects.filter(action="catalog_role.updated").exists()


def test_the_edit_page_is_for_this_owners_admins_only(
    sim_owner: SimAccount,
    owner_client: Client,
    role: CatalogRole,
    login: Callable[..., Client],
    company_c: Organisation,
    foreign_owner_admin: User,
) -> None:
    from accounts.models import Membership

    auditor = make_member(sim_owner.organisation, Membership.Role.AUDITOR)
    assert login(auditor).get(url("catalog_role_edit", role.pk)).status_code == 403
    foreign_role = CatalogRoleFactory(organisation=company_c, role_name="theirs")
    assert owner_client.get(url("catalog_role_edit", foreign_role.pk)).status_code == 404
    assert login(foreign_owner_admin).get(url("catalog_role_edit", role.pk)).status_code == 404
