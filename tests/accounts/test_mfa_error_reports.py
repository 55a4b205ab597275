"""allauth's MFA views (enrolment, sign-in and re-authentication codes) keep the TOTP secret
and the typed code out of Django's error reports and the logs when they fail, with DEBUG off
and on (issue 18, item 7): portal/urls.py serves them wrapped in `sensitive_variables` and
`sensitive_post_parameters`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal import auth as totp_auth
from allauth.mfa.utils import decrypt
from django.test import Client

from accounts.models import User
from tests.accounts.test_mfa import admin_without_mfa, current_code  # noqa: F401 - a fixture
from tests.error_reports import assert_no_secret_in_reports

pytestmark = pytest.mark.django_db


def break_code_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    def check_then_fail(secret: str, code: str) -> bool:
        raise RuntimeError("the code check failed with the secret in hand")

    monkeypatch.setattr(totp_auth, "validate_totp_code", check_then_fail)


def test_enrolment_keeps_the_totp_secret_and_code_out_of_reports(
    login: Callable[..., Client],
    admin_without_mfa: User,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = login(admin_without_mfa)
    client.raise_request_exception = False
    secret = client.get("/accounts/2fa/totp/activate/").context["form"].secret
    code = current_code(secret)
    break_code_checks(monkeypatch)
    assert_no_secret_in_reports(
        lambda: client.post("/accounts/2fa/totp/activate/", {"code": code}),
        lambda: [secret, f"'{code}'"],
        caplog=caplog,
    )


def test_reauthentication_keeps_the_totp_secret_and_code_out_of_reports(
    login: Callable[..., Client],
    owner_admin: User,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = decrypt(Authenticator.objects.get(user=owner_admin, type="totp").data["secret"])
    client = login(owner_admin, reauthenticated=False)
    client.raise_request_exception = False
    code = current_code(secret)
    break_code_checks(monkeypatch)
    assert_no_secret_in_reports(
        lambda: client.post("/accounts/2fa/reauthenticate/", {"code": code}),
        lambda: [secret, f"'{code}'"],
        caplog=caplog,
    )


def test_the_sign_in_code_stage_keeps_the_secret_and_code_out_of_reports(
    owner_admin: User, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = decrypt(Authenticator.objects.get(user=owner_admin, type="totp").data["secret"])
    code = current_code(secret)
    break_code_checks(monkeypatch)

    def sign_in() -> Any:
        client = Client(raise_request_exception=False)
        client.post(
            "/accounts/login/", {"login": owner_admin.email, "password": "Quiet-harbour-lantern-42"}
        )
        return client.post("/accounts/2fa/authenticate/", {"code": code})

    assert_no_secret_in_reports(sign_in, lambda: [secret, f"'{code}'"], caplog=caplog)


def test_every_mfa_page_is_served_marked_sensitive() -> None:
    """A new allauth MFA page (or a new type enabled in settings) must be added to
    portal.urls.MFA_SECRET_VIEWS, or it would answer unmarked."""
    from allauth.mfa import urls as mfa_urls
    from django.urls import URLPattern, URLResolver, resolve, reverse

    def names(patterns: list[Any]) -> list[str]:
        found: list[str] = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found += names(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and pattern.name:
                found.append(pattern.name)
        return found

    mfa_names = names(mfa_urls.urlpatterns)
    assert "mfa_activate_totp" in mfa_names and "mfa_authenticate" in mfa_names
    for name in mfa_names:
        # What Django's report filter looks for up the stack (the attribute listing the
        # names is set only on the first call).
        view = resolve(reverse(name)).func
        assert view.__code__.co_name == "sensitive_variables_wrapper", name
