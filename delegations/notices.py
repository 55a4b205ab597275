"""What the delegation lifecycle tells people, and when: the bridge from delegations'
events to `notifications.notify`, called by the services inside the transaction of the
change (never by signals or views).

- `delegation_announce`: one notice per lifecycle event (request, offer, approval, rejection,
  withdrawal, activation, failed apply, revocation, expiry), to the admins concerned on each
  side (never the person who acted) and each side's subscribed chat channels.
- `credentials_issued_notify`: a security notice to the person credentials were issued to.
- `delegations_remind_due` (beat): reminders of requests nobody decided (after
  PORTAL_REMIND_AFTER, then daily, the escalation contact too) and warnings 24 h and 1 h
  before access ends, each sent once per delegation and kind (`notice_mark_once`); a fleet's
  accounts ending together get one warning, and one end notice, for the fleet.

A notice carries names, dates and links, never a secret, a credential, a partner-link code
or an ExternalId.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Organisation, User
from audit.actions import AuditAction
from delegations.models import CredentialIssuance, Delegation, FleetGrant, StaffAssignment
from notifications.events import NotificationEvent
from notifications.models import Delivery
from notifications.selectors import escalation_contact_of
from notifications.services import (
    Announcement,
    Notice,
    deliveries_enqueue,
    deliveries_render,
    notice_mark_once,
    notices_untold,
    notify,
    notify_many,
    organisation_admins,
    organisations_admins,
)

Event = NotificationEvent
Status = Delegation.Status

# Which side hears about which audited transition. "owner" and "partner" are the admins
# of each side (and that side's channels); "staff" the partner's people assigned to it.
_ANNOUNCED: dict[AuditAction, tuple[NotificationEvent, tuple[str, ...]]] = {
    AuditAction.DELEGATION_REQUESTED: (Event.DELEGATION_REQUESTED, ("owner",)),
    AuditAction.DELEGATION_OFFERED: (Event.DELEGATION_OFFERED, ("owner", "partner")),
    AuditAction.DELEGATION_APPROVED: (Event.DELEGATION_APPROVED, ("owner", "partner")),
    AuditAction.DELEGATION_REJECTED: (Event.DELEGATION_REJECTED, ("owner", "partner")),
    AuditAction.DELEGATION_WITHDRAWN: (Event.DELEGATION_WITHDRAWN, ("owner", "partner")),
    AuditAction.DELEGATION_ACTIVATED: (Event.DELEGATION_ACTIVE, ("partner",)),
    AuditAction.DELEGATION_FAILED: (Event.DELEGATION_FAILED, ("owner", "partner")),
    AuditAction.DELEGATION_REVOKE_REQUESTED: (
        Event.DELEGATION_REVOKED,
        ("owner", "partner", "staff"),
    ),
    AuditAction.DELEGATION_EXPIRING: (Event.DELEGATION_EXPIRED, ("owner", "partner", "staff")),
    AuditAction.DELEGATION_EXPIRED: (Event.DELEGATION_EXPIRED, ("owner", "partner", "staff")),
}

_TITLES = {
    Event.DELEGATION_REQUESTED: gettext_lazy("%(partner)s requests %(role)s"),
    Event.DELEGATION_OFFERED: gettext_lazy("%(owner)s offers %(role)s to %(partner)s"),
    Event.DELEGATION_APPROVED: gettext_lazy("%(role)s for %(partner)s was approved"),
    Event.DELEGATION_REJECTED: gettext_lazy("%(role)s for %(partner)s was rejected"),
    Event.DELEGATION_WITHDRAWN: gettext_lazy("%(partner)s withdrew its request for %(role)s"),
    Event.DELEGATION_ACTIVE: gettext_lazy("%(role)s from %(owner)s is ready to use"),
    Event.DELEGATION_FAILED: gettext_lazy("%(role)s for %(partner)s failed to apply"),
    Event.DELEGATION_REVOKED: gettext_lazy("%(role)s for %(partner)s is revoked"),
    Event.DELEGATION_EXPIRED: gettext_lazy("%(role)s for %(partner)s has ended"),
    Event.DELEGATION_REMINDER: gettext_lazy("%(partner)s is still waiting for %(role)s"),
    Event.EXTENSION_REQUESTED: gettext_lazy("%(partner)s asks for more time on %(role)s"),
    Event.DELEGATION_EXTENDED: gettext_lazy("%(role)s for %(partner)s was extended"),
    Event.EXTENSION_REJECTED: gettext_lazy("More time on %(role)s for %(partner)s was refused"),
    Event.BREAK_GLASS_ACTIVATED: gettext_lazy("Break-glass: %(partner)s activated %(role)s"),
    Event.BREAK_GLASS_REVIEW_DUE: gettext_lazy(
        "Break-glass access to %(role)s by %(partner)s waits for your review"
    ),
    Event.BREAK_GLASS_REVIEWED: gettext_lazy("The break-glass activation of %(role)s was reviewed"),
}

_SUMMARIES = {
    Event.DELEGATION_REQUESTED: gettext_lazy("A partner asks for access. Review it and decide."),
    Event.DELEGATION_OFFERED: gettext_lazy(
        "The owner granted this access; the portal is applying it."
    ),
    Event.DELEGATION_APPROVED: gettext_lazy(
        "The owner approved; the portal is applying the access."
    ),
    Event.DELEGATION_REJECTED: gettext_lazy("The owner decided not to grant this access."),
    Event.DELEGATION_WITHDRAWN: gettext_lazy("The partner no longer asks for this access."),
    Event.DELEGATION_ACTIVE: gettext_lazy(
        "Assign the people who use it, then they can switch role."
    ),
    Event.DELEGATION_FAILED: gettext_lazy(
        "The cloud refused a change. Open it to see the error and retry."
    ),
    Event.DELEGATION_REVOKED: gettext_lazy(
        "The owner revoked this access; the portal is removing it."
    ),
    Event.DELEGATION_EXPIRED: gettext_lazy("The access reached its end date."),
    Event.DELEGATION_REMINDER: gettext_lazy(
        "This request is still undecided. Review it and decide."
    ),
    Event.EXTENSION_REQUESTED: gettext_lazy(
        "A partner asks to keep this access longer. Review it and decide."
    ),
    Event.DELEGATION_EXTENDED: gettext_lazy("The owner moved this access's end date later."),
    Event.EXTENSION_REJECTED: gettext_lazy(
        "The owner decided not to extend this access; it ends as planned."
    ),
    Event.BREAK_GLASS_ACTIVATED: gettext_lazy(
        "A partner's named person activated emergency access; it applies now. Review it within "
        "24 hours: confirm it, or revoke it and flag it."
    ),
    Event.BREAK_GLASS_REVIEW_DUE: gettext_lazy(
        "Nobody has reviewed this emergency access yet. Confirm it, or revoke it and flag it."
    ),
    Event.BREAK_GLASS_REVIEWED: gettext_lazy("An owner admin reviewed the emergency access."),
}

# Which side hears about which audited extension decision (`extension_announce`).
_EXTENSIONS_ANNOUNCED: dict[AuditAction, tuple[NotificationEvent, tuple[str, ...]]] = {
    AuditAction.DELEGATION_EXTENSION_REQUESTED: (Event.EXTENSION_REQUESTED, ("owner",)),
    AuditAction.DELEGATION_EXTENDED: (Event.DELEGATION_EXTENDED, ("owner", "partner", "staff")),
    AuditAction.DELEGATION_EXTENSION_REJECTED: (Event.EXTENSION_REJECTED, ("owner", "partner")),
}


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else _("open-ended")


def _facts(delegation: Delegation) -> tuple[tuple[str, str], ...]:
    facts = [
        (_("Role"), delegation.catalog_role.role_name),
        (_("Owner"), delegation.owner.name),
        (_("Partner"), delegation.partner.name),
        # The label of the member, not get_status_display(), which builds a dict of every
        # choice's translated label each time (a notice per partner in a bulk activation).
        (_("Status"), str(Status(delegation.status).label)),
        (_("Ends"), _when(delegation.ends_at)),
    ]
    if delegation.status == Status.FAILED and delegation.last_error_code:
        facts.append((_("Cloud error"), delegation.last_error_code))
    return tuple(facts)


def _notice(
    delegation: Delegation, event: NotificationEvent, *, title: str = "", summary: str = ""
) -> Notice:
    names = {
        "role": delegation.catalog_role.role_name,
        "owner": delegation.owner.name,
        "partner": delegation.partner.name,
    }
    return Notice(
        event=event,
        title=title or str(_TITLES[event]) % names,
        summary=summary or str(_SUMMARIES[event]),
        link_path=reverse("delegations:detail", args=[delegation.pk]),
        facts=_facts(delegation),
    )


def _assigned_staff(delegations: Sequence[Delegation]) -> dict[object, list[User]]:
    """Each delegation's people currently assigned (delegation id -> users), in one read."""
    staff: dict[object, list[User]] = {}
    for assignment in StaffAssignment.objects.filter(
        delegation__in=[delegation.pk for delegation in delegations], ended_at__isnull=True
    ).select_related("user"):
        staff.setdefault(assignment.delegation_id, []).append(assignment.user)
    return staff


