"""Fleet grants: one notice for the fleet, not one per account."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Organisation, User
from audit.actions import AuditAction
from delegations.models import Delegation, FleetGrant
from delegations.notices.telling import Event, Status, assigned_staff, when_text
from notifications.events import NotificationEvent
from notifications.services import Notice, notify, organisation_admins

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


def left_to_the_fleet(delegation: Delegation, action: AuditAction) -> bool:
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
    Event.APPROVAL_WITHDRAWN: gettext_lazy(
        "An approval of %(role)s for %(partner)s in %(count)d accounts was withdrawn"
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
    Event.APPROVAL_WITHDRAWN: gettext_lazy(
        "An approver took back their approval of the fleet; it needs another one. Review it and "
        "decide once."
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
    Event.APPROVAL_WITHDRAWN: ("owner",),
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


def fleet_key(fleet: FleetGrant, event: NotificationEvent, occasion: object) -> str:
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
    key = fleet_key(fleet, event, occasion)
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
        (_("Ends"), when_text(fleet.ends_at)),
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
        people += [user for users in assigned_staff(members).values() for user in users]
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
