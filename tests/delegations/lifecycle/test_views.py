"""Delegation pages: success, wrong method, another tenant's id (404), missing role (403),
bad or forged input (form errors or 400, nothing written, no outbox row)."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.lifecycle.automatic import (
    delegation_mark_active,
    delegation_mark_applying,
    delegation_mark_failed,
)
from delegations.lifecycle.drift import drift_record
from delegations.lifecycle.services import delegation_approve, delegation_revoke
from delegations.models import (
    CatalogRole,
    Delegation,
    DriftFinding,
    ManagedRole,
    OutboxMessage,
    PartnerLink,
)
from tests.delegations.factories import (
    CatalogRoleFactory,
    CloudAccountFactory,
    DelegationFactory,
)
from tests.delegations.lifecycle.test_services_lifecycle import outbox_rows
from tests.personas import mark_reauthenticated_with_mfa as with_mfa

pytestmark = pytest.mark.django_db
S = Delegation.Status


@pytest.fixture
def owner_client(login: Callable[..., Client], owner_admin: User) -> Client:
    return with_mfa(login(owner_admin), owner_admin)


@pytest.fixture
def owner_client_2(login: Callable[..., Client], owner_admin_2: User) -> Client:
    return with_mfa(login(owner_admin_2), owner_admin_2)


@pytest.fixture
def partner_client(login: Callable[..., Client], partner_admin: User) -> Client:
    return with_mfa(login(partner_admin), partner_admin)


@pytest.fixture
def foreign_client(login: Callable[..., Client], foreign_owner_admin: User) -> Client:
    return with_mfa(login(foreign_owner_admin), foreign_owner_admin)


def url(name: str, *args: object) -> str:
    return reverse(f"delegations:{name}", args=args)


def nothing_written(delegation: Delegation, *, status: str, events: int) -> None:
    fresh = Delegation.objects.get(pk=delegation.pk)
    assert fresh.status == status
    assert AuditEvent.objects.filter(target_id=str(delegation.pk)).count() == events, (
        "no audit event may be written"
    )


# --- lists and detail --------------------------------------------------------------------------


def test_owner_overview_lists_delegations_by_partner_role_and_status(
    owner_client: Client, requested: Delegation, foreign_role: CatalogRole
) -> None:
    foreign = DelegationFactory(catalog_role=foreign_role)
    response = owner_client.get(url("list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert str(requested.pk) in body and "ecs-admin" in body and "Company B" in body
    assert str(foreign.pk) not in body
    filtered = owner_client.get(url("list"), {"status": "active"})
    assert str(requested.pk) not in filtered.content.decode()
    assert (
        owner_client.get(url("list"), {"status": "requested"}).context["delegations"].count() == 1
    )
    # Malformed filters match nothing rather than failing.
    assert owner_client.get(url("list"), {"partner": "not-a-uuid"}).status_code == 200
    assert owner_client.get(url("list"), {"status": "bogus"}).status_code == 200


def test_both_lists_say_which_account_each_role_is_in(
    owner_client: Client, partner_client: Client, requested: Delegation
) -> None:
    """One role name in two of the owner's accounts (a fleet's, say) is two rows: each says
    its account, or the two would read the same."""
    staging = CloudAccountFactory(
        organisation=requested.owner, account_uid="11223355", alias="", is_primary=False
    )
    other = DelegationFactory(
        catalog_role=CatalogRoleFactory(cloud_account=staging, role_name="ecs-admin"),
        partner=requested.partner,
    )
    for client in (owner_client, partner_client):
        body = client.get(url("list")).content.decode()
        primary = requested.managed_role.cloud_account.account_uid
        for delegation, uid in ((requested, primary), (other, "11223355")):
            row = body[body.index(f'data-delegation="{delegation.pk}"') :]
            assert f"account {uid}" in row[: row.index("</tr>")]


def test_partner_sees_its_own_delegations(
    partner_client: Client, requested: Delegation, foreign_role: CatalogRole
) -> None:
    foreign = DelegationFactory(catalog_role=foreign_role)
    response = partner_client.get(url("list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert str(requested.pk) in body and str(foreign.pk) not in body
    assert "Company A" in body


def test_list_refuses_staff_and_other_methods(
    login: Callable[..., Client], partner_staff: User, owner_client: Client
) -> None:
    assert login(partner_staff).get(url("list")).status_code == 403
    assert owner_client.post(url("list")).status_code == 405
    anonymous = Client().get(url("list"))
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]


def test_detail_for_both_sides_and_404_for_everyone_else(
    owner_client: Client,
    partner_client: Client,
    foreign_client: Client,
    login: Callable[..., Client],
    partner_admin_d: User,
    partner_staff: User,
    auditor: User,
    requested: Delegation,
) -> None:
    assert owner_client.get(url("detail", requested.pk)).status_code == 200
    page = partner_client.get(url("detail", requested.pk))
    assert page.status_code == 200
    assert b"approve-form" not in page.content  # the partner cannot decide
    assert login(auditor).get(url("detail", requested.pk)).status_code == 200
    assert foreign_client.get(url("detail", requested.pk)).status_code == 404
    assert login(partner_admin_d).get(url("detail", requested.pk)).status_code == 404
    missing = foreign_client.get(url("detail", "00000000-0000-0000-0000-000000000000"))
    assert missing.status_code == 404
    assert login(partner_staff).get(url("detail", requested.pk)).status_code == 403
    assert owner_client.post(url("detail", requested.pk)).status_code == 405
    assert owner_client.get(f"/delegations/{'9' * 30}/").status_code == 404


def test_status_fragment_carries_the_live_state(
    owner_client: Client, foreign_client: Client, requested: Delegation
) -> None:
    response = owner_client.get(url("status", requested.pk))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert 'data-status="requested"' in body and 'data-final="false"' in body
    assert "<html" not in body
    assert foreign_client.get(url("status", requested.pk)).status_code == 404
    assert owner_client.post(url("status", requested.pk)).status_code == 405


def test_detail_shows_a_failure_with_the_cloud_error_and_a_retry_button(
    owner_client: Client, partner_client: Client, requested: Delegation, owner_admin: User
) -> None:
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    delegation_mark_failed(
        delegation=requested,
        error_code="EntityNotExist.Role",
        error_message="The role does not exist.",
        request_id="REQ-42",
    )
    body = owner_client.get(url("status", requested.pk)).content.decode()
    assert "EntityNotExist.Role" in body and "REQ-42" in body and 'data-testid="retry"' in body
    assert (
        'data-testid="retry"'
        not in partner_client.get(url("status", requested.pk)).content.decode()
    )


# --- approve -----------------------------------------------------------------------------------


def test_approve_success(owner_client: Client, requested: Delegation, owner_admin: User) -> None:
    response = owner_client.post(url("approve", requested.pk), {"version": 1, "note": "ok"})
    assert response.status_code == 302 and response["Location"] == url("detail", requested.pk)
    approved = Delegation.objects.get(pk=requested.pk)
    assert approved.status == S.APPROVED and approved.decided_by == owner_admin
    assert approved.approved_with_mfa is True
    assert OutboxMessage.objects.count() == 1


def test_double_click_approve_is_one_decision(owner_client: Client, requested: Delegation) -> None:
    first = owner_client.post(url("approve", requested.pk), {"version": 1}, follow=True)
    second = owner_client.post(url("approve", requested.pk), {"version": 1}, follow=True)
    assert "Approved." in first.content.decode()
    assert "already approved" in second.content.decode()
    assert OutboxMessage.objects.count() == 1
    assert AuditEvent.objects.filter(action="delegation.approved").count() == 1


def test_second_admin_deciding_sees_a_conflict(
    owner_client: Client, owner_client_2: Client, requested: Delegation
) -> None:
    owner_client.post(url("approve", requested.pk), {"version": 1})
    response = owner_client_2.post(
        url("reject", requested.pk), {"version": 1, "reason": "No"}, follow=True
    )
    assert "already decided" in response.content.decode()
    assert Delegation.objects.get(pk=requested.pk).status == S.APPROVED
    assert AuditEvent.objects.filter(action="delegation.rejected").count() == 0


def test_approve_wrong_method_foreign_id_and_missing_role(
    owner_client: Client,
    foreign_client: Client,
    login: Callable[..., Client],
    auditor: User,
    partner_admin: User,
    requested: Delegation,
) -> None:
    assert owner_client.get(url("approve", requested.pk)).status_code == 405
    assert foreign_client.post(url("approve", requested.pk), {"version": 1}).status_code == 404
    assert login(auditor).post(url("approve", requested.pk), {"version": 1}).status_code == 403
    partner = with_mfa(login(partner_admin), partner_admin)
    assert partner.post(url("approve", requested.pk), {"version": 1}).status_code == 403
    nothing_written(requested, status=S.REQUESTED, events=1)
    assert OutboxMessage.objects.count() == 0


def test_approve_refuses_a_missing_or_forged_version(
    owner_client: Client, requested: Delegation
) -> None:
    for data in ({}, {"version": "abc"}, {"version": "-1"}, {"version": "1e30"}):
        assert owner_client.post(url("approve", requested.pk), data).status_code == 400
    nothing_written(requested, status=S.REQUESTED, events=1)
    assert OutboxMessage.objects.count() == 0


def test_approve_on_a_stale_page_changes_nothing(
    owner_client: Client, requested: Delegation
) -> None:
    response = owner_client.post(url("approve", requested.pk), {"version": 5}, follow=True)
    assert "changed while you were looking" in response.content.decode()
    nothing_written(requested, status=S.REQUESTED, events=1)


def test_forged_hidden_fields_are_ignored(
    owner_client: Client,
    requested: Delegation,
    owner_admin: User,
    partner_admin: User,
    company_c: Organisation,
) -> None:
    owner_client.post(
        url("approve", requested.pk),
        {
            "version": 1,
            "status": "active",
            "decided_by": str(partner_admin.pk),
            "owner": str(company_c.pk),
            "approved_with_mfa": "false",
            "partner_account_uid": "99999999",
        },
    )
    approved = Delegation.objects.get(pk=requested.pk)
    assert approved.status == S.APPROVED
    assert approved.decided_by == owner_admin
    assert approved.owner.slug == "company-a"
    assert approved.partner_account_uid == "12345678"


def test_approve_asks_for_mfa_first_and_writes_nothing(
    login: Callable[..., Client], owner_admin: User, requested: Delegation, settings
) -> None:
    settings.PORTAL_REQUIRE_MFA = True
    client = login(owner_admin)  # password re-entry only
    response = client.post(url("approve", requested.pk), {"version": 1})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))
    nothing_written(requested, status=S.REQUESTED, events=1)


def test_approve_without_a_recent_sign_in_asks_to_reauthenticate(
    login: Callable[..., Client], owner_admin: User, requested: Delegation, settings
) -> None:
    settings.PORTAL_REQUIRE_MFA = False
    client = login(owner_admin, reauthenticated=False)
    response = client.post(url("approve", requested.pk), {"version": 1})
    assert response.status_code == 302
    assert "reauthenticate" in response["Location"]
    nothing_written(requested, status=S.REQUESTED, events=1)
    # After a password re-entry it works, recorded as without MFA.
    fresh = login(owner_admin)
    assert fresh.post(url("approve", requested.pk), {"version": 1}).status_code == 302
    assert Delegation.objects.get(pk=requested.pk).approved_with_mfa is False


def test_self_approval_is_refused_with_a_message(
    login: Callable[..., Client],
    owner_admin: User,
    company_b: Organisation,
    make_request: Callable[..., Delegation],
) -> None:
    Membership.objects.create(user=owner_admin, organisation=company_b, role="admin")
    delegation = make_request(requested_by=owner_admin)
    client = with_mfa(login(owner_admin), owner_admin)
    response = client.post(url("approve", delegation.pk), {"version": 1}, follow=True)
    assert "made yourself" in response.content.decode()
    assert Delegation.objects.get(pk=delegation.pk).status == S.REQUESTED
    assert OutboxMessage.objects.count() == 0


def test_csrf_is_enforced(owner_admin: User, requested: Delegation) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner_admin)
    assert client.post(url("approve", requested.pk), {"version": 1}).status_code == 403
    nothing_written(requested, status=S.REQUESTED, events=1)


# --- reject, revoke, retry ---------------------------------------------------------------------


def test_reject_success_and_bad_input(owner_client: Client, requested: Delegation) -> None:
    bad = owner_client.post(url("reject", requested.pk), {"version": 1, "reason": "  "})
    assert bad.status_code == 400
    assert "This field is required" in bad.content.decode()
    nothing_written(requested, status=S.REQUESTED, events=1)
    assert owner_client.get(url("reject", requested.pk)).status_code == 405
    ok = owner_client.post(url("reject", requested.pk), {"version": 1, "reason": "Not in contract"})
    assert ok.status_code == 302
    assert Delegation.objects.get(pk=requested.pk).status == S.REJECTED
    assert OutboxMessage.objects.count() == 0


def test_reject_foreign_and_missing_role(
    foreign_client: Client, login: Callable[..., Client], auditor: User, requested: Delegation
) -> None:
    data = {"version": 1, "reason": "x"}
    assert foreign_client.post(url("reject", requested.pk), data).status_code == 404
    assert login(auditor).post(url("reject", requested.pk), data).status_code == 403
    nothing_written(requested, status=S.REQUESTED, events=1)


@pytest.fixture
def active(requested: Delegation, owner_admin: User) -> Delegation:
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    delegation_mark_applying(delegation=requested)
    return delegation_mark_active(delegation=requested)


def test_revoke_success_and_bad_input(owner_client: Client, active: Delegation) -> None:
    requests_before = outbox_rows(active)
    bad = owner_client.post(url("revoke", active.pk), {"reason": ""})
    assert bad.status_code == 400
    nothing_written(active, status=S.ACTIVE, events=4)
    assert outbox_rows(active) == requests_before
    assert owner_client.get(url("revoke", active.pk)).status_code == 405
    ok = owner_client.post(url("revoke", active.pk), {"reason": "Contract ended"})
    assert ok.status_code == 302
    assert Delegation.objects.get(pk=active.pk).status == S.REVOKING
    assert outbox_rows(active) == requests_before + 1


def test_revoke_foreign_and_missing_role(
    foreign_client: Client,
    login: Callable[..., Client],
    auditor: User,
    partner_admin: User,
    active: Delegation,
) -> None:
    data = {"reason": "x"}
    assert foreign_client.post(url("revoke", active.pk), data).status_code == 404
    assert login(auditor).post(url("revoke", active.pk), data).status_code == 403
    assert (
        with_mfa(login(partner_admin), partner_admin)
        .post(url("revoke", active.pk), data)
        .status_code
        == 403
    )
    nothing_written(active, status=S.ACTIVE, events=4)


def test_retry_success_and_refusals(
    owner_client: Client, foreign_client: Client, active: Delegation, owner_admin: User
) -> None:
    delegation_revoke(delegation=active, revoked_by=owner_admin, reason="End")
    failed = delegation_mark_failed(delegation=active, error_code="E", error_message="m")
    assert owner_client.get(url("retry", active.pk)).status_code == 405
    assert (
        foreign_client.post(url("retry", active.pk), {"version": failed.version}).status_code == 404
    )
    assert owner_client.post(url("retry", active.pk), {}).status_code == 400
    response = owner_client.post(url("retry", active.pk), {"version": failed.version})
    assert response.status_code == 302
    assert Delegation.objects.get(pk=active.pk).status == S.REVOKING
    again = owner_client.post(url("retry", active.pk), {"version": failed.version}, follow=True)
    assert "Only a failed delegation can be retried" in again.content.decode()


# --- request -----------------------------------------------------------------------------------


def enter_code(client: Client, code: str) -> object:
    """Post a partner link code, as the code page does; the session keeps the link's id."""
    return client.post(url("request"), {"partner_link_code": code})


