"""The making of a delegation's notice and who hears it: its title, summary and facts, the
admins of each side and the partner's assigned people, and the key that makes it once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Organisation, User
from delegations.models import Delegation, StaffAssignment
from notifications.events import NotificationEvent
from notifications.services import Announcement, Notice, notify_many, organisations_admins

Event = NotificationEvent
Status = Delegation.Status

_TITLES = {
    Event.DELEGATION_REQUESTED: gettext_lazy("%(partner)s requests %(role)s"),
    Event.DELEGATION_OFFERED: gettext_lazy("%(owner)s offers %(role)s to %(partner)s"),
    Event.DELEGATION_APPROVED: gettext_lazy("%(role)s for %(partner)s was approved"),
    Event.APPROVAL_WITHDRAWN: gettext_lazy("An approval of %(role)s for %(partner)s was withdrawn"),
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
    Event.APPROVAL_WITHDRAWN: gettext_lazy(
        "An approver took back their approval; the request needs another one. Review it and decide."
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


def when_text(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else _("open-ended")


def _facts(delegation: Delegation) -> tuple[tuple[str, str], ...]:
    facts = [
        (_("Role"), delegation.catalog_role.role_name),
        (_("Owner"), delegation.owner.name),
        # One role name can be granted in several of the owner's accounts (a fleet's): the
        # account tells their notices apart.
        (_("Account"), delegation.managed_role.cloud_account.account_uid),
        (_("Partner"), delegation.partner.name),
        # The label of the member, not get_status_display(), which builds a dict of every
        # choice's translated label each time (a notice per partner in a bulk activation).
        (_("Status"), str(Status(delegation.status).label)),
        (_("Ends"), when_text(delegation.ends_at)),
    ]
    if delegation.status == Status.FAILED and delegation.last_error_code:
        facts.append((_("Cloud error"), delegation.last_error_code))
    return tuple(facts)


def delegation_notice(
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


def assigned_staff(delegations: Sequence[Delegation]) -> dict[object, list[User]]:
    """Each delegation's people currently assigned (delegation id -> users), in one read."""
    staff: dict[object, list[User]] = {}
    for assignment in StaffAssignment.objects.filter(
        delegation__in=[delegation.pk for delegation in delegations], ended_at__isnull=True
    ).select_related("user"):
        staff.setdefault(assignment.delegation_id, []).append(assignment.user)
    return staff


def announcements_for(
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
    staff = assigned_staff(delegations) if "staff" in sides else {}
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


def tell(
    *,
    key: str,
    notice: Notice,
    delegation: Delegation,
    sides: Iterable[str],
    leave_out: User | None = None,
    extra_owner_people: Iterable[User] = (),
) -> None:
    notify_many(
        announcements_for(
            [(key, notice, delegation)],
            sides=tuple(sides),
            leave_out=leave_out,
            extra_owner_people=extra_owner_people,
        )
    )


def announce_key(delegation: Delegation, event: NotificationEvent) -> str:
    # One notice per event and version: a double click (same version) writes nothing twice;
    # a request that expires and the expiry that follows share one key.
    version = "end" if event is Event.DELEGATION_EXPIRED else str(delegation.version)
    return f"{event.value}:{delegation.pk}:{version}"


# --- fleet grants: one notice for the fleet, not one per account --------------------------------
