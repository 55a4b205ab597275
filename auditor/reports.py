"""The access report: who could act in cloud account X (optionally role R) between two dates.

Built from the audit events, not from the delegations' current state, so it answers for the
past as the record shows it:

- a partner **account** could act while its principal was in the role's trust policy: from
  the first of "the worker added it" (a successful cloud call adding the principal) and
  "activated", until the first of "the worker removed it" and "revoked"/"expired"; a revoked
  principal that drift shows back in the trust policy opens a new interval;
- after that, credentials already issued keep working until they expire (STS cannot recall
  them): the **residual window** runs to the last `expiration` of a credential issued through
  the portal and, in the worst case, to the end plus the role's maximum session duration
  (credentials the partner took directly with the role) -- unless the role stopped working
  first: a deleted role, or one left with no permission policy (the emergency cut-off),
  lets no credential of it do anything, so the window ends at the first of those, read from
  the role calls the portal recorded as succeeded (`RolePower`). Those role calls are read
  for every delegation on the role, whoever's round made them, and also for a partner's
  report: they are events of the owner, but when the partner's own access stopped is the
  partner's to know (only their times reach the partner, as the window's end);
- a partner **person** could act while assigned and the account was trusted, and
  with each credential issued to them until it expired.

The fold (`AccessFold`) is pure and reads events one at a time, oldest first, so the report
streams its input with `.iterator()` and keeps only per-delegation state.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext, gettext_noop

from accounts.models import Organisation
from activity.selectors import Usage, activity_usage
from audit.models import AuditEvent
from auditor.presentation import (
    ASSIGNED,
    CREDENTIAL_ISSUED,
    ROLE_POWER_CALLS,
    UNASSIGNED,
    EventLike,
    Person,
    RolePower,
    classify_access_event,
    credential_expiration,
    person_of,
)
from auditor.selectors import (
    CALL_RESULT,
    CLOUD_CALL_TARGET,
    DELEGATION_TARGET,
    DRIFT_TARGET,
    TargetIds,
    _visible,
    sequence_order,
    targets_q,
)
from delegations.models import (
    HOME_FIRST,
    CatalogRole,
    CloudAccount,
    CloudCall,
    Delegation,
    DriftFinding,
)

# --- intervals -------------------------------------------------------------------------------


@dataclass
class Interval:
    start: dt.datetime
    end: dt.datetime | None = None  # None: still open at the time of the report

    def until(self, now: dt.datetime) -> dt.datetime:
        return self.end if self.end is not None else now

    def overlaps(self, since: dt.datetime, until: dt.datetime, now: dt.datetime) -> bool:
        return self.start < until and self.until(now) > since


def _clip(intervals: Iterable[Interval], bounds: list[Interval]) -> list[Interval]:
    """The intersection of two interval lists (each sorted, non-overlapping)."""
    result = []
    for first in intervals:
        for second in bounds:
            start = max(first.start, second.start)
            end_first, end_second = first.end, second.end
            if end_first is None and end_second is None:
                end = None
            elif end_first is None:
                end = end_second
            elif end_second is None:
                end = end_first
            else:
                end = min(end_first, end_second)
            if end is None or start < end:
                result.append(Interval(start=start, end=end))
    return result


# --- per delegation state --------------------------------------------------------------------


@dataclass(frozen=True)
class DelegationFacts:
    """What the report needs to know about a delegation besides its events."""

    delegation_id: str
    partner_name: str
    partner_account_uid: str
    principal: str
    role_name: str
    account_uid: str
    max_session_seconds: int


@dataclass(frozen=True)
class Credential:
    issued_at: dt.datetime
    expires_at: dt.datetime | None
    session_name: str
    access_key_id: str


@dataclass
class PersonState:
    person: Person
    assigned: list[Interval] = field(default_factory=list)
    credentials: list[Credential] = field(default_factory=list)
    assigned_by: str = ""


@dataclass
class DelegationState:
    facts: DelegationFacts
    trusted: list[Interval] = field(default_factory=list)
    approved_by: str = ""
    approved_at: dt.datetime | None = None
    approved_with_mfa: bool | None = None
    ended_how: str = ""
    # Who revoked it, when someone did: the pages say "revoked by …" in the reader's language.
    revoked_by: str = ""
    notes: list[str] = field(default_factory=list)
    people: dict[str, PersonState] = field(default_factory=dict)
    power: RolePower = field(default_factory=RolePower)
    # Staff assignment id → the person key it was recorded under: credentials name their
    # assignment, so they land on the same person whatever else their event says.
    assignment_people: dict[str, str] = field(default_factory=dict)

    def _open(self, at: dt.datetime) -> None:
        if not self.trusted or self.trusted[-1].end is not None:
            self.trusted.append(Interval(start=at))

    def _close(self, at: dt.datetime) -> None:
        if self.trusted and self.trusted[-1].end is None:
            self.trusted[-1].end = at

    @property
    def credentials(self) -> list[Credential]:
        return [c for state in self.people.values() for c in state.credentials]


def _request_of(event: EventLike) -> Mapping[str, Any]:
    metadata = event.metadata if isinstance(event.metadata, Mapping) else {}
    request = metadata.get("request")
    return request if isinstance(request, Mapping) else {}


class AccessFold:
    """Feed events oldest first (`feed(event, delegation_ids)`), then read `states`."""

    def __init__(self, facts: Iterable[DelegationFacts]) -> None:
        self.states = {f.delegation_id: DelegationState(facts=f) for f in facts}

    def feed(self, event: AuditEvent, delegation_ids: Iterable[str]) -> None:
        for delegation_id in delegation_ids:
            state = self.states.get(delegation_id)
            if state is not None:
                self._apply(state, event)

    def _apply(self, state: DelegationState, event: AuditEvent) -> None:
        at = event.occurred_at
        action = event.action
        principal = state.facts.principal
        metadata = event.metadata if isinstance(event.metadata, Mapping) else {}
        if event.outcome != AuditEvent.Outcome.SUCCESS:
            return
        if action in ("delegation.approved", "delegation.offered"):
            state.approved_by = event.actor_label or "the portal"
            state.approved_at = at
            mfa = metadata.get("with_mfa")
            state.approved_with_mfa = mfa if isinstance(mfa, bool) else None
        elif action == "delegation.break_glass_activated":
            # A break-glass window: granted by the partner's named person, not by
            # an approver; the report marks it and its review.
            state.approved_by = f"break-glass: {event.actor_label or 'a partner person'}"
            state.approved_at = at
            mfa = metadata.get("with_mfa")
            state.approved_with_mfa = mfa if isinstance(mfa, bool) else None
            state.notes.append(
                f"Break-glass window: activated {at:%Y-%m-%d %H:%M} UTC by "
                f"{event.actor_label or 'a partner person'} for {metadata.get('hours', '?')} h: "
                f"{metadata.get('reason', '')}"
            )
        elif action in ("break_glass.confirmed", "break_glass.revoked_and_flagged"):
            verdict = "confirmed" if action == "break_glass.confirmed" else "revoked and flagged"
            state.notes.append(
                f"Break-glass review: {verdict} by {event.actor_label or 'an owner admin'} "
                f"at {at:%Y-%m-%d %H:%M} UTC"
            )
        elif action == "break_glass.review_escalated":
            state.notes.append(
                f"Break-glass review {str(metadata.get('escalation', '')).lower()} at "
                f"{at:%Y-%m-%d %H:%M} UTC (not reviewed in time)"
            )
        elif action == "delegation.activated":
            state._open(at)
        elif action == "delegation.revoke_requested":
            state.revoked_by = event.actor_label or ""
            state.ended_how = (
                f"revoked by {state.revoked_by}"
                if state.revoked_by
                else gettext_noop("revoked by the portal")
            )
        elif action == "delegation.expiring":
            state.revoked_by = ""
            state.ended_how = gettext_noop("expired at its end date")
        elif action in ("delegation.revoked", "delegation.expired"):
            state._close(at)
            if not state.ended_how:
                state.ended_how = (
                    gettext_noop("revoked")
                    if action == "delegation.revoked"
                    else gettext_noop("expired")
                )
        elif action == "cloud.call_result":
            state.power.feed(event, at)
            request = _request_of(event)
            if principal in (request.get("principals_added") or []):
                state._open(at)
            # A deleted role trusts nobody: the portal deletes it when the last partner goes.
            if principal in (request.get("principals_removed") or []) or (
                metadata.get("cloud_action") == "DeleteRole"
            ):
                state._close(at)
        elif action == "drift.detected" and metadata.get("subject") == principal:
            if metadata.get("kind") == DriftFinding.Kind.REVOKED_PRINCIPAL_BACK:
                state._open(at)
                state.power.seen_in_use(at)
                state.notes.append(
                    f"{at:%Y-%m-%d %H:%M} UTC: the revoked principal was found back in the "
                    "trust policy (changed outside the portal)"
                )
        else:
            self._apply_access(state, event)

    def _apply_access(self, state: DelegationState, event: AuditEvent) -> None:
        kind = classify_access_event(event)
        if kind is None:
            return
        data: dict[str, Any] = {}
        for part in (event.after, event.metadata):
            if isinstance(part, Mapping):
                data.update(part)
        person = person_of(event, kind)
        assignment = str(data.get("assignment") or "")
        if not assignment and event.target_type == ASSIGNMENT_TARGET:
            assignment = event.target_id
        key = state.assignment_people.get(assignment, person.key) if assignment else person.key
        if assignment and kind in (ASSIGNED, UNASSIGNED):
            state.assignment_people.setdefault(assignment, key)
        person_state = state.people.setdefault(key, PersonState(person=person))
        at = event.occurred_at
        if kind == ASSIGNED:
            if not person_state.assigned or person_state.assigned[-1].end is not None:
                person_state.assigned.append(Interval(start=at))
                person_state.assigned_by = event.actor_label
        elif kind == UNASSIGNED:
            if person_state.assigned and person_state.assigned[-1].end is None:
                person_state.assigned[-1].end = at
        elif kind == CREDENTIAL_ISSUED:
            person_state.credentials.append(
                Credential(
                    issued_at=at,
                    expires_at=credential_expiration(event),
                    session_name=str(data.get("session_name") or ""),
                    access_key_id=str(data.get("access_key_id") or ""),
                )
            )


ASSIGNMENT_TARGET = "delegations.staffassignment"


# --- report rows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    kind: str  # "access" or "residual"
    start: dt.datetime
    end: dt.datetime
    left: float  # percent of the window
    width: float

    @property
    def label(self) -> str:
        """The segment's kind as the legend words it, in the reader's language."""
        return gettext("could act") if self.kind == "access" else gettext("residual window")


@dataclass(frozen=True)
class ReportRow:
    kind: str  # "account" or "person"
    who: str
    detail: str
    delegation_id: str
    partner_name: str
    partner_account_uid: str
    account_uid: str
    role_name: str
    approved_by: str
    approved_at: dt.datetime | None
    approved_with_mfa: bool | None
    access_from: dt.datetime | None
    access_until: dt.datetime | None  # None: still could act when the report ran
    residual_until: dt.datetime | None
    worst_case_until: dt.datetime | None
    ended_how: str
    credentials: int
    segments: tuple[Segment, ...]
    notes: tuple[str, ...] = ()
    # Who revoked the access (the pages word "revoked by …"; `ended_how` stays English for exports).
    revoked_by: str = ""
    # An account row's trusted principal (the pages word its `who` and `detail` themselves).
    principal: str = ""
    # A person row's `detail` in parts, for the same reason.
    ram_user: str = ""
    sessions_text: str = ""
    assigned_by: str = ""
    # Could act when the report ran: through access still open on a role that can do
    # something, or credentials that have not expired and whose role still works.
    still_able: bool = False
    # When and why credentials stopped working before they expired (role deleted, policies
    # detached); None when nothing cut the residual window short.
    stopped_at: dt.datetime | None = None
    stopped_by: str = ""
    # A person row's `Person.key` ("id:<user id>" when known), to join what they did.
    person_key: str = ""
    # What ActionTrail says was done in the window (activity): None when not known (the
    # partner's view, or no activity ingested), else the calls with the first and last one.
    used_calls: int | None = None
    used_first: dt.datetime | None = None
    used_last: dt.datetime | None = None


@dataclass(frozen=True)
class AccessReport:
    account_uid: str
    role_name: str
    since: dt.datetime
    until: dt.datetime
    generated_at: dt.datetime
    rows: list[ReportRow]
    per_person_data: bool  # False until any staff assignment or credential event exists
    delegations_considered: int


def _segments(
    access: list[Interval],
    residual: list[tuple[dt.datetime, dt.datetime]],
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
) -> tuple[Segment, ...]:
    window = (until - since).total_seconds()
    pieces = [("access", i.start, i.until(now)) for i in access] + [
        ("residual", start, end) for start, end in residual
    ]
    segments = []
    for kind, start, end in pieces:
        start, end = max(start, since), min(end, until)
        if end <= start:
            continue
        left = (start - since).total_seconds() / window * 100
        width = max((end - start).total_seconds() / window * 100, 0.5)
        segments.append(
            Segment(
                kind=kind,
                start=start,
                end=end,
                left=round(left, 3),
                width=round(min(width, 100 - left), 3),
            )
        )
    return tuple(segments)


def _latest(values: Iterable[dt.datetime | None]) -> dt.datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


@dataclass(frozen=True)
class _Cut:
    """A residual window's end after the role's power is taken into account."""

    end: dt.datetime
    stopped_at: dt.datetime | None = None
    stopped_by: str = ""


def _cut(power: RolePower, start: dt.datetime, end: dt.datetime) -> _Cut:
    stop = power.first_stop(start, end)
    if stop is None:
        return _Cut(end=end)
    return _Cut(end=max(stop[0], start), stopped_at=stop[0], stopped_by=stop[1])


def _open_and_working(intervals: Iterable[Interval], power: RolePower, now: dt.datetime) -> bool:
    return any(i.end is None for i in intervals) and not power.powerless_at(now)


def _stop_note(cut: _Cut | None) -> tuple[str, ...]:
    if cut is None or cut.stopped_at is None:
        return ()
    return (
        f"Credentials stopped working at {cut.stopped_at:%Y-%m-%d %H:%M:%S} UTC, before they "
        f"expired: {cut.stopped_by}.",
    )


def report_rows(
    states: Iterable[DelegationState], *, since: dt.datetime, until: dt.datetime, now: dt.datetime
) -> list[ReportRow]:
    """The rows of everyone who could act in the window: one per partner account (trusted
    through a delegation) and one per partner person under it."""
    rows: list[ReportRow] = []
    for state in states:
        facts = state.facts
        trusted_end = state.trusted[-1].end if state.trusted else None
        portal_expiry = _latest(c.expires_at for c in state.credentials)
        worst_case = portal_residual = None
        residual_pieces: list[tuple[dt.datetime, dt.datetime]] = []
        cut: _Cut | None = None
        if trusted_end is not None:
            bound = trusted_end + dt.timedelta(seconds=facts.max_session_seconds)
            cut = _cut(state.power, trusted_end, max(bound, portal_expiry or bound))
            worst_case = cut.end
            if portal_expiry is not None and portal_expiry > trusted_end:
                portal_residual = min(portal_expiry, cut.end)
            residual_pieces.append((trusted_end, worst_case))
        account_intervals = [
            *state.trusted,
            *(Interval(start=s, end=e) for s, e in residual_pieces),
        ]
        if any(i.overlaps(since, until, now) for i in account_intervals):
            rows.append(
                ReportRow(
                    kind="account",
                    who=f"{facts.partner_name} (account {facts.partner_account_uid})",
                    detail=f"any RAM user the partner allows, as {facts.principal}",
                    principal=facts.principal,
                    **_delegation_columns(state),
                    access_from=state.trusted[0].start if state.trusted else None,
                    access_until=trusted_end,
                    residual_until=portal_residual if portal_residual != trusted_end else None,
                    worst_case_until=worst_case,
                    credentials=len(state.credentials),
                    segments=_segments(
                        state.trusted, residual_pieces, since=since, until=until, now=now
                    ),
                    notes=(*state.notes, *_stop_note(cut)),
                    still_able=_open_and_working(state.trusted, state.power, now)
                    or (portal_residual is not None and portal_residual > now),
                    stopped_at=cut.stopped_at if cut else None,
                    stopped_by=cut.stopped_by if cut else "",
                )
            )
        for person_state in state.people.values():
            rows.extend(_person_rows(state, person_state, since=since, until=until, now=now))
    rows.sort(key=lambda r: (r.partner_name, r.role_name, r.delegation_id, r.kind != "account"))
    return rows


def _delegation_columns(state: DelegationState) -> dict[str, Any]:
    """The columns a delegation's rows share: whose, which role, who approved, how it ended."""
    facts = state.facts
    return {
        "delegation_id": facts.delegation_id,
        "partner_name": facts.partner_name,
        "partner_account_uid": facts.partner_account_uid,
        "account_uid": facts.account_uid,
        "role_name": facts.role_name,
        "approved_by": state.approved_by,
        "approved_at": state.approved_at,
        "approved_with_mfa": state.approved_with_mfa,
        "ended_how": state.ended_how,
        "revoked_by": state.revoked_by,
    }


