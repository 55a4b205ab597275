"""The scheduler's notices: reminders of requests nobody decided and warnings before access
ends, each sent once per delegation and kind; a fleet's accounts ending together get one."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from delegations.models import Delegation, FleetGrant
from delegations.notices.fleet import fleet_announce, fleet_key
from delegations.notices.telling import Event, Status, delegation_notice, tell, when_text
from notifications.selectors import escalation_contact_of
from notifications.services import notice_mark_once, notices_untold

EXPIRY_WARNINGS = (("24h", dt.timedelta(hours=24)), ("1h", dt.timedelta(hours=1)))
_WARNED_STATUSES = (Status.APPROVED, Status.APPLYING, Status.ACTIVE)


def _reminder_day(created_at: dt.datetime, *, now: dt.datetime) -> int | None:
    """Which reminder a request is due at `now`: once after PORTAL_REMIND_AFTER, then once a
    day; the day number names the reminder. None before that wait."""
    waited = now - created_at - dt.timedelta(seconds=settings.PORTAL_REMIND_AFTER)
    return None if waited < dt.timedelta(0) else int(waited / dt.timedelta(days=1))


def _reminder_key(pk: Any, created_at: dt.datetime, *, now: dt.datetime) -> str | None:
    day = _reminder_day(created_at, now=now)
    return None if day is None else f"{Event.DELEGATION_REMINDER.value}:{pk}:{day}"


def _remind(delegation: Delegation, *, now: dt.datetime) -> bool:
    day = _reminder_day(delegation.created_at, now=now)
    key = _reminder_key(delegation.pk, delegation.created_at, now=now)
    if day is None or key is None or not notice_mark_once(key=key):
        return False
    escalation = escalation_contact_of(organisation=delegation.owner) if day >= 1 else None
    tell(
        key=key,
        notice=delegation_notice(delegation, Event.DELEGATION_REMINDER),
        delegation=delegation,
        sides=("owner",),
        extra_owner_people=[escalation] if escalation else [],
    )
    return True


def _warning_due(ends_at: dt.datetime, *, now: dt.datetime) -> str | None:
    """The label of the nearest expiry warning that applies, if any: access granted 30 minutes
    before its end gets the 1 h warning, never a late 24 h one as well."""
    for label, ahead in reversed(EXPIRY_WARNINGS):
        if ends_at - now <= ahead:
            return label
    return None


def _left_text(label: str) -> str:
    return _("24 hours") if label == "24h" else _("1 hour")


def _warning_key(pk: Any, fleet_id: Any, ends_at: Any, *, now: dt.datetime) -> str | None:
    """The key of the expiry warning due at `now` (a fleet's accounts share one), or None."""
    label = _warning_due(ends_at, now=now)
    if label is None or fleet_id is None:
        return label and f"{Event.DELEGATION_EXPIRING.value}:{pk}:{label}"
    return fleet_key(FleetGrant(pk=fleet_id), Event.DELEGATION_EXPIRING, label)


def _warn(delegation: Delegation, *, now: dt.datetime) -> bool:
    assert delegation.ends_at is not None
    label = _warning_due(delegation.ends_at, now=now)
    key = _warning_key(delegation.pk, None, delegation.ends_at, now=now)
    if label is None or key is None or not notice_mark_once(key=key):
        return False
    title = _("%(role)s for %(partner)s ends in %(left)s") % {
        "role": delegation.catalog_role.role_name,
        "partner": delegation.partner.name,
        "left": _left_text(label),
    }
    tell(
        key=key,
        notice=delegation_notice(
            delegation,
            Event.DELEGATION_EXPIRING,
            title=title,
            summary=_("Access ends at %(when)s.") % {"when": when_text(delegation.ends_at)},
        ),
        delegation=delegation,
        sides=("owner", "partner", "staff"),
    )
    return True


def _warn_fleet(members: list[Delegation], *, now: dt.datetime) -> bool:
    """One expiry warning for a fleet's accounts ending together, not one per account."""
    fleet = members[0].fleet
    assert fleet is not None
    ends_at = min(m.ends_at for m in members if m.ends_at is not None)
    label = _warning_due(ends_at, now=now)
    if label is None:
        return False
    if not notice_mark_once(key=fleet_key(fleet, Event.DELEGATION_EXPIRING, label)):
        return False
    fleet_announce(
        fleet=fleet,
        event=Event.DELEGATION_EXPIRING,
        members=members,
        actor=None,
        occasion=label,
        extra_names={"left": _left_text(label), "when": when_text(ends_at)},
    )
    return True


def delegations_remind_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Send every reminder and expiry warning now due; each at most once. Returns how many."""
    now = now or timezone.now()
    sent = 0
    waiting = Delegation.objects.filter(
        status=Status.REQUESTED,
        created_at__lte=now - dt.timedelta(seconds=settings.PORTAL_REMIND_AFTER),
    ).select_related("owner", "partner", "catalog_role", "managed_role__cloud_account")
    to_remind = notices_untold(
        waiting.order_by("created_at", "pk").values_list("pk", "created_at"),
        key=partial(_reminder_key, now=now),
        limit=limit,
    )
    for delegation in waiting.filter(pk__in=to_remind).order_by("created_at", "pk"):
        with transaction.atomic():
            sent += int(_remind(delegation, now=now))
    ending = Delegation.objects.filter(
        status__in=_WARNED_STATUSES,
        ends_at__gt=now,
        ends_at__lte=now + EXPIRY_WARNINGS[0][1],
    ).select_related(
        "owner",
        "partner",
        "catalog_role",
        "managed_role__cloud_account",
        "fleet__owner",
        "fleet__partner",
        "fleet__catalog_role",
    )
    to_warn = notices_untold(
        ending.order_by("ends_at", "pk").values_list("pk", "fleet_id", "ends_at"),
        key=partial(_warning_key, now=now),
        limit=limit,
    )
    fleets: dict[object, list[Delegation]] = {}
    for delegation in ending.filter(pk__in=to_warn).order_by("ends_at", "pk"):
        if delegation.fleet_id is not None:
            fleets.setdefault(delegation.fleet_id, []).append(delegation)
            continue
        with transaction.atomic():
            sent += int(_warn(delegation, now=now))
    for members in fleets.values():
        with transaction.atomic():
            sent += int(_warn_fleet(members, now=now))
    return sent
