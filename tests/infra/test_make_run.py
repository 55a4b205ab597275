"""`make run` end to end: `python -m demo.embedded` on free ports and a fresh data directory.

It must migrate, start cloudsim, seed the demo, start web, worker and beat, print the URLs and
the demo sign-ins, answer the health probes, serve with DEBUG off (the product's own error
pages), log no secret from a URL, start a killed worker again, and on Ctrl-C leave no process
behind. It always
runs embedded (SQLite, filesystem broker), whatever database and broker the suite uses.
"""

import contextlib
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import pytest

from tests.core.test_log_redaction import SECRET_URLS

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 240.0
STARTED = re.compile(r"embedded \| started (\S+) \(pid (\d+)\)")
# The suite's own services and secrets must not leak into the embedded run.
NOT_INHERITED = {
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "PORTAL_ENCRYPTION_KEYS",
    "AUDIT_CHECKPOINT_KEY",
    "AUDIT_CHECKPOINT_DIR",
    "PORTAL_DATA_DIR",
    "CLOUDSIM_DATA_DIR",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return response.status, response.read()


def _fetch(url: str) -> tuple[int, Message, str]:
    """Status, headers and body, whatever the status."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def _check_serving_without_debug(base: str) -> None:
    """DEBUG is off: the product's own 404 page with a request id, static files by whitenoise."""
    status, headers, body = _fetch(f"{base}/no/such/page/")
    assert status == 404
    assert f'data-testid="request-id">{headers["X-Request-ID"]}<' in body
    assert "We could not find that page" in body and "demo-banner" in body
    assert "script-src 'self';" in headers["Content-Security-Policy"]
    assert "camera=()" in headers["Permissions-Policy"]
    for debug_output in ("Traceback", "URLconf", "DEBUG = True", "technical", "urlpatterns"):
        assert debug_output not in body
    stylesheet = re.search(r'href="(/static/css/portal\.[0-9a-f]{12}\.css)"', body)
    assert stylesheet, body  # hashed by collectstatic
    assert _fetch(base + stylesheet.group(1))[0] == 200


def _check_a_killed_worker_comes_back(output: "_Output", worker_pid: int) -> int:
    os.kill(worker_pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while len(re.findall(r"worker \| .*@\S+ ready\.", output.text)) < 2:
        assert time.monotonic() < deadline, f"the worker did not come back:\n{output.text}"
        time.sleep(0.5)
    assert "worker exited unexpectedly (status -9); starting it again in 1s" in output.text
    restarted = int(re.findall(r"started worker \(pid (\d+)\)", output.text)[-1])
    assert restarted != worker_pid and _alive(restarted)
    return restarted


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _processes_using(data_dir: Path) -> list[int]:
    """Every live process whose environment names this run's data directory."""
    needle = f"PORTAL_DATA_DIR={data_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                status = (entry / "stat").read_text().split(") ")[1]
                if not status.startswith("Z"):
                    found.append(int(entry.name))
        except (FileNotFoundError, PermissionError, ProcessLookupError, IndexError):
            continue
    return found


class _Output:
    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.banner_shown = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))
            if "Press Ctrl-C to stop everything." in line:
                self.banner_shown.set()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.mark.timeout(420)
@pytest.mark.slow
def test_make_run_serves_everything_and_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    portal_port, cloudsim_port = _free_ports(2)
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(
        PORTAL_DATA_DIR=str(data_dir),
        PORTAL_PORT=str(portal_port),
        CLOUDSIM_PORT=str(cloudsim_port),
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "demo.embedded"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = _Output(runner)
    children: dict[str, int] = {}
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not output.banner_shown.wait(0.5):
            assert runner.poll() is None, f"make run exited early:\n{output.text}"
            assert time.monotonic() < deadline, f"no banner in {START_TIMEOUT}s:\n{output.text}"
        children = {name: int(pid) for name, pid in STARTED.findall(output.text)}
        assert {"migrate", "cloudsim", "seed", "worker", "beat", "web"} <= set(children)

        banner = output.text.split("=" * 78)[1]
        assert f"http://127.0.0.1:{portal_port}/" in banner
        assert f"http://127.0.0.1:{cloudsim_port}/" in banner
        assert "company-a" in banner and "company-b" in banner, banner  # the demo sign-ins

        assert _get(f"http://127.0.0.1:{portal_port}/healthz") == (200, b'{"status": "ok"}')
        status, body = _get(f"http://127.0.0.1:{portal_port}/readyz")
        assert (status, body) == (200, b'{"status": "ready"}')
        assert _get(f"http://127.0.0.1:{cloudsim_port}/_sim/noop")[0] == 200

        key_file = data_dir / "encryption.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        for name in ("web", "worker", "beat", "cloudsim"):
            assert _alive(children[name]), f"{name} is not running:\n{output.text}"

        base = f"http://127.0.0.1:{portal_port}"
        _check_serving_without_debug(base)
        for url in SECRET_URLS:  # refused or "invalid link" pages; all logged by gunicorn
            assert _fetch(base + url)[0] < 500
        children["worker"] = _check_a_killed_worker_comes_back(output, children["worker"])
        assert _alive(children["web"]) and _alive(children["beat"])

        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=90) == 0, output.text
        output.thread.join(timeout=10)
        assert output.lines[-1].endswith("embedded | stopped."), output.text
        assert "/invitations/[redacted]/" in output.text  # the requests were logged...
        for secret in SECRET_URLS.values():
            assert secret not in output.text  # ...without their secrets
        for name, pid in children.items():
            assert not _alive(pid), f"{name} (pid {pid}) survived Ctrl-C"
        assert _processes_using(data_dir) == []
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
        for pid in [*children.values(), *_processes_using(data_dir)]:
            if _alive(pid):
                # Not every process found is a group leader (a pool's helpers are not).
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
