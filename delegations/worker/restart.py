"""What a restarted worker does about its previous life: free the leases it still held.

A node name is not proof of a previous life: a second worker started with the name of one
still running (two hosts given the same `-n`, a copy-pasted unit file) shares its node key. So
a lease of another incarnation of this node is freed only once it has gone un-renewed for
longer than a live holder ever leaves it (its heartbeat renews it every
`heartbeat_interval`): a dead incarnation's lease stands still, a live one's moves on, and is
left to its holder.

Kept apart from `incarnation` (which the engine imports for lease tokens) because it needs
the subjects' services, which import the engine.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections, transaction
from django.db.models import Q

from delegations.models import LeasedModel, ManagedRole, PartnerUserPolicy
from delegations.partner_access import partner_user_policy_request
from delegations.worker.incarnation import Identity, identity
from delegations.worker.lease import heartbeat_interval, lease_duration
from delegations.worker.owner_role import managed_role_request_reconcile

logger = logging.getLogger(__name__)

# What a freed lease's subject gets: a reconcile, asked for through the outbox.
_SUBJECTS: tuple[tuple[str, type[LeasedModel], Callable[[Any], Any]], ...] = (
    (
        "managed_roles",
        ManagedRole,
        lambda row: managed_role_request_reconcile(managed_role=row),
    ),
    (
        "partner_user_policies",
        PartnerUserPolicy,
        lambda row: partner_user_policy_request(policy=row),
    ),
)


def silence_seconds() -> float:
    """How long a lease must stand still before its holder counts as dead: two heartbeats
    (a live holder renews at least once in any such span) and a second for a slow beat."""
    return 2 * heartbeat_interval(lease_duration()) + 1.0


def _not_renewed_since(locked_until: dt.datetime | None) -> Q:
    if locked_until is None:
        return Q(locked_until__isnull=True)
    return Q(locked_until__lte=locked_until)


def release_previous_incarnations(current: Identity | None = None) -> dict[str, int]:
    """Free every lease an earlier incarnation of this node still holds and nobody renews
    (`silence_seconds` after this looked), and ask for a reconcile of each subject, through
    the outbox. Returns how many leases were freed per kind of subject. Waits that long when
    there is any such lease: run it off the worker's main thread
    (`release_previous_incarnations_in_background`)."""
    current = current or identity()
    ours = Q(locked_by__startswith=f"{current.node_key}.") & ~Q(
        locked_by__startswith=current.prefix
    )
    held = {name: list(model._default_manager.filter(ours)) for name, model, _ in _SUBJECTS}
    freed = dict.fromkeys(held, 0)
    if not any(held.values()):
        return freed
    time.sleep(silence_seconds())
    renewed = 0
    for name, model, request_reconcile in _SUBJECTS:
        for row in held[name]:
            still_held = model._default_manager.filter(pk=row.pk, locked_by=row.locked_by)
            with transaction.atomic():
                if still_held.filter(_not_renewed_since(row.locked_until)).update(
                    locked_by="", locked_until=None
                ):
                    request_reconcile(row)
                    freed[name] += 1
                    continue
            renewed += still_held.exists()
    if any(freed.values()):
        logger.warning("Freed the leases of this worker's previous run: %s", freed)
    if renewed:
        logger.warning(
            "A worker with this one's node name is running and renews %d lease(s); they are "
            "left to it. Give every worker a node name of its own.",
            renewed,
        )
    return freed


def release_previous_incarnations_in_background() -> threading.Thread:
    """`release_previous_incarnations` in a thread of its own, so the worker takes tasks
    while it waits to tell a dead incarnation from a live namesake."""

    def run() -> None:
        try:
            release_previous_incarnations()
        except Exception:  # the leases still run out, and the sweep frees them then
            logger.exception("Could not free the leases of this worker's previous run.")
        finally:
            connections.close_all()  # this thread's own connections only

    thread = threading.Thread(target=run, name="release-previous-incarnation", daemon=True)
    thread.start()
    return thread
