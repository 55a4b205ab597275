"""Servers load the URL configuration (every urls and views module) as they start, before they
fork, so no task or request of theirs pays for it; a worker then hides what it loaded from the
garbage collector. Each check runs in a process of its own: this one loaded every views module
long ago."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIEWS = "delegations.lifecycle.views"


def _run(code: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_starting_worker_loads_it_before_its_first_task() -> None:
    loaded = _run(
        "import sys, django\n"
        "django.setup()\n"
        "from celery.signals import worker_init\n"
        "from portal.celery import _load_url_configuration as load\n"
        "assert any(ref() is load for _key, ref in worker_init.receivers)\n"
        f"before = {VIEWS!r} in sys.modules\n"
        "load()\n"
        f"print(before, {VIEWS!r} in sys.modules)\n"
    )
    assert loaded == ["False", "True"]


def test_the_web_application_loads_it_when_imported() -> None:
    # gunicorn imports it once in its master (preload_app), then forks the workers.
    loaded = _run(f"import sys, portal.wsgi\nprint({VIEWS!r} in sys.modules)\n")
    assert loaded == ["True"]
    settings: dict = {}
    exec((ROOT / "portal" / "gunicorn.conf.py").read_text(), settings)  # noqa: S102
    assert settings["preload_app"] is True


def test_a_starting_worker_hides_its_start_up_objects_from_the_collector() -> None:
    # Before the pool forks, in each prefork child, and once a solo worker's consumer is ready.
    frozen = _run(
        "import gc, django\n"
        "django.setup()\n"
        "from celery.signals import worker_init, worker_process_init, worker_ready\n"
        "from portal.celery import _freeze_start_up_objects as freeze\n"
        "for signal in (worker_init, worker_process_init, worker_ready):\n"
        "    assert any(ref() is freeze for _key, ref in signal.receivers), signal\n"
        "before = gc.get_freeze_count()\n"
        "freeze()\n"
        "print(before, gc.get_freeze_count() > 100_000)\n"
    )
    assert frozen == ["0", "True"]
