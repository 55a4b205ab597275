"""A partner admin withdraws their own pending request: one transition of the lifecycle,
one audit event, no outbox row, refused for anything else or anyone else; and the pages."""

from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.lifecycle.automatic import delegation_mark_active, delegation_mark_applying
from delegations.lifecycle.services import delegation_approve, delegation_reject
from delegations.lifecycle.starting import delegation_withdraw
from delegations.lifecycle.transitions import DelegationConflict, IllegalTransition
from delegations.models import ALLOWED_TRANSITIONS, FINAL_STATUSES, Delegation, OutboxMessage
from tests.delegations.lifecycle.test_views import with_mfa
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


def url(name: str, *args: object) -> str:
    return reverse(f"delegations:{name}", args=args)


# --- the service -------------------------------------------------------------------------------


def test_withdrawn_is_a_final_state_reachable_only_from_requested() -> None:
    assert S.WITHDRAWN in FINAL_STATUSES
    assert ALLOWED_TRANSITIONS[S.WITHDRAWN] == frozenset()
    assert [s for s, targets in ALLOWED_TRANSITIONS.items() if S.WITHDRAWN in targets] == [
        S.REQUESTED
    ]


def test_partner_admin_withdraws_a_pending_request_with_one_event(
    requested: Delegation, partner_admin: User, company_b: Organisation
) -> None:
    withdrawn = delegation_withdraw(
        delegation=requested, withdrawn_by=partner_admin, expected_version=requested.version
    )
    assert withdrawn.changed
    fresh = Delegation.objects.get(pk=requested.pk)
    assert fresh.status == S.WITHDRAWN
    assert fresh.withdrawn_by == partner_admin and fresh.ended_at is not None
    assert fresh.version == requested.version + 1
    assert fresh.decided_by is None
    assert events_for(fresh) == ["delegation.requested", "delegation.withdrawn"]
    event = AuditEvent.objects.get(action="delegation.withdrawn")
    assert event.actor == partner_admin and event.actor_organisation_id == company_b.pk
    assert event.before["status"] == "requested" and event.after["status"] == "withdrawn"
    assert OutboxMessage.objects.count() == 0  # nothing was ever in the cloud


def test_withdrawing_twice_changes_nothing_the_second_time(
    requested: Delegation, partner_admin: User, company_b: Organisation
) -> None:
    other_admin = make_member(company_b, Membership.Role.ADMIN, email="b2@company-b.example")
    delegation_withdraw(delegation=requested, withdrawn_by=partner_admin)
    again = delegation_withdraw(delegation=requested, withdrawn_by=other_admin, expected_version=1)
    assert not again.changed
    assert events_for(requested).count("delegation.withdrawn") == 1


def test_only_an_admin_of_the_requesting_partner_may_withdraw(
    requested: Delegation,
    owner_admin: User,
    partner_staff: User,
    partner_admin_d: User,
    auditor: User,
) -> None:
    for user in (owner_admin, partner_staff, partner_admin_d, auditor):
        with pytest.raises(PermissionDenied, match="Only an admin of Company B"):
            delegation_withdraw(delegation=requested, withdrawn_by=user)
    assert Delegation.objects.get(pk=requested.pk).status == S.REQUESTED
    assert events_for(requested) == ["delegation.requested"]


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decided_request_cannot_be_withdrawn(
    requested: Delegation, owner_admin: User, partner_admin: User, decision: str
) -> None:
    if decision == "approve":
        delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    else:
        delegation_reject(delegation=requested, rejected_by=owner_admin, reason="No")
    status = Delegation.objects.get(pk=requested.pk).status
    with pytest.raises(IllegalTransition, match="Only a request still waiting"):
        delegation_withdraw(delegation=requested, withdrawn_by=partner_admin)
    assert Delegation.objects.get(pk=requested.pk).status == status
    assert "delegation.withdrawn" not in events_for(requested)


def test_active_access_cannot_be_withdrawn(requested: Delegation, owner_admin, partner_admin):
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    delegation_mark_applying(delegation=requested)
    delegation_mark_active(delegation=requested)
    with pytest.raises(IllegalTransition, match="this one is active"):
        delegation_withdraw(delegation=requested, withdrawn_by=partner_admin)


def test_withdraw_on_a_stale_page_is_a_conflict(requested: Delegation, partner_admin: User):
    with pytest.raises(DelegationConflict, match="changed while you were looking"):
        delegation_withdraw(delegation=requested, withdrawn_by=partner_admin, expected_version=9)
    assert Delegation.objects.get(pk=requested.pk).status == S.REQUESTED


def test_deciding_a_withdrawn_request_is_a_clear_conflict(
    requested: Delegation, owner_admin: User, partner_admin: User
) -> None:
    delegation_withdraw(delegation=requested, withdrawn_by=partner_admin)
    with pytest.raises(DelegationConflict, match="withdrew this request"):
        delegation_approve(
            delegation=requested, approved_by=owner_admin, with_mfa=True, expected_version=1
        )
    with pytest.raises(DelegationConflict, match="withdrew this request"):
        delegation_reject(delegation=requested, rejected_by=owner_admin, reason="No")
    assert Delegation.objects.get(pk=requested.pk).status == S.WITHDRAWN
    assert OutboxMessage.objects.count() == 0


