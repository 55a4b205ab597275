"""Named people over a report window: who was in a delegation's trust policy as a
person (`acs:ram::<partner>:user/<name>`) at any time in [since, until), with from and to.

Reconstructed from the record, not from today's state: the trust-policy writes the worker
recorded for the owner's role (successful `cloud.call_result` events whose request names the
principals it added and removed; a deleted role trusts nobody). A person removed last week
is listed for a window that covers last week, and not for this one; a person added tomorrow
is not listed for yesterday.

Those events are the owner's; a partner reading its own report sees only its own people (the
principals under its account UID), as the access report treats the role's power.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from accounts.models import Organisation
from audit.actions import AuditAction
from audit.models import AuditEvent
from delegations.models import CatalogRole, Delegation, TrustedPerson, TrustScope
from delegations.role_state import broker_principal

NAMED_SCOPES = (TrustScope.NAMED_PARTNER_MANAGED, TrustScope.NAMED_OWNER_APPROVED)


@dataclass(frozen=True)
class NamedSpell:
    """One stretch of time a person was in the trust policy; `until` None: still in it."""

    ram_user_name: str
    since: dt.datetime
    until: dt.datetime | None


@dataclass(frozen=True)
class NamedPeopleWindow:
    delegation: Delegation
    scope_label: str
    could_act: list[NamedSpell]
    # People the partner proposed whom the owner refused, or who still wait (today's state).
    not_named: list[TrustedPerson]


def _user_prefix(partner_uid: str) -> str:
    return f"acs:ram::{partner_uid}:user/"


def principal_spells(
    events: Iterable[Any], *, prefix: str, left_out: frozenset[str] = frozenset()
) -> dict[str, list[list[dt.datetime | None]]]:
    """Fold trust-policy writes (oldest first) into [since, until] per user principal under
    `prefix`: added opens, removed (or the role's deletion) closes. Pure, for the tests."""
    spells: dict[str, list[list[dt.datetime | None]]] = defaultdict(list)
    for event in events:
        metadata = event.metadata if isinstance(event.metadata, Mapping) else {}
        request = metadata.get("request")
        request = request if isinstance(request, Mapping) else {}
        at = event.occurred_at
        deleted = metadata.get("cloud_action") == "DeleteRole"
        for principal in request.get("principals_added") or []:
            if not isinstance(principal, str) or not principal.startswith(prefix):
                continue
            if principal in left_out:
                continue
            mine = spells[principal]
            if not mine or mine[-1][1] is not None:
                mine.append([at, None])
        removed = set(request.get("principals_removed") or [])
        for principal, mine in spells.items():
            if (deleted or principal in removed) and mine and mine[-1][1] is None:
                mine[-1][1] = at
    return spells


def _trust_writes(*, owner_id: Any, managed_role_id: Any) -> Iterable[Any]:
    """Every recorded write of the role's trust policy, oldest first. All of them, not only
    those before the window's end: a person in the policy at the end of the window is shown
    with the time they actually left it, when they have."""
    return (
        AuditEvent.objects.filter(
            organisation_id=owner_id,
            action=AuditAction.CLOUD_CALL_RESULT.value,
            outcome=AuditEvent.Outcome.SUCCESS,
            metadata__managed_role=str(managed_role_id),
        )
        .only("occurred_at", "metadata")
        .order_by("sequence")
        .iterator()
    )


def _clip(
    spells: list[list[dt.datetime | None]],
    *,
    delegation: Delegation,
    since: dt.datetime,
    until: dt.datetime,
) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """The spells within the delegation's own life that overlap the window."""
    kept = []
    for start, end in spells:
        assert start is not None
        start = max(start, delegation.created_at)
        if delegation.ended_at is not None:
            end = delegation.ended_at if end is None else min(end, delegation.ended_at)
        if start < until and (end is None or end > since) and (end is None or end > start):
            kept.append((start, end))
    return kept


def named_people_for_report(
    *,
    organisation: Organisation,
    account_uid: str,
    catalog_role: CatalogRole | None,
    since: dt.datetime,
    until: dt.datetime,
) -> list[NamedPeopleWindow]:
    """The named people of an access report, from its arguments
    (`AccessReportForm.report_arguments()`)."""
    return named_people_over_window(
        organisation=organisation,
        account_uid=account_uid,
        catalog_role_id=getattr(catalog_role, "pk", None),
        since=since,
        until=until,
    )


def named_people_over_window(
    *,
    organisation: Organisation,
    account_uid: str,
    catalog_role_id: Any = None,
    since: dt.datetime,
    until: dt.datetime,
) -> list[NamedPeopleWindow]:
    """Per delegation of `organisation` in `account_uid` (and catalogue role) that named people
    in the window or names them now: each person in its trust policy at any time in
    [since, until), with from/to."""
    delegations = Delegation.objects.filter(
        Q(owner=organisation) | Q(partner=organisation),
        # The account the delegation's role lives in (a fleet grant's roles span accounts).
        managed_role__cloud_account__account_uid=account_uid,
        created_at__lt=until,
    ).select_related("owner", "partner", "catalog_role", "managed_role")
    if catalog_role_id is not None:
        delegations = delegations.filter(catalog_role_id=catalog_role_id)
    lines = []
    for delegation in delegations.order_by("created_at"):
        if delegation.ended_at is not None and delegation.ended_at <= since:
            continue
        broker = broker_principal(delegation)
        spells = principal_spells(
            _trust_writes(owner_id=delegation.owner_id, managed_role_id=delegation.managed_role_id),
            prefix=_user_prefix(delegation.partner_account_uid),
            left_out=frozenset({broker} if broker else ()),
        )
        could_act = [
            NamedSpell(principal.rsplit("/", 1)[1], start, end)
            for principal, found in sorted(spells.items())
            for start, end in _clip(found, delegation=delegation, since=since, until=until)
        ]
        if not could_act and delegation.trust_scope not in NAMED_SCOPES:
            continue
        named = {spell.ram_user_name for spell in could_act}
        not_named = [
            person
            for person in TrustedPerson.objects.filter(
                delegation=delegation,
                status__in=[TrustedPerson.Status.PENDING, TrustedPerson.Status.REJECTED],
            )
            if person.ram_user_name not in named
        ]
        lines.append(
            NamedPeopleWindow(
                delegation=delegation,
                scope_label=str(TrustScope(delegation.trust_scope).label),
                could_act=could_act,
                not_named=not_named,
            )
        )
    return lines
