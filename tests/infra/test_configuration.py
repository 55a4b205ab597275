""".env.example documents every variable; production settings build static files and probe."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from portal import healthcheck

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
DOCUMENTED = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE, re.M))
SETTINGS_SOURCE = (ROOT / "portal" / "settings.py").read_text()
# env("NAME", ...), env.str("NAME", ...), env.db("NAME", ...), env.email_url("NAME", ...)
SETTINGS_VARIABLES = set(re.findall(r'\benv(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]*)"', SETTINGS_SOURCE))
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 64 + "-a-long-random-production-like-secret-value",
    "ALLOWED_HOSTS": "portal.example.com",
}


def test_the_settings_scan_finds_the_variables_settings_read() -> None:
    # Guards the regex itself: if it stopped matching, the next test would pass vacuously.
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "EMAIL_URL"} <= (
        SETTINGS_VARIABLES
    )


def test_every_variable_settings_read_is_in_env_example() -> None:
    missing = SETTINGS_VARIABLES - DOCUMENTED
    assert missing == set(), f"add to .env.example: {sorted(missing)}"


def test_env_example_lists_nothing_that_nobody_reads() -> None:
    readers = "\n".join(
        (ROOT / name).read_text()
        for name in ("portal/settings.py", "demo/embedded.py", "portal/gunicorn.conf.py")
    )
    readers += (ROOT / "docker-compose.yml").read_text()
    stale = {name for name in DOCUMENTED - {"COMPOSE_PROFILES"} if f'"{name}"' not in readers}
    stale -= {name for name in DOCUMENTED if "${" + name in readers}
    assert stale == set(), f"nothing reads: {sorted(stale)}"


def test_every_variable_has_a_comment_or_section_and_nothing_is_active() -> None:
    # An untouched copy to .env must change nothing, so every assignment is commented out.
    active = re.findall(r"^[A-Z][A-Z0-9_]*=.*$", ENV_EXAMPLE, re.M)
    assert active == []


def _production_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(
        PRODUCTION,
        STATIC_ROOT=str(tmp_path / "static"),
        PORTAL_DATA_DIR=str(tmp_path / "data"),
    )
    for folder in ("queue", "processed", "control"):
        (tmp_path / "data" / "broker" / folder).mkdir(parents=True, exist_ok=True)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_serves_the_portal_and_its_hashed_static_files(tmp_path: Path) -> None:
    """What the Docker image does: collectstatic at build, then gunicorn with its config."""
    env = _production_env(tmp_path)
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert collected.returncode == 0, collected.stdout + collected.stderr
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
    hashed = manifest["paths"]["admin/css/base.css"]
    assert re.fullmatch(r"admin/css/base\.[0-9a-f]{12}\.css", hashed)
    assert (tmp_path / "static" / (hashed + ".gz")).is_file()  # compressed for whitenoise

    port = _free_port()
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="1")
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                *("--config", "portal/gunicorn.conf.py", "portal.wsgi:application"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while healthcheck.probe(f"{base}/healthz", allowed_hosts="portal.example.com"):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert healthcheck.probe(f"{base}/readyz", allowed_hosts="portal.example.com") is None
        request = urllib.request.Request(
            f"{base}/static/{hashed}",
            headers={"Host": "portal.example.com", "X-Forwarded-Proto": "https"},
        )
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request) as r:
            assert r.status == 200
            assert "immutable" in r.headers["Cache-Control"]  # whitenoise, for hashed names
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Booting worker" in log.read_text()


# --- the container health probe -----------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.hosts.append(self.headers["Host"])
        status = 200 if self.path == "/ok" else 503
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"status": "unavailable"}')

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.hosts = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_the_probe_passes_on_200_and_presents_an_allowed_host(server) -> None:
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/ok"
    assert healthcheck.probe(url, allowed_hosts=".example.com,portal.example.org") is None
    assert server.hosts == ["example.com"]


def test_the_probe_fails_with_the_reason(server) -> None:
    port = server.server_address[1]
    problem = healthcheck.probe(f"http://127.0.0.1:{port}/readyz")
    assert problem.startswith("HTTP 503")
    assert "unavailable" in problem
    assert server.hosts == [f"127.0.0.1:{port}"]


def test_the_probe_command_exits_non_zero_when_nothing_listens() -> None:
    assert healthcheck.main(["http://127.0.0.1:1/readyz"]) == 1
    assert healthcheck.main(["file:///etc/passwd"]) == 2
    with pytest.raises(ValueError):
        healthcheck.probe("file:///etc/passwd")
