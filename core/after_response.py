"""Work that may wait until the person has their page: `after_response(fn)`.

While a request is being served (between Django's `request_started` and `request_finished`,
which the WSGI handler and the test client both send), `fn` is queued and runs once the
response has been closed, i.e. after the server wrote it to the client. Anywhere else (a worker
task, a command, a test calling a service) `fn` runs at once.

Only for work whose loss is covered elsewhere: a process killed between the response and the
queue loses it (the notification outbox's deliveries stay pending, and its dispatcher
publishes them on its next pass). The queue runs on the thread that served the request, after
Django's own `request_finished` receivers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.core.signals import request_finished, request_started

logger = logging.getLogger(__name__)

# This thread's queue while it serves a request; None between requests.
_state = threading.local()


def after_response(fn: Callable[[], None]) -> None:
    """Run `fn` after the response of the request being served (at once outside a request).
    A function queued again before it ran runs once."""
    queue: list[Callable[[], None]] | None = getattr(_state, "queue", None)
    if queue is None:
        fn()
    elif fn not in queue:
        queue.append(fn)


def _run(queue: list[Callable[[], None]] | None) -> None:
    for fn in queue or ():
        try:
            fn()
        except Exception:
            # The response is gone: nobody else can hear about it.
            logger.exception("Work deferred after the response failed.")


def _request_started(**_kwargs: Any) -> None:
    # What a request that never reached request_finished left behind runs now, not never.
    leftover = getattr(_state, "queue", None)
    _state.queue = []
    _run(leftover)


def _request_finished(**_kwargs: Any) -> None:
    queue = getattr(_state, "queue", None)
    _state.queue = None
    _run(queue)


request_started.connect(_request_started, dispatch_uid="core.after_response.started")
request_finished.connect(_request_finished, dispatch_uid="core.after_response.finished")