def _announcements(
    told: list[tuple[str, Notice, Delegation]],
    *,
    sides: tuple[str, ...],
    leave_out: User | None = None,
    extra_owner_people: Iterable[User] = (),
) -> list[Announcement]:
    """Who hears each (key, notice, delegation): the admins of each side in `sides` (and the
    partner's assigned staff for "staff"), read for all of them at once."""
    delegations = [delegation for _key, _notice, delegation in told]
    organisations = set()
    if "owner" in sides:
        organisations |= {delegation.owner_id for delegation in delegations}
    if "partner" in sides:
        organisations |= {delegation.partner_id for delegation in delegations}
    admins = organisations_admins(organisation_ids=organisations) if organisations else {}
    staff = _assigned_staff(delegations) if "staff" in sides else {}
    extra = list(extra_owner_people)
    announcements = []
    for key, notice, delegation in told:
        by_side: list[tuple[Organisation, list[User]]] = []
        if "owner" in sides:
            by_side.append((delegation.owner, [*admins.get(delegation.owner_id, []), *extra]))
        if "partner" in sides or "staff" in sides:
            people = list(admins.get(delegation.partner_id, [])) if "partner" in sides else []
            people += staff.get(delegation.pk, [])
            by_side.append((delegation.partner, people))
        announcements += [
            Announcement(
                key=key,
                notice=notice,
                organisation=organisation,
                people=tuple(
                    person for person in people if leave_out is None or person.pk != leave_out.pk
                ),
            )
            for organisation, people in by_side
        ]
    return announcements


