"""What Django's own error reports (the technical 500 page with DEBUG on, the 500 email to
ADMINS) may show.

Django's filter hides the variables and POST fields of views marked `sensitive_variables` /
`sensitive_post_parameters` only with DEBUG off; `SecretSafeReporterFilter` hides them with
DEBUG on too: a developer's page is no place for a customer's AccessKey secret either.
`RedactingExceptionReporter` passes the whole report through the log redactors
(LOGGING["redactors"]), so a secret in a URL (the credentials-URI key, an invitation token)
is gone from the report's request URL, resolver arguments and the frames above the view, as
it is from the logs.

Django imports the reporter while it configures logging, before the apps are ready: this
module imports no app, and finds the redactors only when a report is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import cast

from django.conf import settings
from django.http import HttpRequest
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter


class SecretSafeReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, active whether DEBUG is on or off."""

    def is_active(self, request: HttpRequest | None) -> bool:
        return True


@cache
def _redactors() -> tuple[Callable[[str], str], ...]:
    dotted_paths = cast(Iterable[str], settings.LOGGING.get("redactors", []))
    return tuple(import_string(dotted) for dotted in dotted_paths)


def redact_report(text: str) -> str:
    for redact in _redactors():
        text = redact(text)
    return text


class RedactingExceptionReporter(ExceptionReporter):
    # Django's report is already escaped; the redactors only put "[redacted]" in place of
    # text, adding no markup, so what was safe stays safe.
    def get_traceback_html(self) -> SafeString:
        return mark_safe(redact_report(super().get_traceback_html()))  # noqa: S308

    def get_traceback_text(self) -> SafeString:
        return mark_safe(redact_report(super().get_traceback_text()))  # noqa: S308
