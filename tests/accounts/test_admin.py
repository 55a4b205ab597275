"""Django's admin (/admin/) is a window, not a side door: nothing deleted there skips the
portal's rules (the last-admin check, a member's removal steps, MFA for admins, ended sessions,
the audit log). Driven through the admin's real views with a superuser who signed in the way
/admin/login/ sends them (allauth's sign-in)."""

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.contrib import admin
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from tests.accounts.helpers import events
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _sign_in(email: str, *, next_path: str = "/") -> Client:
    client = Client()
    response = client.post(
        f"{reverse('account_login')}?next={next_path}",
        {"login": email, "password": DEFAULT_PASSWORD},
    )
    assert response.status_code == 302, response.content.decode()[:500]
    assert response["Location"] == next_path
    return client


@pytest.fixture
def operator() -> Client:
    """A superuser's browser, signed in through /admin/login/ (allauth's sign-in form)."""
    UserFactory(email="root@operator.example", is_staff=True, is_superuser=True)
    client = Client()
    # secure_admin_login: the admin's own form is never shown, allauth's sign-in is.
    response = client.get(reverse("admin:login"), {"next": "/admin/"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    signed_in = _sign_in("root@operator.example", next_path="/admin/")
    assert signed_in.get("/admin/").status_code == 200
    return signed_in


def _admin_url(obj: Model, view: str) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{view}", args=[obj.pk])


def _changelist(model: type[Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _bulk_delete(operator: Client, obj: Model) -> None:
    """The changelist's "Delete selected" action, confirmed."""
    operator.post(
        _changelist(type(obj)),
        {"action": "delete_selected", "_selected_action": [str(obj.pk)], "post": "yes"},
    )


def _deletion_refused(operator: Client, obj: Model) -> None:
    model = type(obj)
    assert operator.get(_admin_url(obj, "delete")).status_code == 403
    assert operator.post(_admin_url(obj, "delete"), {"post": "yes"}).status_code == 403
    _bulk_delete(operator, obj)
    assert model._default_manager.filter(pk=obj.pk).exists()
    listing = operator.get(_changelist(model)).content.decode()
    assert 'value="delete_selected"' not in listing


def test_people_memberships_and_organisations_cannot_be_deleted_there(
    operator: Client, company_b: Organisation, partner_admin: User, partner_staff: User
) -> None:
    staff_membership = Membership.objects.get(user=partner_staff)
    only_admin = Membership.objects.get(user=partner_admin)
    audit_rows = AuditEvent.objects.count()
    for obj in (partner_staff, staff_membership, only_admin, company_b, partner_admin):
        _deletion_refused(operator, obj)
    assert Membership.objects.filter(organisation=company_b).count() == 2
    assert not events("member.removed")
    assert AuditEvent.objects.count() == audit_rows
    # The operator is told where these changes are made instead.
    listing = operator.get(_changelist(Membership)).content.decode()
    assert "Members page" in listing


def test_an_admins_authenticator_cannot_be_deleted_there(
    operator: Client, owner_admin: User
) -> None:
    """Deleting the app here would turn off an admin's MFA without allauth's flow, the
    admins-keep-MFA rule or an mfa.disabled event."""
    totp = Authenticator.objects.get(user=owner_admin, type=Authenticator.Type.TOTP)
    _deletion_refused(operator, totp)
    # Nor can a second factor be planted or edited there.
    assert operator.get(reverse("admin:mfa_authenticator_add")).status_code == 403
    assert b'name="_save"' not in operator.get(_admin_url(totp, "change")).content


def test_email_addresses_are_only_shown_there(operator: Client, partner_staff: User) -> None:
    """An address proves who may accept an invitation: it is confirmed, added and removed by
    its owner through allauth, not typed in or deleted by an operator."""
    address = EmailAddress.objects.get(user=partner_staff)
    _deletion_refused(operator, address)
    assert operator.get(reverse("admin:account_emailaddress_add")).status_code == 403
    listing = operator.get(_changelist(EmailAddress)).content.decode()
    assert 'value="make_verified"' not in listing


@pytest.fixture
def staff_browser(partner_staff: User) -> Client:
    """partner_staff signed in through allauth, so allauth tracks the session."""
    client = _sign_in(partner_staff.email)
    assert UserSession.objects.filter(user=partner_staff).count() == 1
    return client


def _signed_in(client: Client) -> bool:
    return client.get("/").wsgi_request.user.is_authenticated


@pytest.mark.parametrize("how", ["delete view", "bulk action"])
def test_deleting_a_session_there_signs_the_person_out_and_is_audited(
    operator: Client, staff_browser: Client, partner_staff: User, company_b: Organisation, how: str
) -> None:
    session = UserSession.objects.get(user=partner_staff)
    assert _signed_in(staff_browser)
    if how == "delete view":
        response = operator.post(_admin_url(session, "delete"), {"post": "yes"})
        assert response.status_code == 302
    else:
        _bulk_delete(operator, session)
    assert not UserSession.objects.filter(user=partner_staff).exists()
    # Gone for real, not only untracked: a session the portal no longer knows of would outlive
    # a later removal from the organisation (which ends the sessions it knows).
    assert not _signed_in(staff_browser)
    [ended] = events("auth.session_ended")
    assert ended.actor.email == "root@operator.example"
    assert ended.target_label == partner_staff.email
    assert list(ended.scopes.values_list("organisation_id", flat=True)) == [company_b.pk]


def test_sessions_are_not_added_or_edited_there(
    operator: Client, staff_browser: Client, partner_staff: User, partner_admin: User
) -> None:
    session = UserSession.objects.get(user=partner_staff)
    assert operator.get(reverse("admin:usersessions_usersession_add")).status_code == 403
    page = operator.get(_admin_url(session, "change"))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    # A session handed to someone else would escape the ending of its person's sessions.
    operator.post(_admin_url(session, "change"), {"user": str(partner_admin.pk)})
    session.refresh_from_db()
    assert session.user == partner_staff


def test_the_audit_log_is_never_deletable_there(
    operator: Client, staff_browser: Client, partner_staff: User
) -> None:
    event = AuditEvent.objects.order_by("-sequence").first()
    assert event is not None
    _deletion_refused(operator, event)


def test_every_registered_model_was_looked_at() -> None:
    """A model registered in the admin later (by an app of ours or a package) is decided on
    here: may the admin delete it, and what does that skip?"""
    registered = {model._meta.label for model in admin.site._registry}
    assert registered == {
        "accounts.User",
        "accounts.Membership",
        "accounts.Organisation",
        "accounts.Invitation",
        "account.EmailAddress",
        "mfa.Authenticator",
        "usersessions.UserSession",
        "audit.AuditEvent",
        # Permission groups: nothing in the portal reads them, and people cannot be put in
        # one here (the person's page is read-only).
        "auth.Group",
    }
