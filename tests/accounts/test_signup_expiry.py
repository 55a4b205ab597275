"""A sign-up nobody confirms cannot hold its Alibaba Cloud account UID for good: beat removes
it after PORTAL_UNCONFIRMED_SIGNUP_DAYS, audited, and the account may be registered again."""

import logging
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from accounts.tasks import expire_unconfirmed_signups
from audit.verify import verify_chain
from delegations.models import BreakGlassRole, CatalogRole
from portal.celery import app
from tests.accounts.helpers import events, links_in_last_email, path_of
from tests.accounts.test_signup import signup_data
from tests.delegations.factories import CatalogRoleFactory, CloudAccountFactory
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db

UID = "1234567890123456"


@pytest.fixture(autouse=True)
def _period(settings: object) -> None:
    settings.PORTAL_UNCONFIRMED_SIGNUP_DAYS = 7  # type: ignore[attr-defined]
    settings.PORTAL_REQUIRE_MFA = False  # type: ignore[attr-defined]


def _signed_up_days_ago(organisation: Organisation, days: float) -> None:
    Organisation.objects.filter(pk=organisation.pk).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def _squat(client: Client) -> Organisation:
    """Someone signs up for the account with an address they cannot (or do not) confirm."""
    response = client.post("/accounts/signup/", signup_data(email="someone@typo.example"))
    assert response.status_code == 302
    return Organisation.objects.get(account_uid=UID)


def test_an_unconfirmed_signup_gives_its_account_back_after_the_period() -> None:
    squatted = _squat(Client())
    founder = User.objects.get(email="someone@typo.example")

    # The real company is refused while the sign-up may still be confirmed, and told why it
    # will not last.
    refused = Client().post("/accounts/signup/", signup_data(email="bea@bramble.example"))
    assert refused.status_code == 200
    assert "already registered for this account" in refused.content.decode()
    assert "7 days" in refused.content.decode()

    _signed_up_days_ago(squatted, 6.9)
    expire_unconfirmed_signups.apply()
    assert Organisation.objects.filter(pk=squatted.pk).exists()

    _signed_up_days_ago(squatted, 7.1)
    expire_unconfirmed_signups.apply()
    assert not Organisation.objects.filter(pk=squatted.pk).exists()
    # The founder never confirmed, so their account goes too: its address is free again.
    assert not User.objects.filter(pk=founder.pk).exists()
    assert not EmailAddress.objects.filter(email="someone@typo.example").exists()
    [expired] = events("organisation.signup_expired")
    assert expired.actor is None
    assert expired.organisation_id == squatted.pk
    assert expired.before["account_uid"] == UID
    assert expired.before["first_admin"] == "someone@typo.example"
    # The sign-up's own events stay, and the chain with them.
    assert len(events("organisation.registered")) == 1
    assert verify_chain().ok

    # The real company signs up for its account and confirms.
    client = Client()
    response = client.post("/accounts/signup/", signup_data(email="bea@bramble.example"))
    assert response.status_code == 302
    confirm = next(u for u in links_in_last_email("bea@bramble.example") if "confirm" in u)
    assert client.post(path_of(confirm)).status_code == 302
    assert Organisation.objects.get(account_uid=UID).memberships.get().user.email == (
        "bea@bramble.example"
    )


def test_a_confirmed_organisation_is_never_removed(client: Client) -> None:
    organisation = _squat(client)
    confirm = next(u for u in links_in_last_email("someone@typo.example") if "confirm" in u)
    assert client.post(path_of(confirm)).status_code == 302
    _signed_up_days_ago(organisation, 365)
    expire_unconfirmed_signups.apply()
    assert Organisation.objects.filter(pk=organisation.pk).exists()
    assert not events("organisation.signup_expired")


def test_an_organisation_someone_joined_is_not_a_lapsed_signup(
    company_b: Organisation, partner_admin: User
) -> None:
    """Only organisations whose people never confirmed an address or signed in lapse."""
    invited = User.objects.create_user(email="never-confirmed@company-b.example")
    Membership.objects.create(user=invited, organisation=company_b, role="staff")
    memberless = OrganisationFactory(kind=Organisation.Kind.PARTNER)
    for organisation in (company_b, memberless):
        _signed_up_days_ago(organisation, 365)
    expire_unconfirmed_signups.apply()
    assert Organisation.objects.filter(pk__in=[company_b.pk, memberless.pk]).count() == 2
    assert User.objects.filter(pk=invited.pk).exists()


def test_a_lapsed_signup_something_refers_to_is_kept_and_reported(
    company_a: Organisation, owner_admin: User, caplog: pytest.LogCaptureFixture
) -> None:
    """Another organisation's row pointing at the sign-up (here one made before offers to
    unconfirmed sign-ups were refused) is never deleted along with it: the sign-up stays and
    the operators are told."""
    squatted = _squat(Client())
    role: CatalogRole = CatalogRoleFactory(
        cloud_account=CloudAccountFactory(organisation=company_a)
    )
    break_glass = BreakGlassRole.objects.create(
        organisation=company_a, catalog_role=role, partner=squatted, max_hours=1
    )
    _signed_up_days_ago(squatted, 30)
    with caplog.at_level(logging.WARNING, logger="accounts.services"):
        expire_unconfirmed_signups.apply()
    assert Organisation.objects.filter(pk=squatted.pk).exists()
    assert BreakGlassRole.objects.filter(pk=break_glass.pk).exists()
    assert User.objects.filter(email="someone@typo.example").exists()
    assert not events("organisation.signup_expired")
    assert "delegations.BreakGlassRole" in caplog.text
    assert str(squatted.pk) in caplog.text


def test_the_sweep_is_on_the_beat_schedule(settings: object) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["expire-unconfirmed-signups"]  # type: ignore[attr-defined]
    app.loader.import_default_modules()
    assert entry["task"] == expire_unconfirmed_signups.name
    assert entry["task"] in app.tasks
    assert not entry.get("args") and not entry.get("kwargs")
    # Often enough that a lapsed sign-up is freed within the hour.
    assert entry["schedule"] <= 3600


def test_nothing_to_remove_sends_nothing() -> None:
    expire_unconfirmed_signups.apply()
    assert not mail.outbox
    assert not events("organisation.signup_expired")
