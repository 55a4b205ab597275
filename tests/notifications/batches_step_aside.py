"""The scenario of `test_batches_step_aside.py`, run in a process of its own on a SQLite file
(the environment of `tests.fixtures.database.sqlite_process_env`): a real Celery worker on the
notification queue, a fanned-out batch of emails committed while another worker holds a lease,
the lease released a few seconds later. Prints one JSON line."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import django

django.setup()

from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from delegations.models import ManagedRole  # noqa: E402
from notifications.events import NotificationEvent  # noqa: E402
from notifications.models import Delivery  # noqa: E402
from notifications.outbox import FAN_OUT_ABOVE  # noqa: E402
from notifications.services import Notice, notify  # noqa: E402
from tests.delegations.factories import ManagedRoleFactory  # noqa: E402
from tests.factories import OrganisationFactory, UserFactory  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HELD_SECONDS = 3.0


def pending() -> int:
    return Delivery.objects.filter(status=Delivery.Status.PENDING).count()


def sent() -> int:
    return Delivery.objects.filter(status=Delivery.Status.SENT).count()


def main() -> None:
    data = Path(os.environ["PORTAL_DATA_DIR"])
    ready = data / "worker.ready"
    with (data / "worker.log").open("w") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "bench_worker.py"),
                str(ready),
                "-A",
                "portal",
                "worker",
                "--pool=solo",
                "--queues=notifications",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=os.environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while not ready.exists():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the worker did not start:\n" + (data / "worker.log").read_text())
            time.sleep(0.05)

        # Another worker is applying access: it holds a role's lease.
        role = ManagedRoleFactory(
            locked_by="another-worker", locked_until=timezone.now() + dt.timedelta(minutes=2)
        )
        organisation = OrganisationFactory()
        people = [UserFactory() for _ in range(FAN_OUT_ABOVE + 4)]
        with transaction.atomic():
            notify(
                key="step-aside",
                notice=Notice(
                    event=NotificationEvent.DELEGATION_APPROVED,
                    title="Your request was approved",
                    summary="The access is being applied.",
                    link_path="/delegations/",
                ),
                organisation=organisation,
                people=people,
            )
        written = pending()
        time.sleep(HELD_SECONDS)
        pending_while_held = pending()

        ManagedRole.objects.filter(pk=role.pk).update(locked_by="", locked_until=None)
        released = time.monotonic()
        # Until every one is sent (a claimed batch is "sending" for a moment), or 30 s.
        while sent() < written and time.monotonic() < released + 30:
            time.sleep(0.05)
        print(
            json.dumps(
                {
                    "written": written,
                    "pending_while_held": pending_while_held,
                    "pending_at_end": pending(),
                    "sent": sent(),
                    "seconds_after_release": round(time.monotonic() - released, 2),
                    "log": (data / "worker.log").read_text()[-4000:],
                }
            )
        )
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()


if __name__ == "__main__":
    main()
