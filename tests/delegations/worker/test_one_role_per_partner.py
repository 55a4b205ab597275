"""A catalogue role marked one role per partner (issue 19 item 1): each partner gets its own
RAM role `<role>-<partner alias>` in cloudsim, trusting that partner only, so no trust policy
limit is shared and each partner's activity is attributable to its own role."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from delegations.catalog.services import catalog_role_update
from delegations.lifecycle.transitions import managed_role_for_catalog_role
from delegations.models import Delegation, ManagedRole, OutboxMessage
from delegations.role_state import partner_role_name
from delegations.worker.engine import ReconcileOutcome
from delegations.worker.owner_role import managed_role_reconcile
from tests.delegations.factories import CatalogRoleFactory

Status = Delegation.Status


def arn(uid: str) -> str:
    return f"acs:ram::{uid}:root"


@pytest.fixture
def per_partner(owner_world):
    role = owner_world.catalog_role
    role.one_role_per_partner = True
    role.save(update_fields=["one_role_per_partner"])
    return owner_world


def reconcile(delegation: Delegation):
    return managed_role_reconcile(managed_role_id=delegation.managed_role_id)


def test_each_partner_gets_its_own_role_trusting_only_it(per_partner) -> None:
    world = per_partner
    partners = [world.partner() for _ in range(3)]
    partners[0].enterprise_alias = "acme-ops"
    partners[0].save(update_fields=["enterprise_alias"])
    delegations = [world.offer(partner) for partner in partners]

    for delegation in delegations:
        assert reconcile(delegation).outcome == ReconcileOutcome.CONVERGED

    names = [Delegation.objects.get(pk=d.pk).managed_role.role_name for d in delegations]
    assert names[0] == "ecs-admin-acme-ops"
    assert names[1:] == [f"ecs-admin-{p.account_uid}" for p in partners[1:]]
    for delegation, partner, name in zip(delegations, partners, names, strict=True):
        assert world.status(delegation) == Status.ACTIVE
        assert world.trusted(name) == {arn(partner.account_uid)}
        assert world.attached(name) == {("System", "AliyunECSFullAccess")}
    # No shared role was made.
    assert world.role("ecs-admin") is None
    assert len({d.managed_role_id for d in delegations}) == 3


def test_no_trust_policy_limit_is_shared(per_partner, settings) -> None:
    # Two partners at most would fit in one shared policy of 200 characters.
    settings.PORTAL_TRUST_POLICY_MAX_CHARS = 200
    delegations = [per_partner.offer() for _ in range(6)]

    for delegation in delegations:
        reconcile(delegation)

    assert [per_partner.status(d) for d in delegations] == [Status.ACTIVE] * 6
    assert not Delegation.objects.filter(last_error_code="WaitingForRoom").exists()


def test_a_revoke_removes_only_that_partners_role(per_partner) -> None:
    world = per_partner
    kept, revoked = world.offer(), world.offer()
    reconcile(kept)
    reconcile(revoked)
    revoked_name = Delegation.objects.get(pk=revoked.pk).managed_role.role_name

    world.revoke(revoked)
    reconcile(revoked)

    assert world.status(revoked) == Status.REVOKED
    assert world.role(revoked_name) is None  # the portal made it and nobody needs it now
    kept_name = Delegation.objects.get(pk=kept.pk).managed_role.role_name
    assert world.trusted(kept_name) == {arn(kept.partner.account_uid)}


def test_the_same_partner_comes_back_to_the_same_role(per_partner) -> None:
    world = per_partner
    partner = world.partner()
    first = world.offer(partner)
    reconcile(first)
    world.revoke(first)
    reconcile(first)

    again = world.offer(partner)

    assert again.managed_role_id == first.managed_role_id


def test_a_taken_name_falls_back_to_the_account_uid(per_partner) -> None:
    world = per_partner
    partner = world.partner()
    partner.enterprise_alias = "beta"
    partner.save(update_fields=["enterprise_alias"])
    CatalogRoleFactory(cloud_account=world.cloud_account, role_name="ecs-admin-beta")

    delegation = world.offer(partner)

    assert delegation.managed_role.role_name == f"ecs-admin-{partner.account_uid}"


def test_names_stay_within_rams_64_characters() -> None:
    name = partner_role_name("r" * 64, "a" * 32)
    assert len(name) == 64 and name.endswith("-" + "a" * 32)
    assert partner_role_name("ecs-admin", "acme") == "ecs-admin-acme"


def test_the_shared_lookup_needs_the_partner(per_partner) -> None:
    with pytest.raises(ValueError):
        managed_role_for_catalog_role(catalog_role=per_partner.catalog_role)


def test_a_new_shared_catalogue_role_cannot_take_a_partners_role_name(per_partner) -> None:
    from delegations.catalog.services import catalog_role_create

    delegation = per_partner.offer()
    with pytest.raises(ValidationError) as raised:
        catalog_role_create(
            owner=per_partner.organisation,
            created_by=per_partner.admin,
            role_name=delegation.managed_role.role_name.upper(),
            description="",
            policy_keys=[("System", "AliyunECSFullAccess")],
            max_session_duration=3600,
        )
    assert "role_name" in raised.value.message_dict


def test_editing_the_catalogue_role_reconciles_every_partners_role(per_partner) -> None:
    world = per_partner
    delegations = [world.offer() for _ in range(2)]
    for delegation in delegations:
        reconcile(delegation)
    before = OutboxMessage.objects.count()

    catalog_role_update(
        catalog_role=world.catalog_role,
        updated_by=world.admin,
        description="Operate ECS and read OSS",
        policy_keys=[("System", "AliyunECSFullAccess"), ("System", "AliyunOSSReadOnlyAccess")],
        max_session_duration=3600,
        keep_role_when_empty=False,
    )

    enqueued = OutboxMessage.objects.order_by("id")[before:]
    assert {m.object_id for m in enqueued} == {str(d.managed_role_id) for d in delegations}
    for delegation in delegations:
        reconcile(delegation)
        name = ManagedRole.objects.get(pk=delegation.managed_role_id).role_name
        assert ("System", "AliyunOSSReadOnlyAccess") in world.attached(name)


def test_the_roles_page_names_each_partners_own_role(per_partner, client) -> None:
    world = per_partner
    delegation = world.offer()
    reconcile(delegation)
    name = Delegation.objects.get(pk=delegation.pk).managed_role.role_name

    client.force_login(world.admin)
    body = client.get(reverse("delegations:roles")).content.decode()

    assert f'data-role="{name}"' in body
    assert f"{delegation.partner.name}'s own role for ecs-admin" in body
