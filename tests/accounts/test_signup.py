"""Registering an organisation: one form, one transaction, email confirmation, first admin."""

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from accounts.models import Membership, Organisation, User
from tests.accounts.helpers import all_event_text, events, links_in_last_email, path_of
from tests.factories import UserFactory

PASSWORD = "Quiet-harbour-lantern-42"


def signup_data(**overrides: str) -> dict:
    data = {
        "kind": "partner",
        "organisation_name": "Bramble Operations",
        "account_uid": "1234567890123456",
        "enterprise_alias": "bramble-ops",
        "first_name": "Bea",
        "last_name": "Bramble",
        "email": "bea@bramble.example",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_signup_page_renders_the_organisation_form(client: Client) -> None:
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    body = response.content.decode()
    for name in ("kind", "organisation_name", "account_uid", "enterprise_alias", "email"):
        assert f'name="{name}"' in body


@pytest.mark.django_db
def test_signup_creates_person_organisation_and_admin_membership_then_confirms(
    client: Client, settings: object
) -> None:
    settings.PORTAL_REQUIRE_MFA = False  # type: ignore[attr-defined]
    response = client.post("/accounts/signup/", signup_data())
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"

    user = User.objects.get(email="bea@bramble.example")
    organisation = Organisation.objects.get(account_uid="1234567890123456")
    assert organisation.kind == "partner"
    assert organisation.name == "Bramble Operations"
    assert organisation.enterprise_alias == "bramble-ops"
    assert organisation.slug == "bramble-operations"
    assert Membership.objects.get(user=user, organisation=organisation).role == "admin"
    assert not EmailAddress.objects.get(user=user).verified

    # Not signed in until the address is confirmed.
    assert client.get("/").status_code == 200
    assert "Register your organisation" in client.get("/").content.decode()

    confirm_url = next(
        link for link in links_in_last_email("bea@bramble.example") if "confirm" in link
    )
    assert client.get(path_of(confirm_url)).status_code == 200
    response = client.post(path_of(confirm_url))
    assert response.status_code == 302
    assert EmailAddress.objects.get(user=user).verified

    home = client.get("/")
    assert home.status_code == 200
    assert "Bramble Operations" in home.content.decode()

    registered = events("organisation.registered")
    assert len(registered) == 1
    assert registered[0].after["account_uid"] == "1234567890123456"
    assert registered[0].actor_id == user.pk
    assert PASSWORD not in all_event_text()


@pytest.mark.django_db
def test_signup_with_a_bad_account_uid_writes_nothing(client: Client) -> None:
    response = client.post(
        "/accounts/signup/",
        signup_data(account_uid="".join(chr(0xFF10 + int(d)) for d in "12345678")),
    )
    assert response.status_code == 200
    assert "digits 0-9 only" in response.content.decode()
    assert not User.objects.exists()
    assert not Organisation.objects.exists()
    assert not mail.outbox


@pytest.mark.django_db
def test_signup_for_an_already_registered_account_of_the_same_kind_is_refused(
    client: Client, company_b: Organisation
) -> None:
    response = client.post("/accounts/signup/", signup_data(account_uid=company_b.account_uid))
    assert response.status_code == 200
    assert "already registered for this account" in response.content.decode()
    assert not User.objects.filter(email="bea@bramble.example").exists()


@pytest.mark.django_db
def test_the_same_account_may_register_once_as_owner_and_once_as_partner(
    client: Client, company_b: Organisation
) -> None:
    response = client.post(
        "/accounts/signup/", signup_data(kind="owner", account_uid=company_b.account_uid)
    )
    assert response.status_code == 302
    assert Organisation.objects.filter(account_uid=company_b.account_uid).count() == 2


@pytest.mark.django_db
def test_signup_with_a_known_email_reveals_nothing_and_creates_no_organisation(
    client: Client,
) -> None:
    UserFactory(email="bea@bramble.example")
    response = client.post("/accounts/signup/", signup_data())
    # The same answer as a fresh sign-up: no hint that the address has an account.
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert not Organisation.objects.exists()
    assert "already" in mail.outbox[-1].body.lower()


@pytest.mark.django_db
def test_signup_rolls_back_everything_when_the_audit_write_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from accounts import services

    def broken_audit(**kwargs: object) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(services, "audit_record", broken_audit)
    client = Client(raise_request_exception=False)
    response = client.post("/accounts/signup/", signup_data())
    assert response.status_code == 500
    assert not User.objects.exists()
    assert not Organisation.objects.exists()
    assert not EmailAddress.objects.exists()
    assert not mail.outbox


@pytest.mark.django_db
def test_slug_collisions_get_a_suffix(client: Client) -> None:
    client.post("/accounts/signup/", signup_data())
    Client().post(
        "/accounts/signup/",
        signup_data(account_uid="1111222233334444", email="other@bramble.example"),
    )
    assert sorted(Organisation.objects.values_list("slug", flat=True)) == [
        "bramble-operations",
        "bramble-operations-2",
    ]


@pytest.mark.django_db
def test_oversized_signup_post_is_a_400_not_a_500(settings: object) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024  # type: ignore[attr-defined]
    client = Client(raise_request_exception=False)
    response = client.post("/accounts/signup/", signup_data(organisation_name="x" * 5000))
    assert response.status_code == 400
    assert not Organisation.objects.exists()


@pytest.mark.django_db
def test_someone_elses_unconfirmed_address_does_not_block_its_owners_sign_up(
    client: Client, settings: object
) -> None:
    settings.PORTAL_REQUIRE_MFA = False  # type: ignore[attr-defined]
    squatter = UserFactory(email="squatter@example.org")
    EmailAddress.objects.create(user=squatter, email="bea@bramble.example", verified=False)

    response = client.post("/accounts/signup/", signup_data())
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    owner = User.objects.get(email="bea@bramble.example")
    assert Organisation.objects.get(account_uid="1234567890123456").memberships.get().user == owner

    confirm_url = next(
        link for link in links_in_last_email("bea@bramble.example") if "confirm" in link
    )
    assert client.post(path_of(confirm_url)).status_code == 302
    assert EmailAddress.objects.get(email="bea@bramble.example", verified=True).user == owner
    # Proven by its owner: the squatter's unconfirmed copy goes.
    assert not EmailAddress.objects.filter(user=squatter, email="bea@bramble.example").exists()
    assert "Bramble Operations" in client.get("/").content.decode()