def test_request_starts_from_a_code(
    partner_client: Client, link_a: tuple[PartnerLink, str], ecs_admin: CatalogRole, allow_b: None
) -> None:
    blank = partner_client.get(url("request"))
    assert blank.status_code == 200 and b"Partner link code" in blank.content
    wrong = enter_code(partner_client, "NOPE-NOPE")
    assert wrong.status_code == 400 and "not valid for your organisation" in wrong.content.decode()
    assert b"ecs-admin" not in wrong.content
    # A code in the query string is not read: codes are posted, never put in a URL.
    assert b"ecs-admin" not in partner_client.get(url("request"), {"code": link_a[1]}).content
    accepted = enter_code(partner_client, link_a[1].lower().replace("-", " "))
    assert accepted.status_code == 302 and accepted["Location"] == url("request")
    page = partner_client.get(url("request"))
    assert page.status_code == 200
    assert "Request access from Company A" in page.content.decode() and b"ecs-admin" in page.content


def test_request_success(
    partner_client: Client, link_a: tuple[PartnerLink, str], ecs_admin: CatalogRole, allow_b: None
) -> None:
    enter_code(partner_client, link_a[1])
    ends = (timezone.now() + dt.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    response = partner_client.post(
        url("request"),
        {
            "catalog_role": str(ecs_admin.pk),
            "reason": "Patching",
            "duration": "until",
            "ends_at": ends,
        },
    )
    delegation = Delegation.objects.get()
    assert response.status_code == 302 and response["Location"] == url("detail", delegation.pk)
    assert delegation.status == S.REQUESTED and delegation.ends_at is not None
    assert delegation.partner_link == link_a[0]
    assert OutboxMessage.objects.count() == 0


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"reason": ""}, "reason"),
        ({"catalog_role": ""}, "catalog_role"),
        ({"catalog_role": "00000000-0000-0000-0000-000000000000"}, "catalog_role"),
        ({"duration": "until", "ends_at": ""}, "ends_at"),
        ({"duration": "until", "ends_at": "2001-01-01T00:00"}, "ends_at"),
        ({"duration": "until", "ends_at": "not a date"}, "ends_at"),
        ({"duration": "forever"}, "duration"),
        ({"reason": "x" * 2001}, "reason"),
    ],
)
def test_request_bad_input_writes_nothing(
    partner_client: Client,
    link_a: tuple[PartnerLink, str],
    ecs_admin: CatalogRole,
    allow_b: None,
    overrides: dict[str, str],
    field: str,
) -> None:
    enter_code(partner_client, link_a[1])
    data = {"catalog_role": str(ecs_admin.pk), "reason": "r", "duration": "open"}
    data.update(overrides)
    response = partner_client.post(url("request"), data)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert Delegation.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_request_cannot_reach_another_owners_role(
    partner_client: Client,
    link_a: tuple[PartnerLink, str],
    foreign_role: CatalogRole,
    allow_b: None,
) -> None:
    enter_code(partner_client, link_a[1])
    response = partner_client.post(
        url("request"),
        {"catalog_role": str(foreign_role.pk), "reason": "r", "duration": "open"},
    )
    assert response.status_code == 400
    assert Delegation.objects.count() == 0


