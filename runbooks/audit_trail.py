"""A run's audit events, one per side: the partner's names every account and region it ran in;
each owner's names only that owner's, and only the instance ids running there (a run may span
several owners, who must not learn of each other's accounts or instances). The events are
written with `audit_record_many` in the caller's transaction."""

from __future__ import annotations

from typing import Any

from accounts.models import Organisation, User
from audit.actions import AuditAction
from audit.services import audit_record_many
from runbooks.models import RunbookRun, RunbookTarget
from runbooks.selectors import instance_ids_in


def _scope(targets: list[RunbookTarget]) -> dict[str, Any]:
    return {
        "owner_accounts": sorted({t.account_uid for t in targets}),
        "targets": [f"{t.account_uid}/{t.region_id}" for t in targets],
    }


def record_run_event(
    *,
    run: RunbookRun,
    action: AuditAction,
    actor: User | None = None,
    actor_organisation: Organisation | None = None,
    before: Any = None,
    after: Any = None,
    metadata: dict[str, Any] | None = None,
    outcome: str = "success",
) -> None:
    """One event for the partner and one for each owner whose accounts the run touches."""
    targets = list(RunbookTarget.objects.filter(run=run).select_related("owner"))
    by_owner: dict[Any, list[RunbookTarget]] = {}
    for target in targets:
        by_owner.setdefault(target.owner_id, []).append(target)
    acting_for = actor_organisation or (run.partner if actor is not None else None)
    common = {
        "action": action,
        "actor": actor,
        "actor_organisation": acting_for,
        "target": run,
        "before": before,
        "after": after,
        "outcome": outcome,
    }
    records = [
        {**common, "organisation": run.partner, "metadata": {**(metadata or {}), **_scope(targets)}}
    ]
    for owned in by_owner.values():
        owner_metadata = {**(metadata or {}), **_scope(owned)}
        if "instance_ids" in owner_metadata:
            # The partner's list may name other owners' instances: the owner's own only.
            owner_metadata["instance_ids"] = instance_ids_in(run, owned)
        records.append({**common, "organisation": owned[0].owner, "metadata": owner_metadata})
    audit_record_many(records)


def owner_scope(run: RunbookRun, owner: Organisation) -> dict[str, Any]:
    """What an event about one owner's decision names: that owner's accounts only."""
    return _scope(list(RunbookTarget.objects.filter(run=run, owner=owner)))
