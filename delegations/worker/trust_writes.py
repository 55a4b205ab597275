"""The portal's own last trust-policy write to a role, read back from its `CloudCall` rows:
what the worker compares a read with, so it never plans (and writes) from a read that does not
yet show that write (RAM has no conditional update)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from cloud import policies
from delegations import role_plan as planner
from delegations.models import CloudCall, ManagedRole


def trusted_principals(actual: planner.ActualRole | None) -> frozenset[str]:
    """RAM principals an Allow statement names (the ones that can assume the role)."""
    if actual is None:
        return frozenset()
    return policies.trust_policy_principals(actual.trust_document).ram


def trusted_after(op: planner.Operation) -> frozenset[str] | None:
    """The principals a role trusts once `op` took effect; None when it leaves them as they
    were."""
    if isinstance(op, planner.DeleteRole):
        return frozenset()
    document = getattr(op, "trust_document", None)
    if document is None:
        return None
    return policies.trust_policy_principals(document).ram


@dataclass(frozen=True)
class TrustWrite:
    """The principals before and after the portal's last trust-policy write to a role."""

    before: frozenset[str]
    after: frozenset[str]
    finished_at: Any


def last_trust_write(managed_role: ManagedRole) -> TrustWrite | None:
    """The portal's last CreateRole/UpdateRole of the role, from its `CloudCall`. None when
    there is none, or when a later DeleteRole removed what it wrote, or when the last such call
    has no known outcome (a worker died waiting for it): then nobody knows what the cloud
    should show, and the read is the truth."""
    call = (
        CloudCall.objects.filter(
            managed_role=managed_role,
            mutating=True,
            action__in=("CreateRole", "UpdateRole", "DeleteRole"),
        )
        .exclude(outcome=CloudCall.Outcome.ERROR)
        .order_by("-id")
        .only("action", "outcome", "request_summary", "finished_at")
        .first()
    )
    if (
        call is None
        or call.outcome != CloudCall.Outcome.OK
        or "trust_principals" not in (call.request_summary or {})
    ):
        return None
    summary = call.request_summary
    after = frozenset(summary["trust_principals"])
    before = (after - set(summary.get("principals_added", ()))) | set(
        summary.get("principals_removed", ())
    )
    return TrustWrite(before=before, after=after, finished_at=call.finished_at)


def read_lags_write(write: TrustWrite | None, actual: planner.ActualRole | None) -> bool:
    """Whether `actual` shows exactly the principals from before `write` (not after it), while
    RAM may still lag that write (`PORTAL_RECONCILE_VERIFY_TIMEOUT_SECONDS`, the longest the
    worker waits for its own writes to show). Any other set is someone's newer change."""
    if write is None or write.finished_at is None:
        return False
    lag = dt.timedelta(seconds=getattr(settings, "PORTAL_RECONCILE_VERIFY_TIMEOUT_SECONDS", 20))
    if write.finished_at < timezone.now() - lag:
        return False
    present = trusted_principals(actual)
    return present != write.after and present == write.before
