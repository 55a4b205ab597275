"""Reading the ledger through an organisation's scope: the one way any app reads events.

Keyset pagination on the sequence number: a page is "the newest `limit` events visible to X
with sequence below the cursor", one range scan of the (organisation, event) scope index, as
fast on page 10,000 as on page 1.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Subquery

from audit.models import AuditEvent, AuditEventQuerySet, AuditEventScope

MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    # Pass as `before_sequence` for the next (older) page; None on the last page.
    next_before_sequence: int | None


def audit_events_visible_to(*, organisation: Any) -> AuditEventQuerySet:
    """Every event the organisation may see (as primary or related scope), newest first."""
    return AuditEvent.objects.visible_to(organisation.pk).order_by("-sequence")


def audit_events_for_organisation(
    *,
    organisation: Any,
    before_sequence: int | None = None,
    limit: int = 50,
    actions: Iterable[str] | None = None,
    action_prefix: str | None = None,
    target_type: str | None = None,
    target_id: object = None,
) -> AuditPage:
    """One page of the organisation's events, newest first.

    `before_sequence` is the cursor from the previous page; `actions` (exact names) and
    `action_prefix` ("member." for every member event) narrow the list.
    """
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    filters: dict[str, object] = {}
    if actions is not None:
        filters["action__in"] = list(actions)
    if action_prefix:
        filters["action__startswith"] = action_prefix
    if target_type is not None:
        filters["target_type"] = target_type
    if target_id is not None:
        filters["target_id"] = str(target_id)
    scopes = AuditEventScope.objects.filter(organisation_id=organisation.pk)
    if before_sequence is not None:
        scopes = scopes.filter(event_id__lt=before_sequence)
    if filters:
        events = AuditEvent.objects.filter(
            sequence__in=scopes.values("event_id"), **filters
        ).order_by("-sequence")
    else:
        # The page's ids come from the (organisation, event) index alone, then one primary
        # key lookup each: PostgreSQL's planner otherwise sometimes merge-joins by walking
        # the whole event table backwards.
        page_ids = scopes.order_by("-event_id").values("event_id")[: limit + 1]
        events = AuditEvent.objects.filter(sequence__in=Subquery(page_ids)).order_by("-sequence")
    # One extra row tells whether an older page exists without a COUNT.
    rows = list(events[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(events=rows, next_before_sequence=rows[-1].sequence if has_more else None)
