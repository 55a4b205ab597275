"""Every lifecycle transition: its effect, its single audit event, its outbox row, and the
moves and people it refuses."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.catalog.partner_links import partner_link_revoke
from delegations.lifecycle.automatic import (
    delegation_mark_active,
    delegation_mark_applying,
    delegation_mark_failed,
    delegation_mark_revoked,
    delegations_expire_due,
)
from delegations.lifecycle.services import (
    delegation_approve,
    delegation_reject,
    delegation_retry,
    delegation_revoke,
)
from delegations.lifecycle.starting import delegation_offer
from delegations.lifecycle.transitions import DelegationConflict, IllegalTransition
from delegations.models import (
    ALLOWED_TRANSITIONS,
    CatalogRole,
    Delegation,
    ManagedRole,
    OutboxMessage,
    PartnerLink,
)
from tests.delegations.factories import (
    CloudAccountFactory,
    DelegationFactory,
    PartnerAllowanceFactory,
)
from tests.personas import make_member

pytestmark = pytest.mark.django_db
S = Delegation.Status


def events_for(delegation: Delegation) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            target_type="delegations.delegation", target_id=str(delegation.pk)
        )
        .order_by("sequence")
        .values_list("action", flat=True)
    )


def last_event(delegation: Delegation) -> AuditEvent:
    return (
        AuditEvent.objects.filter(
            target_type="delegations.delegation", target_id=str(delegation.pk)
        )
        .order_by("-sequence")
        .first()
    )


def outbox_rows(delegation: Delegation) -> int:
    """Reconcile requests for the delegation's role. A request made while a message for the
    role waits unpublished coalesces into it (delegations.outbox), so while one waits they are
    counted by the desired version each request moves."""
    messages = OutboxMessage.objects.filter(
        kind=OutboxMessage.Kind.RECONCILE_ROLE, object_id=str(delegation.managed_role_id)
    )
    if not messages.filter(done_at__isnull=True).exists():
        return messages.count()
    return ManagedRole.objects.get(pk=delegation.managed_role_id).desired_version


# --- request -----------------------------------------------------------------------------------


def test_request_creates_a_requested_delegation_with_one_event(
    requested: Delegation, company_a: Organisation, company_b: Organisation, partner_admin: User
) -> None:
    assert requested.status == S.REQUESTED
    assert requested.owner == company_a and requested.partner == company_b
    assert requested.partner_account_uid == "12345678"
    assert requested.principal_arn == "acs:ram::12345678:root"
    assert requested.managed_role.role_name == "ecs-admin"
    assert events_for(requested) == ["delegation.requested"]
    event = last_event(requested)
    assert event.actor == partner_admin
    assert event.actor_organisation_id == company_b.pk
    assert set(event.scopes.values_list("organisation_id", flat=True)) == {
        company_a.pk,
        company_b.pk,
    }
    assert event.after["status"] == "requested"
    assert OutboxMessage.objects.count() == 0  # nothing for the worker yet


def test_request_reuses_the_managed_role_case_insensitively(
    make_request: Callable[..., Delegation], ecs_admin: CatalogRole
) -> None:
    ManagedRole.objects.create(cloud_account=ecs_admin.cloud_account, role_name="ECS-Admin")
    delegation = make_request()
    assert ManagedRole.objects.count() == 1
    assert delegation.managed_role.role_name == "ECS-Admin"


@pytest.mark.parametrize(
    "ends_at_offset,message",
    [
        (dt.timedelta(days=-1), "in the past"),
        (dt.timedelta(seconds=-1), "in the past"),
        (dt.timedelta(minutes=1), "at least 5 minutes"),
        (dt.timedelta(days=6 * 366), "more than 5 years"),
    ],
)
def test_request_refuses_bad_end_dates(
    make_request: Callable[..., Delegation], ends_at_offset: dt.timedelta, message: str
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        make_request(ends_at=timezone.now() + ends_at_offset)
    assert message in str(excinfo.value.message_dict["ends_at"])
    assert Delegation.objects.count() == 0


def test_request_with_an_end_date_keeps_it(make_request: Callable[..., Delegation]) -> None:
    ends_at = timezone.now() + dt.timedelta(days=30)
    assert make_request(ends_at=ends_at).ends_at == ends_at


@pytest.mark.parametrize("reason", ["", "   ", "x" * 2001])
def test_request_needs_a_reasonable_reason(
    make_request: Callable[..., Delegation], reason: str
) -> None:
    with pytest.raises(ValidationError):
        make_request(reason=reason)
    assert Delegation.objects.count() == 0


def test_request_refuses_a_partner_not_on_the_allow_list(
    make_request: Callable[..., Delegation], company_a: Organisation
) -> None:
    company_a.partner_allowances.all().delete()
    with pytest.raises(ValidationError) as excinfo:
        make_request()
    # The owner's partner link code is not valid for a partner off its allow-list.
    assert "not valid for your organisation" in str(excinfo.value)
    assert Delegation.objects.count() == 0


def test_request_refuses_the_owners_own_account(
    make_request: Callable[..., Delegation], company_a: Organisation, company_b: Organisation
) -> None:
    company_b.account_uid = "11223344"  # company A's UID
    company_b.save()
    PartnerAllowanceFactory(organisation=company_a, partner_account_uid="11223344")
    with pytest.raises(ValidationError) as excinfo:
        make_request()
    assert "own account" in str(excinfo.value)


def test_request_refuses_a_role_outside_the_owners_active_catalogue(
    make_request: Callable[..., Delegation], ecs_admin: CatalogRole, foreign_role: CatalogRole
) -> None:
    with pytest.raises(ValidationError):
        make_request(catalog_role=foreign_role)
    ecs_admin.is_active = False
    ecs_admin.save()
    with pytest.raises(ValidationError):
        make_request()
    assert Delegation.objects.count() == 0


def test_request_refuses_a_revoked_or_expired_link(
    make_request: Callable[..., Delegation], link_a: tuple[PartnerLink, str], owner_admin: User
) -> None:
    link = link_a[0]
    link.expires_at = timezone.now() - dt.timedelta(seconds=1)
    link.save()
    with pytest.raises(ValidationError):
        make_request()
    link.expires_at = None
    link.save()
    partner_link_revoke(link=link, revoked_by=owner_admin)
    with pytest.raises(ValidationError):
        make_request()


def test_request_refuses_a_second_open_request_for_the_same_role(
    make_request: Callable[..., Delegation], requested: Delegation
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        make_request()
    assert "already has a requested delegation" in str(excinfo.value)


def test_only_a_partner_admin_can_request(
    make_request: Callable[..., Delegation], partner_staff: User, owner_admin: User
) -> None:
    with pytest.raises(PermissionDenied):
        make_request(requested_by=partner_staff)
    with pytest.raises(PermissionDenied):
        make_request(requested_by=owner_admin)


# --- approve -----------------------------------------------------------------------------------


def test_approve_records_the_decision_one_event_and_one_outbox_row(
    requested: Delegation, owner_admin: User, django_capture_on_commit_callbacks
) -> None:
    desired_before = requested.managed_role.desired_version
    with django_capture_on_commit_callbacks() as callbacks:
        approved = delegation_approve(
            delegation=requested, approved_by=owner_admin, with_mfa=True, note="ok for Q3"
        )
    assert approved.status == S.APPROVED
    assert approved.decided_by == owner_admin
    assert approved.decided_at is not None
    assert approved.approved_with_mfa is True
    assert approved.decision_reason == "ok for Q3"
    assert approved.version == requested.version + 1
    assert events_for(approved) == ["delegation.requested", "delegation.approved"]
    event = last_event(approved)
    assert event.before["status"] == "requested" and event.after["status"] == "approved"
    assert event.metadata["with_mfa"] is True
    assert outbox_rows(approved) == 1
    # The reconcile's publish after the commit (the notifications' outbox publishes its own).
    cloud_publishes = [c for c in callbacks if c.__qualname__.startswith("outbox_enqueue")]
    assert len(cloud_publishes) == 1
    approved.managed_role.refresh_from_db()
    assert approved.managed_role.desired_version == desired_before + 1


def test_double_click_approve_changes_nothing_the_second_time(
    requested: Delegation, owner_admin: User
) -> None:
    first = delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    second = delegation_approve(
        delegation=requested, approved_by=owner_admin, with_mfa=True, expected_version=1
    )
    assert second.version == first.version
    assert events_for(requested).count("delegation.approved") == 1
    assert outbox_rows(requested) == 1


def test_a_second_admin_approving_after_the_first_gets_a_conflict(
    requested: Delegation, owner_admin: User, owner_admin_2: User
) -> None:
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    with pytest.raises(DelegationConflict, match="already decided by"):
        delegation_approve(delegation=requested, approved_by=owner_admin_2, with_mfa=True)
    assert outbox_rows(requested) == 1


def test_approve_after_reject_is_a_conflict(
    requested: Delegation, owner_admin: User, owner_admin_2: User
) -> None:
    delegation_reject(delegation=requested, rejected_by=owner_admin_2, reason="No")
    with pytest.raises(DelegationConflict, match="rejected"):
        delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    assert outbox_rows(requested) == 0


def test_approve_on_a_stale_page_is_a_conflict(requested: Delegation, owner_admin: User) -> None:
    with pytest.raises(DelegationConflict, match="changed while you were looking"):
        delegation_approve(
            delegation=requested, approved_by=owner_admin, with_mfa=True, expected_version=7
        )
    assert Delegation.objects.get(pk=requested.pk).status == S.REQUESTED


def test_nobody_approves_their_own_request_and_the_attempt_is_audited(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    make_request: Callable[..., Delegation],
) -> None:
    # A person who is an admin of both the owner and the partner requests, then approves.
    Membership.objects.create(user=owner_admin, organisation=company_b, role="admin")
    delegation = make_request(requested_by=owner_admin)
    with pytest.raises(PermissionDenied, match="made yourself"):
        delegation_approve(delegation=delegation, approved_by=owner_admin, with_mfa=True)
    delegation.refresh_from_db()
    assert delegation.status == S.REQUESTED
    assert events_for(delegation) == ["delegation.requested", "delegation.approve_denied"]
    assert last_event(delegation).outcome == AuditEvent.Outcome.DENIED
    assert outbox_rows(delegation) == 0


def test_a_member_of_the_partner_cannot_approve_its_request(
    requested: Delegation, owner_admin: User, company_b: Organisation
) -> None:
    Membership.objects.create(user=owner_admin, organisation=company_b, role="staff")
    with pytest.raises(PermissionDenied, match="member of the requesting partner"):
        delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    assert Delegation.objects.get(pk=requested.pk).status == S.REQUESTED


def test_only_an_owner_admin_approves(
    requested: Delegation, auditor: User, partner_admin: User, foreign_owner_admin: User
) -> None:
    for user in (auditor, partner_admin, foreign_owner_admin):
        with pytest.raises(PermissionDenied):
            delegation_approve(delegation=requested, approved_by=user, with_mfa=True)
    assert events_for(requested) == ["delegation.requested"]


def test_approve_requires_mfa_when_the_portal_does(
    requested: Delegation, owner_admin: User, settings
) -> None:
    settings.PORTAL_REQUIRE_MFA = True
    with pytest.raises(PermissionDenied, match="two-factor"):
        delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=False)
    settings.PORTAL_REQUIRE_MFA = False
    approved = delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=False)
    assert approved.approved_with_mfa is False


def test_approve_rechecks_the_allow_list(
    requested: Delegation, owner_admin: User, company_a: Organisation
) -> None:
    company_a.partner_allowances.all().delete()
    with pytest.raises(ValidationError, match="allow-list"):
        delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    assert outbox_rows(requested) == 0


def test_approve_refuses_a_request_whose_end_date_passed(
    make_request: Callable[..., Delegation], owner_admin: User
) -> None:
    delegation = make_request(ends_at=timezone.now() + dt.timedelta(hours=1))
    Delegation.objects.filter(pk=delegation.pk).update(
        starts_at=timezone.now() - dt.timedelta(days=2),
        ends_at=timezone.now() - dt.timedelta(days=1),
    )
    with pytest.raises(ValidationError, match="end date has passed"):
        delegation_approve(delegation=delegation, approved_by=owner_admin, with_mfa=True)


# --- offer -------------------------------------------------------------------------------------


def test_offer_starts_approved_and_enqueues_work(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    delegation = delegation_offer(
        owner=company_a,
        offered_by=owner_admin,
        partner=company_b,
        catalog_role=ecs_admin,
        reason="Managed service contract",
        ends_at=None,
        with_mfa=True,
    )
    assert delegation.status == S.APPROVED
    assert delegation.origin == Delegation.Origin.OFFER
    assert delegation.decided_by == owner_admin
    assert events_for(delegation) == ["delegation.offered"]
    assert outbox_rows(delegation) == 1


def test_offer_refuses_partners_off_the_allow_list_or_the_owners_own_and_non_admins(
    company_a: Organisation,
    company_b: Organisation,
    company_d: Organisation,
    owner_admin: User,
    auditor: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    arguments = {
        "owner": company_a,
        "partner": company_d,
        "catalog_role": ecs_admin,
        "reason": "x",
        "ends_at": None,
        "with_mfa": True,
    }
    with pytest.raises(ValidationError, match="allow-list"):
        delegation_offer(offered_by=owner_admin, **arguments)
    with pytest.raises(PermissionDenied):
        delegation_offer(offered_by=auditor, **{**arguments, "partner": company_b})
    with pytest.raises(ValidationError, match="not a partner"):
        delegation_offer(offered_by=owner_admin, **{**arguments, "partner": company_a})
    # A partner under another of the owner's own accounts (allow-listed before that account
    # was connected): the owner would trust itself.
    CloudAccountFactory(
        organisation=company_a, account_uid=company_b.account_uid, alias="", is_primary=False
    )
    with pytest.raises(ValidationError, match="owner's own account"):
        delegation_offer(offered_by=owner_admin, **{**arguments, "partner": company_b})
    assert Delegation.objects.count() == 0


# --- reject ------------------------------------------------------------------------------------


def test_reject_needs_a_reason_and_is_final(requested: Delegation, owner_admin: User) -> None:
    with pytest.raises(ValidationError):
        delegation_reject(delegation=requested, rejected_by=owner_admin, reason="  ")
    rejected = delegation_reject(
        delegation=requested, rejected_by=owner_admin, reason="Not in the contract"
    )
    assert rejected.status == S.REJECTED
    assert rejected.decision_reason == "Not in the contract"
    assert rejected.ended_at is not None
    assert events_for(rejected) == ["delegation.requested", "delegation.rejected"]
    assert last_event(rejected).metadata["reason"] == "Not in the contract"
    assert outbox_rows(rejected) == 0
    again = delegation_reject(delegation=requested, rejected_by=owner_admin, reason="x")
    assert again.version == rejected.version


# --- the worker's transitions ------------------------------------------------------------------


@pytest.fixture
def approved(requested: Delegation, owner_admin: User) -> Delegation:
    return delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)


@pytest.fixture
def active(approved: Delegation) -> Delegation:
    delegation_mark_applying(delegation=approved)
    return delegation_mark_active(delegation=approved)


def test_worker_walks_approved_applying_active_with_one_event_each(approved: Delegation) -> None:
    applying = delegation_mark_applying(delegation=approved)
    assert applying.status == S.APPLYING
    assert delegation_mark_applying(delegation=approved).version == applying.version
    active = delegation_mark_active(delegation=approved, request_id="REQ-1")
    assert active.status == S.ACTIVE and active.activated_at is not None
    assert delegation_mark_active(delegation=approved).version == active.version
    assert events_for(active) == [
        "delegation.requested",
        "delegation.approved",
        "delegation.applying",
        "delegation.activated",
    ]
    event = last_event(active)
    assert event.actor is None and event.metadata["request_id"] == "REQ-1"


def test_mark_failed_records_the_cloud_error_and_the_phase(approved: Delegation) -> None:
    delegation_mark_applying(delegation=approved)
    failed = delegation_mark_failed(
        delegation=approved,
        error_code="EntityNotExist.Policy",
        error_message="The policy does not exist.",
        request_id="8A1B-REQ",
    )
    assert failed.status == S.FAILED
    assert failed.failed_phase == Delegation.Phase.APPLYING
    assert (failed.last_error_code, failed.last_error_request_id) == (
        "EntityNotExist.Policy",
        "8A1B-REQ",
    )
    event = last_event(failed)
    assert event.action == "delegation.failed"
    assert event.metadata["error_code"] == "EntityNotExist.Policy"
    assert event.metadata["request_id"] == "8A1B-REQ"
    assert (
        delegation_mark_failed(delegation=approved, error_code="X", error_message="y").version
        == failed.version
    )


def test_retry_after_a_failed_apply_goes_back_to_approved(
    approved: Delegation, owner_admin: User
) -> None:
    delegation_mark_failed(delegation=approved, error_code="E", error_message="m")
    retried = delegation_retry(delegation=approved, retried_by=owner_admin)
    assert retried.status == S.APPROVED and retried.failed_phase == ""
    assert last_event(retried).action == "delegation.retried"
    assert last_event(retried).metadata["previous_error_code"] == "E"
    assert outbox_rows(retried) == 2
    with pytest.raises(IllegalTransition):
        delegation_retry(delegation=approved, retried_by=owner_admin)


def test_revoke_then_worker_marks_revoked(active: Delegation, owner_admin: User) -> None:
    revoking = delegation_revoke(delegation=active, revoked_by=owner_admin, reason="Contract ended")
    assert revoking.status == S.REVOKING
    assert revoking.end_cause == Delegation.EndCause.REVOKED
    assert revoking.revoked_by == owner_admin and revoking.revoke_reason == "Contract ended"
    assert outbox_rows(revoking) == 2
    # A double click changes nothing.
    again = delegation_revoke(delegation=active, revoked_by=owner_admin, reason="x")
    assert again.version == revoking.version and outbox_rows(revoking) == 2
    revoked = delegation_mark_revoked(delegation=active)
    assert revoked.status == S.REVOKED and revoked.ended_at is not None
    assert events_for(revoked)[-2:] == ["delegation.revoke_requested", "delegation.revoked"]
    assert (
        delegation_revoke(delegation=active, revoked_by=owner_admin, reason="again").version
        == revoked.version
    )


def test_nothing_to_revoke_on_a_request_or_a_rejection(
    requested: Delegation, owner_admin: User
) -> None:
    with pytest.raises(IllegalTransition, match="nothing to revoke"):
        delegation_revoke(delegation=requested, revoked_by=owner_admin, reason="x")
    delegation_reject(delegation=requested, rejected_by=owner_admin, reason="No")
    with pytest.raises(IllegalTransition, match="nothing to revoke"):
        delegation_revoke(delegation=requested, revoked_by=owner_admin, reason="x")


def test_revoke_needs_a_reason(active: Delegation, owner_admin: User) -> None:
    with pytest.raises(ValidationError):
        delegation_revoke(delegation=active, revoked_by=owner_admin, reason="")
    assert Delegation.objects.get(pk=active.pk).status == S.ACTIVE


def test_a_failed_revoke_is_retried_as_a_revoke(active: Delegation, owner_admin: User) -> None:
    delegation_revoke(delegation=active, revoked_by=owner_admin, reason="End")
    failed = delegation_mark_failed(
        delegation=active, error_code="NoPermission", error_message="denied"
    )
    assert failed.failed_phase == Delegation.Phase.REVOKING
    with pytest.raises(IllegalTransition, match="Retry"):
        delegation_revoke(delegation=active, revoked_by=owner_admin, reason="again")
    retried = delegation_retry(delegation=active, retried_by=owner_admin)
    assert retried.status == S.REVOKING
    assert delegation_mark_revoked(delegation=active).status == S.REVOKED


def test_revoke_while_applying_stops_the_worker_from_activating(
    approved: Delegation, owner_admin: User
) -> None:
    delegation_mark_applying(delegation=approved)
    delegation_revoke(delegation=approved, revoked_by=owner_admin, reason="Changed mind")
    with pytest.raises(IllegalTransition):
        delegation_mark_active(delegation=approved)
    assert Delegation.objects.get(pk=approved.pk).status == S.REVOKING


def test_only_owner_admins_revoke_and_retry(
    active: Delegation, partner_admin: User, auditor: User, foreign_owner_admin: User
) -> None:
    for user in (partner_admin, auditor, foreign_owner_admin):
        with pytest.raises(PermissionDenied):
            delegation_revoke(delegation=active, revoked_by=user, reason="x")
        with pytest.raises(PermissionDenied):
            delegation_retry(delegation=active, retried_by=user)


# --- expiry ------------------------------------------------------------------------------------


def _end_now(delegation: Delegation) -> None:
    Delegation.objects.filter(pk=delegation.pk).update(
        starts_at=timezone.now() - dt.timedelta(days=2),
        ends_at=timezone.now() - dt.timedelta(seconds=1),
    )


def test_an_undecided_request_simply_expires(requested: Delegation) -> None:
    _end_now(requested)
    assert delegations_expire_due() == 1
    requested.refresh_from_db()
    assert requested.status == S.EXPIRED and requested.end_cause == "expired"
    assert events_for(requested)[-1] == "delegation.expired"
    assert outbox_rows(requested) == 0
    assert delegations_expire_due() == 0


def test_active_access_expires_through_revoking(active: Delegation) -> None:
    _end_now(active)
    assert delegations_expire_due() == 1
    active.refresh_from_db()
    assert active.status == S.REVOKING and active.end_cause == Delegation.EndCause.EXPIRED
    assert events_for(active)[-1] == "delegation.expiring"
    assert outbox_rows(active) == 2
    assert delegation_mark_revoked(delegation=active).status == S.EXPIRED
    assert events_for(active)[-1] == "delegation.expired"


def test_expire_leaves_open_ended_and_future_delegations_alone(
    active: Delegation, make_request: Callable[..., Delegation], company_b: Organisation
) -> None:
    assert delegations_expire_due() == 0
    Delegation.objects.filter(pk=active.pk).update(ends_at=timezone.now() + dt.timedelta(days=1))
    assert delegations_expire_due() == 0
    assert Delegation.objects.get(pk=active.pk).status == S.ACTIVE


def test_a_revoke_waiting_for_retry_does_not_hold_up_later_expiries(
    active: Delegation, company_b: Organisation, ecs_admin: CatalogRole
) -> None:
    # Review (expiry head of line): a revoke that failed waits for an owner's Retry and the
    # scheduler leaves it as it is; it took a place in every pass, so `limit` of them with
    # earlier end dates stopped every later delegation from ever expiring.
    now = timezone.now()
    waiting = DelegationFactory(
        catalog_role=ecs_admin,
        partner=company_b,
        status=S.FAILED,
        failed_phase=Delegation.Phase.REVOKING,
        end_cause=Delegation.EndCause.EXPIRED,
        starts_at=now - dt.timedelta(days=3),
        ends_at=now - dt.timedelta(days=2),
    )
    _end_now(active)

    assert delegations_expire_due(limit=1) == 1, "the due delegation was never looked at"
    assert Delegation.objects.get(pk=active.pk).status == S.REVOKING
    waiting_now = Delegation.objects.get(pk=waiting.pk)
    assert (waiting_now.status, waiting_now.version) == (S.FAILED, waiting.version)
    assert delegations_expire_due(limit=1) == 0


# --- the transition table ----------------------------------------------------------------------


def test_every_status_has_a_row_and_final_statuses_go_nowhere() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(S.values)
    for final in (S.REVOKED, S.REJECTED, S.EXPIRED):
        assert ALLOWED_TRANSITIONS[final] == frozenset()


@pytest.mark.parametrize("status", [S.REVOKED, S.REJECTED, S.EXPIRED, S.REQUESTED])
def test_the_worker_cannot_activate_or_revoke_from_elsewhere(
    status: str, company_a: Organisation, company_b: Organisation, ecs_admin: CatalogRole
) -> None:
    delegation = DelegationFactory(catalog_role=ecs_admin, partner=company_b, status=status)
    with pytest.raises(IllegalTransition):
        delegation_mark_active(delegation=delegation)
    if status != S.REQUESTED:
        with pytest.raises(IllegalTransition):
            delegation_mark_applying(delegation=delegation)
    assert Delegation.objects.get(pk=delegation.pk).status == status
    assert events_for(delegation) == []


def test_audit_failure_rolls_the_transition_back(
    requested: Delegation, owner_admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from delegations.lifecycle import transitions

    def broken(**kwargs: object) -> None:
        raise RuntimeError("audit store down")

    monkeypatch.setattr(transitions, "audit_record", broken)
    with pytest.raises(RuntimeError):
        delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    requested.refresh_from_db()
    assert requested.status == S.REQUESTED
    assert OutboxMessage.objects.count() == 0


def test_offer_blocks_an_admin_who_belongs_to_the_partner(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    ecs_admin: CatalogRole,
    allow_b: None,
) -> None:
    make_member(company_b, Membership.Role.STAFF)  # unrelated staff does not matter
    Membership.objects.create(user=owner_admin, organisation=company_b, role="staff")
    with pytest.raises(PermissionDenied):
        delegation_offer(
            owner=company_a,
            offered_by=owner_admin,
            partner=company_b,
            catalog_role=ecs_admin,
            reason="x",
            ends_at=None,
            with_mfa=True,
        )


def test_returned_delegation_says_whether_the_call_changed_it(
    requested: Delegation, owner_admin: User
) -> None:
    assert delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True).changed
    assert not delegation_approve(
        delegation=requested, approved_by=owner_admin, with_mfa=True
    ).changed
    delegation_mark_applying(delegation=requested)
    assert not delegation_mark_applying(delegation=requested).changed
    assert delegation_revoke(delegation=requested, revoked_by=owner_admin, reason="r").changed
    assert not delegation_revoke(delegation=requested, revoked_by=owner_admin, reason="r").changed
