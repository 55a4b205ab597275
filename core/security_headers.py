"""Content-Security-Policy and Permissions-Policy on every response.

A browser then refuses injected script, and features the portal never uses.

Django 5.2 has no CSP support (it arrives in 6.0), and django-csp would be a dependency for
what is here one fixed header: the portal has no inline script to allow with nonces (a test
scans every template), so the policy is a constant from settings. A response that already
carries a header (a view that needs a stricter one) keeps its own.

One page widens it: My access, when it shows **Open console**. Its form posts to the portal,
which answers 303 to the cloud's federation sign-in; browsers check `form-action` along a
form's redirects against the policy of the page that holds the form (not the redirect's
own), so that page allows exactly the configured sign-in origin (`allow_form_action`).
"""

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def header_value(directives: dict[str, list[str]]) -> str:
    """`{"script-src": ["'self'"]}` -> `script-src 'self'`, directives joined by `; `."""
    return "; ".join(" ".join([name, *sources]).strip() for name, sources in directives.items())


# scheme://host[:port] and nothing else: no wildcard, no path, no second source.
_ORIGIN = re.compile(r"\Ahttps?://[A-Za-z0-9.-]+(:[0-9]{1,5})?\Z")


def origin_of(url: str) -> str:
    """The origin of an http(s) URL, lower-cased; ValueError for anything that is not one
    concrete origin (a wildcard, a bare scheme, another scheme)."""
    parts = urlsplit(url or "")
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if not _ORIGIN.match(origin):
        raise ValueError(f"{url!r} does not name one http(s) origin.")
    return origin


def allow_form_action(response: HttpResponse, *, url: str) -> HttpResponse:
    """This response's policy with `url`'s origin added to `form-action`: the portal's forms on
    it may end, after the portal's redirect, on that origin and no other."""
    directives = {name: list(sources) for name, sources in settings.CONTENT_SECURITY_POLICY.items()}
    form_action = directives.setdefault("form-action", ["'self'"])
    origin = origin_of(url)
    if origin not in form_action:
        form_action.append(origin)
    response.headers["Content-Security-Policy"] = header_value(directives)
    return response


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
