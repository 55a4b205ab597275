"""In a real browser the Content-Security-Policy blocks inline script and lets the portal's
own script files run, without a single violation on the pages (issue 18, item 10)."""

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs before any page script: records every violation the page reports.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""
TRY_INLINE_SCRIPT = """() => {
  const script = document.createElement("script");
  script.textContent = "window.__inlineRan = true";
  document.body.appendChild(script);
  return window.__inlineRan === true;
}"""


def _violations(page: Page) -> list[str]:
    return page.evaluate("() => window.__violations")


def test_inline_script_is_blocked_and_the_portal_s_scripts_run(
    settings: object,
    signed_in_page: Callable[[User], Page],
    partner_admin: User,
    live_server: object,
) -> None:
    settings.PORTAL_REQUIRE_MFA = False  # type: ignore[attr-defined]
    page = signed_in_page(partner_admin)
    page.context.add_init_script(RECORD_VIOLATIONS)
    base = live_server.url  # type: ignore[attr-defined]

    for path in ("/", "/delegations/", "/audit/"):
        response = page.goto(base + path)
        assert response is not None and response.ok, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert _violations(page) == [], path

    # The request form's script (static/js/duration-field.js) ran: it hides the end date
    # until "Until a date" is chosen.
    page.goto(base + "/delegations/request/")
    expect(page.locator("#id_ends_at")).to_be_hidden()
    assert _violations(page) == []

    assert page.evaluate(TRY_INLINE_SCRIPT) is False
    page.wait_for_function("() => window.__violations.length > 0")
    assert _violations(page)[0].startswith("script-src")