def _person_rows(
    state: DelegationState,
    person_state: PersonState,
    *,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
) -> list[ReportRow]:
    access = _clip(person_state.assigned, state.trusted)
    residual: list[tuple[dt.datetime, dt.datetime]] = []
    access_end = access[-1].end if access else None
    first_stop: _Cut | None = None
    valid_until: list[dt.datetime] = []
    for credential in person_state.credentials:
        expires = credential.expires_at or credential.issued_at
        valid_until.append(_cut(state.power, credential.issued_at, expires).end)
        within = next((i for i in access if i.start <= credential.issued_at < i.until(now)), None)
        if within is not None and (within.end is None or expires <= within.end):
            continue  # used while the person could act anyway
        start = (
            within.end if within is not None and within.end is not None else credential.issued_at
        )
        cut = _cut(state.power, start, expires)
        if cut.stopped_at is not None and (first_stop is None or cut.end < first_stop.end):
            first_stop = cut
        if cut.end > start:
            residual.append((start, cut.end))
    intervals = [*access, *(Interval(start=s, end=e) for s, e in residual)]
    if not any(i.overlaps(since, until, now) for i in intervals):
        return []
    last_expiry = _latest(valid_until)
    sessions = sorted({c.session_name for c in person_state.credentials if c.session_name})
    detail_parts = []
    if person_state.person.ram_user:
        detail_parts.append(f"RAM user {person_state.person.ram_user}")
    if sessions:
        detail_parts.append("sessions " + ", ".join(sessions))
    if person_state.assigned_by:
        detail_parts.append(f"assigned by {person_state.assigned_by}")
    return [
        ReportRow(
            kind="person",
            who=person_state.person.label,
            detail="; ".join(detail_parts),
            ram_user=person_state.person.ram_user or "",
            sessions_text=", ".join(sessions),
            assigned_by=person_state.assigned_by or "",
            **_delegation_columns(state),
            access_from=min(i.start for i in intervals),
            access_until=access_end if access else None,
            residual_until=last_expiry
            if last_expiry and (access_end is None or last_expiry > access_end)
            else None,
            worst_case_until=None,
            credentials=len(person_state.credentials),
            segments=_segments(access, residual, since=since, until=until, now=now),
            notes=_stop_note(first_stop),
            still_able=_open_and_working(access, state.power, now)
            or any(end > now for _, end in residual),
            stopped_at=first_stop.stopped_at if first_stop else None,
            stopped_by=first_stop.stopped_by if first_stop else "",
            person_key=person_state.person.key,
        )
    ]


