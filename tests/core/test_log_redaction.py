"""No secret that travels in a URL reaches a log line (issue 18, item 8).

Every handler the logging configuration leaves on any logger (Django's own included) carries
the redaction filters, with DEBUG on or off; requests answered 4xx and 5xx on every
secret-bearing URL leave no secret in what those handlers write.
"""

import io
import logging
from collections.abc import Iterator

import pytest
from django.core.handlers.base import BaseHandler
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from core.log_redaction import (
    REDACTED,
    SECRET_PATH_ROUTES,
    RedactSecretPaths,
    redact_secret_paths,
)
from delegations.partner.log_redaction import RedactCredentialsUriKeys

# Invented secrets, one per secret-bearing URL (a test walks the URL patterns for them).
SECRET_URLS = {
    "/delegations/credentials-uri/pcu_Sekr3tCredUriKey-abc_123": "Sekr3tCredUriKey",
    "/delegations/credentials-uri/NoPrefixSekr3tKey": "NoPrefixSekr3tKey",
    "/invitations/Sekr3tInvitationToken-xyz/": "Sekr3tInvitationToken",
    "/accounts/confirm-email/Sekr3tConfirmKey:abc/": "Sekr3tConfirmKey",
    "/accounts/password/reset/key/4-Sekr3tResetKey-1a2b/": "Sekr3tResetKey",
    "/dev/webhooks/receive/Sekr3tWebhookToken/": "Sekr3tWebhookToken",
}
# Routes whose string parameter is no secret: an audit sequence number, the embedded
# mailbox's message ids, the admin's object ids.
NOT_SECRET_PARAMETERS = ("audit/events/", "dev/mail/", "admin/")


def _patterns(resolver: URLResolver, prefix: str = "") -> Iterator[str]:
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route


def test_every_url_with_a_string_parameter_is_redacted_or_known_not_secret() -> None:
    uncovered = []
    for route in _patterns(get_resolver()):
        plain = route.replace("^", "").replace("$", "")
        if "(?P<" not in plain and "<str:" not in plain and "<path:" not in plain:
            continue
        if plain.startswith(NOT_SECRET_PARAMETERS):
            continue
        if not any(f"{name}/" in plain for name in SECRET_PATH_ROUTES):
            uncovered.append(route)
    assert uncovered == []
    for url in SECRET_URLS:  # and the examples here are real routes
        assert get_resolver().resolve(url.split("?")[0])


@pytest.mark.parametrize(("url", "secret"), SECRET_URLS.items())
def test_a_secret_in_a_path_is_redacted_wherever_the_path_appears(url: str, secret: str) -> None:
    for line in (
        f'"GET {url} HTTP/1.1" 404 179',
        f"Internal Server Error: {url}",
        f"http://127.0.0.1:8000{url}?next=/",
    ):
        redacted = RedactCredentialsUriKeys().redact(redact_secret_paths(line))
        assert secret not in redacted and REDACTED in redacted
        assert redact_secret_paths(redacted) == redacted  # redacting twice changes nothing


def test_a_secret_in_a_traceback_or_stack_is_redacted() -> None:
    try:
        raise RuntimeError("no key /invitations/Sekr3tInTraceback/ here")
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("pcu_Sekr3tArg",), exc_info=True
        )
        import sys

        record.exc_info = sys.exc_info()
    record.stack_info = "Stack: /accounts/confirm-email/Sekr3tInStack/"
    for log_filter in (RedactSecretPaths(), RedactCredentialsUriKeys()):
        assert log_filter.filter(record)
    text = logging.Formatter().format(record)
    assert "Sekr3t" not in text
    assert "RuntimeError" in text and "failed pcu_[redacted]" in text


def _every_handler() -> list[tuple[str, logging.Handler]]:
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    return [
        (logger.name, handler)
        for logger in loggers
        for handler in logger.handlers
        # pytest's own capture handlers are not the product's; a NullHandler writes nothing.
        if not type(handler).__module__.startswith("_pytest")
        and not isinstance(handler, logging.NullHandler)
    ]


def test_the_handlers_configured_here_carry_both_redaction_filters() -> None:
    console = logging.getLogger().handlers
    products = [h for h in console if not type(h).__module__.startswith("_pytest")]
    assert products
    for handler in products:
        assert {RedactSecretPaths, RedactCredentialsUriKeys} <= {type(f) for f in handler.filters}


# Loggers whose lines a request or a cloud call can produce, with the SDKs' own handlers.
LOGGERS = [
    "",
    "django",
    "django.request",
    "django.server",
    "gunicorn.access",
    "gunicorn.error",
    "celery.worker",
    "credentials",
    "alibabacloud-tea",
    "delegations.partner.views",
]


def test_a_secret_logged_on_any_logger_reaches_no_handler_unredacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import alibabacloud_credentials.provider.refreshable  # noqa: F401 - adds its own handler
    import Tea.core  # noqa: F401 - adds its own handler

    sink = io.StringIO()
    handlers = _every_handler()
    assert {name for name, _ in handlers} >= {"root", "credentials", "alibabacloud-tea"}
    for _name, handler in handlers:
        if isinstance(handler, logging.StreamHandler):  # every one the product or an SDK adds
            monkeypatch.setattr(handler, "stream", sink)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "level", logging.DEBUG)
        for url in SECRET_URLS:
            logger.warning('"GET %s HTTP/1.1" 404 12', url)
            logger.log(logging.ERROR, "failed", exc_info=RuntimeError(f"no {url}"))
    logged = sink.getvalue()
    assert logged.count(REDACTED) >= len(LOGGERS) * len(SECRET_URLS)
    for secret in SECRET_URLS.values():
        assert secret not in logged


@pytest.fixture
def every_log_line(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What every configured handler writes, collected (the handlers and filters are real)."""
    sink = io.StringIO()
    for _name, handler in _every_handler():
        if isinstance(handler, logging.StreamHandler):
            monkeypatch.setattr(handler, "stream", sink)
    return sink


def _provoke_4xx_and_5xx(monkeypatch: pytest.MonkeyPatch) -> None:
    client = Client(raise_request_exception=False)
    for url in SECRET_URLS:
        assert client.get(url).status_code < 500

    def broken_resolve(self, request):
        # The path, secret and all, in the exception's message and so in the traceback.
        raise RuntimeError(f"cannot resolve {request.path}")

    monkeypatch.setattr(BaseHandler, "resolve_request", broken_resolve)
    for url in SECRET_URLS:
        assert client.get(url).status_code == 500


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
def test_requests_answered_4xx_and_5xx_on_secret_urls_log_no_secret(
    debug: bool, every_log_line: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    with override_settings(DEBUG=debug):
        _provoke_4xx_and_5xx(monkeypatch)
    logged = every_log_line.getvalue()
    assert "Internal Server Error" in logged and "RuntimeError: cannot resolve" in logged
    for secret in SECRET_URLS.values():
        assert secret not in logged
