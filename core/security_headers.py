"""Content-Security-Policy and Permissions-Policy on every response.

A browser then refuses injected script, and features the portal never uses.

Django 5.2 has no CSP support (it arrives in 6.0), and django-csp would be a dependency for
what is here one fixed header: the portal has no inline script to allow with nonces (a test
scans every template), so the policy is a constant from settings. A response that already
carries a header (a view that needs a stricter one) keeps its own.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def header_value(directives: dict[str, list[str]]) -> str:
    """`{"script-src": ["'self'"]}` -> `script-src 'self'`, directives joined by `; `."""
    return "; ".join(" ".join([name, *sources]).strip() for name, sources in directives.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.headers = {
            "Content-Security-Policy": header_value(settings.CONTENT_SECURITY_POLICY),
            "Permissions-Policy": ", ".join(
                f"{feature}=({' '.join(allowed)})"
                for feature, allowed in settings.PERMISSIONS_POLICY.items()
            ),
        }

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for name, value in self.headers.items():
            response.headers.setdefault(name, value)
        return response
