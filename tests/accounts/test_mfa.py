"""MFA: enrolment through allauth, the rule that admins must have it, and the demo banner."""

from collections.abc import Callable

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import (
    format_hotp_value,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.test import Client

from accounts.models import Membership, Organisation, User
from tests.accounts.helpers import all_event_text, events
from tests.personas import make_member

pytestmark = pytest.mark.django_db


def current_code(secret: str) -> str:
    counter = next(iter(yield_hotp_counters_from_time()))
    return format_hotp_value(hotp_value(secret, counter))


@pytest.fixture
def admin_without_mfa(company_a: Organisation) -> User:
    return make_member(company_a, "admin", email="fresh.admin@example.com", mfa=False)


def test_admin_without_mfa_is_sent_to_enrol(login: Callable, admin_without_mfa: User) -> None:
    client = login(admin_without_mfa)
    for path in ("/", "/organisation/members/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == "/accounts/2fa/totp/activate/"
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    assert "requires two-factor authentication for admins" in page.content.decode()
    # Mutations are blocked too, not only pages.
    response = client.post(
        "/organisation/members/invite/", {"email": "x@example.com", "role": "auditor"}
    )
    assert response.status_code == 302


def test_enrolment_with_a_real_code_lets_the_admin_in_and_is_audited(
    login: Callable, admin_without_mfa: User, django_capture_on_commit_callbacks: Callable
) -> None:
    client = login(admin_without_mfa)
    page = client.get("/accounts/2fa/totp/activate/")
    secret = page.context["form"].secret
    assert f'value="{secret}"' in page.content.decode()
    # allauth sends its MFA signals once its own transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/2fa/totp/activate/", {"code": current_code(secret)})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=admin_without_mfa, type="totp").exists()
    assert client.get("/").status_code == 200
    [enabled] = events("mfa.enabled")
    assert enabled.actor_id == admin_without_mfa.pk
    assert secret not in all_event_text()


def test_wrong_code_is_a_form_error(login: Callable, admin_without_mfa: User) -> None:
    client = login(admin_without_mfa)
    client.get("/accounts/2fa/totp/activate/")
    response = client.post("/accounts/2fa/totp/activate/", {"code": "000000"})
    assert response.status_code == 200
    assert "Incorrect code" in response.content.decode()
    assert not Authenticator.objects.filter(user=admin_without_mfa).exists()


def test_staff_and_auditors_are_not_forced(
    login: Callable, auditor: User, partner_staff: User
) -> None:
    assert login(auditor).get("/").status_code == 200
    assert login(partner_staff).get("/").status_code == 200


def test_admin_in_one_organisation_can_still_work_in_another(
    login: Callable, admin_without_mfa: User, company_b: Organisation
) -> None:
    Membership.objects.create(user=admin_without_mfa, organisation=company_b, role="staff")
    client = login(admin_without_mfa)
    response = client.post("/organisation/switch/", {"organisation": str(company_b.pk)})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_with_enforcement_off_admins_pass_and_a_banner_says_so(
    login: Callable, admin_without_mfa: User, settings: object
) -> None:
    settings.PORTAL_REQUIRE_MFA = False  # type: ignore[attr-defined]
    settings.PORTAL_EMBEDDED = True  # type: ignore[attr-defined]
    response = login(admin_without_mfa).get("/")
    assert response.status_code == 200
    assert "MFA enforcement is off" in response.content.decode()


def test_banner_is_absent_when_enforced(login: Callable, auditor: User) -> None:
    assert "MFA enforcement is off" not in login(auditor).get("/").content.decode()


def test_admins_cannot_switch_mfa_off_while_it_is_required(
    login: Callable, owner_admin: User
) -> None:
    client = login(owner_admin)
    response = client.post("/accounts/2fa/totp/deactivate/")
    assert response.status_code == 200
    assert "Admins must keep two-factor authentication on" in response.content.decode()
    assert Authenticator.objects.filter(user=owner_admin, type="totp").exists()


def test_non_admins_can_switch_mfa_off_and_it_is_audited(
    login: Callable, auditor: User, django_capture_on_commit_callbacks: Callable
) -> None:
    from tests.personas import enable_totp

    enable_totp(auditor)
    client = login(auditor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/2fa/totp/deactivate/")
    assert response.status_code == 302
    assert not Authenticator.objects.filter(user=auditor, type="totp").exists()
    assert len(events("mfa.disabled")) == 1


def test_sign_in_asks_admins_for_their_code(owner_admin: User) -> None:
    from allauth.mfa.utils import decrypt

    client = Client()
    response = client.post(
        "/accounts/login/", {"login": owner_admin.email, "password": "Quiet-harbour-lantern-42"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/authenticate/"
    # The row holds ciphertext; allauth reads it through the adapter's decrypt hook.
    secret = decrypt(Authenticator.objects.get(user=owner_admin, type="totp").data["secret"])
    response = client.post("/accounts/2fa/authenticate/", {"code": current_code(secret)})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