def _tell(
    *,
    key: str,
    notice: Notice,
    delegation: Delegation,
    sides: Iterable[str],
    leave_out: User | None = None,
    extra_owner_people: Iterable[User] = (),
) -> None:
    notify_many(
        _announcements(
            [(key, notice, delegation)],
            sides=tuple(sides),
            leave_out=leave_out,
            extra_owner_people=extra_owner_people,
        )
    )


def _announce_key(delegation: Delegation, event: NotificationEvent) -> str:
    # One notice per event and version: a double click (same version) writes nothing twice;
    # a request that expires and the expiry that follows share one key.
    version = "end" if event is Event.DELEGATION_EXPIRED else str(delegation.version)
    return f"{event.value}:{delegation.pk}:{version}"


# --- fleet grants: one notice for the fleet, not one per account --------------------------------

# Set while a fleet service decides every account of a fleet at once (`fleet_digest`): the
# accounts' own notices are left out and the fleet service announces the fleet once.
_FLEET_DIGEST: ContextVar[bool] = ContextVar("fleet_notice_digest", default=False)
# The worker's outcomes of a fleet's accounts, told once per run by `fleet_run_announce`.
_RUN_OUTCOMES = (AuditAction.DELEGATION_ACTIVATED, AuditAction.DELEGATION_FAILED)
# A fleet's accounts reach their end together: the expiry pass tells the fleet once
# (`fleet_expired_announce`), and the worker finishing each account's removal tells no one again.
_FLEET_ENDINGS = (AuditAction.DELEGATION_EXPIRING, AuditAction.DELEGATION_EXPIRED)


