"""The API's pages: a person's tokens (shown once, listed, revocable, 404 for someone else's),
an admin's service accounts and the organisation's switch for API decisions."""

from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import Organisation, User
from api.models import ApiToken, ServiceAccount
from api.services import api_decisions_allowed, api_token_create
from audit.models import AuditEvent
from tests.personas import mark_reauthenticated_with_mfa

pytestmark = pytest.mark.django_db


def _create(client: Client, **overrides: object) -> object:
    data = {"name": "laptop", "scopes": ["read", "credentials"], "expires_in_days": "30"}
    data.update(overrides)
    return client.post("/account/tokens/", data)


def test_a_token_is_shown_once_and_stored_hashed(
    login: Callable[..., Client], partner_staff: User
) -> None:
    client = login(partner_staff)
    response = _create(client)
    assert response.status_code == 201
    assert response["Cache-Control"].startswith("no-store")
    token = ApiToken.objects.get(user=partner_staff)
    page = response.content.decode()
    start = page.index(f"pap_{token.prefix}_")
    raw = page[start : page.index("<", start)].strip()
    assert raw not in token.secret_hash and len(token.secret_hash) == 64
    assert raw not in client.get("/account/tokens/").content.decode()
    event = AuditEvent.objects.get(action="api.token_created")
    assert raw not in str(event.after) and raw not in str(event.metadata)
    assert token.created_with_mfa is False


def test_bad_input_is_shown_on_the_form(login: Callable[..., Client], partner_staff: User) -> None:
    client = login(partner_staff)
    assert _create(client, expires_in_days="91").status_code == 400
    assert _create(client, scopes=["everything"]).status_code == 400
    assert not ApiToken.objects.exists()


def test_revoking_someone_elses_token_is_404(
    login: Callable[..., Client], partner_staff: User, partner_admin: User
) -> None:
    other = api_token_create(user=partner_admin, name="x", scopes=["read"], expires_in_days=1)
    response = login(partner_staff).post(f"/account/tokens/{other.token.pk}/revoke/")
    assert response.status_code == 404
    other.token.refresh_from_db()
    assert other.token.revoked_at is None
    mine = login(partner_admin).post(f"/account/tokens/{other.token.pk}/revoke/")
    assert mine.status_code == 302
    other.token.refresh_from_db()
    assert other.token.revoked_at is not None


def test_an_auditor_may_make_their_own_token(login: Callable[..., Client], auditor: User) -> None:
    assert _create(login(auditor), scopes=["audit"]).status_code == 201


def test_service_accounts_are_for_admins_and_read_only(
    login: Callable[..., Client],
    owner_admin: User,
    auditor: User,
    company_a: Organisation,
) -> None:
    assert login(auditor).get("/organisation/service-accounts/").status_code == 403
    client = mark_reauthenticated_with_mfa(login(owner_admin), owner_admin)
    response = client.post(
        "/organisation/service-accounts/",
        {"name": "ci-pipeline", "scopes": ["read", "audit"], "expires_in_days": "30"},
    )
    assert response.status_code == 201
    account = ServiceAccount.objects.get(organisation=company_a)
    page = response.content.decode()
    token = account.tokens.get()
    start = page.index(f"pap_{token.prefix}_")
    raw = page[start : page.index("<", start)].strip()
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    me = api.get("/api/v1/me/").json()
    assert me["kind"] == "service_account" and me["caller"] == "service account ci-pipeline"
    assert api.get("/api/v1/delegations/").status_code == 200
    refused = api.post("/api/v1/delegations/offer/", {}, content_type="application/json")
    assert refused.status_code == 403
    client.post(f"/organisation/service-accounts/{account.pk}/disable/")
    assert api.get("/api/v1/me/").status_code == 401


def test_a_service_account_cannot_hold_decide(
    login: Callable[..., Client], owner_admin: User
) -> None:
    client = mark_reauthenticated_with_mfa(login(owner_admin), owner_admin)
    response = client.post(
        "/organisation/service-accounts/",
        {"name": "ci", "scopes": ["decide"], "expires_in_days": "30"},
    )
    assert response.status_code == 400
    assert not ServiceAccount.objects.exists()


@pytest.mark.parametrize(
    ("url", "model"),
    [("/account/tokens/", ApiToken), ("/organisation/service-accounts/", ServiceAccount)],
    ids=["personal token", "service account"],
)
def test_minting_a_token_asks_a_stale_session_to_confirm_first(
    login: Callable[..., Client], owner_admin: User, url: str, model: type
) -> None:
    # A service account's token reads the whole organisation's record for up to 90 days:
    # no less a thing to mint from a forgotten session than a personal token.
    stale = login(owner_admin, reauthenticated=False)
    data = {"name": "ci", "scopes": ["read", "audit"], "expires_in_days": "90"}
    response = stale.post(url, data)
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    assert not model.objects.exists()
    confirmed = mark_reauthenticated_with_mfa(login(owner_admin), owner_admin)
    assert confirmed.post(url, data).status_code == 201
    assert model.objects.count() == 1


def test_an_admin_turns_api_decisions_on_after_mfa(
    login: Callable[..., Client], owner_admin: User, company_a: Organisation, settings: object
) -> None:
    url = "/organisation/service-accounts/api-decisions/"
    settings.PORTAL_REQUIRE_MFA = True  # type: ignore[attr-defined]
    # A password-only confirmation is not enough: the admin is sent to confirm with MFA.
    response = login(owner_admin).post(url, {"allow_decisions": "on"})
    assert "/2fa/reauthenticate/" in response["Location"]
    assert api_decisions_allowed(organisation=company_a) is False

    settings.PORTAL_REQUIRE_MFA = False  # type: ignore[attr-defined]
    response = login(owner_admin).post(url, {"allow_decisions": "on"})
    assert response["Location"] == "/organisation/service-accounts/"
    assert api_decisions_allowed(organisation=company_a) is True
    assert AuditEvent.objects.filter(action="api.decisions_changed").count() == 1
