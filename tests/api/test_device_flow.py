"""`pap login`'s device flow (RFC 8628): codes expire, are single use, rate-limited; the
browser step needs a member who recently confirmed who they are."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Organisation, User
from api.models import ApiToken, DeviceAuthorization
from api.problems import PROBLEM_CONTENT_TYPE
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

CODE = "/api/v1/device/code/"
TOKEN = "/api/v1/device/token/"
GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def start(client: Client) -> dict:
    response = client.post(CODE, {"client_name": "pap test"}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"].startswith("no-store")
    return response.json()


def poll(client: Client, device_code: str) -> tuple[int, dict]:
    response = client.post(
        TOKEN, {"grant_type": GRANT, "device_code": device_code}, content_type="application/json"
    )
    return response.status_code, response.json()


def test_the_whole_flow_gives_one_token_limited_to_read_request_credentials(
    login: Callable[..., Client], partner_staff: User, company_b: Organisation
) -> None:
    cli = Client()
    codes = start(cli)
    assert codes["verification_uri"].endswith("/account/device/")
    assert codes["expires_in"] == 600
    assert poll(cli, codes["device_code"]) == (
        400,
        {"error": "authorization_pending", "error_description": "Waiting for the browser."},
    )

    browser = login(partner_staff)
    page = browser.get("/account/device/")
    assert page.status_code == 200
    answer = browser.post("/account/device/", {"code": codes["user_code"].lower(), "approve": ""})
    assert answer.status_code == 200
    assert b'data-device-done="approved"' in answer.content
    assert AuditEvent.objects.filter(action="api.device_approved").count() == 1

    status, body = poll(cli, codes["device_code"])
    assert status == 200, body
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read request credentials"
    assert body["organisation"] == "company-b"
    token = ApiToken.objects.get(user=partner_staff)
    assert token.created_via == "device"
    me = cli.get("/api/v1/me/", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["role"] == "staff"
    # Single use: the same device code gives nothing more.
    assert poll(cli, codes["device_code"])[1]["error"] == "invalid_grant"
    assert ApiToken.objects.count() == 1


def test_a_refused_code_gives_access_denied(
    login: Callable[..., Client], partner_staff: User
) -> None:
    cli = Client()
    codes = start(cli)
    login(partner_staff).post("/account/device/", {"code": codes["user_code"], "deny": ""})
    assert poll(cli, codes["device_code"])[1]["error"] == "access_denied"
    assert not ApiToken.objects.exists()


def test_an_expired_code_is_refused_in_the_browser_and_to_the_cli(
    login: Callable[..., Client], partner_staff: User
) -> None:
    cli = Client()
    codes = start(cli)
    DeviceAuthorization.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    answer = login(partner_staff).post("/account/device/", {"code": codes["user_code"]})
    assert answer.status_code == 400
    assert poll(cli, codes["device_code"])[1]["error"] == "expired_token"


def test_the_browser_step_needs_a_recent_confirmation(
    login: Callable[..., Client], partner_staff: User
) -> None:
    codes = start(Client())
    browser = login(partner_staff, reauthenticated=False)
    answer = browser.post("/account/device/", {"code": codes["user_code"]})
    assert answer.status_code == 302
    assert "/reauthenticate/" in answer["Location"]
    assert DeviceAuthorization.objects.get().approved_at is None


@pytest.mark.usefixtures("fixed_rate_window")
def test_polling_too_fast_is_slowed_and_starting_is_rate_limited(settings: object) -> None:
    cli = Client()
    codes = start(cli)
    assert poll(cli, codes["device_code"])[1]["error"] == "authorization_pending"
    assert poll(cli, codes["device_code"])[1]["error"] == "slow_down"
    settings.PORTAL_API_DEVICE_CODE_RATE = "1/600"  # type: ignore[attr-defined]
    response = cli.post(CODE, {}, content_type="application/json")
    assert response.status_code == 429
    assert response.json()["type"] == "/api/v1/problems/rate-limited"


@pytest.mark.usefixtures("fixed_rate_window")
def test_starting_too_often_says_when_to_try_again_in_retry_after(settings: object) -> None:
    # The rate-limited problem type promises a Retry-After header; clients wait on it.
    settings.PORTAL_API_DEVICE_CODE_RATE = "1/600"  # type: ignore[attr-defined]
    cli = Client()
    start(cli)
    response = cli.post(CODE, {}, content_type="application/json")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 600


def test_a_wrong_grant_type_and_unknown_code(client: Client) -> None:
    response = client.post(
        TOKEN, {"grant_type": "password", "device_code": "x"}, content_type="application/json"
    )
    assert response.json() == {"error": "unsupported_grant_type"}
    assert poll(client, "nope")[1]["error"] == "invalid_grant"


@pytest.mark.parametrize("path", [CODE, TOKEN])
def test_an_oversized_body_is_a_413_problem_as_elsewhere_in_the_api(path: str) -> None:
    # These views read the body without `ApiView`'s early check: Django's own refusal must
    # still answer as a problem document, not the portal's HTML 400 page.
    response = Client().post(path, {"client_name": "x" * 300_000}, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["type"] == "/api/v1/problems/too-large"
    assert not DeviceAuthorization.objects.exists()
