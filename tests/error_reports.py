"""Every report Django makes of a request that fails: the response (the product's 500 page
with DEBUG off, the technical 500 page with DEBUG on), the 500 email to ADMINS (text and
HTML, as `AdminEmailHandler` writes it) and the log lines. Secret-handling tests check that no
secret is in any of them (issue 18, item 7)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from django.core import mail
from django.test import override_settings
from django.utils.log import AdminEmailHandler


def failing_request_reports(
    make_request: Callable[[], Any], *, debug: bool, caplog: pytest.LogCaptureFixture
) -> dict[str, str]:
    """Run `make_request` (a test client call that fails inside a view) with DEBUG on or off
    and return each report by name."""
    handler = AdminEmailHandler(include_html=True)
    request_logger = logging.getLogger("django.request")
    request_logger.addHandler(handler)
    caplog.clear()
    mail.outbox = []
    try:
        with override_settings(DEBUG=debug, ADMINS=[("Operator", "ops@example.com")]):
            response = make_request()
    finally:
        request_logger.removeHandler(handler)
    assert response.status_code == 500, response.status_code
    [email] = mail.outbox
    html = "".join(str(content) for content, _type in email.alternatives)
    reports = {
        "response": response.content.decode(errors="replace"),
        "email subject": email.subject,
        "email text": email.body,
        "email html": html,
        "logs": caplog.text,
    }
    # The reports are worth checking only if they really show the failing frames.
    assert "RuntimeError" in reports["email text"] and "Local Vars" in reports["email html"]
    if debug:
        assert "Local vars" in reports["response"]
    return reports


def assert_no_secret_in_reports(
    make_request: Callable[[], Any],
    secrets: Callable[[], Iterable[str]],
    *,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With DEBUG off and on, none of `secrets()` (read after the request: some are made by
    it) is in any report of the failing request."""
    for debug in (False, True):
        reports = failing_request_reports(make_request, debug=debug, caplog=caplog)
        for secret in secrets():
            assert secret, "a secret to look for"
            leaks = [name for name, text in reports.items() if secret in text]
            assert leaks == [], f"DEBUG={debug}: {secret[:6]}… is in {leaks}"
