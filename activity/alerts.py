"""Alerts on partner activity: what a stored call is flagged with, and what the owner is told.

A row is flagged when it was denied, came from a session the portal never issued, came after
its grant ended, or wrote under a read-only role. After an ingestion run the owner's admins
(and subscribed chat channels) are told once per delegation, with an audit event: of every
flag but the denied one, which is told only in bursts (`_denied_in_bursts`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from activity.models import ActivityEvent
from activity.storage import NewEvent
from audit.actions import AuditAction
from audit.services import audit_record
from delegations.delegation_audit import delegation_label
from delegations.models import CloudAccount, Delegation
from notifications.events import NotificationEvent
from notifications.services import Notice, notify, organisation_admins


class Alert:
    DENIED = "denied"
    AFTER_END = "after_end"
    WRITE_READ_ONLY = "write_read_only"
    UNKNOWN_SESSION = "unknown_session"
    # Raised for a delegation, not flagged on a row: many denied calls close together.
    DENIED_BURST = "denied_burst"

    # What a notice calls each alert it tells of (a lone denied call is not told).
    LABELS = {
        DENIED_BURST: gettext_lazy("denied calls in a burst"),
        AFTER_END: gettext_lazy("calls after the grant ended"),
        WRITE_READ_ONLY: gettext_lazy("writes under a read-only role"),
        UNKNOWN_SESSION: gettext_lazy("calls from sessions the portal never issued"),
    }


def row_alerts(row: NewEvent, read_only: bool) -> list[str]:
    """What the stored call is flagged with (see `Alert`)."""
    alerts = []
    outcome = row.fields["outcome"]
    if outcome == ActivityEvent.Outcome.DENIED:
        alerts.append(Alert.DENIED)
    if row.via == ActivityEvent.Via.UNKNOWN:
        alerts.append(Alert.UNKNOWN_SESSION)
    delegation = row.delegation
    if delegation is not None:
        if delegation.ended_at is not None and row.event_time > delegation.ended_at:
            alerts.append(Alert.AFTER_END)
        if (
            row.fields["event_rw"] == "Write"
            and outcome == ActivityEvent.Outcome.ALLOWED
            and read_only
        ):
            alerts.append(Alert.WRITE_READ_ONLY)
    return alerts


def _denied_in_bursts(
    *, cloud_account: CloudAccount, delegation: Delegation | None, fresh: list[NewEvent]
) -> int:
    """How many of the delegation's denied calls stand in bursts that this run's denied calls
    belong to: at least PORTAL_ACTIVITY_DENIED_BURST_CALLS of them within
    PORTAL_ACTIVITY_DENIED_BURST_SECONDS. A lone refusal is a fact of its row (a partner meeting
    the edge of the role, a console page asking what it may show); many close together are
    worth a person's look. Calls stored by earlier runs count, so a burst split between two
    runs is seen by the second."""
    denied = ActivityEvent.Outcome.DENIED
    fresh_denied = [row for row in fresh if row.fields["outcome"] == denied]
    if not fresh_denied:
        return 0
    fresh_ids = {row.event_id for row in fresh_denied}
    calls = max(1, settings.PORTAL_ACTIVITY_DENIED_BURST_CALLS)
    window = timedelta(seconds=settings.PORTAL_ACTIVITY_DENIED_BURST_SECONDS)
    nearby = sorted(
        ActivityEvent.objects.filter(
            cloud_account=cloud_account,
            delegation=delegation,
            outcome=denied,
            event_time__gte=min(row.event_time for row in fresh_denied) - window,
            event_time__lte=max(row.event_time for row in fresh_denied) + window,
        ).values_list("event_time", "event_id")
    )
    # Mark every call that some window of `window` holding `calls` or more of them covers.
    in_burst = [False] * len(nearby)
    first = marked = 0
    for last, (moment, _event_id) in enumerate(nearby):
        while moment - nearby[first][0] > window:
            first += 1
        if last - first + 1 >= calls:
            for position in range(max(first, marked), last + 1):
                in_burst[position] = True
            marked = last + 1
    # A burst is a run of marked calls with no gap wider than the window; count the calls of
    # the bursts this run added to.
    total = size = 0
    touched = False
    for position, (moment, event_id) in enumerate(nearby):
        if not in_burst[position] or (position and moment - nearby[position - 1][0] > window):
            total += size if touched else 0
            size, touched = 0, False
        if in_burst[position]:
            size += 1
            touched = touched or event_id in fresh_ids
    return total + (size if touched else 0)


def notify_alerts(*, cloud_account: CloudAccount, fresh: list[NewEvent], run_key: str) -> None:
    """Per delegation with new alerts: one audit event, and one notice to the owner's admins
    and the owner's subscribed chat channels (`notifications.notify`, sent after the commit).
    Denied calls are told only in bursts (`_denied_in_bursts`). `run_key` names the ingestion
    run, so a notice is written once."""
    fresh_by_delegation: dict[Delegation | None, list[NewEvent]] = defaultdict(list)
    for row in fresh:
        fresh_by_delegation[row.delegation].append(row)
    owner = cloud_account.organisation
    for delegation, rows in fresh_by_delegation.items():
        counts: dict[str, int] = defaultdict(int)
        for row in rows:
            for alert in row.alerts:
                if alert != Alert.DENIED:
                    counts[alert] += 1
        bursts = _denied_in_bursts(cloud_account=cloud_account, delegation=delegation, fresh=rows)
        if bursts:
            counts[Alert.DENIED_BURST] = bursts
        if not counts:
            continue
        link = (
            reverse("audit:activity", args=[delegation.pk]) + "?alerts=1"
            if delegation is not None
            else ""
        )
        # The account whose trail recorded the calls: a fleet's role has one name in each of
        # the owner's accounts, so the delegation's name alone reads the same for each.
        where = (
            _("%(delegation)s in account %(uid)s")
            % {"delegation": delegation_label(delegation), "uid": cloud_account.account_uid}
            if delegation is not None
            else _("account %(uid)s") % {"uid": cloud_account.account_uid}
        )
        with transaction.atomic():
            audit_record(
                action=AuditAction.ACTIVITY_ALERT_RAISED,
                organisation=owner,
                related_organisations=[delegation.partner] if delegation is not None else [],
                target=delegation if delegation is not None else cloud_account,
                target_label=(
                    str(delegation) if delegation is not None else cloud_account.account_uid
                ),
                # The account, as the notice names it: the delegation's name alone reads the
                # same for each account of a fleet.
                metadata={
                    "alerts": dict(counts),
                    "link": link,
                    "account_uid": cloud_account.account_uid,
                },
            )
            notify(
                key=f"activity.alert|{cloud_account.pk}|{run_key}|{getattr(delegation, 'pk', '')}",
                notice=Notice(
                    event=NotificationEvent.ACTIVITY_ALERT,
                    title=_("Partner activity needs a look: %(where)s") % {"where": where},
                    summary=_("ActionTrail recorded partner calls that raise alerts."),
                    link_path=link or reverse("audit:events"),
                    facts=tuple(
                        (str(Alert.LABELS[kind]), str(count))
                        for kind, count in sorted(counts.items())
                    ),
                ),
                organisation=owner,
                people=organisation_admins(organisation=owner),
            )
