"""Partner-side pages: each view's success, wrong method, another tenant's object (404) and
missing role (403); bad input gives a clear message and writes nothing (AZ-03, AZ-04, BI-05,
BI-06, AZ-11). Cloud calls go to the real cloudsim of `partner_world`."""

from __future__ import annotations

import datetime as dt
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from audit.models import AuditEvent
from delegations.models import (
    CredentialIssuance,
    Delegation,
    RoleCutOff,
    StaffAssignment,
    StaffRamUserLink,
)
from tests.factories import OrganisationFactory
from tests.fixtures.partner import PartnerWorld
from tests.personas import make_member
from tests.personas import mark_reauthenticated_with_mfa as with_mfa


@pytest.fixture
def world(partner_world: PartnerWorld) -> PartnerWorld:
    return partner_world


@pytest.fixture
def active(world: PartnerWorld) -> Delegation:
    return world.active_delegation()


@pytest.fixture
def foreign_partner(world: PartnerWorld):
    """Company D: another partner with its own admin and staff, and a delegation of its own
    from company A on another role (never touching the cloud)."""
    from tests.delegations.factories import CatalogRoleFactory, DelegationFactory

    company_d = OrganisationFactory(
        name="Delta", slug="delta", kind="partner", account_uid="9988776655443322"
    )
    admin_d = make_member(company_d, Membership.Role.ADMIN, email="admin@delta.example")
    staff_d = make_member(company_d, Membership.Role.STAFF, email="staff@delta.example")
    role = CatalogRoleFactory(cloud_account=world.owner_account, role_name="delta-ops")
    delegation_d = DelegationFactory(
        owner=world.owner,
        partner=company_d,
        catalog_role=role,
        partner_account_uid=company_d.account_uid,
        status=Delegation.Status.ACTIVE,
        requested_by=admin_d,
    )
    return company_d, admin_d, staff_d, delegation_d


def _calls_to_sts(world: PartnerWorld, since: int) -> list[dict]:
    return [c for c in world.sim.calls(since) if c.get("action") == "AssumeRole"]


# --- partner admins: staff page and RAM user links ------------------------------------------


