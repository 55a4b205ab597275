"""The Celery application: `celery -A portal worker` and `celery -A portal beat`."""

import gc
import os
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, worker_init, worker_process_init, worker_ready

from core.routes import load_url_configuration
from delegations.worker.incarnation import worker_starting

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery(
    "portal",
    include=["portal.tasks", "delegations.worker.tasks"],
)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
def _worker_identity(sender: str | None = None, **kwargs: Any) -> None:
    """A worker starts: a new incarnation of its node, set before the pool forks so every pool
    process's lease tokens carry it (see delegations.worker.incarnation)."""
    worker_starting(sender or "celery")


@worker_init.connect
def _load_url_configuration(**kwargs: Any) -> None:
    """Tasks write links into notices (`reverse`): load the URL configuration as the worker
    starts, before the pool forks, rather than in the first task that links, which would pay
    for it while holding a role's lease."""
    load_url_configuration()


@worker_ready.connect
def _release_previous_incarnation(**kwargs: Any) -> None:
    """Whatever this node's previous run still holds and nobody renews is dead work: free it
    and reconcile now, rather than wait for its leases to expire and the sweep. In the
    background: telling a dead previous run from a live worker of the same name takes a
    couple of heartbeats."""
    # why: the restart module imports models, which exist only once Django has set up the
    # apps, and this module is loaded before that (portal/__init__.py imports the app).
    from delegations.worker.restart import release_previous_incarnations_in_background

    release_previous_incarnations_in_background()


@worker_init.connect
@worker_process_init.connect
@worker_ready.connect
def _freeze_start_up_objects(**kwargs: Any) -> None:
    """Take what the worker made while starting (Django, the apps, the SDKs, the URL
    configuration: some 200,000 containers) out of the garbage collector's sight for good.

    Left in, every full collection walked all of them again: about 0.15 s, with the task
    waiting, roughly once per reconcile of a role with a hundred partners (measured: one in
    each of the four workers during 1,000 activations). Frozen before the pool forks
    (`worker_init`), a prefork child's collections also never write to the pages it shares
    with the parent; its own start-up (`worker_process_init`) and a solo worker's
    consumer (`worker_ready`) are frozen as they finish. Objects made by tasks are collected as
    usual."""
    gc.freeze()
