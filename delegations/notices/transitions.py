"""What each audited lifecycle event tells, and to whom: a delegation's transitions, its
extensions, credentials issued in a person's name, and break-glass activations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from audit.actions import AuditAction
from delegations.models import CredentialIssuance, Delegation
from delegations.notices.fleet import left_to_the_fleet
from delegations.notices.telling import (
    Event,
    announce_key,
    announcements_for,
    delegation_notice,
    tell,
    when_text,
)
from notifications.events import NotificationEvent
from notifications.models import Delivery
from notifications.services import (
    Notice,
    deliveries_enqueue,
    deliveries_render,
    notify,
    organisation_admins,
)

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


# Which side hears about which audited decision inside a delegation (`decision_announce`).
_DECISIONS_ANNOUNCED: dict[AuditAction, tuple[NotificationEvent, tuple[str, ...]]] = {
    AuditAction.DELEGATION_APPROVAL_WITHDRAWN: (Event.APPROVAL_WITHDRAWN, ("owner",)),
    AuditAction.DELEGATION_EXTENSION_APPROVAL_WITHDRAWN: (Event.APPROVAL_WITHDRAWN, ("owner",)),
    AuditAction.DELEGATION_EXTENSION_REQUESTED: (Event.EXTENSION_REQUESTED, ("owner",)),
    AuditAction.DELEGATION_EXTENDED: (Event.DELEGATION_EXTENDED, ("owner", "partner", "staff")),
    AuditAction.DELEGATION_EXTENSION_REJECTED: (Event.EXTENSION_REJECTED, ("owner", "partner")),
}
# What a decision's notice says when its event's own summary would tell of the request.
_DECISION_SUMMARIES = {
    AuditAction.DELEGATION_EXTENSION_APPROVAL_WITHDRAWN: gettext_lazy(
        "An approver took back their approval of more time; the extension needs another one. "
        "Review it and decide."
    ),
}


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
    delegations = [d for d in delegations if not left_to_the_fleet(d, action)]
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
        announcements_for(
            [
                (announce_key(delegation, event), delegation_notice(delegation, event), delegation)
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
    told = [(announce_key(d, event), delegation_notice(d, event), d) for d in delegations]
    by_key = {key: delegation for key, _notice_, delegation in told}
    announcements = announcements_for(told, sides=sides)
    for announcement, rows in zip(announcements, deliveries_render(announcements), strict=True):
        delegation = by_key[announcement.key]
        _state, earlier = prepared.by_delegation.get(delegation.pk, (None, []))
        prepared.by_delegation[delegation.pk] = (_notice_state(delegation), earlier + rows)
    return prepared


def decision_announce(
    *, delegation: Delegation, decision_id: object, action: AuditAction, actor: User | None
) -> None:
    """Tell the people concerned about an audited decision inside a delegation (an extension,
    an approval taken back): one notice per decision and event, since the delegation's version
    does not change with them. A fleet's account decided with its fleet leaves it to the
    fleet's notice."""
    announced = _DECISIONS_ANNOUNCED.get(action)
    if announced is None or left_to_the_fleet(delegation, action):
        return
    event, sides = announced
    tell(
        key=f"{event.value}:{decision_id}",
        notice=delegation_notice(
            delegation, event, summary=str(_DECISION_SUMMARIES.get(action, ""))
        ),
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
                (_("Account"), delegation.managed_role.cloud_account.account_uid),
                (_("Issued"), when_text(issuance.issued_at)),
                (_("Valid until"), when_text(issuance.expiration)),
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
    notice = delegation_notice(delegation, event)
    if facts:
        notice = replace(notice, facts=notice.facts + facts)
    notify(key=key, notice=notice, organisation=delegation.owner, people=list(people))
    if partner_side:
        notify(
            key=key,
            notice=notice,
            organisation=delegation.partner,
            people=organisation_admins(delegation.partner),
        )
