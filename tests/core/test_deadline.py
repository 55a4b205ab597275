"""A deadline cuts the connections handed to it, however the code waiting on them holds them
(TLS included), and lets no connection start once it has passed; outside one, nothing changes."""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from core.deadline import connect_timeout, deadline, watch


def test_a_tls_handshake_the_server_never_answers_is_cut_at_the_deadline() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        tls = ssl.create_default_context().wrap_socket(
            ours, server_hostname="mail.example", do_handshake_on_connect=False
        )
        tls.settimeout(5)
        with deadline(0.2) as limit:
            watch(tls)
            # The connection's end, not the socket's own timeout.
            with pytest.raises(ssl.SSLEOFError):
                tls.do_handshake()
        assert limit.expired
        tls.close()


def test_a_connection_watched_after_the_deadline_is_cut_at_once_and_none_starts() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs, deadline(0.05) as limit:
        while not limit.expired:
            time.sleep(0.01)
        watch(ours)
        ours.settimeout(5)
        assert ours.recv(1) == b""  # shut down: the end of the stream, at once
        with pytest.raises(TimeoutError):
            connect_timeout(10.0)


def test_outside_a_deadline_nothing_is_watched_or_shortened() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert watch(ours) is ours
        assert connect_timeout(10.0) == 10.0
        theirs.sendall(b"x")
        assert ours.recv(1) == b"x"