@contextmanager
def fleet_digest() -> Iterator[None]:
    """Within this block the accounts of a fleet announce nothing one by one: the caller (a
    fleet service deciding every account) announces the fleet with `fleet_announce`."""
    token = _FLEET_DIGEST.set(True)
    try:
        yield
    finally:
        _FLEET_DIGEST.reset(token)


def _left_to_the_fleet(delegation: Delegation, action: AuditAction) -> bool:
    """Whether a fleet account's event is told by its fleet instead: decided with the fleet, or
    applied (active or failed) during a fleet run, whose end tells every outcome at once."""
    if delegation.fleet_id is None:
        return False
    if _FLEET_DIGEST.get() or action in _FLEET_ENDINGS:
        return True
    if action not in _RUN_OUTCOMES:
        return False
    return FleetGrant.objects.filter(
        pk=delegation.fleet_id, run_started_at__isnull=False, run_finished_at__isnull=True
    ).exists()


_FLEET_TITLES = {
    Event.DELEGATION_REQUESTED: gettext_lazy("%(partner)s requests %(role)s in %(count)d accounts"),
    Event.DELEGATION_OFFERED: gettext_lazy(
        "%(owner)s offers %(role)s to %(partner)s in %(count)d accounts"
    ),
    Event.DELEGATION_APPROVED: gettext_lazy(
        "%(role)s for %(partner)s was approved in %(count)d accounts"
    ),
    Event.DELEGATION_REJECTED: gettext_lazy(
        "%(role)s for %(partner)s was rejected in %(count)d accounts"
    ),
    Event.DELEGATION_ACTIVE: gettext_lazy(
        "%(role)s from %(owner)s is ready to use in %(count)d accounts"
    ),
    Event.DELEGATION_FAILED: gettext_lazy(
        "%(role)s for %(partner)s failed to apply in %(count)d accounts"
    ),
    Event.DELEGATION_REVOKED: gettext_lazy(
        "%(role)s for %(partner)s is revoked in %(count)d accounts"
    ),
    Event.DELEGATION_EXPIRING: gettext_lazy(
        "%(role)s for %(partner)s ends in %(left)s in %(count)d accounts"
    ),
    Event.DELEGATION_EXPIRED: gettext_lazy(
        "%(role)s for %(partner)s has ended in %(count)d accounts"
    ),
}
_FLEET_SUMMARIES = {
    Event.DELEGATION_REQUESTED: gettext_lazy(
        "A partner asks for one fleet grant across several accounts. Review it and decide once."
    ),
    Event.DELEGATION_OFFERED: gettext_lazy(
        "The owner granted this access in several accounts; the portal is applying it."
    ),
    Event.DELEGATION_APPROVED: gettext_lazy(
        "The owner approved the fleet; the portal is applying it account by account."
    ),
    Event.DELEGATION_REJECTED: gettext_lazy("The owner decided not to grant this fleet."),
    Event.DELEGATION_ACTIVE: gettext_lazy(
        "The fleet's run has ended. Assign the people who use it, then they can switch role."
    ),
    Event.DELEGATION_FAILED: gettext_lazy(
        "The cloud refused a change in these accounts. Open the fleet to see each error and "
        "retry an account."
    ),
    Event.DELEGATION_REVOKED: gettext_lazy(
        "The owner revoked the fleet; the portal is removing it from every account."
    ),
    Event.DELEGATION_EXPIRING: gettext_lazy("Access ends at %(when)s in these accounts."),
    Event.DELEGATION_EXPIRED: gettext_lazy(
        "The fleet reached its end date; the portal is removing it from every account."
    ),
}
# The sides told about a fleet's event: as for one account, except that the fleet's outcome
# (ready to use) reaches the owner's admins too, since they approved the fleet as a whole.
_FLEET_SIDES = {
    Event.DELEGATION_REQUESTED: ("owner",),
    Event.DELEGATION_OFFERED: ("owner", "partner"),
    Event.DELEGATION_APPROVED: ("owner", "partner"),
    Event.DELEGATION_REJECTED: ("owner", "partner"),
    Event.DELEGATION_ACTIVE: ("owner", "partner"),
    Event.DELEGATION_FAILED: ("owner", "partner"),
    Event.DELEGATION_REVOKED: ("owner", "partner", "staff"),
    Event.DELEGATION_EXPIRING: ("owner", "partner", "staff"),
    Event.DELEGATION_EXPIRED: ("owner", "partner", "staff"),
}
_SHOWN_ACCOUNTS = 20


