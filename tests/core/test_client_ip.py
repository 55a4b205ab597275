"""The client IP behind reverse proxies (PORTAL_TRUSTED_PROXY_COUNT): X-Forwarded-For is read
only as far as our own proxies wrote it, for the audit log and for allauth's rate limits alike,
and anything malformed falls back to REMOTE_ADDR."""

from __future__ import annotations

import pytest
from allauth.account.adapter import get_adapter
from django.conf import settings as django_settings
from django.test import Client, RequestFactory

from audit.models import AuditEvent
from core.client_ip import client_ip, forwarded_client_ip

PROXY = "10.0.0.5"  # REMOTE_ADDR: the reverse proxy the portal sees
WRONG = "not-the-password-1"


@pytest.mark.parametrize(
    ("header", "count", "expected"),
    [
        (None, 1, None),
        ("", 1, None),
        ("203.0.113.7", 0, None),  # count 0: the header is never read
        ("203.0.113.7", 1, "203.0.113.7"),
        ("6.6.6.6, 203.0.113.7", 1, "203.0.113.7"),  # a forged left entry is ignored
        ("6.6.6.6,203.0.113.7, 10.0.0.9", 2, "203.0.113.7"),
        (" 2001:DB8::1 ", 1, "2001:db8::1"),
        ("[2001:db8::1]:443", 1, "2001:db8::1"),
        ("203.0.113.7:51000", 1, "203.0.113.7"),
        ("203.0.113.7", 2, None),  # fewer entries than our proxies: not what they wrote
        ("6.6.6.6, unknown", 1, None),
        ("6.6.6.6, ", 1, None),
        ("203.0.113.7, 300.1.1.1", 1, None),
        ("<script>, 203.0.113.7\r\nX: y", 1, None),
        ("1.1.1.1," * 1000 + "203.0.113.7", 1, None),  # oversized: not parsed
    ],
)
def test_forwarded_client_ip(header: str | None, count: int, expected: str | None) -> None:
    assert forwarded_client_ip(header, count) == expected


def _request(forwarded_for: str | None, remote: str = PROXY) -> object:
    extra = {"REMOTE_ADDR": remote}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return RequestFactory().get("/", **extra)


def test_with_no_trusted_proxy_a_spoofed_header_is_ignored(settings) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 0
    request = _request("198.51.100.66")
    assert client_ip(request) == PROXY
    assert get_adapter().get_client_ip(request) == PROXY


def test_with_one_trusted_proxy_the_right_most_entry_is_the_client(settings) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    request = _request("198.51.100.66, 203.0.113.7")
    assert client_ip(request) == "203.0.113.7"
    assert get_adapter().get_client_ip(request) == "203.0.113.7"


@pytest.mark.parametrize("header", ["garbage", "203.0.113.7, ", "", ",,,"])
def test_a_malformed_header_falls_back_to_remote_addr(settings, header: str) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    assert client_ip(_request(header)) == PROXY
    # allauth's own parser would raise ImproperlyConfigured or refuse the request here.
    assert get_adapter().get_client_ip(_request(header)) == PROXY


def test_more_trusted_proxies_than_entries_falls_back_to_remote_addr(settings) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 2
    assert client_ip(_request("203.0.113.7")) == PROXY
    assert client_ip(_request(None)) == PROXY


def test_allauth_is_configured_with_the_same_count() -> None:
    assert django_settings.ALLAUTH_TRUSTED_PROXY_COUNT == django_settings.PORTAL_TRUSTED_PROXY_COUNT


def _failed_sign_in(forwarded_for: str, email: str = "nobody@example.com") -> str:
    response = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for).post(
        "/accounts/login/", {"login": email, "password": WRONG}
    )
    return response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(("count", "expected"), [(0, PROXY), (1, "203.0.113.7")])
def test_the_audit_log_records_the_client_behind_the_proxy(
    settings, count: int, expected: str
) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = count
    _failed_sign_in("198.51.100.66, 203.0.113.7")
    [event] = AuditEvent.objects.filter(action="auth.sign_in_failed")
    assert event.source_ip == expected


@pytest.mark.django_db
def test_rate_limits_count_the_client_and_forged_entries_do_not_evade_them(settings) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "2/m/ip"}
    limited = "Too many failed sign-in attempts"
    # One client, a new forged left entry each time (and a new address typed in, so only the
    # per-IP limit applies): still one client.
    for n in range(2):
        assert limited not in _failed_sign_in(f"192.0.2.{n}, 203.0.113.7", f"a{n}@example.com")
    assert limited in _failed_sign_in("192.0.2.99, 203.0.113.7", "a9@example.com")
    # Another client behind the same proxy is not locked out by the first one.
    assert limited not in _failed_sign_in("203.0.113.8", "b@example.com")


@pytest.mark.django_db
def test_without_a_trusted_proxy_every_client_counts_as_the_proxy(settings) -> None:
    settings.PORTAL_TRUSTED_PROXY_COUNT = 0
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "2/m/ip"}
    limited = "Too many failed sign-in attempts"
    for n in range(2):
        assert limited not in _failed_sign_in(f"203.0.113.{n}", f"a{n}@example.com")
    # A different X-Forwarded-For does not make a new client when no proxy is trusted.
    assert limited in _failed_sign_in("203.0.113.50", "c@example.com")