def test_staff_page_lists_staff_and_ram_users(world: PartnerWorld, login) -> None:
    response = login(world.partner_admin).get(reverse("delegations:staff"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "alice@company-b.example" in html and "bob@company-b.example" in html
    assert '<option value="Alice">' in html and '<option value="portal-broker">' in html
    assert "portal-broker" in html  # the broker identity is named


def test_staff_page_says_which_account_each_access_is_in(
    world: PartnerWorld, active: Delegation, login
) -> None:
    """An owner's role name can stand in several of its accounts (a fleet's): the staff page
    names the account of each access and of each person's assignment."""
    client = login(world.partner_admin)
    client.post(reverse("delegations:staff_assign", args=[active.pk]), {"user": world.alice.pk})
    html = client.get(reverse("delegations:staff")).content.decode()
    uid = active.managed_role.cloud_account.account_uid
    access = html[html.index(reverse("delegations:delegation_staff", args=[active.pk])) :]
    assert uid in access[: access.index("</li>")]
    alice = html[html.index('data-staff="alice@company-b.example"') :]
    assert f'<span class="mono">{uid}</span>' in alice[: alice.index("</tr>")]


def test_staff_page_needs_a_partner_admin(world: PartnerWorld, login) -> None:
    assert login(world.alice).get(reverse("delegations:staff")).status_code == 403
    assert login(world.owner_admin).get(reverse("delegations:staff")).status_code == 403
    response = login(world.partner_admin).post(reverse("delegations:staff"))
    assert response.status_code == 405


def test_linking_checks_the_ram_user_exists(world: PartnerWorld, login) -> None:
    client = login(world.partner_admin)
    response = client.post(
        reverse("delegations:staff_link"), {"user": world.alice.pk, "ram_user_name": "Mallory"}
    )
    assert response.status_code == 400
    assert "There is no RAM user called Mallory" in response.content.decode()
    assert not StaffRamUserLink.objects.exists()

    response = client.post(
        reverse("delegations:staff_link"), {"user": world.alice.pk, "ram_user_name": "alice"}
    )
    assert response.status_code == 302
    link = StaffRamUserLink.objects.get()
    assert (link.user, link.ram_user_name) == (world.alice, "Alice")
    event = AuditEvent.objects.get(action="staff.ram_user_linked")
    assert event.after == {"ram_user_name": "Alice"}

    # One RAM user, one person.
    response = client.post(
        reverse("delegations:staff_link"), {"user": world.bob.pk, "ram_user_name": "Alice"}
    )
    assert response.status_code == 400
    assert "already linked" in response.content.decode()


@pytest.mark.parametrize("who", ["other_partner_staff", "owner_auditor", "partner_admin"])
def test_linking_someone_outside_the_staff_is_refused(
    world: PartnerWorld, login, foreign_partner, who: str
) -> None:
    _company_d, _admin_d, staff_d, _ = foreign_partner
    people = {
        "other_partner_staff": staff_d,
        "owner_auditor": make_member(world.owner, Membership.Role.AUDITOR),
        "partner_admin": world.partner_admin,
    }
    response = login(world.partner_admin).post(
        reverse("delegations:staff_link"), {"user": people[who].pk, "ram_user_name": "Bob"}
    )
    assert response.status_code == 400
    assert not StaffRamUserLink.objects.exists()


def test_unlink_is_tenant_scoped(world: PartnerWorld, login, foreign_partner) -> None:
    link = world.link(world.alice, "Alice")
    _company_d, admin_d, _staff_d, _ = foreign_partner
    url = reverse("delegations:staff_unlink", args=[link.pk])
    assert login(admin_d).post(url).status_code == 404
    assert login(world.alice).post(url).status_code == 403
    assert login(world.partner_admin).get(url).status_code == 405
    assert login(world.partner_admin).post(url).status_code == 302
    assert not StaffRamUserLink.objects.exists()


# --- partner admins: assignments -----------------------------------------------------------


def test_assign_and_unassign(world: PartnerWorld, active: Delegation, login) -> None:
    client = login(world.partner_admin)
    page = client.get(reverse("delegations:delegation_staff", args=[active.pk]))
    assert page.status_code == 200
    response = client.post(
        reverse("delegations:staff_assign", args=[active.pk]),
        {"user": world.alice.pk, "session_policy_kind": "read_only"},
    )
    assert response.status_code == 302
    assignment = StaffAssignment.objects.get()
    assert assignment.session_policy_kind == "read_only"
    assert '"ecs:Describe*"' in assignment.session_policy
    event = AuditEvent.objects.get(action="staff.assigned")
    assert event.metadata["role_arn"] == world.role_arn

    response = client.post(reverse("delegations:staff_unassign", args=[active.pk, assignment.pk]))
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.ended_at is not None and assignment.end_reason == "unassigned"
    assert AuditEvent.objects.filter(action="staff.unassigned").count() == 1


@pytest.mark.parametrize(
    "custom",
    [
        "not json",
        '{"Version": "1", "Statement": []}',
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ecs", "Resource": "*"}]}',
        '{"Version": "2", "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}]}',
        '{"Version": "1", "Version": "1", "Statement": [{"Effect": "Allow", "Action": "ecs:*",'
        ' "Resource": "*"}]}',
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*",'
        ' "Principal": {"RAM": ["*"]}}]}',
        '{"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": ["'
        + '", "'.join(f"acs:ecs:*:*:instance/i-{n:060d}" for n in range(40))
        + '"]}]}',
    ],
)
def test_a_bad_custom_session_policy_is_refused_and_nothing_written(
    world: PartnerWorld, active: Delegation, login, custom: str
) -> None:
    response = login(world.partner_admin).post(
        reverse("delegations:staff_assign", args=[active.pk]),
        {"user": world.alice.pk, "session_policy_kind": "custom", "custom_policy": custom},
    )
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert not StaffAssignment.objects.exists()
    assert not AuditEvent.objects.filter(action="staff.assigned").exists()


def test_bad_instance_ids_are_refused(world: PartnerWorld, active: Delegation, login) -> None:
    response = login(world.partner_admin).post(
        reverse("delegations:staff_assign", args=[active.pk]),
        {"user": world.alice.pk, "session_policy_kind": "ecs_instances", "ecs_instance_ids": "x"},
    )
    assert response.status_code == 400
    assert "i-bp1abc" in response.content.decode()
    assert not StaffAssignment.objects.exists()


def test_assigning_a_forged_person_is_a_400_and_writes_nothing(
    world: PartnerWorld, active: Delegation, login, foreign_partner
) -> None:
    _company_d, admin_d, staff_d, _ = foreign_partner
    client = login(world.partner_admin)
    for person in (staff_d, admin_d, world.owner_admin, world.partner_admin):
        response = client.post(
            reverse("delegations:staff_assign", args=[active.pk]), {"user": person.pk}
        )
        assert response.status_code == 400
    response = client.post(
        reverse("delegations:staff_assign", args=[active.pk]), {"user": "not-a-number"}
    )
    assert response.status_code == 400
    assert not StaffAssignment.objects.exists()


def test_mass_assignment_fields_are_ignored(world: PartnerWorld, active: Delegation, login) -> None:
    """A partner admin cannot change the delegation's role, policies or duration."""
    response = login(world.partner_admin).post(
        reverse("delegations:staff_assign", args=[active.pk]),
        {
            "user": world.alice.pk,
            "catalog_role": "someone-else",
            "policies": "AdministratorAccess",
            "ends_at": "2099-01-01",
            "max_session_duration": "43200",
            "status": "active",
        },
    )
    assert response.status_code == 302
    active.refresh_from_db()
    assert active.ends_at is None
    assert active.catalog_role.policies == [{"type": "System", "name": "AliyunECSFullAccess"}]
    assert active.catalog_role.max_session_duration == 3600


def test_staff_cannot_assign_themselves_and_foreign_delegations_are_404(
    world: PartnerWorld, active: Delegation, login, foreign_partner
) -> None:
    _company_d, admin_d, _staff_d, delegation_d = foreign_partner
    url = reverse("delegations:staff_assign", args=[active.pk])
    assert login(world.alice).post(url, {"user": world.alice.pk}).status_code == 403
    assert login(admin_d).post(url, {"user": world.alice.pk}).status_code == 404
    foreign = reverse("delegations:delegation_staff", args=[delegation_d.pk])
    assert login(world.partner_admin).get(foreign).status_code == 404
    assert login(world.partner_admin).get(url).status_code == 405
    assert not StaffAssignment.objects.exists()


def test_assigning_needs_an_active_delegation(world: PartnerWorld, login) -> None:
    delegation = world.offer()  # approved, not yet applied
    response = login(world.partner_admin).post(
        reverse("delegations:staff_assign", args=[delegation.pk]), {"user": world.alice.pk}
    )
    assert response.status_code == 400
    assert "assigned only while it is active" in response.content.decode()
    assert not StaffAssignment.objects.exists()


# --- staff: My access and credentials ------------------------------------------------------


def test_my_access_shows_switch_role_and_steps(
    world: PartnerWorld, active: Delegation, login
) -> None:
    world.link(world.alice, "Alice")
    world.assign(active, world.alice)
    world.drain()
    response = login(world.alice).get(reverse("delegations:my_access"))
    assert response.status_code == 200
    html = response.content.decode()
    expected = (
        f"{world.sim.url}/switchRole.htm?parentAlias=company-a&amp;roleName={world.role_name}"
    )
    assert expected in html
    assert "Alice@company-b.onaliyun.com" in html
    assert "alice@company-b" in html  # the session name the owner's log will show
    assert "AliyunECSFullAccess" in html
    assert "still being applied" not in html  # the worker has put the grant in place

    assert login(world.partner_admin).get(reverse("delegations:my_access")).status_code == 403
    assert login(world.bob).get(reverse("delegations:my_access")).status_code == 200
    assert (
        world.role_name
        not in login(world.bob).get(reverse("delegations:my_access")).content.decode()
    )
    assert login(world.alice).post(reverse("delegations:my_access")).status_code == 405


def test_my_access_offers_no_switch_role_for_a_narrowed_assignment(
    world: PartnerWorld, active: Delegation, login
) -> None:
    world.link(world.alice, "Alice")
    world.assign(active, world.alice, session_policy_kind="read_only")
    world.drain()
    response = login(world.alice).get(reverse("delegations:my_access"))
    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert "switchRole.htm" not in html and 'data-testid="switch-role"' not in html
    assert 'data-testid="narrowed-no-switch"' in html
    assert "only through credentials from the portal" in html
    assert 'data-testid="get-credentials"' in html  # the way that carries the session policy


@pytest.mark.parametrize(
    "duration", ["0", "899", "3601", "43201", "3600.5", "1e30", "abc", "-5", "", " 900x"]
)
def test_out_of_range_durations_are_form_errors_and_reach_no_cloud(
    world: PartnerWorld, active: Delegation, login, duration: str
) -> None:
    world.assign(active, world.alice)
    world.drain()
    since = world.sim.last_call_seq()
    response = login(world.alice).post(
        reverse("delegations:credentials_get", args=[active.pk]), {"duration_seconds": duration}
    )
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert _calls_to_sts(world, since) == []
    assert not CredentialIssuance.objects.exists()


def test_get_credentials_shows_them_once_with_no_store(
    world: PartnerWorld, active: Delegation, login
) -> None:
    world.assign(active, world.alice)
    world.drain()
    client = login(world.alice)
    form = client.get(reverse("delegations:credentials_get", args=[active.pk]))
    assert form.status_code == 200 and "no-store" in form["Cache-Control"]
    since = world.sim.last_call_seq()
    response = client.post(
        reverse("delegations:credentials_get", args=[active.pk]),
        {"duration_seconds": "1800", "session_name": "evil\nname"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "sessionid" not in response.cookies or not response.cookies["sessionid"].value.count(
        "STS"
    )
    issuance = CredentialIssuance.objects.get()
    assert issuance.session_name == "alice@company-b"  # never the posted one (BI-04)
    assert issuance.duration_seconds == 1800
    html = unescape(response.content.decode())
    for fragment in (
        "export ALIBABA_CLOUD_ACCESS_KEY_ID=",
        "$Env:ALIBABA_CLOUD_SECURITY_TOKEN",
        "aliyun configure set --profile company-a-",
        "--mode StsToken",
        'type="sts"',
        '"mode": "StsToken"',
        issuance.access_key_id,
    ):
        assert fragment in html
    (call,) = _calls_to_sts(world, since)
    assert call["parameters"]["RoleSessionName"] == "alice@company-b"
    assert call["parameters"]["DurationSeconds"] == "1800"
    events = AuditEvent.objects.filter(action__startswith="credentials.").order_by("sequence")
    assert [e.action for e in events] == ["credentials.issue_started", "credentials.issued"]
    issued = events[1].metadata
    assert issued["access_key_id"] == issuance.access_key_id
    assert issued["session_name"] == "alice@company-b"
    assert issued["expiration"]


def test_the_page_showing_credentials_leaves_out_the_inbox_count(
    world: PartnerWorld, active: Delegation, login
) -> None:
    # Alice's access ends within a day: every other page counts it as waiting for her.
    Delegation.objects.filter(pk=active.pk).update(ends_at=timezone.now() + dt.timedelta(hours=2))
    world.assign(active, world.alice)
    world.drain()
    client = login(world.alice)
    url = reverse("delegations:credentials_get", args=[active.pk])
    assert 'data-testid="inbox-count"' in client.get(url).content.decode()

    page = client.post(url, {"duration_seconds": "900"}).content.decode()

    assert 'data-testid="shown-once"' in page
    assert 'data-testid="inbox-count"' not in page


def test_credentials_for_another_partners_delegation_are_404_with_no_cloud_call(
    world: PartnerWorld, active: Delegation, login, foreign_partner
) -> None:
    _company_d, _admin_d, staff_d, delegation_d = foreign_partner
    world.assign(active, world.alice)
    since = world.sim.last_call_seq()
    for client, delegation in (
        (login(staff_d), active),  # B's delegation, D's staff
        (login(world.alice), delegation_d),  # D's delegation, B's staff
        (login(world.bob), active),  # B's delegation, B's staff not assigned
    ):
        url = reverse("delegations:credentials_get", args=[delegation.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, {"duration_seconds": "900"}).status_code == 404
    assert _calls_to_sts(world, since) == []
    url = reverse("delegations:credentials_get", args=[active.pk])
    assert login(world.partner_admin).post(url, {"duration_seconds": "900"}).status_code == 403
    assert login(world.alice).put(url).status_code == 405


def test_credentials_need_a_recent_sign_in(world: PartnerWorld, active: Delegation, login) -> None:
    world.assign(active, world.alice)
    client = login(world.alice, reauthenticated=False)
    since = world.sim.last_call_seq()
    response = client.post(
        reverse("delegations:credentials_get", args=[active.pk]), {"duration_seconds": "900"}
    )
    assert response.status_code == 302
    assert "reauthenticate" in response["Location"]
    assert _calls_to_sts(world, since) == []
    assert not CredentialIssuance.objects.exists()


def test_revoked_delegation_refuses_credentials_and_audits_it(
    world: PartnerWorld, active: Delegation, login
) -> None:
    world.assign(active, world.alice)
    world.revoke(Delegation.objects.get(pk=active.pk))
    since = world.sim.last_call_seq()
    response = login(world.alice).post(
        reverse("delegations:credentials_get", args=[active.pk]), {"duration_seconds": "900"}
    )
    assert response.status_code == 403
    assert "revoking" in response.content.decode()
    assert _calls_to_sts(world, since) == []
    refused = AuditEvent.objects.get(action="credentials.refused")
    assert refused.outcome == "denied"
    assert refused.metadata["refused_code"] == "DelegationNotActive"


def test_a_removed_staff_member_loses_my_access_at_once(
    world: PartnerWorld, active: Delegation, login
) -> None:
    from accounts.services import membership_remove

    world.link(world.alice, "Alice")
    assignment = world.assign(active, world.alice)
    client = login(world.alice)
    assert client.get(reverse("delegations:my_access")).status_code == 200
    membership_remove(
        membership=Membership.objects.get(user=world.alice, organisation=world.partner),
        removed_by=world.partner_admin,
    )
    response = client.get(reverse("delegations:my_access"))
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.end_reason == "member_removed"
    assert not StaffRamUserLink.objects.exists()
    world.drain()
    assert not world.user_may_assume("Alice")


# --- owners: issuances, residual window, cut-off -------------------------------------------


def test_owner_sees_issuances_and_the_residual_window(
    world: PartnerWorld, active: Delegation, login
) -> None:
    from delegations.partner.credentials import credentials_issue

    assignment = world.assign(active, world.alice)
    world.drain()
    issued = credentials_issue(assignment=assignment, user=world.alice, duration_seconds=1200)
    response = login(world.owner_admin).get(reverse("delegations:issuances", args=[active.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "alice@company-b" in html and issued.credentials.access_key_id in html
    assert issued.credentials.access_key_secret not in html
    assert "still valid until" in html
    assert 'data-testid="cut-off-form"' in html

    auditor = make_member(world.owner, Membership.Role.AUDITOR)
    response = login(auditor).get(reverse("delegations:issuances", args=[active.pk]))
    assert response.status_code == 200
    assert 'data-testid="cut-off-form"' not in response.content.decode()
    assert (
        login(world.alice).get(reverse("delegations:issuances", args=[active.pk])).status_code
        == 403
    )
    foreign_owner = OrganisationFactory(kind="owner", account_uid="77")
    foreign_admin = make_member(foreign_owner, Membership.Role.ADMIN)
    assert (
        login(foreign_admin).get(reverse("delegations:issuances", args=[active.pk])).status_code
        == 404
    )


def test_the_issuances_page_names_the_role_it_would_cut_off(
    world: PartnerWorld, active: Delegation, login
) -> None:
    """One role name can stand in several of the owner's accounts (a fleet's): the page whose
    emergency cut-off detaches a role's policies says which account's role that is."""
    html = (
        login(world.owner_admin)
        .get(reverse("delegations:issuances", args=[active.pk]))
        .content.decode()
    )
    head = html[html.index("<h1>") : html.index('data-testid="residual-window"')]
    assert active.managed_role.role_arn in head


def test_cut_off_view_needs_mfa_and_an_owner_admin(
    world: PartnerWorld, active: Delegation, login, settings
) -> None:
    settings.PORTAL_REQUIRE_MFA = True
    url = reverse("delegations:cut_off", args=[active.pk])
    data = {"reason": "Leaked credentials", "confirm": "on"}
    assert login(world.partner_admin).post(url, data).status_code == 403
    assert login(world.owner_admin).get(url).status_code == 405
    response = login(world.owner_admin).post(url, data)
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    assert not RoleCutOff.objects.exists()
    missing_confirm = with_mfa(login(world.owner_admin), world.owner_admin).post(
        url, {"reason": "x"}
    )
    assert missing_confirm.status_code == 400
    assert not RoleCutOff.objects.exists()
    response = with_mfa(login(world.owner_admin), world.owner_admin).post(url, data)
    assert response.status_code == 302
    cut = RoleCutOff.objects.get()
    assert cut.reason == "Leaked credentials"
    event = AuditEvent.objects.get(action="delegation.cut_off")
    assert event.metadata["with_mfa"] is True
    assert Delegation.objects.get(pk=active.pk).status == Delegation.Status.REVOKING
    page = login(world.owner_admin).get(reverse("delegations:issuances", args=[active.pk]))
    assert "are being detached now" in page.content.decode()