def _accounts_text(account_uids: Sequence[str]) -> str:
    shown = ", ".join(account_uids[:_SHOWN_ACCOUNTS])
    hidden = len(account_uids) - _SHOWN_ACCOUNTS
    if hidden > 0:
        shown += " " + _("and %(n)d more") % {"n": hidden}
    return shown


def _fleet_key(fleet: FleetGrant, event: NotificationEvent, occasion: object) -> str:
    # One notice per fleet, event and occasion (its version, its run, a warning's label): a
    # double click writes nothing twice.
    return f"{event.value}:fleet:{fleet.pk}" + (f":{occasion}" if occasion is not None else "")


def fleet_announce(
    *,
    fleet: FleetGrant,
    event: NotificationEvent,
    members: Sequence[Delegation],
    actor: User | None,
    extra_facts: tuple[tuple[str, str], ...] = (),
    occasion: object = None,
    extra_names: dict[str, object] | None = None,
) -> None:
    """One notice for a fleet's event across `members` (its accounts concerned), to the
    admins of each side (never the person who acted), the partner's people assigned to any
    of those accounts when staff hear of it, and each side's subscribed channels."""
    key = _fleet_key(fleet, event, occasion)
    if not members:
        return
    account_uids = [member.managed_role.cloud_account.account_uid for member in members]
    names = {
        "role": fleet.catalog_role.role_name,
        "owner": fleet.owner.name,
        "partner": fleet.partner.name,
        "count": len(members),
        **(extra_names or {}),
    }
    facts: list[tuple[str, str]] = [
        (_("Role"), fleet.catalog_role.role_name),
        (_("Owner"), fleet.owner.name),
        (_("Partner"), fleet.partner.name),
        (_("Accounts"), _accounts_text(account_uids)),
        (_("Regions"), ", ".join(fleet.regions)),
        (_("Ends"), _when(fleet.ends_at)),
    ]
    errors = sorted({m.last_error_code for m in members if m.last_error_code})
    if event is Event.DELEGATION_FAILED and errors:
        facts.append((_("Cloud error"), ", ".join(errors)))
    facts.extend(extra_facts)
    notice = Notice(
        event=event,
        title=str(_FLEET_TITLES[event]) % names,
        summary=str(_FLEET_SUMMARIES[event]) % names,
        link_path=reverse("delegations:fleet_detail", args=[fleet.pk]),
        facts=tuple(facts),
    )
    sides = _FLEET_SIDES[event]
    by_side: list[tuple[Organisation, list[User]]] = []
    if "owner" in sides:
        by_side.append((fleet.owner, organisation_admins(fleet.owner)))
    people = organisation_admins(fleet.partner) if "partner" in sides else []
    if "staff" in sides:
        people += [user for users in _assigned_staff(members).values() for user in users]
    if people or "partner" in sides:
        by_side.append((fleet.partner, people))
    for organisation, recipients in by_side:
        notify(
            key=key,
            notice=notice,
            organisation=organisation,
            people=[p for p in recipients if actor is None or p.pk != actor.pk],
        )


def fleet_run_announce(*, fleet: FleetGrant, members: Sequence[Delegation]) -> None:
    """A fleet's run ended: one notice for the accounts now active, one for those that failed
    (or that the fleet did not attempt after too many failures), however many accounts."""
    run = fleet.run_started_at.isoformat() if fleet.run_started_at else "run"
    active = [m for m in members if m.status == Status.ACTIVE]
    failed = [m for m in members if m.status == Status.FAILED]
    not_attempted = [
        m.managed_role.cloud_account.account_uid
        for m in members
        if m.status == Status.SCHEDULED and fleet.stopped_at is not None
    ]
    fleet_announce(
        fleet=fleet,
        event=Event.DELEGATION_ACTIVE,
        members=active,
        occasion=run,
        actor=None,
    )
    fleet_announce(
        fleet=fleet,
        event=Event.DELEGATION_FAILED,
        members=failed,
        occasion=run,
        actor=None,
        # MaxErrors stopped the fleet: the accounts it then left alone.
        extra_facts=((_("Not attempted"), _accounts_text(not_attempted)),) if not_attempted else (),
    )


