"""A real Celery worker and a real beat, started the way `make run` and compose start them.

The broker is whatever the environment configures: the filesystem transport by default, Redis
in CI. Each test uses a queue of its own, so parallel runs on one Redis never steal messages.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

from portal.celery import app
from portal.tasks import ping, ping_marker_path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0


def _wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f}s; log:\n{log.read_text()}")
        time.sleep(0.1)


@pytest.fixture
def celery_env(tmp_path: Path) -> dict[str, str]:
    data_dir = tmp_path / "data"
    for folder in ("queue", "processed", "control"):
        (data_dir / "broker" / folder).mkdir(parents=True)
    return {**os.environ, "DEBUG": "1", "PORTAL_DATA_DIR": str(data_dir)}


@pytest.fixture
def start(celery_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., tuple]]:
    started: list[subprocess.Popen] = []

    def _start(*args: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{args[0]}-{len(started)}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", *args],
                cwd=ROOT,
                env=celery_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process, log

    yield _start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_real_worker_consumes_a_task_sent_through_the_broker(start, celery_env) -> None:
    queue = f"test-{uuid.uuid4().hex[:12]}"
    worker, log = start(
        "worker",
        "--pool",
        "solo",
        "--queues",
        queue,
        "--hostname",
        f"{queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
    )
    _wait_for(lambda: " ready." in log.read_text(), START_TIMEOUT, "the worker was not ready", log)

    marker = uuid.uuid4().hex
    sent = subprocess.run(
        [
            *(sys.executable, "-m", "celery", "-A", "portal", "call", "portal.tasks.ping"),
            *("--kwargs", f'{{"marker": "{marker}"}}', "--queue", queue),
        ],
        cwd=ROOT,
        env=celery_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr

    marker_file = Path(celery_env["PORTAL_DATA_DIR"]) / "worker-pings" / marker
    _wait_for(marker_file.exists, 60, "the ping task's marker did not appear", log)
    # Written by that worker process, not run eagerly by the sender.
    assert marker_file.read_text().startswith(f"{queue}@")

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, log.read_text()
    assert "succeeded" in log.read_text()


def test_beat_starts_and_keeps_its_schedule_in_the_data_directory(start, celery_env) -> None:
    beat, log = start("beat", "--loglevel", "INFO")
    _wait_for(
        lambda: "beat: Starting..." in log.read_text(), START_TIMEOUT, "beat did not start", log
    )
    schedule = Path(celery_env["PORTAL_DATA_DIR"]) / "celerybeat-schedule"
    _wait_for(
        lambda: any(schedule.parent.glob("celerybeat-schedule*")),
        30,
        "beat wrote no schedule file",
        log,
    )
    beat.send_signal(signal.SIGTERM)
    assert beat.wait(timeout=30) == 0, log.read_text()


def test_every_beat_entry_names_a_task_the_worker_knows() -> None:
    app.loader.import_default_modules()
    schedule = settings.CELERY_BEAT_SCHEDULE
    unknown = {
        name: entry["task"] for name, entry in schedule.items() if entry["task"] not in app.tasks
    }
    assert unknown == {}
    assert "portal.tasks.ping" in app.tasks


def test_ping_refuses_a_marker_that_is_not_a_plain_token(settings, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path
    for bad in ("../escape", "", "a/b", "x" * 65, "é"):
        with pytest.raises(ValueError, match="ping marker"):
            ping_marker_path(bad)
    ping(marker="ok-1")
    assert (tmp_path / "worker-pings" / "ok-1").read_text().strip()
