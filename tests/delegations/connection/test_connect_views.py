"""Cloud-account pages: connect, replace, check and disconnect for owners and partners, with a
real cloudsim behind them. Success, wrong method, missing role (403), confirmation of
identity before a secret is typed, bad input (form errors, nothing written, no cloud call),
and the secret never in a page, a log, the session or an audit event."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Membership
from audit.models import AuditEvent
from delegations.connection.services import cloud_account_connect
from delegations.models import CloudAccount
from tests.delegations.cloud_fixtures import SimAccount
from tests.delegations.connection.test_crypto import database_text
from tests.delegations.factories import CloudAccountFactory
from tests.personas import make_member
from tests.personas import mark_reauthenticated_with_mfa as confirmed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mfa_required(settings) -> None:
    settings.PORTAL_REQUIRE_MFA = True


def url(name: str) -> str:
    return reverse(f"delegations:{name}")


@pytest.fixture
def owner_client(sim_owner: SimAccount, login: Callable[..., Client]) -> Client:
    return confirmed(login(sim_owner.admin), sim_owner.admin)


@pytest.fixture
def partner_client(sim_partner: SimAccount, login: Callable[..., Client]) -> Client:
    return confirmed(login(sim_partner.admin), sim_partner.admin)


def connect_data(account: SimAccount, **overrides: str) -> dict[str, str]:
    data = {
        "account_uid": account.uid,
        "alias": account.alias,
        "region": "cn-hangzhou",
        "access_key_id": account.root_key_id,
        "access_key_secret": account.root_secret,
    }
    data.update(overrides)
    return data


def connect_directly(account: SimAccount) -> CloudAccount:
    return cloud_account_connect(
        organisation=account.organisation,
        connected_by=account.admin,
        **{k: v for k, v in connect_data(account).items()},
    )


# --- the page ---------------------------------------------------------------------------------


def test_page_before_and_after_connecting(
    sim_owner: SimAccount, owner_client: Client, login: Callable[..., Client]
) -> None:
    page = owner_client.get(url("cloud_account"))
    assert page.status_code == 200
    assert "Not connected" in page.content.decode()
    assert url("cloud_account_connect") in page.content.decode()

    account = connect_directly(sim_owner)
    body = owner_client.get(url("cloud_account")).content.decode()
    assert account.access_key_id in body and account.secret_fingerprint in body
    assert sim_owner.root_secret not in body
    assert "root AccessKey" in body  # the page says a RAM user would be better

    auditor = make_member(sim_owner.organisation, Membership.Role.AUDITOR)
    as_auditor = login(auditor).get(url("cloud_account"))
    assert as_auditor.status_code == 200
    assert url("cloud_account_replace") not in as_auditor.content.decode()


def test_page_refuses_staff_other_methods_and_anonymous(
    sim_partner: SimAccount, login: Callable[..., Client], owner_client: Client
) -> None:
    staff = make_member(sim_partner.organisation, Membership.Role.STAFF)
    assert login(staff).get(url("cloud_account")).status_code == 403
    assert owner_client.post(url("cloud_account")).status_code == 405
    anonymous = Client().get(url("cloud_account"))
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]


# --- connect ----------------------------------------------------------------------------------


def test_connect_needs_a_recent_confirmation_before_the_form(
    sim_owner: SimAccount, login: Callable[..., Client]
) -> None:
    client = login(sim_owner.admin)  # signed in with a password, no recent MFA
    response = client.get(url("cloud_account_connect"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))
    assert "next=%2Fdelegations%2Fcloud-account%2Fconnect%2F" in response["Location"]


def test_without_required_mfa_a_recent_password_confirmation_is_enough(
    sim_owner: SimAccount, login: Callable[..., Client], settings
) -> None:
    settings.PORTAL_REQUIRE_MFA = False
    assert login(sim_owner.admin).get(url("cloud_account_connect")).status_code == 200
    stale = login(sim_owner.admin, reauthenticated=False).get(url("cloud_account_connect"))
    assert stale.status_code == 302
    assert stale["Location"].startswith(reverse("account_reauthenticate"))


def test_connect_form_then_success(sim_owner: SimAccount, owner_client: Client) -> None:
    form = owner_client.get(url("cloud_account_connect"))
    assert form.status_code == 200 and form["Cache-Control"] == "no-store"
    assert f'value="{sim_owner.uid}"' in form.content.decode()

    response = owner_client.post(url("cloud_account_connect"), connect_data(sim_owner))
    assert response.status_code == 302 and response["Location"] == url("cloud_account")
    account = CloudAccount.objects.get(organisation=sim_owner.organisation)
    assert account.is_active and account.access_key_id == sim_owner.root_key_id
    assert AuditEvent.objects.filter(action="cloud_account.connected").count() == 1
    # Connected: the connect page now leads to replacing the key.
    again = owner_client.get(url("cloud_account_connect"))
    assert again.status_code == 302 and again["Location"] == url("cloud_account_replace")


def test_a_wrong_secret_is_a_form_error_and_the_secret_is_not_echoed(
    sim_owner: SimAccount, owner_client: Client
) -> None:
    wrong = "WrongSecretCanary0123456789abc"
    response = owner_client.post(
        url("cloud_account_connect"), connect_data(sim_owner, access_key_secret=wrong)
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "SignatureDoesNotMatch" in body and "does not belong to this AccessKey id" in body
    assert wrong not in body
    assert not CloudAccount.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account_uid", "11223344x"),
        ("account_uid", "99999999"),
        ("region", "Hangzhou"),
        ("alias", "-bad-"),
        ("access_key_id", ""),
        ("access_key_secret", ""),
    ],
)
def test_bad_input_is_a_form_error_with_no_cloud_call(
    sim_owner: SimAccount, owner_client: Client, field: str, value: str
) -> None:
    since = sim_owner.seq()
    response = owner_client.post(
        url("cloud_account_connect"), connect_data(sim_owner, **{field: value})
    )
    assert response.status_code == 400
    assert response.context["form"].errors.get(field)
    assert sim_owner.seq() == since
    assert not CloudAccount.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="cloud_account.").exists()


def test_forged_fields_are_ignored(sim_owner: SimAccount, owner_client: Client) -> None:
    data = connect_data(sim_owner)
    data.update(
        organisation="00000000-0000-0000-0000-000000000000",
        is_active="false",
        secret_fingerprint="sha256:forged00",
    )
    assert owner_client.post(url("cloud_account_connect"), data).status_code == 302
    account = CloudAccount.objects.get()
    assert account.organisation == sim_owner.organisation and account.is_active
    assert account.secret_fingerprint != "sha256:forged00"


def test_a_stale_confirmation_refuses_the_post_and_keeps_nothing(
    sim_owner: SimAccount, login: Callable[..., Client]
) -> None:
    client = login(sim_owner.admin)
    response = client.post(url("cloud_account_connect"), connect_data(sim_owner))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))
    assert not CloudAccount.objects.exists()
    # allauth was not asked to keep the request for a replay: the secret is nowhere.
    assert sim_owner.root_secret not in database_text()


def test_connect_and_replace_are_for_admins_only(
    sim_owner: SimAccount, sim_partner: SimAccount, login: Callable[..., Client]
) -> None:
    auditor = make_member(sim_owner.organisation, Membership.Role.AUDITOR)
    staff = make_member(sim_partner.organisation, Membership.Role.STAFF)
    for user in (auditor, staff):
        client = confirmed(login(user), user)
        for name in (
            "cloud_account_connect",
            "cloud_account_replace",
            "cloud_account_verify",
            "cloud_account_disconnect",
        ):
            assert client.post(url(name), connect_data(sim_owner)).status_code == 403
    assert not CloudAccount.objects.exists()


def test_wrong_methods(owner_client: Client) -> None:
    for name in ("cloud_account_connect", "cloud_account_replace"):
        assert owner_client.put(url(name)).status_code == 405
    for name in ("cloud_account_verify", "cloud_account_disconnect"):
        assert owner_client.get(url(name)).status_code == 405


# --- replace, check, disconnect ---------------------------------------------------------------


def test_replace_check_and_disconnect(sim_owner: SimAccount, owner_client: Client) -> None:
    account = connect_directly(sim_owner)
    form = owner_client.get(url("cloud_account_replace"))
    assert form.status_code == 200 and account.secret_fingerprint in form.content.decode()
    assert sim_owner.root_secret not in form.content.decode()

    key_id, secret = sim_owner.user_with_key("broker")
    refused = owner_client.post(
        url("cloud_account_replace"),
        {"access_key_id": key_id, "access_key_secret": secret, "region": "cn-hangzhou"},
    )
    assert refused.status_code == 400 and "NoPermission" in refused.content.decode()
    assert CloudAccount.objects.get().access_key_id == sim_owner.root_key_id

    replaced = owner_client.post(
        url("cloud_account_replace"),
        {
            "access_key_id": sim_owner.root_key_id,
            "access_key_secret": sim_owner.root_secret,
            "region": "cn-shanghai",
            "alias": sim_owner.alias,
        },
    )
    assert replaced.status_code == 302
    assert CloudAccount.objects.get().region == "cn-shanghai"

    checked = owner_client.post(url("cloud_account_verify"), follow=True)
    assert "still works" in checked.content.decode()

    gone = owner_client.post(url("cloud_account_disconnect"), follow=True)
    assert "Disconnected" in gone.content.decode()
    assert not CloudAccount.objects.get().is_active
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "cloud_account.connected",
        "cloud_account.check_failed",
        "cloud_account.replaced",
        "cloud_account.verified",
        "cloud_account.disconnected",
    } <= actions


def test_disconnect_without_a_recent_confirmation_asks_for_one(
    sim_owner: SimAccount, login: Callable[..., Client]
) -> None:
    connect_directly(sim_owner)
    response = login(sim_owner.admin).post(url("cloud_account_disconnect"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))
    assert CloudAccount.objects.get().is_active


# --- partners ---------------------------------------------------------------------------------


def test_partner_connects_and_sees_its_ram_users(
    sim_partner: SimAccount, partner_client: Client
) -> None:
    for name in ("Alice", "Bob", "AAA"):
        sim_partner.sim.create_user(sim_partner.uid, name, with_access_key=False)
    response = partner_client.post(url("cloud_account_connect"), connect_data(sim_partner))
    assert response.status_code == 302
    body = partner_client.get(url("cloud_account")).content.decode()
    for name in ("Alice", "Bob", "AAA"):
        assert f'<td class="mono">{name}</td>' in body


def test_a_cloud_outage_on_the_partner_page_is_a_message(
    sim_partner: SimAccount, partner_client: Client
) -> None:
    connect_directly(sim_partner)
    sim_partner.sim.set_faults("ListUsers:internal")
    response = partner_client.get(url("cloud_account"))
    assert response.status_code == 200
    assert "could not be listed" in response.content.decode()


# --- the canary -------------------------------------------------------------------------------


def test_the_secret_appears_in_no_page_log_session_or_audit_event(
    sim_owner: SimAccount, owner_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = sim_owner.root_secret
    pages = [owner_client.get(url("cloud_account_connect"))]
    pages.append(
        owner_client.post(
            url("cloud_account_connect"), connect_data(sim_owner, region="bad"), follow=True
        )
    )
    pages.append(
        owner_client.post(url("cloud_account_connect"), connect_data(sim_owner), follow=True)
    )
    pages.append(owner_client.get(url("cloud_account_replace")))
    pages.append(owner_client.post(url("cloud_account_verify"), follow=True))
    pages.append(owner_client.get(reverse("accounts:home")))
    assert all(page.status_code in (200, 400) for page in pages)
    assert CloudAccount.objects.get().is_active
    for page in pages:
        assert secret not in page.content.decode()
    assert sim_owner.root_key_id in caplog.text
    assert secret not in caplog.text
    audit = str(list(AuditEvent.objects.values()))
    assert sim_owner.root_key_id in audit and secret not in audit
    assert secret not in database_text()  # sessions, audit, every table


def test_an_admin_makes_another_connected_account_the_primary(
    sim_owner: SimAccount, owner_client: Client, login: Callable[..., Client]
) -> None:
    """Only by POST, only an admin, only the organisation's own account; the previous primary
    stays connected and the change is on the record."""
    first = connect_directly(sim_owner)
    second = CloudAccountFactory(
        organisation=sim_owner.organisation, account_uid="55667701", is_primary=False
    )
    make_primary = reverse("delegations:cloud_account_make_primary", args=[second.pk])
    assert owner_client.get(make_primary).status_code == 405
    auditor = make_member(sim_owner.organisation, Membership.Role.AUDITOR)
    assert login(auditor).post(make_primary).status_code == 403
    foreign = CloudAccountFactory(is_primary=True)
    foreign_url = reverse("delegations:cloud_account_make_primary", args=[foreign.pk])
    assert owner_client.post(foreign_url).status_code == 404

    response = owner_client.post(make_primary)
    assert response.status_code == 302 and response["Location"] == url("cloud_account")
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.is_primary and not first.is_primary and first.is_active
    event = AuditEvent.objects.get(action="cloud_account.made_primary")
    assert event.before == {"primary": first.account_uid}