def fleet_expired_announce(*, fleet: FleetGrant, members: Sequence[Delegation]) -> None:
    """The expiry pass ended `members`, accounts of `fleet` whose end date passed: one notice."""
    fleet_announce(
        fleet=fleet, event=Event.DELEGATION_EXPIRED, members=members, actor=None, occasion="end"
    )


def delegation_announce(*, delegation: Delegation, action: AuditAction, actor: User | None) -> None:
    """Tell the people concerned about an audited lifecycle event (others: nothing). A fleet's
    account leaves it to its fleet (`fleet_announce`, `fleet_run_announce`) when the fleet
    decided it or a fleet run applied it."""
    delegations_announce_many(delegations=[delegation], action=action, actor=actor)


def delegations_announce_many(
    *,
    delegations: list[Delegation],
    action: AuditAction,
    actor: User | None = None,
    prepared: PreparedNotices | None = None,
) -> None:
    """`delegation_announce` for many delegations and one event (the worker activating a
    role's partners together), with the same deliveries, in statements that do not grow with
    their number (a fleet's accounts, left to their fleet, aside). Deliveries `prepared` for a
    delegation in the state it has now are written as they are; the others are rendered."""
    announced = _ANNOUNCED.get(action)
    if announced is None:
        return
    delegations = [d for d in delegations if not _left_to_the_fleet(d, action)]
    if not delegations:
        return
    event, sides = announced
    ready: list[Delivery] = []
    rest: list[Delegation] = []
    for delegation in delegations:
        rows = prepared.take(delegation, action) if prepared is not None else None
        if rows is None:
            rest.append(delegation)
        else:
            ready += rows
    rendered = deliveries_render(
        _announcements(
            [
                (_announce_key(delegation, event), _notice(delegation, event), delegation)
                for delegation in rest
            ],
            sides=sides,
            leave_out=actor,
        )
    )
    deliveries_enqueue(ready + [row for rows in rendered for row in rows])


@dataclass
class PreparedNotices:
    """Deliveries of one event's notices rendered ahead of the transaction that announces it
    (`delegations_announce_prepare`), each with the state of its delegation they were
    rendered for."""

    action: AuditAction | None = None
    by_delegation: dict[Any, tuple[tuple[Any, ...], list[Delivery]]] = field(default_factory=dict)

    def take(self, delegation: Delegation, action: AuditAction) -> list[Delivery] | None:
        """The deliveries prepared for `delegation` as it is now (once), or None: none were,
        or it changed since (they would tell an old state)."""
        state, rows = self.by_delegation.pop(delegation.pk, (None, None))
        if action != self.action or rows is None or state != _notice_state(delegation):
            return None
        return rows


def _notice_state(delegation: Delegation) -> tuple[Any, ...]:
    # What a lifecycle notice and its key are made of, besides names that only a rename
    # changes (a rename racing the event may show either name, prepared or not).
    return (
        delegation.version,
        delegation.status,
        delegation.ends_at,
        delegation.last_error_code,
        delegation.catalog_role_id,
        delegation.owner_id,
        delegation.partner_id,
        delegation.fleet_id,
    )


def delegations_announce_prepare(
    *, delegations: Sequence[Delegation], action: AuditAction
) -> PreparedNotices:
    """Render now the deliveries `delegations_announce_many` will write for `action`, from
    `delegations` as the event will leave them (reads only: the announcing transaction has
    not begun). A fleet's accounts are left out (their fleet may tell instead)."""
    announced = _ANNOUNCED.get(action)
    prepared = PreparedNotices(action=action)
    delegations = [d for d in delegations if d.fleet_id is None]
    if announced is None or not delegations:
        return prepared
    event, sides = announced
    told = [(_announce_key(d, event), _notice(d, event), d) for d in delegations]
    by_key = {key: delegation for key, _notice_, delegation in told}
    announcements = _announcements(told, sides=sides)
    for announcement, rows in zip(announcements, deliveries_render(announcements), strict=True):
        delegation = by_key[announcement.key]
        _state, earlier = prepared.by_delegation.get(delegation.pk, (None, []))
        prepared.by_delegation[delegation.pk] = (_notice_state(delegation), earlier + rows)
    return prepared


