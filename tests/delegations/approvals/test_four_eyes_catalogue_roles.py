"""Four eyes on a catalogue role's whole life, not only its edits: with the owner's setting on,
adding a role, deactivating it and reactivating it are proposals with a diff that a second
owner admin approves; the change is made then, as its author, and a proposal whose target
changed since is outdated. The pages propose instead of changing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, User
from audit.models import AuditEvent
from delegations.approvals.four_eyes import four_eyes_set, rule_proposal_approve
from delegations.catalog.proposals import (
    catalog_role_create_or_propose,
    catalog_role_deactivate_or_propose,
    catalog_role_reactivate_or_propose,
    catalog_role_update_or_propose,
)
from delegations.models import CatalogRole, RuleProposal
from tests.delegations.lifecycle.test_views import with_mfa
from tests.fixtures.worker import OwnerWorld
from tests.personas import make_member

pytestmark = pytest.mark.django_db
Kind = RuleProposal.Kind
OUTDATED = "written against a rule that has changed since"
READER = {
    "role_name": "ecs-reader",
    "description": "Read ECS",
    "policy_keys": [("System", "AliyunECSReadOnlyAccess")],
    "max_session_duration": 7200,
}


@pytest.fixture
def second(owner_world: OwnerWorld) -> User:
    return make_member(owner_world.organisation, Membership.Role.ADMIN)


@pytest.fixture
def four_eyes(owner_world: OwnerWorld) -> OwnerWorld:
    four_eyes_set(owner=owner_world.organisation, user=owner_world.admin, on=True)
    return owner_world


def propose_reader(world: OwnerWorld, by: User) -> RuleProposal:
    proposal = catalog_role_create_or_propose(owner=world.organisation, user=by, **READER)
    assert isinstance(proposal, RuleProposal)
    return proposal


def _refused_for_author(proposal: RuleProposal) -> None:
    with pytest.raises(PermissionDenied):
        rule_proposal_approve(proposal=proposal, approved_by=proposal.proposed_by)
    assert RuleProposal.objects.get(pk=proposal.pk).status == RuleProposal.Status.PENDING


def test_adding_a_role_waits_for_a_second_admin(four_eyes: OwnerWorld, second: User) -> None:
    world = four_eyes

    proposal = propose_reader(world, world.admin)

    assert proposal.kind == Kind.CATALOG_ROLE_CREATE and proposal.before is None
    assert proposal.after["role"] == "ecs-reader"
    assert proposal.after["policies"] == ["System:AliyunECSReadOnlyAccess"]
    assert proposal.after["account_uid"] == world.uid
    assert not CatalogRole.objects.filter(role_name="ecs-reader").exists()
    _refused_for_author(proposal)

    rule_proposal_approve(proposal=proposal, approved_by=second)

    role = CatalogRole.objects.get(role_name="ecs-reader")
    assert role.max_session_duration == 7200 and role.created_by == world.admin
    created = AuditEvent.objects.get(action="catalog_role.created", target_id=str(role.pk))
    assert created.actor_id == world.admin.pk


def test_a_bad_new_role_is_refused_before_any_proposal(four_eyes: OwnerWorld) -> None:
    world = four_eyes
    with pytest.raises(ValidationError) as refused:
        catalog_role_create_or_propose(
            owner=world.organisation,
            user=world.admin,
            **{**READER, "role_name": world.role_name.upper()},  # RAM names ignore case
        )
    assert "role_name" in refused.value.message_dict
    with pytest.raises(ValidationError):
        catalog_role_create_or_propose(
            owner=world.organisation,
            user=world.admin,
            **{**READER, "policy_keys": [("System", "NoSuchPolicy")]},
        )
    assert not RuleProposal.objects.exists()


def test_adding_a_role_whose_name_was_taken_since_is_outdated(
    four_eyes: OwnerWorld, second: User
) -> None:
    world = four_eyes
    first, again = propose_reader(world, world.admin), propose_reader(world, second)
    rule_proposal_approve(proposal=first, approved_by=second)

    with pytest.raises(ValidationError, match=OUTDATED):
        rule_proposal_approve(proposal=again, approved_by=world.admin)

    assert RuleProposal.objects.get(pk=again.pk).status == RuleProposal.Status.OUTDATED
    assert CatalogRole.objects.filter(role_name="ecs-reader").count() == 1


def test_deactivating_and_reactivating_wait_for_a_second_admin(
    four_eyes: OwnerWorld, second: User
) -> None:
    world = four_eyes
    role = world.catalog_role

    withdrawal = catalog_role_deactivate_or_propose(catalog_role=role, user=world.admin)

    assert isinstance(withdrawal, RuleProposal) and withdrawal.kind == Kind.CATALOG_ROLE_DEACTIVATE
    assert withdrawal.before["active"] is True and withdrawal.after["active"] is False
    assert CatalogRole.objects.get(pk=role.pk).is_active
    _refused_for_author(withdrawal)
    rule_proposal_approve(proposal=withdrawal, approved_by=second)
    assert not CatalogRole.objects.get(pk=role.pk).is_active
    deactivated = AuditEvent.objects.get(action="catalog_role.deactivated")
    assert deactivated.actor_id == world.admin.pk

    offer = catalog_role_reactivate_or_propose(
        catalog_role=CatalogRole.objects.get(pk=role.pk), user=second
    )
    assert isinstance(offer, RuleProposal) and offer.kind == Kind.CATALOG_ROLE_REACTIVATE
    assert not CatalogRole.objects.get(pk=role.pk).is_active
    rule_proposal_approve(proposal=offer, approved_by=world.admin)
    assert CatalogRole.objects.get(pk=role.pk).is_active


def test_deactivating_a_role_edited_since_is_outdated(four_eyes: OwnerWorld, second: User) -> None:
    world = four_eyes
    role = world.catalog_role
    withdrawal = catalog_role_deactivate_or_propose(catalog_role=role, user=world.admin)
    edit = catalog_role_update_or_propose(
        catalog_role=role,
        user=second,
        description="Operate ECS, longer sessions",
        policy_keys=[("System", "AliyunECSFullAccess")],
        max_session_duration=7200,
        keep_role_when_empty=False,
    )
    assert isinstance(edit, RuleProposal)
    rule_proposal_approve(proposal=edit, approved_by=world.admin)

    with pytest.raises(ValidationError, match=OUTDATED):
        rule_proposal_approve(proposal=withdrawal, approved_by=second)

    assert CatalogRole.objects.get(pk=role.pk).is_active


def test_without_four_eyes_each_applies_at_once(owner_world: OwnerWorld) -> None:
    world = owner_world
    role = catalog_role_create_or_propose(owner=world.organisation, user=world.admin, **READER)
    assert isinstance(role, CatalogRole) and role.is_active
    withdrawn = catalog_role_deactivate_or_propose(catalog_role=role, user=world.admin)
    assert isinstance(withdrawn, CatalogRole) and not withdrawn.is_active
    assert not RuleProposal.objects.exists()


def test_the_pages_propose_with_four_eyes_on(
    login: Callable[..., Client], four_eyes: OwnerWorld
) -> None:
    world = four_eyes
    client = with_mfa(login(world.admin), world.admin)
    added = client.post(
        reverse("delegations:catalog_role_create"),
        {
            "role_name": "ecs-reader",
            "description": "Read ECS",
            "policies": ["System:AliyunECSReadOnlyAccess"],
            "max_session_duration": "7200",
        },
    )
    assert added.status_code == 302
    assert not CatalogRole.objects.filter(role_name="ecs-reader").exists()

    withdrawn = client.post(
        reverse("delegations:catalog_role_deactivate", args=[world.catalog_role.pk])
    )
    assert withdrawn.status_code == 302
    assert CatalogRole.objects.get(pk=world.catalog_role.pk).is_active

    kinds = set(RuleProposal.objects.values_list("kind", flat=True))
    assert kinds == {Kind.CATALOG_ROLE_CREATE, Kind.CATALOG_ROLE_DEACTIVATE}
    page = client.get(reverse("delegations:approval_rules")).content.decode()
    assert "Add a catalogue role" in page and "Deactivate a catalogue role" in page
