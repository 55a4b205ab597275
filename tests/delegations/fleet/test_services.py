"""Fleet grants through the services: request, approve once, reject, the rate control with
MaxErrors, one account retried or revoked without touching the others, revoke and expiry of
the whole fleet, and the bad input refused before anything is written. The worker is played
by the lifecycle's own worker transitions (the cloud side is in test_worker.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.fleet import selectors as fleet_selectors
from delegations.fleet import services as fleet
from delegations.lifecycle import services as lifecycle
from delegations.lifecycle.automatic import (
    delegation_mark_active,
    delegation_mark_applying,
    delegation_mark_failed,
    delegation_mark_revoked,
    delegations_expire_due,
    delegations_start_due,
)
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import (
    CatalogRole,
    CloudAccount,
    Delegation,
    FleetGrant,
    OutboxMessage,
    StaffAssignment,
)
from delegations.worker.fleet_handover import fleet_advance_pending
from tests.delegations.factories import CloudAccountFactory
from tests.personas import make_member

Status = Delegation.Status
REGIONS = ["cn-shanghai", "cn-beijing"]


@pytest.fixture
def staging_accounts(company_a: Organisation) -> list[CloudAccount]:
    """Three more connected accounts of company A besides its primary."""
    return [
        CloudAccountFactory(
            organisation=company_a, account_uid=uid, alias="", name=name, is_primary=False
        )
        for uid, name in (("55667701", "staging"), ("55667702", "test"), ("55667703", "dr"))
    ]


@pytest.fixture
def fleet_role(ecs_admin: CatalogRole, staging_accounts: list[CloudAccount]) -> CatalogRole:
    ecs_admin.offered_in_all_accounts = True
    ecs_admin.save()
    return ecs_admin


@pytest.fixture
def all_accounts(
    cloud_account_a: CloudAccount, staging_accounts: list[CloudAccount]
) -> list[CloudAccount]:
    return [cloud_account_a, *staging_accounts]


@pytest.fixture
def make_fleet(
    company_b: Organisation,
    partner_admin: User,
    fleet_role: CatalogRole,
    allow_b: None,
    link_a: tuple,
    all_accounts: list[CloudAccount],
) -> Callable[..., FleetGrant]:
    def make(**overrides: object) -> FleetGrant:
        arguments: dict[str, object] = {
            "partner": company_b,
            "requested_by": partner_admin,
            "partner_link": link_a[0],
            "catalog_role": fleet_role,
            "accounts": all_accounts,
            "regions": REGIONS,
            "reason": "Weekly patching across the estate",
            "ends_at": None,
            "concurrency": 2,
            "max_errors": 0,
        }
        arguments.update(overrides)
        return fleet.fleet_request(**arguments)  # type: ignore[arg-type]

    return make


def members(grant: FleetGrant) -> list[Delegation]:
    return list(
        Delegation.objects.filter(fleet=grant)
        .select_related("managed_role__cloud_account")
        .order_by("created_at", "pk")
    )


def statuses(grant: FleetGrant) -> list[str]:
    return [m.status for m in members(grant)]


def events(grant: FleetGrant) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_id=str(grant.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )


def work(member: Delegation, *, ok: bool) -> None:
    """The worker's outcome for one account: active, or failed with the cloud's error."""
    delegation_mark_applying(delegation=member)
    if ok:
        delegation_mark_active(delegation=member)
    else:
        delegation_mark_failed(
            delegation=member,
            error_code="EntityAlreadyExists.Role",
            error_message="The role exists and is not the portal's.",
            request_id="req-1",
        )


def test_one_request_per_account_with_the_fleets_regions(
    make_fleet: Callable[..., FleetGrant], all_accounts: list[CloudAccount]
) -> None:
    grant = make_fleet()
    rows = members(grant)
    assert [m.managed_role.cloud_account.account_uid for m in rows] == [
        a.account_uid for a in all_accounts
    ]
    assert all(m.status == Status.REQUESTED for m in rows)
    # One managed role per account, each in its own account.
    assert len({m.managed_role_id for m in rows}) == len(all_accounts)
    assert grant.regions == REGIONS
    assert events(grant) == ["fleet.requested"]
    # The fleet's events name it as the fleet names itself.
    event = AuditEvent.objects.get(target_id=str(grant.pk))
    assert event.target_label == f"{grant.catalog_role.role_name} fleet for {grant.partner.name}"
    summary = fleet_selectors.fleet_summary(
        fleet=grant, rows=fleet_selectors.fleet_accounts(fleet=grant)
    )
    assert str(summary.label) == "requested"


def test_approve_once_applies_at_most_concurrency_accounts(
    make_fleet: Callable[..., FleetGrant], owner_admin: User
) -> None:
    grant = make_fleet(concurrency=2)
    approved = fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    assert approved.changed and approved.decided_by == owner_admin
    # Two accounts go to the worker; two wait their turn (nothing of them is in the cloud).
    assert statuses(grant) == [Status.APPROVED, Status.APPROVED, Status.SCHEDULED, Status.SCHEDULED]
    assert "fleet.approved" in events(grant)
    # A double click changes nothing.
    again = fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    assert not again.changed
    # The scheduler does not start a fleet's waiting accounts on its own.
    assert delegations_start_due() == 0

    first = members(grant)[0]
    work(first, ok=True)
    # Each finished account enqueued the fleet's next step; the worker runs it.
    assert OutboxMessage.objects.filter(
        kind=OutboxMessage.Kind.ADVANCE_FLEET, object_id=str(grant.pk)
    ).exists()
    fleet.fleet_advance(fleet_id=grant.pk)
    assert statuses(grant) == [Status.ACTIVE, Status.APPROVED, Status.APPROVED, Status.SCHEDULED]
    for member in members(grant)[1:3]:
        work(member, ok=True)
    fleet.fleet_advance(fleet_id=grant.pk)
    work(members(grant)[3], ok=True)
    fleet.fleet_advance(fleet_id=grant.pk)
    assert statuses(grant) == [Status.ACTIVE] * 4
    grant.refresh_from_db()
    assert grant.run_finished_at is not None
    finished = AuditEvent.objects.get(target_id=str(grant.pk), action="fleet.run_finished")
    assert finished.metadata["outcomes"] == {
        "active": ["11223344", "55667701", "55667702", "55667703"]
    }


def test_max_errors_stops_the_rest_as_not_attempted_and_continue_resumes(
    make_fleet: Callable[..., FleetGrant], owner_admin: User
) -> None:
    grant = make_fleet(concurrency=1, max_errors=0)
    fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    first = members(grant)[0]
    work(first, ok=False)
    fleet.fleet_advance(fleet_id=grant.pk)
    grant.refresh_from_db()
    assert grant.stopped_at is not None
    assert statuses(grant) == [Status.FAILED, Status.SCHEDULED, Status.SCHEDULED, Status.SCHEDULED]
    rows = fleet_selectors.fleet_accounts(fleet=grant)
    assert [row.state for row in rows] == ["failed"] + [fleet.NOT_ATTEMPTED] * 3
    assert all(row.can_retry for row in rows)
    stopped = AuditEvent.objects.get(target_id=str(grant.pk), action="fleet.stopped")
    assert stopped.metadata["failed_accounts"] == ["11223344"]
    assert stopped.metadata["not_attempted_accounts"] == ["55667701", "55667702", "55667703"]
    # Nothing more starts by itself.
    fleet.fleet_advance(fleet_id=grant.pk)
    assert statuses(grant)[1:] == [Status.SCHEDULED] * 3

    # Retry the failed account alone: the others are untouched.
    fleet.fleet_account_retry(fleet=grant, delegation=first, retried_by=owner_admin)
    assert statuses(grant) == [
        Status.APPROVED,
        Status.SCHEDULED,
        Status.SCHEDULED,
        Status.SCHEDULED,
    ]
    work(members(grant)[0], ok=True)

    # Continue: a new run for the accounts not attempted, one at a time again.
    fleet.fleet_continue(fleet=grant, continued_by=owner_admin)
    grant.refresh_from_db()
    assert grant.stopped_at is None
    assert statuses(grant) == [Status.ACTIVE, Status.APPROVED, Status.SCHEDULED, Status.SCHEDULED]


def test_max_errors_tolerates_that_many_failures(
    make_fleet: Callable[..., FleetGrant], owner_admin: User
) -> None:
    grant = make_fleet(concurrency=1, max_errors=1)
    fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    work(members(grant)[0], ok=False)
    fleet.fleet_advance(fleet_id=grant.pk)
    assert statuses(grant)[:2] == [Status.FAILED, Status.APPROVED]
    work(members(grant)[1], ok=False)
    fleet.fleet_advance(fleet_id=grant.pk)
    grant.refresh_from_db()
    assert grant.stopped_at is not None
    assert statuses(grant)[2:] == [Status.SCHEDULED, Status.SCHEDULED]


def test_retry_one_not_attempted_account(
    make_fleet: Callable[..., FleetGrant], owner_admin: User
) -> None:
    grant = make_fleet(concurrency=1, max_errors=0)
    fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    work(members(grant)[0], ok=False)
    fleet.fleet_advance(fleet_id=grant.pk)
    third = members(grant)[2]
    fleet.fleet_account_retry(fleet=grant, delegation=third, retried_by=owner_admin)
    assert statuses(grant) == [Status.FAILED, Status.SCHEDULED, Status.APPROVED, Status.SCHEDULED]
    turn = AuditEvent.objects.filter(target_id=str(third.pk), action="delegation.fleet_turn").get()
    assert turn.actor_id == owner_admin.pk


def test_reject_once_rejects_every_account(
    make_fleet: Callable[..., FleetGrant], owner_admin: User
) -> None:
    grant = make_fleet()
    fleet.fleet_reject(fleet=grant, rejected_by=owner_admin, reason="Not this quarter")
    assert statuses(grant) == [Status.REJECTED] * 4
    assert events(grant)[-1] == "fleet.rejected"
    with pytest.raises(fleet.FleetConflict):
        fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)


def test_only_the_owners_admins_decide_and_refusals_are_audited(
    make_fleet: Callable[..., FleetGrant], partner_admin: User, owner_admin: User, company_a
) -> None:
    grant = make_fleet()
    with pytest.raises(PermissionDenied):
        fleet.fleet_approve(fleet=grant, approved_by=partner_admin, with_mfa=True)
    # A member of the requesting partner may not approve, and the refusal is on record.
    double_hat = make_member(company_a, Membership.Role.ADMIN)
    Membership.objects.create(
        user=double_hat, organisation=grant.partner, role=Membership.Role.STAFF
    )
    with pytest.raises(PermissionDenied):
        fleet.fleet_approve(fleet=grant, approved_by=double_hat, with_mfa=True)
    assert "fleet.approve_denied" in events(grant)
    assert statuses(grant) == [Status.REQUESTED] * 4


def test_revoke_one_account_then_the_fleet(
    make_fleet: Callable[..., FleetGrant], owner_admin: User
) -> None:
    grant = make_fleet(concurrency=2)
    fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    first, second = members(grant)[:2]
    work(first, ok=True)
    work(second, ok=True)
    fleet.fleet_account_revoke(
        fleet=grant, delegation=first, revoked_by=owner_admin, reason="Account retired"
    )
    assert statuses(grant) == [Status.REVOKING, Status.ACTIVE, Status.SCHEDULED, Status.SCHEDULED]
    revoked = fleet.fleet_revoke(fleet=grant, revoked_by=owner_admin, reason="Contract ended")
    assert revoked.changed
    # Accounts never applied end at once; the applied one goes through revoking.
    assert statuses(grant) == [Status.REVOKING, Status.REVOKING, Status.REVOKED, Status.REVOKED]
    assert "fleet.revoke_requested" in events(grant)
    assert not fleet.fleet_revoke(fleet=grant, revoked_by=owner_admin, reason="again").changed


def test_an_account_of_another_fleet_is_refused(
    make_fleet: Callable[..., FleetGrant],
    owner_admin: User,
    make_request,
    all_accounts: list[CloudAccount],
) -> None:
    grant = make_fleet(accounts=all_accounts[:2])
    lone = make_request(cloud_account=all_accounts[3])
    with pytest.raises(ValidationError):
        fleet.fleet_account_revoke(fleet=grant, delegation=lone, revoked_by=owner_admin, reason="x")


def test_expiry_ends_every_account(
    make_fleet: Callable[..., FleetGrant], owner_admin: User
) -> None:
    ends = timezone.now() + dt.timedelta(hours=2)
    grant = make_fleet(ends_at=ends, concurrency=1)
    fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    work(members(grant)[0], ok=True)
    assert delegations_expire_due(now=ends + dt.timedelta(seconds=1)) == 4
    assert statuses(grant) == [Status.REVOKING, Status.EXPIRED, Status.EXPIRED, Status.EXPIRED]


def advance_as_the_worker() -> None:
    """Every fleet advance the outbox holds, done as the worker does it."""
    for fleet_id in set(
        OutboxMessage.objects.filter(
            kind=OutboxMessage.Kind.ADVANCE_FLEET, done_at__isnull=True
        ).values_list("object_id", flat=True)
    ):
        fleet_advance_pending(fleet_id=fleet_id)


@pytest.mark.parametrize("ending", ["expiry", "fleet_revoke"])
def test_a_run_whose_end_passes_while_accounts_wait_finishes_once_they_end(
    make_fleet: Callable[..., FleetGrant], owner_admin: User, ending: str
) -> None:
    grant = make_fleet(concurrency=1, ends_at=timezone.now() + dt.timedelta(hours=2))
    fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    first = members(grant)[0]
    delegation_mark_applying(delegation=first)
    # The end passes while the first account is applying; the worker activates it before
    # the expiry pass (once a minute) runs, and the fleet's advance follows: no account may
    # start after the end, so none is counted as started.
    Delegation.objects.filter(fleet=grant).update(
        starts_at=timezone.now() - dt.timedelta(hours=3),
        ends_at=timezone.now() - dt.timedelta(seconds=5),
    )
    delegation_mark_active(delegation=first)
    advance_as_the_worker()
    assert statuses(grant) == [Status.ACTIVE] + [Status.SCHEDULED] * 3
    grant.refresh_from_db()
    assert grant.run_finished_at is None

    if ending == "expiry":
        delegations_expire_due()
        ended = Status.EXPIRED
    else:
        fleet.fleet_revoke(fleet=grant, revoked_by=owner_admin, reason="Patching is over")
        ended = Status.REVOKED
    advance_as_the_worker()

    assert statuses(grant) == [Status.REVOKING] + [ended] * 3
    grant.refresh_from_db()
    assert grant.run_finished_at is not None
    assert events(grant).count("fleet.run_finished") == 1


def test_offer_starts_approved_within_the_rate_control(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    fleet_role: CatalogRole,
    allow_b: None,
    all_accounts: list[CloudAccount],
) -> None:
    grant = fleet.fleet_offer(
        owner=company_a,
        offered_by=owner_admin,
        partner=company_b,
        catalog_role=fleet_role,
        accounts=all_accounts[:3],
        regions=["cn-shanghai"],
        reason="Run the estate",
        ends_at=None,
        with_mfa=True,
        concurrency=2,
    )
    assert statuses(grant) == [Status.APPROVED, Status.APPROVED, Status.SCHEDULED]
    assert events(grant)[0] == "fleet.offered"


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"accounts": []}, "accounts"),
        ({"regions": []}, "regions"),
        ({"regions": ["cn-shanghai", "Shanghai!"]}, "regions"),
        ({"regions": ["cn-shanghai", "cn-shanghai"]}, "regions"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 21}, "concurrency"),
        ({"max_errors": -1}, "max_errors"),
    ],
)
def test_bad_targets_are_refused_and_nothing_is_written(
    make_fleet: Callable[..., FleetGrant], overrides: dict, field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        make_fleet(**overrides)
    assert field in refused.value.message_dict
    assert not FleetGrant.objects.exists()
    assert not Delegation.objects.exists()


def test_duplicate_accounts_are_refused(
    make_fleet: Callable[..., FleetGrant], all_accounts: list[CloudAccount]
) -> None:
    with pytest.raises(ValidationError) as refused:
        make_fleet(accounts=[all_accounts[0], all_accounts[1], all_accounts[0]])
    assert "accounts" in refused.value.message_dict
    assert not Delegation.objects.exists()


def test_accounts_not_the_owners_or_not_offered_are_refused(
    make_fleet: Callable[..., FleetGrant],
    cloud_account_c: CloudAccount,
    fleet_role: CatalogRole,
    all_accounts: list[CloudAccount],
) -> None:
    with pytest.raises(ValidationError) as refused:
        make_fleet(accounts=[all_accounts[0], cloud_account_c])
    assert "accounts" in refused.value.message_dict
    # Offered only in its home account and one other: the rest are refused.
    fleet_role.offered_in_all_accounts = False
    fleet_role.save()
    fleet_role.extra_accounts.set([all_accounts[1]])
    with pytest.raises(ValidationError):
        make_fleet(accounts=all_accounts[:3])
    assert make_fleet(accounts=all_accounts[:2]).delegations.count() == 2


def test_a_second_open_grant_in_the_same_account_is_refused(
    make_fleet: Callable[..., FleetGrant], all_accounts: list[CloudAccount], link_a: tuple
) -> None:
    make_fleet(accounts=all_accounts[:2])
    with pytest.raises(ValidationError):
        make_fleet(accounts=all_accounts[1:3])
    # Other accounts of the same role are fine.
    assert make_fleet(accounts=all_accounts[2:]).delegations.count() == 2


def test_a_single_delegation_chooses_its_account_default_home(
    make_request, fleet_role: CatalogRole, staging_accounts: list[CloudAccount]
) -> None:
    home = make_request()
    assert home.managed_role.cloud_account_id == fleet_role.cloud_account_id
    staging = make_request(cloud_account=staging_accounts[0])
    assert staging.managed_role.cloud_account == staging_accounts[0]
    assert staging.managed_role.role_name == fleet_role.role_name
    event = AuditEvent.objects.filter(target_id=str(staging.pk)).get()
    assert event.metadata["account_uid"] == "55667701"


# --- what a runbook may act on ------------------------------------------------------------


def test_runbook_targets_cover_active_fleet_accounts_x_regions_for_whom_they_may(
    make_fleet: Callable[..., FleetGrant],
    owner_admin: User,
    partner_admin: User,
    partner_staff: User,
    company_b: Organisation,
    company_a: Organisation,
) -> None:
    grant = make_fleet(concurrency=4)
    fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    first, second, third, _fourth = members(grant)
    work(first, ok=True)
    work(second, ok=True)
    work(third, ok=False)

    targets = fleet_selectors.runbook_targets_for(person=partner_admin, partner=company_b)
    assert [(t.account_uid, t.role_name, t.region) for t in targets] == [
        ("11223344", "ecs-admin", "cn-shanghai"),
        ("11223344", "ecs-admin", "cn-beijing"),
        ("55667701", "ecs-admin", "cn-shanghai"),
        ("55667701", "ecs-admin", "cn-beijing"),
    ]
    assert {t.delegation.pk for t in targets} == {first.pk, second.pk}
    # Staff only where they are assigned; nobody outside the partner gets anything.
    assert fleet_selectors.runbook_targets_for(person=partner_staff, partner=company_b) == []
    StaffAssignment.objects.create(
        delegation=second, partner=company_b, user=partner_staff, assigned_by=partner_admin
    )
    staff_targets = fleet_selectors.runbook_targets_for(person=partner_staff, partner=company_b)
    assert {(t.account_uid, t.region) for t in staff_targets} == {
        ("55667701", "cn-shanghai"),
        ("55667701", "cn-beijing"),
    }
    assert fleet_selectors.runbook_targets_for(person=owner_admin, partner=company_b) == []
    assert fleet_selectors.runbook_targets_for(person=partner_admin, partner=company_a) == []
    # A revoked account is no longer a target.
    fleet.fleet_account_revoke(fleet=grant, delegation=second, revoked_by=owner_admin, reason="x")
    assert fleet_selectors.runbook_targets_for(person=partner_staff, partner=company_b) == []


def test_an_account_of_a_fleet_is_never_decided_alone(
    make_fleet: Callable[..., FleetGrant], owner_admin: User
) -> None:
    grant = make_fleet()
    first = members(grant)[0]
    with pytest.raises(DelegationConflict):
        lifecycle.delegation_approve(delegation=first, approved_by=owner_admin, with_mfa=True)
    with pytest.raises(DelegationConflict):
        lifecycle.delegation_reject(delegation=first, rejected_by=owner_admin, reason="no")
    assert statuses(grant) == [Status.REQUESTED] * 4


def test_a_fleet_tells_each_admin_once_per_outcome_not_once_per_account(
    make_fleet: Callable[..., FleetGrant],
    owner_admin: User,
    partner_admin: User,
    company_a: Organisation,
    company_b: Organisation,
) -> None:
    """Four accounts: requested, approved, applied (three active, one failed) and revoked each
    reach every admin in one notice for the fleet, never one per account."""
    from notifications.models import Delivery
    from notifications.services import organisation_admins

    def told() -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for event, email in Delivery.objects.filter(recipient__isnull=False).values_list(
            "event", "recipient_email"
        ):
            counts[(event, email)] = counts.get((event, email), 0) + 1
        return counts

    owners = {person.email for person in organisation_admins(company_a)}
    partners = {person.email for person in organisation_admins(company_b)}
    grant = make_fleet(concurrency=2, max_errors=1)
    fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    rows = members(grant)
    work(rows[0], ok=True)
    work(rows[1], ok=False)
    fleet.fleet_advance(fleet_id=grant.pk)
    for member in members(grant)[2:]:
        work(member, ok=True)
    fleet.fleet_advance(fleet_id=grant.pk)
    grant.refresh_from_db()
    assert grant.run_finished_at is not None
    fleet.fleet_revoke(fleet=grant, revoked_by=owner_admin, reason="Contract ended")

    counts = told()
    assert counts, "nobody was told anything"
    assert set(counts.values()) == {1}, counts  # never one notice per account
    heard = {event: {email for (e, email) in counts if e == event} for event, _ in counts}
    # Whoever acted is not told of their own action.
    assert heard["delegation.requested"] == owners
    assert heard["delegation.approved"] == (owners | partners) - {owner_admin.email}
    assert heard["delegation.active"] == owners | partners
    assert heard["delegation.failed"] == owners | partners
    assert heard["delegation.revoked"] == (owners | partners) - {owner_admin.email}
    active = Delivery.objects.filter(event="delegation.active").first()
    assert active is not None and "3" in active.content["title"]
    failed = Delivery.objects.filter(event="delegation.failed").first()
    assert failed is not None and "1" in failed.content["title"]


def test_a_stopped_fleet_tells_its_failure_once_naming_the_accounts_not_attempted(
    make_fleet: Callable[..., FleetGrant], owner_admin: User
) -> None:
    from notifications.models import Delivery

    grant = make_fleet(concurrency=1, max_errors=0)
    fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    work(members(grant)[0], ok=False)
    fleet.fleet_advance(fleet_id=grant.pk)
    grant.refresh_from_db()
    assert grant.stopped_at is not None and grant.run_finished_at is not None
    failed = Delivery.objects.filter(event="delegation.failed", recipient=owner_admin)
    assert failed.count() == 1
    facts = dict(failed.get().content["facts"])
    assert facts["Accounts"] == "11223344"
    assert facts["Not attempted"] == "55667701, 55667702, 55667703"
    assert facts["Cloud error"] == "EntityAlreadyExists.Role"


def test_a_fleets_end_is_told_once_for_the_fleet_not_once_per_account(
    make_fleet: Callable[..., FleetGrant],
    owner_admin: User,
    company_a: Organisation,
    company_b: Organisation,
) -> None:
    """The 24 h and 1 h warnings and the end itself reach each admin once for the fleet's four
    accounts, and the worker finishing each account's removal afterwards tells nobody again."""
    from delegations.notices import delegations_remind_due
    from notifications.models import Delivery
    from notifications.services import organisation_admins

    ends = timezone.now() + dt.timedelta(days=3)
    grant = make_fleet(ends_at=ends, concurrency=4)
    fleet.fleet_approve(fleet=grant, approved_by=owner_admin, with_mfa=True)
    for member in members(grant)[:2]:
        work(member, ok=True)
    admins = {p.email for p in organisation_admins(company_a) + organisation_admins(company_b)}

    def told(event: str) -> list[str]:
        return list(
            Delivery.objects.filter(event=event, recipient__isnull=False).values_list(
                "recipient_email", flat=True
            )
        )

    assert delegations_remind_due(now=ends - dt.timedelta(hours=23)) == 1
    assert delegations_remind_due(now=ends - dt.timedelta(hours=22)) == 0
    assert delegations_remind_due(now=ends - dt.timedelta(minutes=50)) == 1
    warnings = told("delegation.expiring")
    assert sorted(warnings) == sorted([*admins, *admins])  # 24 h and 1 h, each once per admin
    warning = Delivery.objects.filter(event="delegation.expiring").first()
    assert warning is not None and "4 accounts" in warning.content["title"]

    assert delegations_expire_due(now=ends + dt.timedelta(seconds=1)) == 4
    for member in members(grant):
        if member.status == Status.REVOKING:
            delegation_mark_revoked(delegation=member)
    assert set(statuses(grant)) == {Status.EXPIRED}
    assert sorted(told("delegation.expired")) == sorted(admins)
    ended = Delivery.objects.filter(event="delegation.expired").first()
    assert ended is not None and "4 accounts" in ended.content["title"]