def extension_announce(
    *, delegation: Delegation, extension_id: object, action: AuditAction, actor: User | None
) -> None:
    """Tell the people concerned about an audited extension event: one notice per extension
    and event (a delegation may be extended many times without changing its version)."""
    announced = _EXTENSIONS_ANNOUNCED.get(action)
    if announced is None:
        return
    event, sides = announced
    _tell(
        key=f"{event.value}:{extension_id}",
        notice=_notice(delegation, event),
        delegation=delegation,
        sides=sides,
        leave_out=actor,
    )


def credentials_issued_notify(*, issuance: CredentialIssuance, first_use_of_key: bool) -> None:
    """A security notice to the person: credentials were issued in their name. For a
    credentials-URI key only its first use is announced (tools refresh every hour)."""
    if issuance.via == CredentialIssuance.Via.URI and not first_use_of_key:
        return
    delegation = issuance.delegation
    notify(
        key=f"credentials.issued:{issuance.pk}",
        notice=Notice(
            event=Event.CREDENTIALS_ISSUED,
            title=_("Credentials for %(role)s were issued to you")
            % {"role": delegation.catalog_role.role_name},
            summary=_(
                "If this was not you, tell your organisation's admins at once: they can "
                "unassign you, and the owner can cut off the role."
            ),
            link_path=reverse("delegations:my_access"),
            facts=(
                (_("Role"), delegation.catalog_role.role_name),
                (_("Owner"), delegation.owner.name),
                (_("Issued"), _when(issuance.issued_at)),
                (_("Valid until"), _when(issuance.expiration)),
                (_("Through"), str(issuance.get_via_display())),
            ),
        ),
        organisation=delegation.partner,
        people=[issuance.user],
        to_channels=False,
    )


def break_glass_announce(
    *,
    delegation: Delegation,
    event: NotificationEvent,
    key: str,
    people: Iterable[User],
    partner_side: bool = False,
    facts: tuple[tuple[str, str], ...] = (),
) -> None:
    """A break-glass notice to `people` of the owner (every admin at an activation: a
    security notice no preference mutes) and the owner's channels; with `partner_side`, the
    partner's admins hear too (a review's outcome)."""
    notice = _notice(delegation, event)
    if facts:
        notice = Notice(
            event=notice.event,
            title=notice.title,
            summary=notice.summary,
            link_path=notice.link_path,
            facts=notice.facts + facts,
        )
    notify(key=key, notice=notice, organisation=delegation.owner, people=list(people))
    if partner_side:
        notify(
            key=key,
            notice=notice,
            organisation=delegation.partner,
            people=organisation_admins(delegation.partner),
        )


# --- the scheduler's: reminders and expiry warnings ----------------------------------------

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
    _tell(
        key=key,
        notice=_notice(delegation, Event.DELEGATION_REMINDER),
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
    return _fleet_key(FleetGrant(pk=fleet_id), Event.DELEGATION_EXPIRING, label)


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
    _tell(
        key=key,
        notice=_notice(
            delegation,
            Event.DELEGATION_EXPIRING,
            title=title,
            summary=_("Access ends at %(when)s.") % {"when": _when(delegation.ends_at)},
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
    if not notice_mark_once(key=_fleet_key(fleet, Event.DELEGATION_EXPIRING, label)):
        return False
    fleet_announce(
        fleet=fleet,
        event=Event.DELEGATION_EXPIRING,
        members=members,
        actor=None,
        occasion=label,
        extra_names={"left": _left_text(label), "when": _when(ends_at)},
    )
    return True


def delegations_remind_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Send every reminder and expiry warning now due; each at most once. Returns how many."""
    now = now or timezone.now()
    sent = 0
    waiting = Delegation.objects.filter(
        status=Status.REQUESTED,
        created_at__lte=now - dt.timedelta(seconds=settings.PORTAL_REMIND_AFTER),
    ).select_related("owner", "partner", "catalog_role")
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
