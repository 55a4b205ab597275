"""A Celery worker that touches a file once it is ready to take tasks (the benchmarks wait
for it before measuring):

    python benchmarks/bench_worker.py READY_FILE -A portal worker [celery worker options]
"""

from __future__ import annotations

import sys
from pathlib import Path

from celery.signals import worker_ready

READY = Path(sys.argv[1])


@worker_ready.connect
def _ready(**_: object) -> None:
    READY.touch()


if __name__ == "__main__":
    from celery.__main__ import main

    sys.argv = ["celery", *sys.argv[2:]]
    main()