def test_request_off_the_allow_list_is_refused_at_the_code(
    partner_client: Client, link_a: tuple[PartnerLink, str], ecs_admin: CatalogRole
) -> None:
    refused = enter_code(partner_client, link_a[1])
    assert refused.status_code == 400
    assert "not valid for your organisation" in refused.content.decode()
    assert b"ecs-admin" not in refused.content and b"Company A" not in refused.content
    # Posting the request form without an accepted code shows the code page again.
    response = partner_client.post(
        url("request"), {"catalog_role": str(ecs_admin.pk), "reason": "r", "duration": "open"}
    )
    assert response.status_code == 400 and b"ecs-admin" not in response.content
    assert Delegation.objects.count() == 0


def test_request_missing_role(
    owner_client: Client, login: Callable[..., Client], partner_staff: User
) -> None:
    assert owner_client.get(url("request")).status_code == 403
    assert login(partner_staff).get(url("request")).status_code == 403
    assert owner_client.put(url("request")).status_code == 405


# --- offer -------------------------------------------------------------------------------------


def test_offer_success(
    owner_client: Client, company_b: Organisation, ecs_admin: CatalogRole, allow_b: None
) -> None:
    page = owner_client.get(url("offer"))
    assert page.status_code == 200 and b"Company B" in page.content
    response = owner_client.post(
        url("offer"),
        {
            "partner": str(company_b.pk),
            "catalog_role": str(ecs_admin.pk),
            "reason": "Ops",
            "duration": "open",
        },
    )
    delegation = Delegation.objects.get()
    assert response.status_code == 302 and delegation.status == S.APPROVED
    assert OutboxMessage.objects.count() == 1