# --- reading the database --------------------------------------------------------------------


def report_accounts(*, organisation: Organisation) -> dict[str, str]:
    """Cloud accounts the organisation may report on, as {account UID: label}, in the order
    the form offers them (the first is its default): an owner's own accounts, its primary
    first, as its other pages list them; for a partner, the owners' accounts it holds
    delegations in, by owner. Accounts disconnected since still count (their history does)."""
    if organisation.is_owner:
        accounts = CloudAccount.objects.filter(organisation=organisation).order_by(
            "-is_active", *HOME_FIRST
        )
    else:
        accounts = CloudAccount.objects.filter(
            pk__in=Delegation.objects.filter(partner=organisation).values(
                "managed_role__cloud_account_id"
            )
        ).order_by("organisation__name", "-is_active", *HOME_FIRST)
    labels: dict[str, str] = {}
    for account in accounts:
        labels.setdefault(account.account_uid, account.label)
    return labels


def _delegations_in(
    *, organisation: Organisation, account_uid: str, catalog_role: CatalogRole | None
) -> list[Delegation]:
    delegations = Delegation.objects.filter(
        Q(owner=organisation) | Q(partner=organisation),
        managed_role__cloud_account__account_uid=account_uid,
    )
    if catalog_role is not None:
        delegations = delegations.filter(catalog_role=catalog_role)
    return list(delegations.select_related("partner", "catalog_role").order_by("created_at"))


