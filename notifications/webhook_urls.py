"""What a channel's webhook URL and signing secret may be, and the SSRF guard every send
passes through again (DNS may have changed since the channel was saved): `webhook_post`
connects only to an address it checked.

In production only `https://` URLs whose host resolves to public addresses are accepted;
loopback, private, link-local, multicast and reserved addresses are refused after DNS
resolution. A portal running embedded (`make run`) or in DEBUG may post anywhere, so the
local webhook inbox (`/dev/webhooks/`) and test receivers work.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from core import deadline

DEFAULT_PORTS = {"https": 443, "http": 80}
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
    """The host's addresses, each once, in the resolver's order of preference."""
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
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise _unresolvable(host)
    return addresses


def _unresolvable(host: str) -> ValidationError:
    return ValidationError(
        _("The host %(host)s cannot be resolved.") % {"host": host}, code="unresolvable"
    )


def _checked_addresses(host: str, port: int) -> list[str]:
    """The addresses a post to `host` may connect to: all of them, each public in production."""
    addresses = _resolved_addresses(host, port)
    if not local_targets_allowed() and not all(_public(address) for address in addresses):
        raise ValidationError(
            _(
                "This URL leads to a private, loopback or link-local address; the portal "
                "only posts to public addresses."
            ),
            code="private_address",
        )
    return addresses


def webhook_url_well_formed(value: str) -> str:
    """The URL, stripped, when its form is one a channel may post to (an https URL naming a
    host, without credentials; http too when local targets are allowed); otherwise a
    ValidationError that says why. Looks nothing up: `webhook_post` does, once, when sending."""
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
        parts.port  # noqa: B018 (an out-of-range or non-numeric port raises here)
    except ValueError as exc:
        raise ValidationError(_("This is not a valid URL."), code="invalid") from exc
    allowed_schemes = {"https", "http"} if local_targets_allowed() else {"https"}
    if parts.scheme not in allowed_schemes:
        raise ValidationError(_("A webhook URL must start with https://."), code="scheme")
    if not parts.hostname:
        raise ValidationError(_("This URL names no host."), code="invalid")
    if parts.username is not None or parts.password is not None:
        raise ValidationError(_("A webhook URL carries no user name or password."))
    return url


def validate_webhook_url(value: str) -> str:
    """The URL, stripped, when a channel may post to it; otherwise a ValidationError that says
    why. Resolves the host in production (the SSRF guard)."""
    url = webhook_url_well_formed(value)
    if not local_targets_allowed():
        parts = urlsplit(url)
        _checked_addresses(parts.hostname or "", parts.port or 443)
    return url


def _connect_watched(
    connection: HTTPConnection, connect: Callable[[], socket.socket]
) -> socket.socket:
    """`connect()`, its socket handed to the deadline in force (`core.deadline`), which cuts it
    when a post outlasts its budget (`requests` times each read, not the answer); no
    connection is started once that budget is spent."""
    try:
        connection.timeout = deadline.connect_timeout(connection.timeout)
    except TimeoutError as error:
        raise ConnectTimeoutError(connection, str(error)) from error
    return deadline.watch(connect())


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_watched(self, super()._new_conn)


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_watched(self, super()._new_conn)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _PinnedAdapter(HTTPAdapter):
    """Connects to `address` whatever the request's host resolves to by then, while TLS (the
    server name sent and the name the certificate must carry) keeps the host's name. Its
    connections, direct or through the proxy, can be cut by a deadline."""

    def __init__(self, *, host: str, address: str) -> None:
        super().__init__()
        self._host = host
        self._address = address

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_params["host"] = self._address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self._host
            pool_kwargs["assert_hostname"] = self._host
        return host_params, pool_kwargs


def _egress_proxies(scheme: str) -> dict[str, str] | None:
    """The proxy an https post tunnels through (PORTAL_WEBHOOK_PROXY), or None. Only https:
    its CONNECT names the checked address, while a proxied plain-http request would name the
    host and let the proxy resolve it (and plain http is only ever a local target, in
    development, which no egress proxy stands in front of)."""
    proxy = settings.PORTAL_WEBHOOK_PROXY
    return {"https": proxy} if proxy and scheme == "https" else None


def _never_connected(error: requests.ConnectionError) -> bool:
    """Whether the connection itself failed (refused, unreachable, timed out), so nothing of
    the request was sent and another address cannot receive it twice."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)


def webhook_post(
    *, url: str, body: bytes, headers: dict[str, str], timeout: tuple[float, float]
) -> requests.Response:
    """POST `body` to a well-formed webhook URL through the SSRF guard, with its body read.

    The host is looked up once and, in production, every address it has must be public; the
    connection then goes to one of those checked addresses (the next one only when the
    connection is refused or times out), never to what a second lookup would answer, which a
    name with a short TTL can turn to an internal address (DNS rebinding). The Host header and
    TLS still name the host. No redirect is followed and no proxy or credentials from the
    environment are used: with PORTAL_WEBHOOK_PROXY set, an https post goes through that
    proxy as a CONNECT tunnel to the checked address, so the proxy never resolves the name
    itself. Under a `core.deadline` (the worker's sends) every connection is cut when the
    deadline passes, however slowly the receiver trickles its answer. Raises ValidationError
    when the guard refuses (code RESOLVER_UNANSWERED when the name server did not answer),
    `requests` errors otherwise."""
    # The headers `requests.post` would send too (its User-Agent, Accept-Encoding).
    everything = {**requests.utils.default_headers(), **headers}
    request = requests.Request("POST", url, data=body, headers=everything).prepare()
    # The host as `requests` encoded it (IDNA), so the name checked is the name connected to.
    parts = urlsplit(request.url or "")
    if not parts.hostname:
        raise ValidationError(_("This URL names no host."), code="invalid")
    addresses = _checked_addresses(parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme])
    request.headers["Host"] = parts.netloc
    proxies = _egress_proxies(parts.scheme)
    for number, address in enumerate(addresses, start=1):
        adapter = _PinnedAdapter(host=parts.hostname, address=address)
        try:
            response = adapter.send(request, timeout=timeout, proxies=proxies)
            response.content  # noqa: B018 (read while the connection is open)
            return response
        except requests.ConnectionError as error:
            if number == len(addresses) or not _never_connected(error):
                raise
        finally:
            adapter.close()
    raise _unresolvable(parts.hostname)  # not reached: a lookup answers at least one address


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
