"""Accessibility: axe-core's WCAG 2.0 and 2.1 A and AA rules on the pages each persona works in.

axe-core comes bundled in the axe-playwright-python package (nothing is downloaded at run time)
and runs in Debian's Chromium. Each persona (owner admin, owner auditor, partner admin, partner
staff) signs in once, in one browser context, and visits its pages in sequence on a world with
an active delegation, an assigned person, issued credentials and a fleet, so every list and
table has rows. Then two forms sent back with their validation errors, the owner's pages in
Chinese, and the signed-out pages (sign in, sign up, a refused sign-in, the demo banner).

Besides the WCAG rules, axe's best-practice rules run (landmarks, heading order) and WCAG 2.5.3
"label in name" (level A, which axe ships as experimental). The disclosure menus are opened
first, so what they hold is checked too, and no id may appear twice on a page.

A violation of impact serious or critical fails the test with the rule, the page and the
elements; moderate and minor ones are reported as warnings. Every finding is written to
test-artifacts/accessibility/<test>.txt as well.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from audit.models import AuditEvent
from delegations.models import Delegation
from tests.fixtures.browser import sign_in
from tests.fixtures.partner import PartnerWorld

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "accessibility"
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    },
    # WCAG 2.5.3 (level A): a control's name starts with the words on it, so a person using
    # voice control can say what they see. axe ships the rule as experimental, off by default.
    "rules": {"label-content-name-mismatch": {"enabled": True}},
    "resultTypes": ["violations"],
}
FAILING = {"serious", "critical"}

# Opens every <details> (the organisation switcher, the user menu, folded sections) so axe
# checks what they hold: it skips what is not rendered.
OPEN_DISCLOSURES = "() => document.querySelectorAll('details').forEach(d => { d.open = true; })"
# Ids used more than once: a label, aria-describedby or #fragment would point at the first.
DUPLICATE_IDS = """() => {
  const seen = new Map();
  for (const element of document.querySelectorAll("[id]")) {
    seen.set(element.id, (seen.get(element.id) || 0) + 1);
  }
  return [...seen].filter(([, count]) => count > 1).map(([id]) => id);
}"""

# The pages each persona works in; `{delegation}`, `{fleet}` and `{event}` are the world's.
PAGES: dict[str, list[str]] = {
    "owner-admin": [
        "/",
        "/delegations/",
        "/delegations/{delegation}/",
        "/delegations/{delegation}/credentials/",
        "/delegations/{delegation}/trust/",
        "/delegations/offer/",
        "/delegations/roles/",
        "/delegations/catalogue/",
        "/delegations/catalogue/roles/new/",
        "/delegations/partner-links/",
        "/delegations/cloud-account/",
        "/delegations/approval-rules/",
        "/delegations/access-reviews/",
        "/delegations/break-glass/",
        "/delegations/fleets/",
        "/delegations/fleets/offer/",
        "/delegations/fleets/{fleet}/",
        "/notifications/",
        "/preferences/",
        "/organisation/members/",
        "/runbooks/",
    ],
    "owner-auditor": [
        "/",
        "/audit/",
        "/audit/events/{event}/",
        "/audit/access/",
        "/audit/delegations/{delegation}/",
        "/audit/reviews/",
        "/audit/rules/",
        "/audit/verify/",
        "/organisation/members/",
    ],
    "partner-admin": [
        "/",
        "/delegations/",
        "/delegations/{delegation}/",
        "/delegations/{delegation}/staff/",
        "/delegations/request/",
        "/delegations/staff/",
        "/delegations/fleets/",
        "/delegations/fleets/request/",
        "/delegations/fleets/{fleet}/",
        "/notifications/",
    ],
    "partner-staff": [
        "/",
        "/delegations/my-access/",
        # The credentials page as it opens: nothing is issued until the form is sent.
        "/delegations/my-access/{delegation}/credentials/",
        "/delegations/my-access/{delegation}/credentials-uri/",
        "/runbooks/",
        "/runbooks/new/",
        "/preferences/",
        "/notifications/",
        "/accounts/2fa/",
    ],
}


class Findings:
    """What axe (and the id check) found, page by page; `check` fails on what must not be."""

    def __init__(self, name: str) -> None:
        self.path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.txt"
        self.failing: list[str] = []
        self.reported: list[str] = []

    @staticmethod
    def context(new_browser_context: Callable[..., Any]) -> Any:
        """A browser context whose every page starts with axe loaded: the script is handed
        over once, not once per page (`Axe.run` evaluates its 570 kB again on each)."""
        from axe_playwright_python.sync_playwright import Axe

        context = new_browser_context()
        context.add_init_script(script=Axe().axe_script)
        return context

    def page(self, page: Page, where: str) -> None:
        page.evaluate(OPEN_DISCLOSURES)
        for duplicate in page.evaluate(DUPLICATE_IDS):
            self.failing.append(f"{where}: duplicate id {duplicate!r}")
        results = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
        for violation in results["violations"]:
            targets = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
            line = (
                f"{where}: {violation['id']} ({violation['impact']}) {violation['help']}"
                f" [{len(violation['nodes'])} element(s)] -> {targets}"
            )
            (self.failing if violation["impact"] in FAILING else self.reported).append(line)

    def visit(self, page: Page, base: str, paths: list[str], who: str) -> None:
        for path in paths:
            response = page.goto(base + path)
            assert response is not None and response.ok, f"{who} {path}: {response}"
            self.page(page, f"{who} {path}")

    def check(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(
            "\n".join(["failing:", *self.failing, "", "moderate or minor:", *self.reported]) + "\n"
        )
        for line in self.reported:
            warnings.warn(f"accessibility: {line}", stacklevel=2)
        assert self.failing == [], "\n".join(self.failing)


@pytest.fixture
def findings(request: pytest.FixtureRequest) -> Findings:
    return Findings(request.node.name)


@pytest.fixture
def ids(busy_world: dict[str, User], partner_world_tx: PartnerWorld) -> dict[str, str]:
    """The active delegation, its first audit event, and a fleet offered over the owner's
    account with a second role (the first one is already granted there)."""
    from delegations.catalog.services import catalog_role_create
    from delegations.fleet.services import fleet_offer

    world = partner_world_tx
    delegation = Delegation.objects.get(status=Delegation.Status.ACTIVE)
    viewer = catalog_role_create(
        owner=world.owner,
        created_by=world.owner_admin,
        role_name=f"{world.role_name}-viewer",
        description="Read the ECS fleet",
        policy_keys=[("System", "AliyunECSReadOnlyAccess")],
        max_session_duration=3600,
    )
    fleet = fleet_offer(
        owner=world.owner,
        offered_by=world.owner_admin,
        partner=world.partner,
        catalog_role=viewer,
        accounts=[world.owner_account],
        regions=["cn-hangzhou"],
        reason="Weekly patching",
        ends_at=None,
        with_mfa=True,
    )
    event = AuditEvent.objects.filter(target_id=str(delegation.pk)).order_by("sequence").first()
    assert event is not None
    return {"delegation": str(delegation.pk), "fleet": str(fleet.pk), "event": str(event.sequence)}


def test_every_persona_s_pages_pass_axe(
    busy_world: dict[str, User],
    ids: dict[str, str],
    new_browser_context: Callable[..., Any],
    live_server: Any,
    findings: Findings,
) -> None:
    """One context per persona, its pages in sequence; then two forms sent back with their
    errors, and the owner's pages in Chinese. Every finding is listed before the test fails,
    so one run shows all there is to fix."""
    base = live_server.url
    pages: dict[str, Page] = {}
    for persona, paths in PAGES.items():
        context = Findings.context(new_browser_context)
        sign_in(context, base, busy_world[persona])
        pages[persona] = page = context.new_page()
        findings.visit(page, base, [path.format(**ids) for path in paths], persona)

    # Forms sent back with their errors: the partner's request and the owner's offer, sent
    # empty (the browser's own checks are off so that the server answers; nothing is written).
    for persona, path in [
        ("partner-admin", "/delegations/request/"),
        ("owner-admin", "/delegations/offer/"),
    ]:
        page = pages[persona]
        page.goto(base + path)
        form = page.locator("main form[method=post]").first
        form.evaluate("form => { form.noValidate = true; }")
        form.locator("[type=submit]").first.click()
        expect(page.locator("main .errorlist").first).to_be_visible()
        findings.page(page, f"{persona} {path} sent back with errors")

    # In Chinese, each page says so: screen readers pick their voice from `lang`.
    context = Findings.context(new_browser_context)
    context.add_cookies([{"name": "portal_language", "value": "zh-hans", "url": base}])
    sign_in(context, base, busy_world["owner-admin"])
    page = context.new_page()
    for path in ["/", f"/delegations/{ids['delegation']}/"]:
        page.goto(base + path)
        assert page.locator("html").get_attribute("lang") == "zh-hans", path
        findings.page(page, f"owner-admin zh-hans {path}")

    findings.check()


def test_signed_out_pages_pass_axe(
    settings: Any,
    partner_staff: User,
    new_browser_context: Callable[..., Any],
    live_server: Any,
    findings: Findings,
) -> None:
    """The landing, sign-in, sign-up and password reset pages, the not-found page and a
    refused sign-in, with the banner the demo shows when MFA is not required."""
    settings.PORTAL_REQUIRE_MFA = False
    base = live_server.url
    page = Findings.context(new_browser_context).new_page()
    findings.visit(
        page,
        base,
        ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"],
        "signed out",
    )
    response = page.goto(base + "/no-such-page/")
    assert response is not None and response.status == 404
    findings.page(page, "signed out: not found")
    page.goto(base + "/accounts/login/")
    page.get_by_label("Email").fill(partner_staff.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("The email address or password is not correct.")).to_be_visible()
    findings.page(page, "signed out: sign-in refused")
    findings.check()
