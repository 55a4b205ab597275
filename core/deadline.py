"""A deadline for a whole exchange with another server, kept by cutting its connections.

A socket's timeout bounds each wait, not the exchange: a server that answers every read just
within it (a line at a time, a byte at a time) holds the caller for as long as it likes.
`deadline(seconds)` arms a watchdog for the code it wraps; the connections that code opens
hand their sockets to it (`watch`, from the connection classes of `core.mail` and the webhook
adapter), and when the time is up the watchdog shuts each of them down, which ends a blocked
read or write at once with an error in the waiting thread. A connection watched afterwards is
shut down as soon as it is watched, and none is started once the time is up
(`connect_timeout`).

The watchdog keeps its own handle on each socket (a duplicate of its descriptor): the one the
code holds may be wrapped in TLS, replaced or closed meanwhile, and the kernel's connection is
the same whichever handle shuts it down. Only a wait outside any socket (a name lookup) is not
cut.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar


class Deadline:
    """The time one exchange may take; `expired` once its watchdog cut it off."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._handles: list[socket.socket] = []
        self._expired = False
        self._over = False

    @property
    def expired(self) -> bool:
        return self._expired

    def remaining(self) -> float:
        return max(0.0, self._ends - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        if sock.fileno() < 0:
            return  # closed already: nothing can wait on it
        # fromfd duplicates the descriptor: `dup()` refuses a socket already wrapped in TLS.
        handle = socket.fromfd(sock.fileno(), sock.family, sock.type, sock.proto)
        with self._lock:
            self._handles.append(handle)
            if self._expired:
                _cut(handle)

    def expire(self) -> None:
        """The watchdog's turn: cut every connection (unless the exchange already ended)."""
        with self._lock:
            if self._over:
                return
            self._expired = True
            for handle in self._handles:
                _cut(handle)

    def end(self) -> None:
        with self._lock:
            self._over = True
            for handle in self._handles:
                handle.close()
            self._handles.clear()


def _cut(handle: socket.socket) -> None:
    # Not connected (any more): nothing waits on it.
    with suppress(OSError):
        handle.shutdown(socket.SHUT_RDWR)


_in_force: ContextVar[Deadline | None] = ContextVar("deadline_in_force", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Cut off every connection the wrapped code opens (in this thread) once `seconds` have
    passed; the `Deadline` says afterwards whether it did."""
    limit = Deadline(seconds)
    watchdog = threading.Timer(seconds, limit.expire)
    watchdog.daemon = True
    token = _in_force.set(limit)
    watchdog.start()
    try:
        yield limit
    finally:
        watchdog.cancel()
        _in_force.reset(token)
        limit.end()


def watch(sock: socket.socket) -> socket.socket:
    """Hand a just-connected socket to the deadline in force, if any; the socket."""
    limit = _in_force.get()
    if limit is not None:
        limit.watch(sock)
    return sock


def connect_timeout(timeout: float | None) -> float | None:
    """The timeout for a connection about to be made: `timeout`, shortened to what the
    deadline in force has left; TimeoutError once it has passed."""
    limit = _in_force.get()
    if limit is None:
        return timeout
    if limit.expired or not limit.remaining():
        raise TimeoutError(f"Cut off after {limit.seconds:g} s")
    if isinstance(timeout, int | float):
        return min(float(timeout), limit.remaining())
    return limit.remaining()