def _owners_of_targets(delegations: list[Delegation]) -> dict[tuple[str, str], list[str]]:
    """(target_type, target_id) → the delegation ids it belongs to, for every object that
    points at the delegations (one query per related model) and their drift findings."""
    ids = [d.pk for d in delegations]
    owners: dict[tuple[str, str], list[str]] = defaultdict(list)
    for relation in Delegation._meta.related_objects:
        model = relation.related_model
        if not isinstance(model, type) or model._meta.auto_created:
            continue
        name = relation.field.name
        for pk, delegation_id in model._default_manager.filter(**{f"{name}__in": ids}).values_list(
            "pk", name
        ):
            owners[(model._meta.label_lower, str(pk))].append(str(delegation_id))
    by_role_subject: dict[tuple[Any, str], list[str]] = defaultdict(list)
    for delegation in delegations:
        by_role_subject[(delegation.managed_role_id, delegation.principal_arn)].append(
            str(delegation.pk)
        )
    for pk, role_id, subject in DriftFinding.objects.filter(
        managed_role_id__in={d.managed_role_id for d in delegations},
        subject__in={d.principal_arn for d in delegations},
    ).values_list("pk", "managed_role_id", "subject"):
        owners[(DRIFT_TARGET, str(pk))] = by_role_subject[(role_id, subject)]
    return owners


