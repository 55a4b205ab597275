"""Belonging to several organisations and switching between them."""

from collections.abc import Callable

import pytest

from accounts.models import Membership, Organisation, User
from tests.accounts.helpers import events

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_hats(company_a: Organisation, company_b: Organisation) -> User:
    from tests.personas import make_member

    user = make_member(company_a, "auditor", email="two.hats@example.com")
    Membership.objects.create(user=user, organisation=company_b, role="staff")
    return user


def test_switch_changes_the_current_organisation(
    login: Callable, two_hats: User, company_a: Organisation, company_b: Organisation
) -> None:
    client = login(two_hats)
    home = client.get("/").content.decode()
    assert "Company A" in home and "Company B" in home  # the switcher lists both
    assert "You are auditor here" in home

    response = client.post("/organisation/switch/", {"organisation": str(company_b.pk)})
    assert response.status_code == 302
    home = client.get("/").content.decode()
    assert "You are staff here" in home
    [event] = events("organisation.switched")
    assert event.organisation_id == company_b.pk
    assert event.before == {"organisation": "company-a"}
    assert event.after == {"organisation": "company-b", "role": "staff"}


def test_switching_to_the_current_organisation_records_nothing(
    login: Callable, two_hats: User, company_a: Organisation
) -> None:
    client = login(two_hats)
    client.get("/")
    client.post("/organisation/switch/", {"organisation": str(company_a.pk)})
    assert not events("organisation.switched")


@pytest.mark.parametrize(
    "value", ["", "nonsense", "1" * 500, "00000000-0000-4000-8000-000000000000"]
)
def test_switch_to_bad_ids(login: Callable, two_hats: User, value: str) -> None:
    response = login(two_hats).post("/organisation/switch/", {"organisation": value})
    assert response.status_code in (302, 404)
    assert not events("organisation.switched")


def test_switch_to_a_foreign_organisation_is_404(
    login: Callable, two_hats: User, company_c: Organisation
) -> None:
    client = login(two_hats)
    response = client.post("/organisation/switch/", {"organisation": str(company_c.pk)})
    assert response.status_code == 404
    assert "Cobalt" not in client.get("/").content.decode()


def test_a_stale_session_choice_falls_back_to_a_real_membership(
    login: Callable, two_hats: User, company_b: Organisation
) -> None:
    client = login(two_hats)
    client.post("/organisation/switch/", {"organisation": str(company_b.pk)})
    assert "You are staff here" in client.get("/").content.decode()
    Membership.objects.filter(user=two_hats, organisation=company_b).delete()
    home = client.get("/").content.decode()
    assert "You are auditor here" in home
    assert "Company B" not in home