def test_offer_bad_input_and_forged_partner(
    owner_client: Client,
    company_b: Organisation,
    company_d: Organisation,
    ecs_admin: CatalogRole,
    foreign_role: CatalogRole,
    allow_b: None,
) -> None:
    for data in (
        {
            "partner": str(company_d.pk),
            "catalog_role": str(ecs_admin.pk),
            "reason": "x",
            "duration": "open",
        },
        {
            "partner": str(company_b.pk),
            "catalog_role": str(foreign_role.pk),
            "reason": "x",
            "duration": "open",
        },
        {
            "partner": str(company_b.pk),
            "catalog_role": str(ecs_admin.pk),
            "reason": "",
            "duration": "open",
        },
        {"partner": "zzz", "catalog_role": str(ecs_admin.pk), "reason": "x", "duration": "open"},
    ):
        assert owner_client.post(url("offer"), data).status_code == 400
    assert Delegation.objects.count() == 0
    assert OutboxMessage.objects.count() == 0


def test_offer_missing_role(
    login: Callable[..., Client], auditor: User, partner_client: Client, owner_client: Client
) -> None:
    assert login(auditor).get(url("offer")).status_code == 403
    assert partner_client.get(url("offer")).status_code == 403
    assert owner_client.delete(url("offer")).status_code == 405


