"""The API's pages fit a 390 px phone: no sideways scrolling, with rows in every table."""

from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import User
from api.services import api_token_create, service_account_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = {"width": 390, "height": 844}
WIDTH = (
    "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    " - document.documentElement.clientWidth"
)


def test_the_api_pages_fit_a_phone(
    new_browser_context: Callable[..., Any],
    live_server: Any,
    owner_admin: User,
    settings: Any,
) -> None:
    from tests.fixtures.browser import sign_in

    settings.PORTAL_REQUIRE_MFA = False
    api_token_create(
        user=owner_admin,
        name="a rather long token name for CI",
        scopes=["read", "audit"],
        expires_in_days=30,
    )
    organisation = owner_admin.memberships.get().organisation
    service_account_create(
        organisation=organisation,
        created_by=owner_admin,
        name="ci-pipeline",
        scopes=["read", "audit"],
        expires_in_days=30,
    )
    context = new_browser_context(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(context, live_server.url, owner_admin)
    page = context.new_page()
    for path in ("/account/tokens/", "/organisation/service-accounts/", "/account/device/"):
        response = page.goto(live_server.url + path)
        assert response is not None and response.ok, path
        assert page.evaluate(WIDTH) <= 0, path
