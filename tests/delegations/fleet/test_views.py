"""Fleet pages: a partner admin requests through the partner link code, the owner approves
once (step-up), the live fragment shows every account; wrong method, missing role and bad
input answer as everywhere else (foreign fleets are in tests/delegations/test_isolation.py)."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from accounts.models import Organisation, User
from audit.models import AuditEvent
from auditor.selectors import delegation_target_ids, targets_q
from delegations.catalog.partner_links import partner_link_revoke
from delegations.lifecycle.views import PARTNER_LINK_SESSION_KEY
from delegations.models import CatalogRole, CloudAccount, Delegation, FleetGrant
from tests.delegations.factories import CloudAccountFactory

Status = Delegation.Status


def signed_in(user: User, **session: object) -> Client:
    client = Client()
    client.force_login(user)
    store = client.session
    # A fresh two-factor confirmation: the step-up of approving passes.
    store["account_authentication_methods"] = [
        {"method": "mfa", "type": "totp", "at": time.time(), "reauthenticated": True}
    ]
    store["account_authentication_methods_user"] = str(user.pk)
    store.update(session)
    store.save()
    return client


@pytest.fixture
def staging(company_a: Organisation, ecs_admin: CatalogRole) -> CloudAccount:
    account = CloudAccountFactory(
        organisation=company_a, account_uid="55667701", name="staging", is_primary=False
    )
    ecs_admin.extra_accounts.add(account)
    return account


@pytest.fixture
def partner_client(partner_admin: User, link_a: tuple, allow_b: None) -> Client:
    return signed_in(partner_admin, **{PARTNER_LINK_SESSION_KEY: str(link_a[0].pk)})


def request_body(ecs_admin: CatalogRole, accounts: list[CloudAccount], **overrides: str) -> dict:
    body = {
        "catalog_role": str(ecs_admin.pk),
        "accounts": [str(a.pk) for a in accounts],
        "regions": "cn-shanghai, cn-beijing",
        "concurrency": "5",
        "max_errors": "0",
        "reason": "Patch the estate",
        "duration": "open",
    }
    body.update(overrides)
    return body


def test_the_fleet_request_page_forgets_a_code_and_says_when_one_stopped_working(
    partner_client: Client, owner_admin: User, link_a: tuple
) -> None:
    """As the one-delegation request page does: "use a different code" forgets the accepted
    one, and a link revoked since it was accepted is said to no longer work."""
    url = "/delegations/fleets/request/"
    page = partner_client.get(url).content.decode()
    assert 'name="forget_code"' in page
    forgotten = partner_client.post(url, {"forget_code": "1"})
    assert forgotten.status_code == 302 and forgotten["Location"] == url
    assert PARTNER_LINK_SESSION_KEY not in partner_client.session
    assert "Partner link code" in partner_client.get(url).content.decode()

    store = partner_client.session
    store[PARTNER_LINK_SESSION_KEY] = str(link_a[0].pk)
    store.save()
    partner_link_revoke(link=link_a[0], revoked_by=owner_admin)
    answer = partner_client.get(url).content.decode()
    assert "no longer works" in answer and "Partner link code" in answer
    assert PARTNER_LINK_SESSION_KEY not in partner_client.session


def test_request_approve_and_follow(
    partner_client: Client,
    owner_admin: User,
    ecs_admin: CatalogRole,
    cloud_account_a: CloudAccount,
    staging: CloudAccount,
) -> None:
    page = partner_client.get("/delegations/fleets/request/")
    assert page.status_code == 200
    assert "staging (55667701)" in page.content.decode()
    response = partner_client.post(
        "/delegations/fleets/request/", request_body(ecs_admin, [cloud_account_a, staging])
    )
    assert response.status_code == 302
    fleet = FleetGrant.objects.get()
    assert response["Location"] == f"/delegations/fleets/{fleet.pk}/"
    assert fleet.regions == ["cn-shanghai", "cn-beijing"]

    owner = signed_in(owner_admin)
    detail = owner.get(f"/delegations/fleets/{fleet.pk}/")
    assert detail.status_code == 200
    assert 'data-poll-url="/delegations/fleets/' in detail.content.decode()
    approve = owner.post(f"/delegations/fleets/{fleet.pk}/approve/", {"version": fleet.version})
    assert approve.status_code == 302
    assert sorted(Delegation.objects.filter(fleet=fleet).values_list("status", flat=True)) == [
        Status.APPROVED,
        Status.APPROVED,
    ]
    live = owner.get(f"/delegations/fleets/{fleet.pk}/status/")
    assert live.status_code == 200
    assert live["Cache-Control"].startswith("no-store") or "no-store" in live["Cache-Control"]
    body = live.content.decode()
    assert 'data-account="11223344"' in body and 'data-account="55667701"' in body
    assert body.count('data-state="approved"') == 2
    # The partner sees the same fleet, without the owner's buttons.
    partner_view = partner_client.get(f"/delegations/fleets/{fleet.pk}/status/").content.decode()
    assert 'data-account="55667701"' in partner_view
    assert "account-retry" not in partner_view and "account-revoke" not in partner_view


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"regions": "cn-shanghai, not a region"}, "does not look like a region"),
        ({"regions": "cn-shanghai cn-shanghai"}, "Each region may be chosen once"),
        ({"regions": ""}, "This field is required"),
        ({"concurrency": "0"}, "greater than or equal to 1"),
        ({"max_errors": "-1"}, "greater than or equal to 0"),
    ],
)
def test_bad_input_is_a_form_error(
    partner_client: Client,
    ecs_admin: CatalogRole,
    cloud_account_a: CloudAccount,
    staging: CloudAccount,
    overrides: dict,
    message: str,
) -> None:
    response = partner_client.post(
        "/delegations/fleets/request/",
        request_body(ecs_admin, [cloud_account_a, staging], **overrides),
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not FleetGrant.objects.exists()


def test_no_accounts_and_foreign_accounts_are_form_errors(
    partner_client: Client,
    ecs_admin: CatalogRole,
    cloud_account_c: CloudAccount,
) -> None:
    none = partner_client.post("/delegations/fleets/request/", request_body(ecs_admin, []))
    assert none.status_code == 400
    foreign = partner_client.post(
        "/delegations/fleets/request/", request_body(ecs_admin, [cloud_account_c])
    )
    assert foreign.status_code == 400
    assert "Select a valid choice" in foreign.content.decode()
    assert not FleetGrant.objects.exists()


def test_without_a_partner_link_the_code_is_asked_first(
    partner_admin: User, link_a: tuple, allow_b: None
) -> None:
    client = signed_in(partner_admin)
    page = client.get("/delegations/fleets/request/")
    assert page.status_code == 200
    assert 'action="/delegations/fleets/request/"' in page.content.decode()
    redeemed = client.post("/delegations/fleets/request/", {"partner_link_code": link_a[1]})
    assert redeemed.status_code == 302
    assert redeemed["Location"] == "/delegations/fleets/request/"


def test_wrong_method_and_missing_role(
    partner_client: Client,
    partner_staff: User,
    owner_admin: User,
    ecs_admin: CatalogRole,
    cloud_account_a: CloudAccount,
    staging: CloudAccount,
) -> None:
    partner_client.post(
        "/delegations/fleets/request/", request_body(ecs_admin, [cloud_account_a, staging])
    )
    fleet = FleetGrant.objects.get()
    owner = signed_in(owner_admin)
    assert owner.get(f"/delegations/fleets/{fleet.pk}/approve/").status_code == 405
    staff = signed_in(partner_staff)
    assert staff.get(f"/delegations/fleets/{fleet.pk}/").status_code == 403
    assert staff.get("/delegations/fleets/").status_code == 403
    # A partner admin cannot decide its own fleet.
    refused = partner_client.post(
        f"/delegations/fleets/{fleet.pk}/approve/", {"version": fleet.version}
    )
    assert refused.status_code in (403, 404)
    assert set(Delegation.objects.filter(fleet=fleet).values_list("status", flat=True)) == {
        Status.REQUESTED
    }


def test_owner_connects_a_second_account_page_lists_both(
    owner_admin: User, cloud_account_a: CloudAccount, staging: CloudAccount
) -> None:
    page = signed_in(owner_admin).get("/delegations/cloud-account/")
    body = page.content.decode()
    assert 'data-testid="owner-accounts"' in body
    assert 'data-account="55667701"' in body and "staging (55667701)" in body
    assert f"/delegations/cloud-account/{staging.pk}/replace/" in body


def test_owner_chooses_where_a_role_is_offered(
    owner_admin: User,
    ecs_admin: CatalogRole,
    cloud_account_a: CloudAccount,
    company_a: Organisation,
    cloud_account_c: CloudAccount,
) -> None:
    other = CloudAccountFactory(
        organisation=company_a, account_uid="55667702", name="test", is_primary=False
    )
    client = signed_in(owner_admin)
    url = f"/delegations/catalogue/roles/{ecs_admin.pk}/accounts/"
    assert "test (55667702)" in client.get(url).content.decode()
    # A foreign account id in the post is ignored: only the owner's accounts are offered.
    saved = client.post(url, {"accounts": [str(other.pk), str(cloud_account_c.pk)]})
    assert saved.status_code == 302
    assert list(ecs_admin.extra_accounts.all()) == [other]
    client.post(url, {"all_accounts": "on"})
    ecs_admin.refresh_from_db()
    assert ecs_admin.offered_in_all_accounts
    assert list(ecs_admin.extra_accounts.all()) == []


def test_a_single_request_may_choose_the_owners_account(
    partner_client: Client, ecs_admin: CatalogRole, staging: CloudAccount
) -> None:
    page = partner_client.get("/delegations/request/").content.decode()
    assert "staging (55667701)" in page
    response = partner_client.post(
        "/delegations/request/",
        {
            "catalog_role": str(ecs_admin.pk),
            "cloud_account": str(staging.pk),
            "reason": "Patch staging",
            "duration": "open",
        },
    )
    assert response.status_code == 302
    delegation = Delegation.objects.get()
    assert delegation.managed_role.cloud_account == staging
    assert delegation.fleet is None


def test_an_accounts_timeline_shows_the_fleets_decision(
    partner_client: Client,
    owner_admin: User,
    auditor: User,
    ecs_admin: CatalogRole,
    cloud_account_a: CloudAccount,
    staging: CloudAccount,
) -> None:
    partner_client.post(
        "/delegations/fleets/request/", request_body(ecs_admin, [cloud_account_a, staging])
    )
    fleet = FleetGrant.objects.get()
    signed_in(owner_admin).post(
        f"/delegations/fleets/{fleet.pk}/approve/", {"version": fleet.version}
    )
    member = Delegation.objects.get(fleet=fleet, managed_role__cloud_account=staging)
    history = AuditEvent.objects.filter(targets_q(delegation_target_ids([member.pk])))
    actions = set(history.values_list("action", flat=True))
    assert {"fleet.requested", "fleet.approved", "delegation.approved"} <= actions
    approved = history.get(action="delegation.approved")
    assert approved.metadata["account_uid"] == "55667701"
    assert approved.metadata["fleet"] == str(fleet.pk)
    assert signed_in(auditor).get(f"/audit/delegations/{member.pk}/").status_code == 200
