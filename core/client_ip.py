"""The client's IP address, as the audit log and every rate limit see it.

Behind reverse proxies REMOTE_ADDR is the nearest proxy. Each proxy appends the address it
received the request from to X-Forwarded-For, so with `PORTAL_TRUSTED_PROXY_COUNT = n` proxies
of our own in front of the portal, the n-th entry from the right was written by our outermost
proxy and is the client. Entries left of it come from the client and may be forged: they are
never read. With n = 0 (the default) the header is ignored entirely.

A header that cannot be what our proxies wrote (fewer entries than trusted proxies, or no IP
address at the trusted position) falls back to REMOTE_ADDR: never a forged value, never an
error page. allauth's rate limits and user sessions read the same function through
`PortalAccountAdapter.get_client_ip`.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger("core.client_ip")

# Longer than any sane proxy chain's header; a bigger one is not parsed at all.
_MAX_HEADER_LENGTH = 2048


def _parse_ip(value: str) -> str | None:
    """The address in one X-Forwarded-For entry, normalised; None unless it is an IP address.
    Accepts "addr", "v4addr:port" and "[v6addr]:port" (some proxies add the port)."""
    value = value.strip()
    if value.startswith("["):
        host, bracket, _port = value[1:].partition("]")
        if not bracket:
            return None
        value = host
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def forwarded_client_ip(forwarded_for: str | None, trusted_proxy_count: int) -> str | None:
    """The client address in an X-Forwarded-For value, counting `trusted_proxy_count` proxies
    from the right; None when the header is absent, not to be trusted, or malformed."""
    if trusted_proxy_count <= 0 or not forwarded_for:
        return None
    if len(forwarded_for) > _MAX_HEADER_LENGTH:
        return None
    entries = forwarded_for.split(",")
    if len(entries) < trusted_proxy_count:
        return None
    return _parse_ip(entries[-trusted_proxy_count])


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: from X-Forwarded-For behind PORTAL_TRUSTED_PROXY_COUNT proxies,
    otherwise (and whenever the header is unusable) REMOTE_ADDR."""
    count = settings.PORTAL_TRUSTED_PROXY_COUNT
    if count > 0:
        header = request.META.get("HTTP_X_FORWARDED_FOR")
        ip = forwarded_client_ip(header, count)
        if ip is not None:
            return ip
        if header:
            # Not the header's content: it is client-controlled and could forge log lines.
            logger.warning(
                "X-Forwarded-For does not fit PORTAL_TRUSTED_PROXY_COUNT=%s; using REMOTE_ADDR",
                count,
            )
    remote = request.META.get("REMOTE_ADDR")
    return _parse_ip(remote) if remote else None
