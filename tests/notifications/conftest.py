"""A real HTTP receiver on loopback for the chat and webhook tests: it records every request
and answers what the test tells it to (status, body, headers, or a delay past the timeout);
and `loopback_server` for servers that speak in their own time (slow mail servers and
receivers)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # Each answer is (status, body, headers, delay); the last one repeats.
    answers: list[tuple[int, str, dict[str, str], float]] = field(
        default_factory=lambda: [(200, "ok", {}, 0.0)]
    )

    def answer(self, *answers: tuple[int, str, dict[str, str], float]) -> None:
        self.answers = list(answers)


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    # A loopback receiver is allowed only where the portal runs embedded or in DEBUG.
    settings.PORTAL_EMBEDDED = True
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            recv = state["receiver"]
            recv.received.append(Received(self.path, dict(self.headers.items()), body))
            status, text, headers, delay = (
                recv.answers.pop(0) if len(recv.answers) > 1 else recv.answers[0]
            )
            if delay:
                time.sleep(delay)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text.encode())))
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hook?key=k1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def loopback_server(converse: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on loopback that hands each connection to `converse`, in a thread of its
    own (which closes it); its port. On leaving, waits for every conversation to end."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    conversations: list[threading.Thread] = []

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conversation = listener.accept()[0]
            except TimeoutError:
                continue
            conversation.settimeout(10)
            thread = threading.Thread(target=converse, args=(conversation,), daemon=True)
            thread.start()
            conversations.append(thread)

    accepting = threading.Thread(target=accept, daemon=True)
    accepting.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        accepting.join(5)
        for thread in conversations:
            thread.join(10)
        listener.close()
