"""Every page at a phone's width (390 px): nothing scrolls sideways, the menu opens.

Each persona (owner admin, owner auditor, partner admin, partner staff) crawls the pages it can
reach by following the portal's own links from its Overview, on a world with an active
delegation, an assigned person, issued credentials and history. A page whose document is wider
than the viewport fails with its URL; a wide table may scroll inside its own box, never the
page. The crawl must reach the pages each persona works in (the list below), so a broken link
cannot make the test pass by visiting less.

Screenshots of every page land in `test-artifacts/mobile/<persona>/`.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlparse

import pytest

from accounts.models import User
from tests.fixtures.browser import save_screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "mobile"
PHONE = {"width": 390, "height": 844}
MAX_PAGES = 60
# Filters and pagination give one page many URLs; two variants of a path show its layout.
VARIANTS_PER_PATH = 2

# Links a crawl must not follow: they sign out, download files, or leave for the console.
SKIP = re.compile(
    r"/accounts/logout/|/admin/|\.(csv|json)(\?|$)|[?&]format=(csv|json)|/export|/download"
    r"|/credentials-uri/|/static/|/dev/mail/"
)

# Pages each persona must have reached (URL path patterns), so the crawl proves coverage.
MUST_REACH = {
    "owner-admin": [
        r"^/$",
        r"/delegations/$",
        r"/delegations/[0-9a-f-]{36}/$",
        r"/delegations/roles/",
        r"/audit/",
        r"/organisation/members/",
    ],
    "owner-auditor": [r"^/$", r"/delegations/$", r"/audit/", r"/audit/access/"],
    "partner-admin": [
        r"^/$",
        r"/delegations/$",
        r"/delegations/staff/$",
        r"/organisation/members/",
    ],
    "partner-staff": [r"^/$", r"/delegations/my-access/"],
}


def _overflow(page: Any) -> int:
    """How many CSS pixels the document is wider than the viewport (0 when it fits)."""
    return int(
        page.evaluate(
            "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
            " - document.documentElement.clientWidth"
        )
    )


def _links(page: Any, origin: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    found = []
    for href in hrefs:
        url = urldefrag(href)[0]
        if url.startswith(origin) and not SKIP.search(url):
            found.append(url)
    return found


def _path_shape(url: str) -> str:
    """The path with ids and sequence numbers blanked: /audit/events/12/ ~ /audit/events/13/."""
    return re.sub(r"/[0-9a-f-]{36}/|/\d+/", "/#/", urlparse(url).path)


def crawl(page: Any, origin: str, persona: str) -> tuple[list[str], dict[str, int]]:
    folder = ARTIFACTS / persona
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    queue, seen, visited, wide = deque([origin + "/"]), {origin + "/"}, [], {}
    per_shape: Counter[str] = Counter()
    while queue and len(visited) < MAX_PAGES:
        url = queue.popleft()
        response = page.goto(url)
        if response is None or response.status >= 400 or not page.url.startswith(origin):
            continue
        visited.append(urlparse(page.url).path)
        extra = _overflow(page)
        if extra > 0:
            wide[page.url] = extra
        name = re.sub(r"[^a-z0-9]+", "-", urlparse(page.url).path.lower()).strip("-") or "home"
        save_screenshot(page, folder / f"{len(visited):02d}-{name}.png")
        for link in _links(page, origin):
            if link not in seen and per_shape[_path_shape(link)] < VARIANTS_PER_PATH:
                seen.add(link)
                per_shape[_path_shape(link)] += 1
                queue.append(link)
    return visited, wide


@pytest.mark.parametrize("persona", sorted(MUST_REACH))
@pytest.mark.slow
def test_no_page_scrolls_sideways_at_390_px(
    busy_world: dict[str, User],
    new_browser_context: Callable[..., Any],
    live_server: Any,
    persona: str,
) -> None:
    context = new_browser_context(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(context, live_server.url, busy_world[persona])
    page = context.new_page()
    visited, wide = crawl(page, live_server.url, persona)

    missing = [p for p in MUST_REACH[persona] if not any(re.search(p, v) for v in visited)]
    assert missing == [], f"the crawl never reached {missing}; it visited {visited}"
    assert wide == {}, f"pages wider than {PHONE['width']} px (extra px): {wide}"


def test_the_menu_collapses_and_opens_on_a_phone(
    busy_world: dict[str, User], new_browser_context: Callable[..., Any], live_server: Any
) -> None:
    from playwright.sync_api import expect

    context = new_browser_context(viewport=PHONE, is_mobile=True, has_touch=True)
    sign_in(context, live_server.url, busy_world["owner-admin"])
    page = context.new_page()
    page.goto(live_server.url + "/")
    history = page.get_by_role("navigation", name="Main").get_by_role("link", name="History")
    expect(history).to_be_hidden()
    toggle = page.get_by_role("button", name="Menu")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(history).to_be_visible()
    assert _overflow(page) == 0
    history.click()
    expect(page).to_have_url(re.compile("/audit/"))

    # At desktop width the same links are always in view and there is no menu button.
    desktop = new_browser_context(viewport={"width": 1280, "height": 900})
    sign_in(desktop, live_server.url, busy_world["owner-admin"])
    wide_page = desktop.new_page()
    wide_page.goto(live_server.url + "/")
    expect(wide_page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(
        wide_page.get_by_role("navigation", name="Main").get_by_role("link", name="History")
    ).to_be_visible()
