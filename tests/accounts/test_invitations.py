"""Accepting an invitation: as a new person (choose a password) or with an existing account."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.utils import timezone

from accounts import invitations
from accounts.models import Invitation, Membership, Organisation, User
from tests.accounts.helpers import all_event_text, events
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Copper-meadow-violin-77"


@pytest.fixture
def invited(
    owner_admin: User, company_a: Organisation, django_capture_on_commit_callbacks: Callable
) -> Callable[..., tuple[Invitation, str]]:
    """`invited(email, role)` -> (invitation, accept path), sent by company A's admin."""

    def make(email: str = "newcomer@example.com", role: str = "auditor") -> tuple[Invitation, str]:
        with django_capture_on_commit_callbacks(execute=True):
            invitation = invitations.invitation_create(
                organisation=company_a,
                email=email,
                role=role,
                invited_by=owner_admin,
                base_url="http://testserver/",
            )
        from django.core import mail

        body = mail.outbox[-1].body
        url = next(word for word in body.split() if "/invitations/" in word)
        return invitation, url.split("testserver", 1)[1]

    return make


def test_new_person_sets_a_password_and_joins(invited: Callable, company_a: Organisation) -> None:
    invitation, path = invited()
    client = Client()
    page = client.get(path)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Company A" in body
    assert "Choose a password" in body

    response = client.post(
        path,
        {
            "first_name": "Nia",
            "last_name": "New",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="newcomer@example.com")
    assert user.check_password(NEW_PASSWORD)
    assert EmailAddress.objects.get(user=user).verified
    assert Membership.objects.get(user=user, organisation=company_a).role == "auditor"
    invitation.refresh_from_db()
    assert invitation.accepted_by == user

    home = client.get("/")
    assert home.status_code == 200
    assert "Company A" in home.content.decode()
    [event] = events("invitation.accepted")
    assert event.actor_id == user.pk
    assert NEW_PASSWORD not in all_event_text()
    # The link is spent.
    assert Client().get(path).status_code == 410


@pytest.mark.parametrize(
    ("password1", "password2", "message"),
    [
        ("short", "short", "too short"),
        (NEW_PASSWORD, NEW_PASSWORD + "x", "same password"),
        ("12345678901", "12345678901", "entirely numeric"),
        ("", "", "required"),
    ],
)
def test_new_person_password_rules(
    invited: Callable, password1: str, password2: str, message: str
) -> None:
    _, path = invited()
    response = Client().post(path, {"password1": password1, "password2": password2})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not User.objects.filter(email="newcomer@example.com").exists()


def test_existing_account_signs_in_then_accepts(
    invited: Callable, company_a: Organisation, login: Callable
) -> None:
    existing = UserFactory(email="newcomer@example.com")
    _, path = invited()
    anonymous = Client()
    page = anonymous.get(path)
    assert "Sign in to accept" in page.content.decode()
    assert "Choose a password" not in page.content.decode()
    # A POST without signing in does not create or join anything.
    anonymous.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert not Membership.objects.filter(user=existing).exists()
    assert not existing.check_password(NEW_PASSWORD)

    client = Client()
    response = client.post(
        f"/accounts/login/?next={path}", {"login": existing.email, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == path
    assert "Accept and join" in client.get(path).content.decode()
    assert client.post(path).status_code == 302
    assert Membership.objects.get(user=existing, organisation=company_a).role == "auditor"


def test_someone_else_signed_in_cannot_accept(
    invited: Callable, login: Callable, partner_staff: User, company_a: Organisation
) -> None:
    _, path = invited()
    client = login(partner_staff)
    page = client.get(path)
    assert "this invitation is for newcomer@example.com" in page.content.decode()
    response = client.post(path)
    assert response.status_code == 400
    assert not Membership.objects.filter(user=partner_staff, organisation=company_a).exists()


def test_expired_cancelled_and_unknown_links(invited: Callable, owner_admin: User) -> None:
    invitation, path = invited()
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = Client().get(path)
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert (
        Client().post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}).status_code
        == 410
    )
    assert not User.objects.filter(email="newcomer@example.com").exists()

    second, second_path = invited(email="second@example.com")
    invitations.invitation_cancel(invitation=second, cancelled_by=owner_admin)
    assert Client().get(second_path).status_code == 410

    for bogus in ("/invitations/not-a-token/", "/invitations/" + "A" * 5000 + "/"):
        assert Client().get(bogus).status_code == 404


def test_accepting_twice_is_refused(invited: Callable, login: Callable) -> None:
    existing = UserFactory(email="newcomer@example.com")
    invitation, _ = invited()
    invitations.invitation_accept(invitation=invitation, user=existing)
    with pytest.raises(Exception, match="already been accepted"):
        invitations.invitation_accept(invitation=invitation, user=existing)
    assert Membership.objects.filter(user=existing).count() == 1


@pytest.fixture
def squatter() -> User:
    """Someone who typed the invited address into their own account and never confirmed it
    (they cannot: the confirmation goes to the address's real owner)."""
    user = UserFactory(email="squatter@example.org")
    EmailAddress.objects.create(user=user, email="newcomer@example.com", verified=False)
    return user


def test_someone_elses_unconfirmed_address_does_not_block_the_invited_newcomer(
    invited: Callable, company_a: Organisation, squatter: User, login: Callable
) -> None:
    _, path = invited()
    # The squatter, signed in, cannot take the invitation with their unconfirmed copy.
    squatter_browser = login(squatter)
    assert "this invitation is for newcomer@example.com" in (
        squatter_browser.get(path).content.decode()
    )
    assert squatter_browser.post(path).status_code == 400

    # The address's real owner, who has no account, is offered one (not "sign in").
    client = Client()
    page = client.get(path).content.decode()
    assert "Choose a password" in page
    assert "Sign in to accept" not in page
    response = client.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    owner = User.objects.get(email="newcomer@example.com")
    assert Membership.objects.get(user=owner, organisation=company_a).role == "auditor"
    assert EmailAddress.objects.get(email="newcomer@example.com", verified=True).user == owner
    # The address is proven now: the squatter's claim to it is gone (allauth could never
    # confirm it any more, only one account may hold an address verified).
    assert not EmailAddress.objects.filter(user=squatter, email="newcomer@example.com").exists()
    assert EmailAddress.objects.filter(user=squatter, email=squatter.email).exists()
    assert not Membership.objects.filter(user=squatter, organisation=company_a).exists()


def test_someone_elses_confirmed_address_still_means_sign_in_to_accept(
    invited: Callable,
) -> None:
    holder = UserFactory(email="holder@example.org")
    EmailAddress.objects.create(user=holder, email="newcomer@example.com", verified=True)
    _, path = invited()
    client = Client()
    assert "Sign in to accept" in client.get(path).content.decode()
    client.post(path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert not User.objects.filter(email="newcomer@example.com").exists()
