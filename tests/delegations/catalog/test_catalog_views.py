"""Catalogue and allow-list pages with a real cloudsim account behind them: success, wrong
method, another owner's ids (404), missing role or wrong kind of organisation (403), forged
policies (form error, nothing written, no cloud call), the high-privilege opt-in with its
confirmation of identity."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.catalog.allow_list import partner_allowance_add
from delegations.catalog.services import catalog_role_create
from delegations.connection.services import cloud_account_connect
from delegations.models import CatalogRole, CloudAccount, PartnerAllowance
from tests.delegations.cloud_fixtures import SimAccount
from tests.delegations.connection.test_connect_views import confirmed
from tests.delegations.factories import CatalogRoleFactory, PartnerAllowanceFactory
from tests.personas import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mfa_required(settings) -> None:
    settings.PORTAL_REQUIRE_MFA = True


def url(name: str, *args: object) -> str:
    return reverse(f"delegations:{name}", args=args)


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
def owner_client(
    sim_owner: SimAccount, owner_account: CloudAccount, login: Callable[..., Client]
) -> Client:
    return confirmed(login(sim_owner.admin), sim_owner.admin)


def role_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "role_name": "ecs-admin",
        "description": "Operate the ECS fleet",
        "policies": ["System:AliyunECSFullAccess"],
        "max_session_duration": "3600",
    }
    data.update(overrides)
    return data


def no_role_written() -> None:
    assert not CatalogRole.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="catalog_role.").exists()


# --- the catalogue page -----------------------------------------------------------------------


def test_catalogue_page_for_admins_and_auditors(
    sim_owner: SimAccount,
    owner_account: CloudAccount,
    owner_client: Client,
    login: Callable[..., Client],
    company_c: Organisation,
) -> None:
    role = catalog_role_create(
        owner=sim_owner.organisation,
        created_by=sim_owner.admin,
        role_name="ecs-admin",
        description="",
        policy_keys=[("System", "AliyunECSFullAccess")],
        max_session_duration=3600,
    )
    partner_allowance_add(
        owner=sim_owner.organisation,
        added_by=sim_owner.admin,
        partner_account_uid="12345678",
        label="Company B",
    )
    PartnerAllowanceFactory(organisation=company_c, partner_account_uid="9988776655443322")
    body = owner_client.get(url("catalog")).content.decode()
    assert "ecs-admin" in body and "AliyunECSFullAccess" in body and "12345678" in body
    assert url("catalog_role_deactivate", role.pk) in body
    assert "9988776655443322" not in body

    auditor = make_member(sim_owner.organisation, Membership.Role.AUDITOR)
    as_auditor = login(auditor).get(url("catalog"))
    assert as_auditor.status_code == 200
    assert url("catalog_role_deactivate", role.pk) not in as_auditor.content.decode()


def test_a_partner_is_told_why_in_their_own_language(
    login: Callable[..., Client], partner_admin: User
) -> None:
    # The refusal is named once per module, at import: it must still be read in the
    # language of the person it is shown to.
    english = login(partner_admin).get(url("catalog"))
    assert english.status_code == 403
    assert "Only resource owner organisations keep a catalogue." in english.content.decode()
    partner_admin.language = "zh-hans"
    partner_admin.save(update_fields=["language"])
    chinese = login(partner_admin).get(url("catalog"))
    assert chinese.status_code == 403
    assert "只有资源所有者组织才有角色目录。" in chinese.content.decode()


def test_catalogue_refuses_partners_other_methods_and_anonymous(
    owner_client: Client, login: Callable[..., Client], partner_admin: User
) -> None:
    assert login(partner_admin).get(url("catalog")).status_code == 403
    assert owner_client.post(url("catalog")).status_code == 405
    assert Client().get(url("catalog")).status_code == 302


# --- adding a role ----------------------------------------------------------------------------


def test_add_a_role_from_the_live_list(sim_owner: SimAccount, owner_client: Client) -> None:
    form = owner_client.get(url("catalog_role_create"))
    assert form.status_code == 200
    body = form.content.decode()
    assert 'value="System:AliyunECSFullAccess"' in body
    assert 'value="System:AliyunECSReadOnlyAccess"' in body

    response = owner_client.post(
        url("catalog_role_create"),
        role_data(keep_role_when_empty="on", max_session_duration="7200"),
    )
    assert response.status_code == 302 and response["Location"] == url("catalog")
    role = CatalogRole.objects.get()
    assert role.role_name == "ecs-admin" and role.max_session_duration == 7200
    assert role.keep_role_when_empty and role.organisation == sim_owner.organisation
    assert AuditEvent.objects.filter(action="catalog_role.created").count() == 1


@pytest.mark.parametrize(
    "forged",
    [
        {"policies": ["System:AliyunNoSuchPolicy"]},
        {"policies": ["Custom:AliyunECSFullAccess"]},
        {"policies": ["Managed:AliyunECSFullAccess"]},
        {"policies": ["AliyunECSFullAccess"]},
        {"policies": []},
        {"max_session_duration": "3599"},
        {"max_session_duration": "43201"},
        {"max_session_duration": "1e4"},
        {"role_name": "bad name!"},
    ],
)
def test_forged_or_bad_input_is_a_form_error_with_no_write_and_no_cloud_call(
    sim_owner: SimAccount, owner_client: Client, forged: dict
) -> None:
    assert owner_client.get(url("catalog_role_create")).status_code == 200  # lists the policies
    since = sim_owner.seq()
    response = owner_client.post(url("catalog_role_create"), role_data(**forged))
    assert response.status_code == 400
    assert response.context["form"].errors
    assert sim_owner.seq() == since
    no_role_written()


def test_a_duplicate_name_is_a_form_error(sim_owner: SimAccount, owner_client: Client) -> None:
    owner_client.post(url("catalog_role_create"), role_data())
    response = owner_client.post(url("catalog_role_create"), role_data(role_name="ECS-ADMIN"))
    assert response.status_code == 400
    assert "already has a role named" in response.context["form"].errors["role_name"][0]
    assert CatalogRole.objects.count() == 1


def test_high_privilege_needs_the_box_and_a_recent_mfa_confirmation(
    sim_owner: SimAccount, owner_client: Client, login: Callable[..., Client]
) -> None:
    data = role_data(role_name="admins", policies=["System:AdministratorAccess"])
    unticked = owner_client.post(url("catalog_role_create"), data)
    assert unticked.status_code == 400
    assert "AdministratorAccess" in unticked.context["form"].errors["high_privilege_confirmed"][0]
    no_role_written()

    not_recent = login(sim_owner.admin)
    suspended = not_recent.post(
        url("catalog_role_create"), {**data, "high_privilege_confirmed": "on"}
    )
    assert suspended.status_code == 302
    assert suspended["Location"].startswith(reverse("mfa_reauthenticate"))
    no_role_written()

    created = owner_client.post(
        url("catalog_role_create"), {**data, "high_privilege_confirmed": "on"}
    )
    assert created.status_code == 302
    assert CatalogRole.objects.get().allows_high_privilege
    event = AuditEvent.objects.get(action="catalog_role.created")
    assert event.metadata["high_privilege_policies"] == ["AdministratorAccess"]


def test_a_cloud_outage_shows_a_message_and_no_form(
    sim_owner: SimAccount, owner_client: Client
) -> None:
    sim_owner.sim.set_faults("ListPolicies:internal")
    response = owner_client.get(url("catalog_role_create"))
    assert response.status_code == 503
    assert "could not be listed" in response.content.decode()
    posted = owner_client.post(url("catalog_role_create"), role_data())
    assert posted.status_code == 503
    no_role_written()


def test_adding_a_role_needs_a_connected_account_admin_and_owner(
    login: Callable[..., Client],
    owner_admin: User,
    auditor: User,
    partner_admin: User,
) -> None:
    no_account = confirmed(login(owner_admin), owner_admin).get(url("catalog_role_create"))
    assert no_account.status_code == 302 and no_account["Location"] == url("cloud_account")
    assert login(auditor).get(url("catalog_role_create")).status_code == 403
    assert login(partner_admin).post(url("catalog_role_create"), role_data()).status_code == 403
    assert login(owner_admin).put(url("catalog_role_create")).status_code == 405
    no_role_written()


# --- deactivating -----------------------------------------------------------------------------


def test_deactivate_and_reactivate(
    sim_owner: SimAccount, owner_account: CloudAccount, owner_client: Client
) -> None:
    role = CatalogRoleFactory(cloud_account=owner_account, role_name="ops")
    response = owner_client.post(url("catalog_role_deactivate", role.pk), follow=True)
    assert "no longer be requested" in response.content.decode()
    assert not CatalogRole.objects.get(pk=role.pk).is_active
    again = owner_client.post(url("catalog_role_deactivate", role.pk), follow=True)
    assert "already inactive" in again.content.decode()
    owner_client.post(url("catalog_role_reactivate", role.pk))
    assert CatalogRole.objects.get(pk=role.pk).is_active
    assert owner_client.get(url("catalog_role_deactivate", role.pk)).status_code == 405


def test_another_owners_role_is_404_and_auditors_get_403(
    owner_client: Client,
    foreign_role: CatalogRole,
    sim_owner: SimAccount,
    owner_account: CloudAccount,
    login: Callable[..., Client],
) -> None:
    for name in ("catalog_role_deactivate", "catalog_role_reactivate"):
        assert owner_client.post(url(name, foreign_role.pk)).status_code == 404
    assert CatalogRole.objects.get(pk=foreign_role.pk).is_active
    own = CatalogRoleFactory(cloud_account=owner_account, role_name="ops")
    auditor = make_member(sim_owner.organisation, Membership.Role.AUDITOR)
    assert login(auditor).post(url("catalog_role_deactivate", own.pk)).status_code == 403
    assert CatalogRole.objects.get(pk=own.pk).is_active


# --- the allow-list ---------------------------------------------------------------------------


def test_allow_list_add_and_remove(sim_owner: SimAccount, owner_client: Client) -> None:
    added = owner_client.post(
        url("allowance_add"), {"partner_account_uid": "12345678", "label": "Company B"}
    )
    assert added.status_code == 302 and added["Location"].endswith("#allow-list")
    allowance = PartnerAllowance.objects.get()
    assert allowance.organisation == sim_owner.organisation
    removed = owner_client.post(url("allowance_remove", allowance.pk))
    assert removed.status_code == 302 and not PartnerAllowance.objects.exists()
    assert owner_client.get(url("allowance_add")).status_code == 405
    assert owner_client.get(url("allowance_remove", allowance.pk)).status_code == 405


@pytest.mark.parametrize("uid", ["1234 5678", "\uff11\uff12", "abc", "", None])
def test_allow_list_bad_uids_are_form_errors(
    sim_owner: SimAccount, owner_client: Client, uid: str | None
) -> None:
    data = {"label": "x"} if uid is None else {"partner_account_uid": uid}
    response = owner_client.post(url("allowance_add"), data)
    assert response.status_code == 400
    assert response.context["allowance_form"].errors["partner_account_uid"]
    assert not PartnerAllowance.objects.exists()


def test_allow_list_refuses_the_owners_own_uid(sim_owner: SimAccount, owner_client: Client) -> None:
    response = owner_client.post(url("allowance_add"), {"partner_account_uid": sim_owner.uid})
    assert response.status_code == 400
    assert "your own account" in response.content.decode()


def test_allow_list_foreign_ids_404_and_roles_403(
    owner_client: Client,
    company_c: Organisation,
    login: Callable[..., Client],
    sim_owner: SimAccount,
    partner_admin: User,
) -> None:
    foreign = PartnerAllowanceFactory(organisation=company_c, partner_account_uid="12345678")
    assert owner_client.post(url("allowance_remove", foreign.pk)).status_code == 404
    assert PartnerAllowance.objects.filter(pk=foreign.pk).exists()
    auditor = make_member(sim_owner.organisation, Membership.Role.AUDITOR)
    assert (
        login(auditor).post(url("allowance_add"), {"partner_account_uid": "1"}).status_code == 403
    )
    assert (
        login(partner_admin).post(url("allowance_add"), {"partner_account_uid": "1"}).status_code
        == 403
    )
    assert PartnerAllowance.objects.count() == 1


def test_add_a_role_with_one_role_per_partner_which_the_edit_page_keeps(
    owner_client: Client,
) -> None:
    assert (
        'name="one_role_per_partner"'
        in owner_client.get(url("catalog_role_create")).content.decode()
    )

    response = owner_client.post(url("catalog_role_create"), role_data(one_role_per_partner="on"))

    assert response.status_code == 302
    role = CatalogRole.objects.get()
    assert role.one_role_per_partner
    created = AuditEvent.objects.get(action="catalog_role.created")
    assert created.after["one_role_per_partner"] is True
    assert 'data-testid="one-role-per-partner"' in owner_client.get(url("catalog")).content.decode()
    # Fixed once added: the edit page says so and has no field to change it.
    edit_page = owner_client.get(url("catalog_role_edit", role.pk)).content.decode()
    assert 'name="one_role_per_partner"' not in edit_page
    assert 'data-testid="one-role-per-partner"' in edit_page
    owner_client.post(
        url("catalog_role_edit", role.pk),
        {**role_data(description="changed"), "one_role_per_partner": ""},
    )
    assert CatalogRole.objects.get().one_role_per_partner


def test_the_role_form_names_the_account_the_role_lives_in(
    sim_owner: SimAccount, owner_account: CloudAccount, owner_client: Client
) -> None:
    """With several accounts, "your account" names none: a new role's home is the primary,
    an edited role's its own, and the policies offered are listed from that account."""
    from tests.delegations.factories import CloudAccountFactory

    staging = CloudAccountFactory(
        organisation=sim_owner.organisation,
        account_uid="11223355",
        alias="",
        name="staging",
        is_primary=False,
    )
    body = owner_client.get(url("catalog_role_create")).content.decode()
    head = body[body.index('<div class="page-head">') : body.index("</legend>")]
    assert head.count(owner_account.label) == 2 and staging.label not in head

    role = CatalogRoleFactory(cloud_account=staging, role_name="ecs-ops")
    body = owner_client.get(url("catalog_role_edit", role.pk)).content.decode()
    head = body[body.index('<div class="page-head">') : body.index("</section>")]
    assert staging.label in head and owner_account.label not in head
