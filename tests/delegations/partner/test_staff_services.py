"""Partner-side services: who may do what, what each writes (rows, audit events, outbox), the
desired AssumeRole grants per RAM user, the lifecycle hook and the periodic sync."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import Membership
from accounts.services import membership_remove
from audit.models import AuditEvent
from cloud import policies
from delegations import partner_access
from delegations.models import (
    CredentialsUriToken,
    Delegation,
    OutboxMessage,
    PartnerUserPolicy,
    StaffAssignment,
    StaffRamUserLink,
)
from delegations.partner import services
from tests.fixtures.partner import BROKER, PartnerWorld
from tests.personas import make_member


def partner_messages() -> list[str]:
    return list(
        OutboxMessage.objects.filter(
            kind=OutboxMessage.Kind.RECONCILE_PARTNER_USER, done_at__isnull=True
        ).values_list("object_id", flat=True)
    )


def policy_ids(*names: str) -> set[str]:
    return {
        str(p.pk)
        for p in PartnerUserPolicy.objects.all()
        if p.ram_user_name.lower() in {n.lower() for n in names}
    }


# --- pure helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Alice", "portal-assume-Alice"),
        ("ops-team-1", "portal-assume-ops-team-1"),
    ],
)
def test_policy_names_are_valid_ram_policy_names(name: str, expected: str) -> None:
    assert partner_access.policy_name_for(name) == expected


def test_user_names_with_dots_or_underscores_get_distinct_policy_names() -> None:
    dotted = partner_access.policy_name_for("a.b")
    underscored = partner_access.policy_name_for("a_b")
    assert dotted != underscored
    for name in (dotted, underscored):
        policies.validate_policy_name(name)
        assert name.startswith("portal-assume-a-b-")


@pytest.mark.parametrize(
    ("kind", "ids", "custom", "expect_kind"),
    [
        ("", "", "", ""),
        ("read_only", "", "", "read_only"),
        ("ecs_instances", "i-abc123, i-def456  i-abc123", "", "ecs_instances"),
        (
            "custom",
            "",
            '{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:Describe*",'
            '"Resource":"*"}]}',
            "custom",
        ),
    ],
)
def test_session_policies_are_built_and_validated(kind, ids, custom, expect_kind) -> None:
    built_kind, document, instance_ids = services.session_policy_build(
        kind=kind, owner_account_uid="11223344", ecs_instance_ids=ids, custom_policy=custom
    )
    assert built_kind == expect_kind
    if kind:
        assert policies.parse_session_policy(document) == document
    if kind == "ecs_instances":
        assert instance_ids == ["i-abc123", "i-def456"]
        assert "acs:ecs:*:11223344:instance/i-abc123" in document


@pytest.mark.parametrize(
    ("kind", "ids", "custom", "field"),
    [
        ("bogus", "", "", "session_policy_kind"),
        ("ecs_instances", "", "", "ecs_instance_ids"),
        ("ecs_instances", "web-1", "", "ecs_instance_ids"),
        ("ecs_instances", " ".join(f"i-{n}" for n in range(30)), "", "ecs_instance_ids"),
        ("custom", "", "", "custom_policy"),
        ("custom", "", "[]", "custom_policy"),
        ("custom", "", "x" * 9000, "custom_policy"),
        ("custom", "", '{"Version":"1","Statement":[{"Effect":"Allow"}]}', "custom_policy"),
        (
            "custom",
            "",
            '{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*",'
            '"Resource":"*","Condition":{"Bool":{"acs:MFAPresent":NaN}}}]}',
            "custom_policy",
        ),
    ],
)
def test_bad_session_policies_are_refused_on_their_field(kind, ids, custom, field) -> None:
    with pytest.raises(ValidationError) as refused:
        services.session_policy_build(
            kind=kind, owner_account_uid="11223344", ecs_instance_ids=ids, custom_policy=custom
        )
    assert field in refused.value.error_dict


# --- links, assignments, audit, outbox --------------------------------------------------------


def test_assigning_writes_one_row_one_event_and_asks_for_the_users_grant(
    partner_world: PartnerWorld,
) -> None:
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    before = AuditEvent.objects.count()
    assignment = world.assign(delegation, world.alice, session_policy_kind="read_only")
    events = list(AuditEvent.objects.order_by("sequence")[before:])
    assert [e.action for e in events] == ["staff.assigned"]
    event = events[0]
    assert event.actor == world.partner_admin and event.organisation == world.partner
    assert set(event.scopes.values_list("organisation_id", flat=True)) == {
        world.partner.pk,
        world.owner.pk,
    }
    assert event.after["session_policy_kind"] == "read_only"
    assert event.metadata["ram_user_name"] == "Alice"
    assert set(partner_messages()) == policy_ids("Alice")
    # Assigning again the same way changes nothing; differently is refused.
    assert world.assign(delegation, world.alice, session_policy_kind="read_only") == assignment
    with pytest.raises(ValidationError):
        world.assign(delegation, world.alice)
    assert StaffAssignment.objects.count() == 1
    assert AuditEvent.objects.filter(action="staff.assigned").count() == 1


def test_who_may_assign(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    with pytest.raises(PermissionDenied):
        services.staff_assign(delegation=delegation, user=world.alice, assigned_by=world.alice)
    with pytest.raises(PermissionDenied):
        services.staff_assign(
            delegation=delegation, user=world.alice, assigned_by=world.owner_admin
        )
    with pytest.raises(PermissionDenied):
        world.assign(delegation, world.partner_admin)  # nobody assigns themselves
    with pytest.raises(ValidationError):  # another admin is not staff
        world.assign(delegation, make_member(world.partner, Membership.Role.ADMIN))
    outsider = make_member(world.owner, Membership.Role.AUDITOR)
    with pytest.raises(ValidationError):
        world.assign(delegation, outsider)
    assert not StaffAssignment.objects.exists()


def test_unassigning_ends_the_row_and_its_uri_keys(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    assignment = world.assign(delegation, world.alice)
    key, _raw = services.credentials_uri_create(assignment=assignment, user=world.alice)
    world.drain()
    ended = services.staff_unassign(assignment=assignment, unassigned_by=world.partner_admin)
    assert ended.ended_at is not None and ended.ended_by == world.partner_admin
    key.refresh_from_db()
    assert key.revoked_at is not None
    event = AuditEvent.objects.get(action="staff.unassigned")
    assert event.metadata["uri_keys_revoked"] == 1
    assert set(partner_messages()) == policy_ids("Alice")
    # Twice changes nothing.
    services.staff_unassign(assignment=assignment, unassigned_by=world.partner_admin)
    assert AuditEvent.objects.filter(action="staff.unassigned").count() == 1


def test_relinking_asks_for_both_users(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    world.assign(delegation, world.alice)
    world.drain()
    world.link(world.alice, "AAA")
    assert StaffRamUserLink.objects.get().ram_user_name == "AAA"
    assert set(partner_messages()) == policy_ids("Alice", "AAA")
    world.drain()
    assert not world.user_may_assume("Alice")
    assert partner_access.partner_user_desired_role_arns(
        cloud_account=world.partner_account, ram_user_name="AAA"
    ) == [world.role_arn]


def test_removing_a_member_ends_everything_of_theirs(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    assignment = world.assign(delegation, world.alice)
    services.credentials_uri_create(assignment=assignment, user=world.alice)
    world.drain()
    membership_remove(
        membership=Membership.objects.get(user=world.alice, organisation=world.partner),
        removed_by=world.partner_admin,
    )
    assignment.refresh_from_db()
    assert assignment.end_reason == StaffAssignment.EndReason.MEMBER_REMOVED
    assert not CredentialsUriToken.objects.filter(revoked_at__isnull=True).exists()
    assert not StaffRamUserLink.objects.exists()
    actions = list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))
    assert actions[-3:] == ["staff.unassigned", "staff.ram_user_unlinked", "member.removed"]
    world.drain()
    assert not world.user_may_assume("Alice")


# --- the lifecycle hook and the desired grants ------------------------------------------------


def test_becoming_active_and_being_revoked_ask_for_the_partner_grants(
    partner_world: PartnerWorld,
) -> None:
    world = partner_world
    delegation = world.offer()
    world.drain()  # the owner side makes it active, which asks for the broker's grant
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.ACTIVE
    broker = PartnerUserPolicy.objects.get(ram_user_name=BROKER)
    assert broker.applied_role_arns == [world.role_arn]
    world.link(world.alice, "Alice")
    world.assign(delegation, world.alice)
    world.drain()
    world.revoke(delegation)
    assert set(partner_messages()) == policy_ids("Alice", BROKER)
    # Revoked: nobody in B is granted the role any more.
    for name in ("Alice", BROKER):
        assert (
            partner_access.partner_user_desired_role_arns(
                cloud_account=world.partner_account, ram_user_name=name
            )
            == []
        )


def test_expiry_takes_the_grants_away(partner_world: PartnerWorld) -> None:
    from delegations.lifecycle.automatic import delegation_expire

    world = partner_world
    delegation = world.active_delegation(ends_at=timezone.now() + dt.timedelta(hours=1))
    world.link(world.alice, "Alice")
    world.assign(delegation, world.alice)
    world.drain()
    later = timezone.now() + dt.timedelta(hours=2)
    # Past the end date, the grant is no longer wanted even before the scheduler runs.
    assert (
        partner_access.partner_user_desired_role_arns(
            cloud_account=world.partner_account, ram_user_name="Alice", now=later
        )
        == []
    )
    assert services.partner_user_policies_sync(now=later) == 2
    assert services.partner_user_policies_sync(now=later) == 0  # already asked for
    delegation_expire(delegation=delegation, now=later)
    world.drain()
    assert not world.user_may_assume("Alice")
    assert Delegation.objects.get(pk=delegation.pk).status == Delegation.Status.EXPIRED


def test_the_sync_is_quiet_when_the_cloud_matches(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    world.assign(delegation, world.alice)
    world.drain()
    assert services.partner_user_policies_sync() == 0
    # Someone leaves the staff outside the portal's flow (role changed to admin).
    membership = Membership.objects.get(user=world.alice, organisation=world.partner)
    membership.role = Membership.Role.ADMIN
    membership.save()
    assert services.partner_user_policies_sync() == 1
    world.drain()
    assert not world.user_may_assume("Alice")


def test_uri_keys_are_personal_bounded_and_hashed(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation(ends_at=timezone.now() + dt.timedelta(days=2))
    assignment = world.assign(delegation, world.alice)
    with pytest.raises(PermissionDenied):
        services.credentials_uri_create(assignment=assignment, user=world.bob)
    for days in (0, 91, "7"):
        with pytest.raises(ValidationError):
            services.credentials_uri_create(
                assignment=assignment, user=world.alice, valid_days=days
            )
    key, raw = services.credentials_uri_create(
        assignment=assignment, user=world.alice, valid_days=30
    )
    assert key.expires_at == delegation.ends_at  # never longer than the delegation
    assert raw.startswith("pcu_") and raw not in str(key.__dict__)
    assert key.token_hash == services.credentials_uri_key_hash(raw)
    event = AuditEvent.objects.get(action="credentials.uri_created")
    assert raw not in str(event.after) + str(event.metadata)
    for _ in range(services.URI_MAX_USABLE_PER_ASSIGNMENT - 1):
        services.credentials_uri_create(assignment=assignment, user=world.alice)
    with pytest.raises(ValidationError):
        services.credentials_uri_create(assignment=assignment, user=world.alice)


def test_a_partner_account_with_grants_in_place_cannot_be_disconnected(
    partner_world: PartnerWorld,
) -> None:
    from delegations.connection.services import cloud_account_disconnect

    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    assignment = world.assign(delegation, world.alice)
    world.drain()
    with pytest.raises(ValidationError) as refused:
        cloud_account_disconnect(
            cloud_account=world.partner_account, disconnected_by=world.partner_admin
        )
    assert "portal-assume-" in str(refused.value)
    services.staff_unassign(assignment=assignment, unassigned_by=world.partner_admin)
    world.revoke(delegation)
    world.drain()
    account = cloud_account_disconnect(
        cloud_account=world.partner_account, disconnected_by=world.partner_admin
    )
    assert account.is_active is False
