"""Chromium: the four personas' main pages in zh-hans at desktop and phone widths, checked for
sideways overflow (Chinese labels are shorter but wrap differently), with screenshots in
test-artifacts/i18n/<persona>/ (issue 17's proof, part 3). And the header's language switcher,
a plain form under the portal's CSP, turns the sign-in page Chinese and back.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from delegations.models import Delegation
from tests.fixtures.browser import save_screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "i18n"
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def _overflow(page: Any) -> int:
    """How many CSS pixels the document is wider than the viewport (0 when it fits)."""
    return int(
        page.evaluate(
            "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
            " - document.documentElement.clientWidth"
        )
    )


@pytest.fixture
def chinese_world(busy_world: dict[str, User]) -> dict[str, Any]:
    """The busy world (an active delegation with Alice linked, assigned and holding
    credentials: every table has rows); every persona reads Chinese, in Shanghai's time."""
    User.objects.filter(pk__in=[u.pk for u in busy_world.values()]).update(
        language="zh-hans", time_zone="Asia/Shanghai"
    )
    delegation = Delegation.objects.get(status=Delegation.Status.ACTIVE)
    return {"personas": busy_world, "delegation": delegation}


def _main_pages(persona: str, delegation_id: str) -> list[str]:
    return {
        "owner-admin": [
            "/",
            "/delegations/",
            f"/delegations/{delegation_id}/",
            f"/delegations/{delegation_id}/credentials/",
            "/delegations/roles/",
            "/audit/",
            "/organisation/members/",
            "/notifications/",
            "/preferences/",
        ],
        "owner-auditor": [
            "/",
            "/delegations/",
            "/audit/",
            "/audit/access/",
            f"/audit/delegations/{delegation_id}/",
        ],
        "partner-admin": [
            "/",
            "/delegations/",
            f"/delegations/{delegation_id}/",
            "/delegations/staff/",
            "/organisation/members/",
        ],
        "partner-staff": ["/", "/delegations/my-access/", "/preferences/"],
    }[persona]


@pytest.mark.parametrize(
    "persona", ["owner-admin", "owner-auditor", "partner-admin", "partner-staff"]
)
@pytest.mark.slow
def test_main_pages_in_chinese_fit_desktop_and_phone(
    chinese_world: dict[str, Any],
    new_browser_context: Callable[..., Any],
    live_server: Any,
    persona: str,
) -> None:
    folder = ARTIFACTS / persona
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    user = chinese_world["personas"][persona]
    pages = _main_pages(persona, str(chinese_world["delegation"].pk))
    wide: dict[str, int] = {}
    not_chinese: list[str] = []
    for width_name, viewport in WIDTHS.items():
        context = new_browser_context(
            viewport=viewport, is_mobile=width_name == "phone", has_touch=width_name == "phone"
        )
        sign_in(context, live_server.url, user)
        page = context.new_page()
        for path in pages:
            response = page.goto(live_server.url + path)
            assert response is not None and response.status == 200, (path, response)
            if page.get_attribute("html", "lang") != "zh-hans":
                not_chinese.append(f"{width_name} {path}")
            extra = _overflow(page)
            if extra > 0:
                wide[f"{width_name} {path}"] = extra
            shape = re.sub(r"/[0-9a-f-]{36}/", "/detail/", path)
            name = re.sub(r"[^a-z0-9]+", "-", shape.lower()).strip("-") or "home"
            save_screenshot(page, folder / f"{width_name}-{name}.png")
    assert not_chinese == [], f"pages not rendered in zh-hans: {not_chinese}"
    assert wide == {}, f"pages wider than the screen in zh-hans (extra px): {wide}"


def test_the_language_switcher_works_without_script_and_is_remembered(
    new_browser_context: Callable[..., Any], live_server: Any
) -> None:
    context = new_browser_context(java_script_enabled=False, locale="en-GB")
    page = context.new_page()
    page.goto(live_server.url + "/accounts/login/")
    assert page.get_attribute("html", "lang") == "en"
    page.get_by_role("button", name=re.compile("简体中文")).click()
    page.wait_for_url(re.compile("/accounts/login/"))
    assert page.get_attribute("html", "lang") == "zh-hans"
    assert page.get_by_role("heading", name="登录").is_visible()
    # Remembered by this browser: a new page of the same context stays Chinese.
    again = context.new_page()
    again.goto(live_server.url + "/accounts/signup/")
    assert again.get_attribute("html", "lang") == "zh-hans"
    again.get_by_role("button", name=re.compile("English")).click()
    again.wait_for_url(re.compile("/accounts/signup/"))
    assert again.get_attribute("html", "lang") == "en"
    save_screenshot(again, ARTIFACTS / "switcher-back-to-english.png")
