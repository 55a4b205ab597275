"""Django's SMTP email backend, with connections a `core.deadline` can cut: each connection it
opens hands its socket to the deadline in force the moment it is connected, before the
server's greeting, TLS or sign-in is waited for, and a connection kept open across sends (a
batch's) is handed to each send's deadline. Without a deadline it is Django's backend.

The settings put it in place of Django's whenever EMAIL_URL names an SMTP server."""

from __future__ import annotations

import smtplib
import socket
from typing import Any

from django.core.mail.backends import smtp

from core import deadline


class WatchedSMTP(smtplib.SMTP):
    def _get_socket(self, host: str, port: int, timeout: Any) -> socket.socket:
        # The plain connection, before SMTP_SSL wraps it in TLS: the handshake is cut too.
        connected = super()._get_socket(host, port, deadline.connect_timeout(timeout))  # type: ignore[misc]
        return deadline.watch(connected)


class WatchedSMTP_SSL(smtplib.SMTP_SSL, WatchedSMTP):
    pass


class EmailBackend(smtp.EmailBackend):
    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return WatchedSMTP_SSL if self.use_ssl else WatchedSMTP

    def send_messages(self, email_messages: Any) -> int:
        # A connection opened earlier (one a batch shares) is cut by this send's deadline too.
        if self.connection is not None and self.connection.sock is not None:
            deadline.watch(self.connection.sock)
        return super().send_messages(email_messages)
