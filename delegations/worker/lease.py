"""The lease on a subject's row: who may reconcile it now, and for how long.

A conditional UPDATE on the subject's row (`locked_by/locked_until`), renewed before every
mutating call and from a heartbeat thread, released only when the desired version did not
move during the run. No database transaction stays open during a cloud call, and a change
made meanwhile is never lost. The token names the worker and its incarnation
(`delegations.worker.incarnation`), so a restarted worker can free what it held before.

Every time a lease is set to or compared with is the database's clock (`Now()` in the UPDATE),
the one clock all workers share: a worker whose own clock runs ahead cannot take a lease
another still holds, and one whose clock runs behind does not shorten its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any, ClassVar

from django.apps import apps
from django.conf import settings
from django.db import connections
from django.db.models import F, Q
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now
from django.utils import timezone

from core.broker import register_urgent_work_probe
from delegations.models import LeasedModel
from delegations.worker.incarnation import lease_token

logger = logging.getLogger(__name__)


def setting(name: str, default: float) -> float:
    return getattr(settings, name, default)


def lease_duration() -> dt.timedelta:
    """How long a claimed subject stays locked without renewal. A run renews it before every
    mutating call, while waiting, and from a heartbeat thread, so it can be short: it is how
    long the work of a worker that died waits for another one."""
    return dt.timedelta(seconds=setting("PORTAL_ROLE_LEASE_SECONDS", 30))


def heartbeat_interval(duration: dt.timedelta) -> float:
    """Seconds between heartbeats: the setting, but at least three beats per lease."""
    return min(setting("PORTAL_LEASE_HEARTBEAT_SECONDS", 10), duration.total_seconds() / 3)


class LeaseLost(Exception):
    """Another worker claimed the subject after our lease ran out; we must not touch it."""


class Lease:
    """The per-subject lock, held by a random token until `locked_until`, on a row of `model`
    (a `LeasedModel`: `locked_by`, `locked_until`, `desired_version`, `applied_version`,
    `last_reconciled_at`)."""

    model: ClassVar[type[LeasedModel]]

    def __init__(self, pk: Any, *, duration: dt.timedelta | None = None) -> None:
        self.pk = pk
        # Names the worker and its incarnation (see `incarnation`): a restarted worker frees
        # what its previous incarnation held.
        self.token = lease_token()
        self.duration = duration or lease_duration()

    def __str__(self) -> str:
        return f"{self.model.__name__} {self.pk}"

    def _mine(self):
        return self.model._default_manager.filter(pk=self.pk, locked_by=self.token)

    def _until(self) -> CombinedExpression:
        """The lease's end, by the database's clock."""
        return Now() + self.duration

    def claim(self) -> bool:
        claimed = (
            self.model._default_manager.filter(pk=self.pk)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=Now()))
            .update(locked_by=self.token, locked_until=self._until())
        )
        return claimed == 1

    def renew(self, **row_changes: Any) -> None:
        """Extend the lease (and save `row_changes` on the subject's row in the same UPDATE)."""
        if not self._mine().update(locked_until=self._until(), **row_changes):
            raise LeaseLost(f"Lost the lease on {self}.")

    def release_if_converged(self, *, version: int, **row_changes: Any) -> bool:
        """Release and record `version` as applied, unless the desired state moved on while
        we worked (then keep the lease and return False: the caller runs another round).
        One UPDATE on the row the services bump, so it cannot miss a concurrent change."""
        released = (
            self._mine()
            .filter(desired_version=version)
            .update(
                locked_by="",
                locked_until=None,
                applied_version=version,
                last_reconciled_at=timezone.now(),
                **row_changes,
            )
        )
        if released:
            return True
        if row_changes:
            self._mine().update(**row_changes)
        if not self._mine().exists():
            raise LeaseLost(f"Lost the lease on {self}.")
        return False

    def release_unapplied(self) -> int:
        """Release, leaving the subject with pending work: its desired version beyond the
        applied one (moved on by one when they were equal). Returns how far it was moved."""
        moved = (
            self._mine()
            .filter(desired_version=F("applied_version"))
            .update(desired_version=F("desired_version") + 1, locked_by="", locked_until=None)
        )
        if not moved:
            self.release()
        return moved

    def beat(self) -> bool:
        """Extend the lease if we still hold it (the heartbeat); False once it is lost."""
        return bool(self._mine().update(locked_until=self._until()))

    def release(self, *, applied_version: int | None = None) -> None:
        changes: dict[str, Any] = {"locked_by": "", "locked_until": None}
        if applied_version is not None:
            changes["applied_version"] = applied_version
        self._mine().update(**changes)


class Heartbeat:
    """Renews a lease from a thread of its own while a run holds it, so the lease can be
    short (a dead worker's work waits only that long) even when one cloud call or one wait
    lasts longer than it. The run's own renewals still fence it: a beat never takes a lease
    back, it only extends one still held."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.interval = heartbeat_interval(lease.duration)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lease-heartbeat {lease}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        if self.interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + 5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    if not self.lease.beat():
                        return  # lost: the run finds out at its next renewal
                except Exception:  # a beat that fails is retried at the next interval
                    logger.warning("Lease heartbeat on %s failed.", self.lease, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connections only


def leased_models() -> list[type[LeasedModel]]:
    return [model for model in apps.get_models() if issubclass(model, LeasedModel)]


@register_urgent_work_probe
def access_being_applied() -> bool:
    """Whether a worker holds a lease now, i.e. is converging a role or a partner user's
    policy with what the portal granted (`core.broker.urgent_work_running`). One probe per
    leased table; a dead worker's lease counts until it runs out."""
    return any(
        model._default_manager.filter(locked_until__gt=Now()).exists() for model in leased_models()
    )
