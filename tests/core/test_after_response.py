"""Work deferred until the response has been sent: queued while a request is served, run when
it finishes, at once anywhere else; a failure is logged and the rest still runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from core.after_response import after_response


@contextmanager
def serving_a_request() -> Iterator[None]:
    """The signals around one request, as the test client sends them: without Django's own
    connection clean-up, which would close the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        request_started.send(sender=__name__)
        yield
        request_finished.send(sender=__name__)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_outside_a_request_the_work_runs_at_once() -> None:
    ran: list[str] = []
    after_response(lambda: ran.append("now"))
    assert ran == ["now"]


def test_in_a_request_the_work_waits_for_the_response_and_runs_once() -> None:
    ran: list[str] = []

    def publish() -> None:
        ran.append("publish")

    with serving_a_request():
        after_response(publish)
        after_response(publish)
        after_response(lambda: ran.append("other"))
        assert ran == []
    assert ran == ["publish", "other"]
    after_response(publish)  # the request is over: at once again
    assert ran == ["publish", "other", "publish"]


def test_a_failure_is_logged_and_the_rest_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("broker gone")

    with serving_a_request():
        after_response(broken)
        after_response(lambda: ran.append("next"))
    assert ran == ["next"]
    assert "deferred after the response failed" in caplog.text


def test_work_a_request_left_behind_runs_when_the_next_one_starts() -> None:
    ran: list[str] = []
    request_started.disconnect(close_old_connections)
    try:
        request_started.send(sender=__name__)
        after_response(lambda: ran.append("left"))
        request_started.send(sender=__name__)  # no request_finished in between
        assert ran == ["left"]
    finally:
        request_started.connect(close_old_connections)
    with serving_a_request():
        pass
    assert ran == ["left"]
