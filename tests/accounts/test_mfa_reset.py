"""An operator resets the MFA of a person who lost every second factor (`manage.py mfa_reset`):
authenticators gone, sessions ended, the event audited with its reason, the person emailed,
and an admin sent to enrol again at the next sign-in."""

from collections.abc import Callable
from io import StringIO

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.usersessions.models import UserSession
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from accounts import emails
from accounts.mfa_services import mfa_reset_by_operator
from accounts.models import Organisation, User
from tests.accounts.helpers import all_event_text, events
from tests.accounts.test_mfa import current_code
from tests.factories import DEFAULT_PASSWORD
from tests.personas import enable_totp, make_member

pytestmark = pytest.mark.django_db

REASON = "Lost phone and recovery codes, ticket OPS-1234, identity checked by video call"


@pytest.fixture
def locked_out(company_a: Organisation) -> tuple[User, str, list[str]]:
    """An organisation admin with an authenticator app and recovery codes: the secret and codes
    no audit event or email may ever contain."""
    admin = make_member(company_a, "admin", email="lost.phone@company-a.example", mfa=False)
    secret = enable_totp(admin)
    codes = RecoveryCodes.activate(admin).generate_codes()
    return admin, secret, codes


def _password_sign_in(user: User) -> tuple[Client, str]:
    """allauth's sign-in form; returns the client and where it was sent next."""
    client = Client()
    response = client.post(
        f"{reverse('account_login')}?next=/", {"login": user.email, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302, response.content.decode()[:500]
    return client, response["Location"]


def _full_sign_in(user: User, secret: str) -> Client:
    client, next_step = _password_sign_in(user)
    assert next_step == reverse("mfa_authenticate")
    response = client.post(next_step, {"code": current_code(secret)})
    assert response.status_code == 302 and response["Location"] == "/"
    return client


def _signed_in(client: Client) -> bool:
    return client.get("/").wsgi_request.user.is_authenticated


def test_the_service_removes_the_factors_ends_sessions_audits_and_emails(
    locked_out: tuple[User, str, list[str]],
    company_a: Organisation,
    company_b: Organisation,
    django_capture_on_commit_callbacks: Callable,
) -> None:
    admin, secret, codes = locked_out
    make_member(company_b, "staff", email="unrelated@company-b.example")
    browser = _full_sign_in(admin, secret)
    assert _signed_in(browser) and UserSession.objects.filter(user=admin).count() == 1
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        report = mfa_reset_by_operator(user=admin, reason=REASON, operator_label="ops-alice")

    assert report.removed == ["recovery codes", "authenticator app"]
    assert report.sessions_ended == 1
    assert not Authenticator.objects.filter(user=admin).exists()
    assert not UserSession.objects.filter(user=admin).exists()
    assert not _signed_in(browser)

    [reset] = events("mfa.reset_by_operator")
    assert reset.actor_id is None and reset.actor_label == "ops-alice"
    assert reset.target_label == admin.email
    assert reset.metadata["reason"] == REASON
    assert reset.metadata["removed"] == "recovery codes, authenticator app"
    assert reset.metadata["sessions_ended"] == "1"
    # Only the person's organisations see it.
    assert list(reset.scopes.values_list("organisation_id", flat=True)) == [company_a.pk]
    text = all_event_text()
    assert secret not in text and not any(code in text for code in codes)

    [message] = mail.outbox
    assert message.to == [admin.email]
    assert "two-factor authentication was reset" in message.subject
    assert "Set up two-factor authentication again the next time you sign in" in message.body
    assert "http://127.0.0.1:8000/accounts/login/" in message.body
    assert REASON not in message.body
    assert secret not in message.body and not any(code in message.body for code in codes)


@pytest.mark.parametrize(
    ("reason", "operator"), [("", "ops-alice"), ("   ", "ops-alice"), (REASON, " ")]
)
def test_a_reason_and_an_operator_are_required(
    locked_out: tuple[User, str, list[str]], reason: str, operator: str
) -> None:
    admin, _secret, _codes = locked_out
    with pytest.raises(ValidationError):
        mfa_reset_by_operator(user=admin, reason=reason, operator_label=operator)
    assert Authenticator.objects.filter(user=admin).count() == 2
    assert not events("mfa.reset_by_operator") and not mail.outbox


def test_a_person_without_a_second_factor_is_refused(
    company_a: Organisation, django_capture_on_commit_callbacks: Callable
) -> None:
    person = make_member(company_a, "auditor", email="no.mfa@company-a.example")
    with (
        pytest.raises(ValidationError, match="has no second factor to reset"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        mfa_reset_by_operator(user=person, reason=REASON, operator_label="ops-alice")
    assert not events("mfa.reset_by_operator") and not mail.outbox


def test_an_email_that_cannot_be_sent_leaves_the_reset_standing(
    locked_out: tuple[User, str, list[str]],
    django_capture_on_commit_callbacks: Callable,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin, _secret, _codes = locked_out

    def refused(**_kwargs: object) -> None:
        raise OSError("SMTP server refused the connection")

    monkeypatch.setattr(emails, "send_mfa_reset", refused)
    with django_capture_on_commit_callbacks(execute=True):
        mfa_reset_by_operator(user=admin, reason=REASON, operator_label="ops-alice")
    assert not Authenticator.objects.filter(user=admin).exists()
    assert len(events("mfa.reset_by_operator")) == 1
    assert "Could not send the MFA reset email" in caplog.text


def test_the_command_resets_and_prints_what_it_removed(
    locked_out: tuple[User, str, list[str]], django_capture_on_commit_callbacks: Callable
) -> None:
    admin, _secret, _codes = locked_out
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "mfa_reset",
            "--email",
            "LOST.PHONE@company-a.example",
            "--reason",
            REASON,
            "--operator",
            "ops-alice",
            stdout=out,
        )
    printed = out.getvalue()
    assert f"Reset two-factor authentication of {admin.email}" in printed
    assert "removed recovery codes, authenticator app" in printed
    assert "ended 0 sessions" in printed
    assert not Authenticator.objects.filter(user=admin).exists()
    [reset] = events("mfa.reset_by_operator")
    assert reset.actor_label == "ops-alice" and reset.source == "command:mfa_reset"
    assert [m.to for m in mail.outbox] == [[admin.email]]


def test_the_command_names_the_system_user_when_no_operator_is_given(
    locked_out: tuple[User, str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _secret, _codes = locked_out
    monkeypatch.setattr("getpass.getuser", lambda: "carol")
    call_command("mfa_reset", "--email", admin.email, "--reason", REASON, stdout=StringIO())
    [reset] = events("mfa.reset_by_operator")
    assert reset.actor_label == "carol (mfa_reset)"


def test_the_command_refuses_an_unknown_email(
    locked_out: tuple[User, str, list[str]],
) -> None:
    with pytest.raises(CommandError, match=r"No account has the address nobody@example\.com") as e:
        call_command(
            "mfa_reset", "--email", "nobody@example.com", "--reason", REASON, stdout=StringIO()
        )
    assert e.value.returncode != 0
    assert Authenticator.objects.count() == 2
    assert not events("mfa.reset_by_operator")


def test_the_command_refuses_a_blank_reason(locked_out: tuple[User, str, list[str]]) -> None:
    admin, _secret, _codes = locked_out
    with pytest.raises(CommandError, match="Give the reason") as e:
        call_command("mfa_reset", "--email", admin.email, "--reason", " ", stdout=StringIO())
    assert e.value.returncode != 0
    assert Authenticator.objects.filter(user=admin).count() == 2


def test_after_the_reset_an_admin_is_sent_to_enrol_at_the_next_sign_in(
    locked_out: tuple[User, str, list[str]], settings: object
) -> None:
    settings.PORTAL_REQUIRE_MFA = True  # type: ignore[attr-defined]
    admin, secret, _codes = locked_out
    # Before: the sign-in asks for the second factor, then the admin works normally.
    assert _full_sign_in(admin, secret).get("/").status_code == 200
    mfa_reset_by_operator(user=admin, reason=REASON, operator_label="ops-alice")
    # After: the password alone signs in (no factor is left to ask for) ...
    client, next_step = _password_sign_in(admin)
    assert next_step == "/"
    # ... and the admin is sent to set up an authenticator app before doing anything.
    for path in ("/", "/organisation/members/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == reverse("mfa_activate_totp")


def test_an_auditor_sees_the_reset_in_the_audit_history(
    locked_out: tuple[User, str, list[str]], auditor: User, login: Callable
) -> None:
    admin, _secret, _codes = locked_out
    mfa_reset_by_operator(user=admin, reason=REASON, operator_label="ops-alice")
    body = login(auditor).get("/audit/").content.decode()
    assert f"ops-alice reset the two-factor authentication of {admin.email}" in body
    assert REASON in body
    assert "recovery codes, authenticator app" in body


def test_the_email_is_in_the_persons_language(
    locked_out: tuple[User, str, list[str]], django_capture_on_commit_callbacks: Callable
) -> None:
    admin, _secret, _codes = locked_out
    User.objects.filter(pk=admin.pk).update(language="zh-hans")
    admin.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        mfa_reset_by_operator(user=admin, reason=REASON, operator_label="ops-alice")
    [message] = mail.outbox
    assert "多因素认证" in message.subject
    assert "多因素认证" in message.body and admin.email in message.body
