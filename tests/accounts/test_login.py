"""Sign-in: one message for every failure, rate limits, and the audit trail."""

import pytest
from django.test import Client

from accounts.models import User
from tests.accounts.helpers import all_event_text, events
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

WRONG = "Wrong-password-for-sure-99"


def sign_in(client: Client, email: str, password: str) -> object:
    return client.post("/accounts/login/", {"login": email, "password": password})


def _error_text(response: object) -> str:
    form = response.context["form"]  # type: ignore[attr-defined]
    return " ".join(form.non_field_errors())


def test_unknown_email_and_wrong_password_get_the_same_message(auditor: User) -> None:
    unknown = sign_in(Client(), "nobody@example.com", WRONG)
    wrong = sign_in(Client(), auditor.email, WRONG)
    assert unknown.status_code == wrong.status_code == 200
    assert (
        _error_text(unknown)
        == _error_text(wrong)
        == "The email address or password is not correct."
    )


def test_successful_sign_in_is_audited(auditor: User) -> None:
    response = sign_in(Client(), auditor.email, DEFAULT_PASSWORD)
    assert response.status_code == 302
    [event] = events("auth.sign_in_succeeded")
    assert event.actor_id == auditor.pk
    assert DEFAULT_PASSWORD not in all_event_text()


def test_failed_sign_in_is_audited_without_the_password(auditor: User) -> None:
    sign_in(Client(), auditor.email, WRONG)
    sign_in(Client(), "nobody@example.com", WRONG)
    # A password typed into the email box fails form validation before authentication.
    sign_in(Client(), "my-secret-passphrase", WRONG)
    failed = events("auth.sign_in_failed")
    assert [event.actor_label for event in failed] == [auditor.email, "nobody@example.com"]
    assert all(event.outcome == "failure" for event in failed)
    text = all_event_text()
    assert WRONG not in text
    assert "my-secret-passphrase" not in text


def test_repeated_failures_are_rate_limited(auditor: User) -> None:
    client = Client()
    for _ in range(5):
        sign_in(client, auditor.email, WRONG)
    response = sign_in(client, auditor.email, DEFAULT_PASSWORD)
    assert response.status_code in (200, 429)
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_page_offers_registration_and_reset(client: Client) -> None:
    body = client.get("/accounts/login/").content.decode()
    assert "Register your organisation" in body
    assert "/accounts/password/reset/" in body


def test_oversized_login_is_handled(auditor: User) -> None:
    response = sign_in(Client(), "a" * 10_000 + "@example.com", "b" * 10_000)
    assert response.status_code == 200
    assert "_auth_user_id" not in Client().session


def test_failed_sign_in_service_never_stores_non_addresses() -> None:
    from django.db import transaction

    from accounts import services

    with transaction.atomic():
        services.auth_sign_in_failed(attempted_email="hunter2-my-password")
    [event] = events("auth.sign_in_failed")
    assert event.actor_label == event.target_label == "(not an email address)"
    assert "hunter2" not in all_event_text()


def test_the_admin_site_has_no_sign_in_of_its_own_that_skips_mfa_and_rate_limits(
    owner_admin: User,
) -> None:
    # An operator who is also an organisation's admin: their authenticator app must be asked
    # for whichever sign-in page they use, and failed attempts must count against the limit.
    owner_admin.is_staff = True
    owner_admin.save(update_fields=["is_staff"])
    client = Client()
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": owner_admin.email, "password": DEFAULT_PASSWORD, "next": "/admin/"},
    )
    assert "_auth_user_id" not in client.session
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    # Signing in through the portal asks for the second factor before any session is granted.
    response = sign_in(client, owner_admin.email, DEFAULT_PASSWORD)
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in client.session