def _role_power_calls(delegations: list[Delegation]) -> dict[tuple[str, str], list[str]]:
    """(cloud call target, id) → every delegation on the role, for the calls that decide
    whether the role can do anything (`ROLE_POWER_CALLS`), whichever round made them."""
    on_role: dict[Any, list[str]] = defaultdict(list)
    for delegation in delegations:
        on_role[delegation.managed_role_id].append(str(delegation.pk))
    return {
        (CLOUD_CALL_TARGET, str(pk)): on_role[role_id]
        for pk, role_id in CloudCall.objects.filter(
            managed_role_id__in=list(on_role), action__in=ROLE_POWER_CALLS, mutating=True
        ).values_list("pk", "managed_role_id")
    }


def _with_usage(
    rows: list[ReportRow], *, since: dt.datetime, until: dt.datetime, owner_side: bool
) -> list[ReportRow]:
    """Each row with "used" next to "could act": the calls ActionTrail recorded in the window
    under its delegation (an account row: everyone's; a person row: that person's). Only the
    owner sees it: the calls happened in the owner's account."""
    if not owner_side or not rows:
        return rows
    usage = activity_usage(
        delegation_ids=sorted({row.delegation_id for row in rows}), start=since, end=until
    )
    per_delegation: dict[str, list[Usage]] = {}
    for (delegation_id, person_key), used in usage.items():
        if not person_key.startswith("label:"):  # each person once, and the unexplained
            per_delegation.setdefault(delegation_id, []).append(used)
    result = []
    for row in rows:
        if row.kind == "person":
            person_usage = usage.get((row.delegation_id, row.person_key))
            found = [person_usage] if person_usage is not None else []
        else:
            found = per_delegation.get(row.delegation_id, [])
        result.append(
            replace(
                row,
                used_calls=sum(u.calls for u in found),
                used_first=min((u.first for u in found if u.first), default=None),
                used_last=max((u.last for u in found if u.last), default=None),
            )
        )
    return result


