"""Log filters that keep secrets out of log lines, whichever handler writes them.

Some secrets have to travel in a URL: an emailed link can carry nothing else (invitation
tokens, allauth's email-confirmation and password-reset keys), and the aliyun CLI's
credentials URI is a plain GET. Every request log (gunicorn's access log, runserver's
`django.server`, `django.request`'s 4xx/5xx warnings and their tracebacks) would repeat them.
Every record is redacted as it is made (`install_record_redaction`, installed by Django's
LOGGING_CONFIG and by `demo/gunicorn.conf.py`), whoever logs it and whichever handler writes
it; the handlers configured in `portal/settings.py` also carry the filters here.

This module is imported by the logging configuration, before Django's apps are ready (and by
gunicorn's master, which never loads Django): it must import nothing of Django's.
"""

from __future__ import annotations

import importlib
import logging
import logging.config
import re
from collections.abc import Callable

REDACTED = "[redacted]"

# The route segment in front of each secret path parameter (see the urls.py files; a test
# walks every URL pattern and fails on one with a string parameter that is not listed here or
# known not to be secret).
SECRET_PATH_ROUTES = (
    "invitations",  # accounts: invitation tokens
    "confirm-email",  # allauth: email confirmation keys
    "password/reset/key",  # allauth: password reset keys (<uidb36>-<key>)
    "credentials-uri",  # delegations.partner: credentials-URI keys
    "dev/webhooks/receive",  # notifications: the local webhook inbox's receiving token
)

_SECRET_PATH = re.compile(
    r"(?P<route>/(?:" + "|".join(re.escape(route) for route in SECRET_PATH_ROUTES) + r")/)"
    r"(?!\[redacted\])[^/\s?#\"'<>]+"
)


def redact_secret_paths(text: str) -> str:
    return _SECRET_PATH.sub(r"\g<route>" + REDACTED, text)


Redactor = Callable[[str], str]


def redact_record(record: logging.LogRecord, redact: Redactor) -> None:
    """Rewrite a record's message, traceback and stack through `redact`, in place."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string is not ours to fix here
        return
    redacted = redact(message)
    if redacted != message:
        record.msg = redacted
        record.args = ()
    # Formatters print the traceback from exc_text when it is set: set it, redacted, so a
    # secret in an exception's message (or a frame's source line) stays out too.
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """A handler filter rewriting each record through `redact`; it never drops a record."""

    def redact(self, text: str) -> str:
        raise NotImplementedError

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record, self.redact)
        return True


class RedactSecretPaths(RedactingFilter):
    """Removes the secret path parameters of SECRET_PATH_ROUTES from log records."""

    def redact(self, text: str) -> str:
        return redact_secret_paths(text)


def install_record_redaction(redactors: list[Redactor]) -> None:
    """Redact every log record as it is made, before any handler or filter sees it.

    Handler filters only guard handlers configured here; the Alibaba SDKs add handlers of
    their own when imported (`credentials`, `alibabacloud-tea`), and Celery replaces the root
    logger's. A record factory covers them all. Installing twice replaces the first one.
    """
    base = logging.getLogRecordFactory()
    base = getattr(base, "redaction_base", base)

    def redact(text: str) -> str:
        for redactor in redactors:
            text = redactor(text)
        return text

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = base(*args, **kwargs)
        redact_record(record, redact)
        return record

    factory.redaction_base = base  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure_logging(config: dict) -> None:
    """Django's LOGGING_CONFIG: `dictConfig`, plus record redaction by config["redactors"].

    "redactors" lists dotted paths of `str -> str` functions; this module must not import
    Django, so they are resolved here with importlib.
    """
    settings = dict(config)
    redactors = []
    for dotted in settings.pop("redactors", []):
        module, _, name = dotted.rpartition(".")
        redactors.append(getattr(importlib.import_module(module), name))
    install_record_redaction(redactors)
    logging.config.dictConfig(settings)
