"""Content-Security-Policy without inline scripts, and a Permissions-Policy (issue 18, item 10)."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template import engines
from django.test import Client

from core.security_headers import header_value

# A <script> element: its attributes, then its content.
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
# A data block (JSON read by a script file), which browsers never execute.
DATA_BLOCK = re.compile(r"""\btype\s*=\s*["']application/(ld\+)?json["']""", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"""<[^>]*\son[a-z]+\s*=\s*["']""", re.IGNORECASE)


def _directives(policy: str) -> dict[str, list[str]]:
    return {
        name: sources
        for name, *sources in (part.split() for part in policy.split(";") if part.strip())
    }


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/login/", "/no/such/page/", "/healthz"])
def test_every_response_carries_both_policies(url: str) -> None:
    response = Client().get(url)
    csp = _directives(response["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "default-src" in csp
    permissions = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in permissions


def test_a_header_a_view_set_itself_is_kept() -> None:
    from django.http import HttpResponse

    from core.security_headers import SecurityHeadersMiddleware

    strict = "default-src 'none'"

    def view(request):
        response = HttpResponse()
        response["Content-Security-Policy"] = strict
        return response

    response = SecurityHeadersMiddleware(view)(None)
    assert response["Content-Security-Policy"] == strict
    assert response["Permissions-Policy"]


def test_header_value_joins_directives() -> None:
    assert header_value({"a": ["'self'"], "b": ["x", "y"]}) == "a 'self'; b x y"


def _template_files() -> list[Path]:
    """Every template the portal can render: ours, and those of every installed app."""
    folders = []
    for engine in engines.all():
        folders += [Path(folder) for folder in engine.template_dirs]
    return [path for folder in folders if folder.is_dir() for path in folder.rglob("*.html")]


# drf-spectacular's own Swagger UI and Redoc templates carry an inline script for the views
# that embed it; /api/v1/docs/ is SpectacularSwaggerSplitView, which renders swagger_ui.html
# with the script from a URL of ours (tests/api/test_docs_browser.py checks the page runs with
# no CSP violation), and Redoc is not served at all.
NEVER_RENDERED_INLINE = (
    "drf_spectacular/templates/drf_spectacular/redoc.html",
    "drf_spectacular/templates/drf_spectacular/swagger_ui.html",
)


def test_no_template_has_an_inline_script() -> None:
    files = [path for path in _template_files() if not str(path).endswith(NEVER_RENDERED_INLINE)]
    assert any(path.is_relative_to(settings.BASE_DIR / "templates") for path in files)
    assert any("allauth" in path.parts for path in files)  # the apps' templates are read too
    inline = []
    for path in files:
        for attributes, body in SCRIPT.findall(path.read_text(encoding="utf-8")):
            if "src=" in attributes.replace(" ", "") or DATA_BLOCK.search(attributes):
                continue
            if body.strip():
                inline.append(str(path))
    assert inline == []


def test_no_template_of_ours_uses_inline_event_handlers_or_javascript_urls() -> None:
    offenders = []
    for path in (settings.BASE_DIR / "templates").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        if EVENT_HANDLER.search(text) or "javascript:" in text.lower():
            offenders.append(str(path))
    assert offenders == []
