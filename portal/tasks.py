"""Tasks that belong to the portal as a whole rather than to one app."""

import re
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.utils import timezone

# The marker becomes a file name, so it is kept to a plain token.
_MARKER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def ping_marker_path(marker: str) -> Path:
    if not _MARKER.fullmatch(marker):
        raise ValueError("a ping marker is 1-64 letters, digits, '_' or '-'")
    return settings.DATA_DIR / "worker-pings" / marker


@shared_task(name="portal.tasks.ping", bind=True, ignore_result=True)
def ping(self, *, marker: str) -> None:
    """Prove that a worker consumes from the broker: write DATA_DIR/worker-pings/<marker>.

    The file names the worker and the time. Redelivery rewrites the same file, so the task is
    idempotent like every other task here.
    """
    path = ping_marker_path(marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{self.request.hostname} {timezone.now().isoformat()}\n")
