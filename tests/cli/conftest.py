"""`pap` against a live portal and cloudsim (company B's staff Alice holds an active,
assigned delegation of company A's role), or against a scripted loopback server that answers
the way a proxy or a broken network does; pap runs as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from api.services import api_token_create
from delegations.models import Delegation
from tests.fixtures.partner import PartnerWorld

# pap from this checkout, whether or not `-e ./cli` is installed in the environment.
CLI_SOURCE = Path(__file__).resolve().parents[2] / "cli"


@dataclass
class PapHome:
    """A home directory where pap is signed in to `portal` with `token`."""

    portal: str
    home: Path
    token: str

    @property
    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("ALIBABA_CLOUD_", "PAP_", "DJANGO_"))
        }
        env.update(
            {
                "PAP_CONFIG_DIR": str(self.home / "pap"),
                "PAP_NO_KEYRING": "1",
                "HOME": str(self.home),
                "NO_PROXY": "*",
                "PYTHONPATH": str(CLI_SOURCE),
            }
        )
        return env

    def sign_in(self, token: str | None = None, portal: str | None = None) -> None:
        config = self.home / "pap" / "config.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            json.dumps({"portal": portal or self.portal, "token": token or self.token})
        )
        config.chmod(0o600)

    def run(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pap", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@dataclass
class Pap(PapHome):
    world: PartnerWorld
    delegation: Delegation


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


# status, headers, body; a Content-Length among the headers is sent as it is (a longer one than
# the body is a connection that breaks off mid-answer).
Answer = tuple[int, dict[str, str], bytes]


def json_answer(body: object, status: int = 200, **headers: str) -> Answer:
    content_type = "application/problem+json" if status >= 400 else "application/json"
    return status, {"Content-Type": content_type, **headers}, json.dumps(body).encode()


@dataclass
class StubServer:
    """A loopback HTTP server with scripted answers per path (the last one repeats; an unknown
    path is a 404 problem) that records every request it receives, headers included. As an
    HTTP proxy it sees absolute URLs; it answers by their path."""

    url: str
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[Answer]] = field(default_factory=dict)

    def answer(self, path: str, *answers: Answer) -> None:
        self.answers[path] = list(answers)

    def next_answer(self, path: str) -> Answer:
        queue = self.answers.get(urllib.parse.urlsplit(path).path)
        if not queue:
            return json_answer({"type": "/api/v1/problems/not-found", "detail": "Nothing"}, 404)
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def stub_server() -> Iterator[Callable[[], StubServer]]:
    """Starts as many stub servers as a test asks for, each on its own port."""
    servers: list[ThreadingHTTPServer] = []

    def start() -> StubServer:
        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.received.append(
                    Received(self.command, self.path, dict(self.headers.items()), body)
                )
                status, headers, text = stub.next_answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            do_GET = do_POST = answer

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        stub = StubServer(url=f"http://127.0.0.1:{server.server_port}")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return stub

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def pap(partner_world_tx: PartnerWorld, live_server: Any, tmp_path: Path) -> Iterator[Pap]:
    world = partner_world_tx
    delegation = world.active_delegation()
    world.assign(delegation, world.alice)
    world.drain()
    token = api_token_create(
        user=world.alice,
        name="pap tests",
        scopes=["read", "request", "credentials"],
        expires_in_days=1,
        organisation=world.partner,
    ).raw
    helper = Pap(
        world=world, delegation=delegation, portal=live_server.url, home=tmp_path, token=token
    )
    helper.sign_in()
    yield helper
