"""Chromium walks a delegation's Activity page: the calls with their people and alerts, the
chart, a filter, the right-sizing proposal; on a desktop and at a phone's width (390 px).

Screenshots land in test-artifacts/browser/<test>/.
"""

from __future__ import annotations

import pytest

from activity.services import activity_ingest_account
from tests.activity.conftest import FakeTrail, event, grant  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def walked(grant):  # noqa: F811
    pages = [
        [
            event(1, name="DescribeInstances"),
            event(2, name="StopInstance", rw="Write"),
            event(3, name="ListRoles", error="NoPermission"),
            event(1500, name="DescribeInstances"),
            event(40, session="mallory", key="STS.never-issued"),
        ]
    ]
    activity_ingest_account(cloud_account=grant.cloud_account, client=FakeTrail(pages=pages))
    return grant


def test_activity_page_on_desktop_and_phone(walked, signed_in_page, live_server, owner_admin, shot):
    page = signed_in_page(owner_admin)
    page.set_viewport_size({"width": 1280, "height": 860})
    url = f"{live_server.url}/audit/delegations/{walked.delegation.pk}/activity/"
    page.goto(url)
    rows = page.locator("[data-testid=activity] tbody tr")
    assert rows.count() == 5
    assert page.locator("[data-testid=person]").first.inner_text() == walked.staff.email
    assert page.locator("[data-testid=alert]").count() == 2  # the denied call, mallory's session
    assert page.locator("[data-testid=activity-chart] .activity-bar").count() >= 2
    shot(page, "activity desktop")

    page.select_option("#id_rw", "Write")
    page.focus("[data-testid=apply-filters]")
    page.keyboard.press("Enter")
    page.wait_for_url("**rw=Write**")
    assert [a.inner_text() for a in page.locator("[data-testid=action]").all()] == [
        "ecs:StopInstance"
    ]
    shot(page, "filtered to writes")

    page.goto(url)
    # The sticky header covers whatever is scrolled to the top: open it from the keyboard.
    page.focus("[data-testid=right-sizing] summary")
    page.keyboard.press("Enter")
    draft = page.locator("[data-testid=draft-policy]")
    assert '"ecs:StopInstance"' in draft.inner_text()
    used = [a.inner_text() for a in page.locator("[data-testid=used-action]").all()]
    assert used == ["ecs:DescribeInstances", "ecs:StopInstance"]
    shot(page, "right sizing")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(url)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at 390 px ({width} px)"
    shot(page, "activity phone")