def test_after_withdrawing_the_partner_may_ask_again(
    requested: Delegation, partner_admin: User, make_request: Callable[..., Delegation]
) -> None:
    delegation_withdraw(delegation=requested, withdrawn_by=partner_admin)
    again = make_request()
    assert again.status == S.REQUESTED and again.pk != requested.pk


def test_the_reconciler_ignores_a_withdrawn_request(
    requested: Delegation, partner_admin: User
) -> None:
    from delegations.role_state import desired_role_for

    delegation_withdraw(delegation=requested, withdrawn_by=partner_admin)
    desired, wanted = desired_role_for(
        requested.managed_role, list(Delegation.objects.filter(pk=requested.pk))
    )
    assert wanted == frozenset()
    assert requested.principal_arn not in desired.managed_principals_known


# --- the pages ---------------------------------------------------------------------------------


@pytest.fixture
def partner_client(login: Callable[..., Client], partner_admin: User) -> Client:
    return login(partner_admin)


@pytest.fixture
def owner_client(login: Callable[..., Client], owner_admin: User) -> Client:
    return with_mfa(login(owner_admin), owner_admin)


def test_partner_page_offers_withdraw_with_a_confirmation(
    partner_client: Client, owner_client: Client, requested: Delegation
) -> None:
    body = partner_client.get(url("detail", requested.pk)).content.decode()
    assert 'data-testid="withdraw-form"' in body
    assert 'name="confirm"' in body
    assert url("withdraw", requested.pk) in body
    owner_body = owner_client.get(url("detail", requested.pk)).content.decode()
    assert 'data-testid="withdraw-form"' not in owner_body


def test_withdraw_needs_the_confirmation_box(partner_client: Client, requested: Delegation) -> None:
    response = partner_client.post(url("withdraw", requested.pk), {"version": 1})
    assert response.status_code == 400
    assert "Tick the box" in response.content.decode()
    assert Delegation.objects.get(pk=requested.pk).status == S.REQUESTED
    assert events_for(requested) == ["delegation.requested"]


def test_withdraw_from_the_partner_page_and_what_each_side_sees(
    partner_client: Client, owner_client: Client, requested: Delegation
) -> None:
    response = partner_client.post(
        url("withdraw", requested.pk), {"version": 1, "confirm": "on"}, follow=True
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Withdrawn. Company A can no longer approve it." in body
    assert 'data-testid="withdrawn-note"' in body
    assert 'data-testid="withdraw-form"' not in body
    assert Delegation.objects.get(pk=requested.pk).status == S.WITHDRAWN
    # The partner's list shows it as withdrawn.
    listing = partner_client.get(url("list")).content.decode()
    assert "status-withdrawn" in listing
    # The owner's pending list no longer has it; its page has no decision form.
    pending = owner_client.get(url("list"), {"status": "requested"})
    assert list(pending.context["delegations"]) == []
    owner_page = owner_client.get(url("detail", requested.pk)).content.decode()
    assert 'data-testid="approve-form"' not in owner_page
    assert "Withdrawn by" in owner_page


def test_the_owner_cannot_withdraw_and_an_approved_request_stays(
    partner_client: Client, owner_client: Client, requested: Delegation, owner_admin: User
) -> None:
    assert (
        owner_client.post(
            url("withdraw", requested.pk), {"version": 1, "confirm": "on"}
        ).status_code
        == 403
    )
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    response = partner_client.post(
        url("withdraw", requested.pk), {"version": 1, "confirm": "on"}, follow=True
    )
    assert "Only a request still waiting" in response.content.decode()
    assert Delegation.objects.get(pk=requested.pk).status == S.APPROVED


def test_withdraw_refuses_get_forged_versions_and_foreign_ids(
    partner_client: Client,
    requested: Delegation,
    login: Callable[..., Client],
    partner_admin_d: User,
    partner_staff: User,
) -> None:
    assert partner_client.get(url("withdraw", requested.pk)).status_code == 405
    assert (
        partner_client.post(
            url("withdraw", requested.pk), {"version": "x", "confirm": "on"}
        ).status_code
        == 400
    )
    foreign = login(partner_admin_d)
    assert (
        foreign.post(url("withdraw", requested.pk), {"version": 1, "confirm": "on"}).status_code
        == 404
    )
    staff = login(partner_staff)
    assert (
        staff.post(url("withdraw", requested.pk), {"version": 1, "confirm": "on"}).status_code
        == 403
    )
    assert Delegation.objects.get(pk=requested.pk).status == S.REQUESTED


def summary_of(client: Client, delegation: Delegation) -> str:
    page = client.get(url("detail", delegation.pk)).content.decode()
    start = page.index('data-testid="delegation-summary"')
    return " ".join(page[start : page.index("</p>", start)].split())


def test_the_page_summary_never_claims_access_a_request_does_not_give(
    partner_client: Client, owner_client: Client, requested: Delegation
) -> None:
    assert "asks to switch into this role in your account" in summary_of(owner_client, requested)
    assert "would switch into this role in theirs" in summary_of(partner_client, requested)
    partner_client.post(url("withdraw", requested.pk), {"version": 1, "confirm": "on"})
    owner_summary = summary_of(owner_client, requested)
    partner_summary = summary_of(partner_client, requested)
    assert "cannot switch into this role in your account (withdrawn)" in owner_summary
    assert "cannot switch into this role in theirs (withdrawn)" in partner_summary
    assert "may switch" not in owner_summary + partner_summary
