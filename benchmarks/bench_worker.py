"""A Celery worker that touches a file once it is ready to take tasks (the benchmarks wait
for it before measuring):

    python benchmarks/bench_worker.py READY_FILE -A portal worker [celery worker options]

With PORTAL_BENCH_PROFILE_DIR set, every task runs under cProfile and its stats are written
there (one file per task) for the benchmark to add up.
"""

from __future__ import annotations

import cProfile
import os
import sys
from pathlib import Path

from celery.signals import task_postrun, task_prerun, worker_ready

READY = Path(sys.argv[1])


@worker_ready.connect
def _ready(**_: object) -> None:
    READY.touch()


_PROFILE_DIR = os.environ.get("PORTAL_BENCH_PROFILE_DIR")
_profiles: dict[str, cProfile.Profile] = {}


@task_prerun.connect
def _profile_start(task_id: str = "", **_: object) -> None:
    if _PROFILE_DIR:
        profile = _profiles[task_id] = cProfile.Profile()
        profile.enable()


@task_postrun.connect
def _profile_stop(task_id: str = "", task: object = None, **_: object) -> None:
    profile = _profiles.pop(task_id, None)
    if profile is not None and _PROFILE_DIR:
        profile.disable()
        name = getattr(task, "name", "task").rsplit(".", 1)[-1]
        profile.dump_stats(str(Path(_PROFILE_DIR) / f"{name}-{os.getpid()}-{task_id}.prof"))


if __name__ == "__main__":
    from celery.__main__ import main

    sys.argv = ["celery", *sys.argv[2:]]
    main()