def access_report(
    *,
    organisation: Organisation,
    account_uid: str,
    catalog_role: CatalogRole | None,
    since: dt.datetime,
    until: dt.datetime,
    now: dt.datetime,
    chunk_size: int = 2000,
) -> AccessReport:
    """Everyone who could act in `account_uid` (and `catalog_role`) in [since, until), from
    the events the organisation may see."""
    delegations = _delegations_in(
        organisation=organisation, account_uid=account_uid, catalog_role=catalog_role
    )
    facts = [
        DelegationFacts(
            delegation_id=str(d.pk),
            partner_name=d.partner.name,
            partner_account_uid=d.partner_account_uid,
            principal=d.principal_arn,
            role_name=d.catalog_role.role_name,
            account_uid=account_uid,
            max_session_seconds=d.catalog_role.max_session_duration,
        )
        for d in delegations
    ]
    fold = AccessFold(facts)
    per_person = False
    if delegations:
        owners = _owners_of_targets(delegations)
        targets: TargetIds = {DELEGATION_TARGET: [str(d.pk) for d in delegations]}
        for target_type, target_id in owners:
            targets.setdefault(target_type, []).append(target_id)
        role_calls = _role_power_calls(delegations)
        power: TargetIds = {}
        for (target_type, target_id), delegation_ids in role_calls.items():
            power.setdefault(target_type, []).append(target_id)
            owners[(target_type, target_id)] = sorted(
                {*owners.get((target_type, target_id), []), *delegation_ids}
            )
        # The role's power calls count whoever may see them (see the module docstring); only
        # their results are read, and only their times reach the report.
        events = (
            AuditEvent.objects.filter(occurred_at__lt=until)
            .filter(
                (_visible(organisation.pk) & targets_q(targets))
                | (Q(action=CALL_RESULT) & targets_q(power))
            )
            .order_by(sequence_order(newest_first=False, sort_matches=True))
        )
        for event in events.iterator(chunk_size=chunk_size):
            if event.target_type == DELEGATION_TARGET:
                delegation_ids = [event.target_id]
            else:
                delegation_ids = owners.get((event.target_type, event.target_id), [])
            if not per_person and classify_access_event(event) is not None:
                per_person = True
            fold.feed(event, delegation_ids)
    return AccessReport(
        account_uid=account_uid,
        role_name=catalog_role.role_name if catalog_role else "",
        since=since,
        until=until,
        generated_at=now,
        rows=_with_usage(
            report_rows(fold.states.values(), since=since, until=until, now=now),
            since=since,
            until=until,
            owner_side=organisation.is_owner,
        ),
        per_person_data=per_person,
        delegations_considered=len(delegations),
    )
