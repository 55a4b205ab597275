"""/api/v1/docs/ is Swagger UI served by the portal itself: no CDN, and it runs under the
portal's Content-Security-Policy (script only from 'self') without a single violation."""

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


@pytest.mark.django_db
def test_the_docs_load_nothing_from_elsewhere(client: Client) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn" not in html.lower()
    assert "<script>" not in html  # the split view serves its script from a URL of ours
    assert client.get("/api/v1/schema/").status_code == 200


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_runs_under_the_csp(page: Page, live_server: object) -> None:
    page.context.add_init_script(RECORD_VIOLATIONS)
    response = page.goto(live_server.url + "/api/v1/docs/")  # type: ignore[attr-defined]
    assert response is not None and response.ok
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_text("Partner Access Portal API").first).to_be_visible()
    expect(page.get_by_text("/api/v1/delegations/").first).to_be_visible()
    assert page.evaluate("() => window.__violations") == []