# --- roles and drift ---------------------------------------------------------------------------


@pytest.fixture
def seen_role(active: Delegation) -> ManagedRole:
    role = active.managed_role
    role.last_seen_at = timezone.now()
    role.last_seen_exists = True
    role.last_seen_trust_policy = {
        "Version": "1",
        "Statement": [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"RAM": ["acs:ram::12345678:root", "acs:ram::55555555:root"]},
            }
        ],
    }
    role.last_seen_policies = [{"type": "System", "name": "AliyunECSFullAccess"}]
    role.save()
    return role


def test_roles_page_compares_cloud_and_portal(
    owner_client: Client, seen_role: ManagedRole, login: Callable[..., Client], auditor: User
) -> None:
    response = owner_client.get(url("roles"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "acs:ram::55555555:root" in body and "not managed here" in body
    assert "in place" in body and "In sync" in body
    assert login(auditor).get(url("roles")).status_code == 200
    assert owner_client.post(url("roles")).status_code == 405


def test_roles_page_highlights_drift(owner_client: Client, seen_role: ManagedRole) -> None:
    seen_role.last_seen_trust_policy = {"Version": "1", "Statement": []}
    seen_role.save()
    body = owner_client.get(url("roles")).content.decode()
    assert "missing from the cloud (drift)" in body and "badge-danger" in body


def test_roles_page_is_for_owners_only(
    partner_client: Client, foreign_client: Client, seen_role: ManagedRole
) -> None:
    assert partner_client.get(url("roles")).status_code == 403
    assert "acs:ram::55555555:root" not in foreign_client.get(url("roles")).content.decode()


def test_drift_resolve(
    owner_client: Client,
    foreign_client: Client,
    login: Callable[..., Client],
    auditor: User,
    seen_role: ManagedRole,
) -> None:
    finding = drift_record(
        managed_role=seen_role, kind="unmanaged_principal_added", subject="acs:ram::55555555:root"
    )
    target = url("drift_resolve", finding.pk)
    assert owner_client.get(target).status_code == 405
    assert foreign_client.post(target, {"resolution": "accept"}).status_code == 404
    assert login(auditor).post(target, {"resolution": "accept"}).status_code == 403
    assert owner_client.post(target, {"resolution": "delete-everything"}).status_code == 400
    assert DriftFinding.objects.get(pk=finding.pk).resolved_at is None
    response = owner_client.post(target, {"resolution": "accept"})
    assert response.status_code == 302
    finding.refresh_from_db()
    assert finding.resolution == "accept" and finding.resolved_at is not None


# --- partner links -----------------------------------------------------------------------------


def test_partner_link_code_is_shown_once(owner_client: Client, company_a: Organisation) -> None:
    response = owner_client.post(url("partner_links"), {"label": "For B", "expires_in": "30"})
    assert response.status_code == 200
    code = response.context["new_code"]
    assert code and code in response.content.decode()
    link = PartnerLink.objects.get(organisation=company_a)
    assert code.replace("-", "") not in link.code_hash
    later = owner_client.get(url("partner_links")).content.decode()
    assert code not in later and link.code_hint in later


def test_partner_link_bad_input_and_revoke(
    owner_client: Client,
    foreign_client: Client,
    link_a: tuple[PartnerLink, str],
    login: Callable[..., Client],
    auditor: User,
) -> None:
    assert (
        owner_client.post(url("partner_links"), {"label": "x", "expires_in": "9999"}).status_code
        == 400
    )
    assert PartnerLink.objects.count() == 1
    link = link_a[0]
    assert foreign_client.post(url("partner_link_revoke", link.pk)).status_code == 404
    assert login(auditor).post(url("partner_link_revoke", link.pk)).status_code == 403
    assert owner_client.get(url("partner_link_revoke", link.pk)).status_code == 405
    assert owner_client.post(url("partner_link_revoke", link.pk)).status_code == 302
    link.refresh_from_db()
    assert link.revoked_at is not None


def test_home_links_to_delegations(owner_client: Client, partner_client: Client) -> None:
    assert url("list") in owner_client.get("/").content.decode()
    assert url("request") in partner_client.get("/").content.decode()


def test_catalog_role_factory_is_scoped(company_c: Organisation) -> None:
    # Sanity of the fixtures the isolation tests rely on.
    role = CatalogRoleFactory(cloud_account__organisation=company_c)
    assert role.organisation == company_c
