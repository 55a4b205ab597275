""".env.example documents every variable; production settings build static files and probe."""

import json
import os
import re
import subprocess
import sys
import threading
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
        for name in ("portal/settings.py", "portal/embedded.py", "portal/gunicorn.conf.py")
    )
    readers += (ROOT / "docker-compose.yml").read_text()
    stale = {name for name in DOCUMENTED - {"COMPOSE_PROFILES"} if f'"{name}"' not in readers}
    stale -= {name for name in DOCUMENTED if "${" + name in readers}
    assert stale == set(), f"nothing reads: {sorted(stale)}"


def test_every_variable_has_a_comment_or_section_and_nothing_is_active() -> None:
    # An untouched copy to .env must change nothing, so every assignment is commented out.
    active = re.findall(r"^[A-Z][A-Z0-9_]*=.*$", ENV_EXAMPLE, re.M)
    assert active == []


def test_collectstatic_builds_the_hashed_manifest_with_production_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(PRODUCTION, STATIC_ROOT=str(tmp_path / "static"))
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
    hashed = manifest["paths"]["admin/css/base.css"]
    assert re.fullmatch(r"admin/css/base\.[0-9a-f]{12}\.css", hashed)
    assert (tmp_path / "static" / (hashed + ".gz")).is_file()  # compressed for whitenoise


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
