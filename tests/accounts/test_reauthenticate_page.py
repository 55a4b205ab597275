"""The password re-entry page (allauth's reauthenticate, our template): the password field has
the focus from the start, a wrong password is refused there, the right one lets the held
request go ahead (issue 18 item 13). Chromium checks the focus itself in
tests/delegations/partner/test_partner_browser.py."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db


def _password_input(html: str) -> str:
    found = re.search(r"<input[^>]*type=\"password\"[^>]*>", html)
    assert found, "the page has a password field"
    return found.group(0)


def test_the_password_field_has_the_focus(login, partner_staff: User) -> None:
    client: Client = login(partner_staff, reauthenticated=False)
    response = client.get(reverse("account_reauthenticate") + "?next=/")
    assert response.status_code == 200
    field = _password_input(response.content.decode())
    assert " autofocus" in field and 'autocomplete="current-password"' in field
    assert 'name="password"' in field


def test_a_wrong_password_is_refused_and_the_right_one_goes_ahead(
    login, partner_staff: User
) -> None:
    client: Client = login(partner_staff, reauthenticated=False)
    url = reverse("account_reauthenticate") + "?next=/delegations/"

    wrong = client.post(url, {"password": "not-it", "next": "/delegations/"})
    assert wrong.status_code == 200
    field = _password_input(wrong.content.decode())
    assert 'aria-invalid="true"' in field and " autofocus" in field

    right = client.post(url, {"password": DEFAULT_PASSWORD, "next": "/delegations/"})
    assert right.status_code == 302 and right["Location"] == "/delegations/"
