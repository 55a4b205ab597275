"""What a channel's webhook URL and signing secret may be, and the SSRF guard every send
passes through again (DNS may have changed since the channel was saved).

In production only `https://` URLs whose host resolves to public addresses are accepted;
loopback, private, link-local, multicast and reserved addresses are refused after DNS
resolution. A portal running embedded (`make run`) or in DEBUG may post anywhere, so the
local webhook inbox (`/dev/webhooks/`) and test receivers work.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MAX_URL_LENGTH = 2048
MAX_SECRET_LENGTH = 256
# Printable ASCII without spaces: what the chat services hand out as signing secrets.
SECRET_RE = re.compile(r"\A[\x21-\x7e]{8,256}\Z")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
# The code of a refusal because the resolver gave no answer now (EAI_AGAIN: a timeout, an
# unreachable or failing name server), which a send tries again later. Any other lookup
# failure is an answer: the name does not exist or has no address, which waiting does not
# change.
RESOLVER_UNANSWERED = "resolver_unanswered"


def local_targets_allowed() -> bool:
    return bool(settings.PORTAL_EMBEDDED or settings.DEBUG)


def url_hint(url: str) -> str:
    """Scheme and host of `url`: shown on pages, never enough to post to the channel."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


# IPv6 ranges that carry an IPv4 address a gateway finally connects to (NAT64, IPv4-translated):
# that IPv4 address is the one to check. Python calls most of them global whatever they carry.
_CARRY_IPV4_IN_LOW_BITS = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("::ffff:0:0:0/96"),
)
# Refused whatever they carry: IPv4-compatible addresses (deprecated, routed nowhere public),
# the local-use NAT64 prefix (a private translator by definition) and Teredo (a tunnel whose
# far end is an address of its own choosing).
_REFUSED_IPV6 = (
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("2001::/32"),
)


def _global(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _global(ip)
    if any(ip in network for network in _REFUSED_IPV6):
        return False
    if ip.ipv4_mapped is not None:
        return _global(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        return _global(ip) and _global(ip.sixtofour)
    if any(ip in network for network in _CARRY_IPV4_IN_LOW_BITS):
        return _global(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    return _global(ip)


def _resolved_addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        if exc.errno != socket.EAI_AGAIN:
            raise _unresolvable(host) from exc
        raise ValidationError(
            _("The name server did not answer for %(host)s; try again in a moment.")
            % {"host": host},
            code=RESOLVER_UNANSWERED,
        ) from exc
    except (OSError, UnicodeError) as exc:
        raise _unresolvable(host) from exc
    return sorted({str(info[4][0]) for info in infos})


def _unresolvable(host: str) -> ValidationError:
    return ValidationError(
        _("The host %(host)s cannot be resolved.") % {"host": host}, code="unresolvable"
    )


def validate_webhook_url(value: str) -> str:
    """The URL, stripped, when a channel may post to it; otherwise a ValidationError that says
    why. Resolves the host in production (the SSRF guard)."""
    url = (value or "").strip()
    if not url:
        raise ValidationError(_("Enter the webhook URL."), code="required")
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(
            _("A webhook URL is at most %(max)d characters.") % {"max": MAX_URL_LENGTH},
            code="too_long",
        )
    if _CONTROL_OR_SPACE.search(url):
        raise ValidationError(_("A webhook URL has no spaces or control characters."))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(_("This is not a valid URL."), code="invalid") from exc
    allowed_schemes = {"https", "http"} if local_targets_allowed() else {"https"}
    if parts.scheme not in allowed_schemes:
        raise ValidationError(_("A webhook URL must start with https://."), code="scheme")
    if not parts.hostname:
        raise ValidationError(_("This URL names no host."), code="invalid")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(_("A webhook URL carries no user name or password."))
    if not local_targets_allowed():
        addresses = _resolved_addresses(parts.hostname, port or 443)
        if not addresses or not all(_public(address) for address in addresses):
            raise ValidationError(
                _(
                    "This URL leads to a private, loopback or link-local address; the portal "
                    "only posts to public addresses."
                ),
                code="private_address",
            )
    return url


def validate_signing_secret(value: str) -> str:
    secret = value or ""
    if secret and not SECRET_RE.match(secret):
        raise ValidationError(
            _(
                "A signing secret is 8 to 256 printable characters without spaces, as the chat "
                "service shows it."
            ),
            code="bad_secret",
        )
    return secret
