"""Handing a fleet's freed slot to its next account: run by the worker right after an
account leaves it, and by the task that the fleet's advance message starts."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from delegations.fleet.selectors import fleets_to_advance_after
from delegations.fleet.services import fleet_advance
from delegations.models import OutboxMessage
from delegations.outbox import outbox_mark_done, outbox_watermark


def fleet_advance_pending(*, fleet_id: Any) -> str:
    """Start a fleet's next accounts and mark its advance messages done, in one
    transaction. One advance covers every message for the fleet written before it read the
    fleet (the watermark first, as a reconcile does)."""
    kind = OutboxMessage.Kind.ADVANCE_FLEET
    with transaction.atomic():
        watermark = outbox_watermark(kind=kind, object_id=fleet_id)
        fleet_advance(fleet_id=fleet_id)
        outbox_mark_done(kind=kind, object_id=fleet_id, watermark=watermark)
    return "advanced"


def fleets_advance_after(*, managed_role_id: Any) -> None:
    """Advance every fleet with an account on this role and an advance still to do."""
    for fleet_id in fleets_to_advance_after(managed_role_id=managed_role_id):
        fleet_advance_pending(fleet_id=fleet_id)
