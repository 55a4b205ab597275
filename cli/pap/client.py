"""The portal's REST API over urllib: JSON in, JSON out, problem+json turned into PapError."""

from __future__ import annotations

import datetime as dt
import email.utils
import http.client
import ipaddress
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pap import __version__
from pap.errors import (
    FAILED,
    FORBIDDEN,
    NO_ACCESS,
    NOT_SIGNED_IN,
    UNREACHABLE,
    PapError,
    describe,
)

TIMEOUT_SECONDS = 30
USER_AGENT = f"pap/{__version__}"
# A 429 asking for at most this long is waited out once; a longer wait is the person's call.
SHORT_WAIT_SECONDS = 5


def _status_for(problem_type: str, status: int) -> int:
    slug = problem_type.rsplit("/", 1)[-1]
    if status == 401 or slug == "unauthenticated":
        return NOT_SIGNED_IN
    if slug == "no-access":
        return NO_ACCESS
    if status == 403:
        return FORBIDDEN
    return FAILED


def is_loopback(host: str | None) -> bool:
    """Whether `host` is this computer: localhost, 127.0.0.0/8 or ::1."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def retry_after_seconds(value: str | None, *, now: dt.datetime | None = None) -> int | None:
    """A Retry-After header as whole seconds from `now`: delay-seconds or an HTTP date (RFC
    9110); None when it is missing or unreadable."""
    text = (value or "").strip()
    if re.fullmatch(r"[0-9]+", text):
        return int(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0, math.ceil((when - (now or dt.datetime.now(dt.UTC))).total_seconds()))


def _in(seconds: int | None) -> str:
    if seconds is None:
        return "later"
    if seconds < 120:
        return f"in {seconds} second" + ("" if seconds == 1 else "s")
    return f"in {math.ceil(seconds / 60)} minutes"


def _words(messages: Any) -> str:
    return " ".join(map(str, messages)) if isinstance(messages, list) else str(messages)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect with the Authorization header, to any host and from
    https to http. The API never redirects; a redirect means a wrong or moved portal URL (or
    someone in the way), so it ends the call as an HTTPError and `_error` says where it
    pointed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Portal:
    def __init__(self, base_url: str, token: str = "") -> None:
        if not base_url:
            raise PapError(
                "No portal configured: run pap login --portal URL.", status=NOT_SIGNED_IN
            )
        try:
            parsed = urllib.parse.urlsplit(base_url)
            readable = parsed.port is None or parsed.port >= 0
        except ValueError:  # an unclosed [IPv6 address, a port that is not a number
            parsed, readable = urllib.parse.urlsplit(""), False
        if parsed.scheme not in ("http", "https") or not parsed.netloc or not readable:
            raise PapError(f"{base_url!r} is not an http(s) URL.", status=FAILED)
        local = is_loopback(parsed.hostname)
        if parsed.scheme == "http" and not local:
            # Bearer tokens and STS secrets in clear text: anyone on the path could use them.
            raise PapError(
                f"Refusing {base_url}: pap talks to a portal over https:// only (plain http only "
                "to a portal on this computer: localhost, 127.0.0.0/8, ::1).",
                status=FAILED,
            )
        self.base_url = base_url.rstrip("/")
        self.token = token
        # No proxies from the environment for a loopback portal (tests, make run).
        handlers: list[Any] = [_NoRedirects()]
        if local:
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def path_of(self, url: str) -> str:
        """The path and query of a URL the portal answered (a page's `next`), so the next call
        goes to the configured portal even behind a proxy that rewrites hosts."""
        parts = urllib.parse.urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url(path), data=data, method=method)  # noqa: S310
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth:
            if not self.token:
                raise PapError("You are not signed in: run pap login.", status=NOT_SIGNED_IN)
            request.add_header("Authorization", f"Bearer {self.token}")
        waited = False
        while True:
            try:
                raw, content_type = self._send(request)
            except urllib.error.HTTPError as error:
                wait = retry_after_seconds(error.headers.get("Retry-After"))
                short = error.code == 429 and wait is not None and wait <= SHORT_WAIT_SECONDS
                if short and not waited:
                    # A 429 changed nothing, so asking once more is safe even for a POST.
                    error.close()
                    time.sleep(wait or 0)
                    waited = True
                    continue
                return self._error(error, retry_after=wait)
            return self._json(raw, content_type)

    def _send(self, request: urllib.request.Request) -> tuple[bytes, str]:
        """The body and media type of a 2xx answer; HTTPError for any other status."""
        try:
            with self._opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                return response.read(), response.headers.get_content_type()
        except urllib.error.HTTPError:
            raise
        except (TimeoutError, urllib.error.URLError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise PapError(
                f"Cannot reach the portal at {self.base_url} ({reason}).", status=UNREACHABLE
            ) from None
        except (OSError, http.client.HTTPException) as error:
            raise PapError(
                f"The portal at {self.base_url} broke off its answer ({describe(error)}).",
                status=UNREACHABLE,
            ) from None

    def _json(self, raw: bytes, content_type: str) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:  # undecodable bytes too
            raise PapError(
                f"The portal at {self.base_url} answered with {content_type}, not JSON: a proxy "
                "or sign-in page may be in the way, or this is not the portal's address.",
                status=UNREACHABLE,
            ) from None

    def _error(self, error: urllib.error.HTTPError, *, retry_after: int | None) -> Any:
        if 300 <= error.code < 400:
            location = error.headers.get("Location")
            location = urllib.parse.urljoin(error.geturl(), location) if location else "nowhere"
            raise PapError(
                f"The portal at {self.base_url} answered with a redirect (HTTP {error.code}) to "
                f"{location}; pap does not follow redirects (your token would go along). If the "
                "portal has moved, check its new address and run pap login --portal with it.",
                status=FAILED,
            )
        try:
            raw = error.read()
        except (OSError, http.client.HTTPException):
            raw = b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if "error" in body and "type" not in body:
            return {"_oauth_error": body.get("error"), **body}  # the device flow's answers
        # Not a problem document: a proxy's or load balancer's page says nothing pap can use.
        detail = str(
            body.get("detail")
            or f"The portal at {self.base_url} answered HTTP {error.code} ({error.reason})."
        )
        problem_type = str(body.get("type") or "")
        hint = str(body.get("request_url") or "")
        errors = body.get("errors")
        if isinstance(errors, dict):
            detail += " " + "; ".join(
                f"{field}: {_words(messages)}" for field, messages in errors.items()
            )
        if error.code == 401:
            detail += " Run pap login."
        if error.code == 429:
            detail += f" (rate-limited; try again {_in(retry_after)})"
        raise PapError(detail.strip(), status=_status_for(problem_type, error.code), hint=hint)
