"""The auditor's reads: filtered keyset pages, exports, delegation timelines.

Keyset pagination on the sequence number: a page is "the newest `limit` events visible to X
with sequence below the cursor", one range scan of the (organisation, event) scope index, as
fast on page 10,000 as on page 1. Filtered pages (action, target) join the scope rows and
rely on the planner; at millions of events the auditor's filters will want their
own composite indexes.
"""

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.fields.json import KeyTextTransform
from django.http import Http404

from accounts.models import Membership, Organisation
from audit.actions import AuditAction
from audit.models import AuditEvent, AuditEventScope, AuditVerification
from audit.selectors import (
    MAX_PAGE_SIZE,
)
from auditor.presentation import ROLE_POWER_CALLS, RolePower, parse_time
from core.web import whole_number
from delegations.models import (
    CatalogRole,
    CloudCall,
    Delegation,
    DriftFinding,
    FleetGrant,
    role_in_account,
)

# --- the auditor's pages: filtered keyset pages, exports, delegation timelines ---------------
#
# A page is always "the newest N rows of one index range", whatever the table size:
# - no target filter: walk the (organisation, event) scope index of the organisation (or of
#   the chosen partner/owner, checking the viewer's scope row per event), newest first;
# - a delegation or role: the events targeting that delegation set through the
#   (target_type, target_id, sequence) index; a person: the (actor, sequence) index.
# A time range becomes a sequence range first (`audit_record` takes the time under the chain
# lock, so times never go backwards along the chain): one probe of the (occurred_at,
# sequence) index per bound, then the walk starts at the right place instead of skipping
# every newer event.

DELEGATION_TARGET = "delegations.delegation"
CATALOG_ROLE_TARGET = "delegations.catalogrole"
DRIFT_TARGET = "delegations.driftfinding"
CLOUD_CALL_TARGET = "delegations.cloudcall"


@dataclass(frozen=True)
class EventFilters:
    """What the auditor asked for; every field optional. The ids are already checked to be
    the viewer's (the form offers only those the tenancy selectors return)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    counterparty_id: Any = None
    delegation_id: Any = None
    catalog_role_id: Any = None
    person_id: int | None = None
    action_prefix: str = ""
    outcome: str = ""
    text: str = ""


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    # Cursors: `before` for the next older page, `after` for the next newer one; None when
    # there is nothing (known) in that direction.
    older_cursor: int | None
    newer_cursor: int | None


def _visible(organisation_id: uuid.UUID | str, *, event_ref: str = "pk") -> Exists:
    return Exists(
        AuditEventScope.objects.filter(
            event_id=OuterRef(event_ref), organisation_id=organisation_id
        )
    )


CALL_INTENT = AuditAction.CLOUD_CALL_INTENT
CALL_RESULT = AuditAction.CLOUD_CALL_RESULT


def _answered_intent(filters: Q, prefix: str = "") -> Q:
    """A cloud call's intent whose result matches the same filters: the result's row stands
    for the whole call (intent time, result time, request id, outcome), so the intent is
    left out of pages. The ledger and the exports keep both. Because the intent is left out
    in the query itself, a call is one row at the result's sequence and a page boundary can
    never fall between its two events."""
    results = AuditEvent.objects.filter(
        action=CALL_RESULT,
        target_type=OuterRef(f"{prefix}target_type"),
        target_id=OuterRef(f"{prefix}target_id"),
    ).filter(filters)
    return Q(**{f"{prefix}action": CALL_INTENT}) & Q(Exists(results))


def attach_call_intents(events: list[AuditEvent]) -> list[AuditEvent]:
    """Give each call result on a page its intent (`event.call_intent`, None when the call
    was a read or its intent is not on record): one query per page."""
    results = [e for e in events if e.action == CALL_RESULT]
    for event in events:
        event.call_intent = None  # type: ignore[attr-defined]
    if not results:
        return events
    intents = {
        (intent.target_type, intent.target_id): intent
        for intent in AuditEvent.objects.filter(
            action=CALL_INTENT,
            target_type__in={e.target_type for e in results},
            target_id__in={e.target_id for e in results},
        )
    }
    for event in results:
        event.call_intent = intents.get((event.target_type, event.target_id))  # type: ignore[attr-defined]
    return events


# {target_type: [target_id, ...]}: the objects whose events make up a delegation's history.
TargetIds = dict[str, list[str]]


def delegation_target_ids(delegation_ids: Iterable[Any]) -> TargetIds:
    """The delegations, and every object that points at them, as event targets.

    Whatever has a ForeignKey, OneToOne or ManyToMany to `Delegation` (cloud calls today;
    staff assignments and credential issuances when they arrive) is found through the model
    registry, so events targeting those objects join the delegation's history with no change
    here. One small query per such model. The ids are passed to the event query as literal
    lists: PostgreSQL then reads the (target_type, target_id, sequence) index for each, where
    a sub-select made it walk the whole table backwards."""
    ids = list(delegation_ids)
    targets: TargetIds = {DELEGATION_TARGET: [str(pk) for pk in ids]}
    if not ids:
        return targets
    for relation in Delegation._meta.related_objects:
        model = relation.related_model
        if not isinstance(model, type) or model._meta.auto_created:
            continue
        related = (
            model._default_manager.filter(**{f"{relation.field.name}__in": ids})
            .order_by()
            .values_list("pk", flat=True)
        )
        targets[model._meta.label_lower] = sorted({str(pk) for pk in related})
    # A fleet grant's account: the fleet's own events (its decision, a stop after MaxErrors,
    # each run's outcomes) belong to the account's history too.
    fleets = (
        Delegation.objects.filter(pk__in=ids, fleet__isnull=False)
        .order_by()
        .values_list("fleet_id", flat=True)
    )
    targets[FleetGrant._meta.label_lower] = sorted({str(pk) for pk in fleets})
    return targets


def targets_q(targets: TargetIds) -> Q:
    """Events targeting any of `targets` (nothing at all when it is empty)."""
    query = Q(pk__in=[])
    for target_type, ids in targets.items():
        if ids:
            query |= Q(target_type=target_type, target_id__in=ids)
    return query


def _delegation_ids(*, organisation: Organisation, filters: EventFilters) -> list[Any] | None:
    if filters.delegation_id is None and filters.catalog_role_id is None:
        return None
    delegations = Delegation.objects.filter(Q(owner=organisation) | Q(partner=organisation))
    if filters.delegation_id is not None:
        delegations = delegations.filter(pk=filters.delegation_id)
    if filters.catalog_role_id is not None:
        delegations = delegations.filter(catalog_role_id=filters.catalog_role_id)
    return list(delegations.order_by().values_list("pk", flat=True))


def _event_conditions(filters: EventFilters, prefix: str = "") -> Q:
    """The row filters, for `AuditEvent` (prefix "") or joined from a scope ("event__")."""

    def field(name: str) -> str:
        return f"{prefix}{name}"

    query = Q()
    if filters.action_prefix:
        query &= Q(**{field("action__startswith"): filters.action_prefix})
    if filters.outcome:
        query &= Q(**{field("outcome"): filters.outcome})
    if filters.since is not None:
        query &= Q(**{field("occurred_at__gte"): filters.since})
    if filters.until is not None:
        query &= Q(**{field("occurred_at__lt"): filters.until})
    if filters.text:
        # icontains escapes LIKE's % and _ itself: a search for "100%" means those characters.
        query &= (
            Q(**{field("actor_label__icontains"): filters.text})
            | Q(**{field("target_label__icontains"): filters.text})
            | Q(**{field("actor_organisation_label__icontains"): filters.text})
        )
    return query


def _sequence_bounds(filters: EventFilters, sequence_field: str) -> Q:
    """The time range as a sequence range: one probe of the (occurred_at, sequence) index
    per bound. No event in range gives NULL, which matches nothing."""
    query = Q()
    if filters.since is not None:
        first = (
            AuditEvent.objects.filter(occurred_at__gte=filters.since)
            .order_by("occurred_at", "sequence")
            .values("sequence")[:1]
        )
        query &= Q(**{f"{sequence_field}__gte": Subquery(first)})
    if filters.until is not None:
        last = (
            AuditEvent.objects.filter(occurred_at__lt=filters.until)
            .order_by("-occurred_at", "-sequence")
            .values("sequence")[:1]
        )
        query &= Q(**{f"{sequence_field}__lte": Subquery(last)})
    return query


def sequence_order(*, newest_first: bool, sort_matches: bool) -> Any:
    """Order by sequence. With `sort_matches`, through an expression (sequence + 0) so the
    database cannot answer ORDER BY ... LIMIT by walking the primary key and filtering:
    PostgreSQL guesses a delegation's events are many and does exactly that, over the whole
    table, while reading the target index and sorting the few matching rows is what stays
    constant."""
    if not sort_matches:
        return "-sequence" if newest_first else "sequence"
    expression = ExpressionWrapper(F("sequence") + 0, output_field=BigIntegerField())
    return expression.desc() if newest_first else expression.asc()


def _event_driven(
    *, organisation: Organisation, filters: EventFilters
) -> QuerySet[AuditEvent] | None:
    """Filters on a delegation, a role or a person drive from the target or actor index."""
    delegations = _delegation_ids(organisation=organisation, filters=filters)
    if delegations is None and filters.person_id is None:
        return None
    events = AuditEvent.objects.filter(_visible(organisation.pk))
    if delegations is not None:
        targets = delegation_target_ids(delegations)
        if filters.catalog_role_id is not None and filters.delegation_id is None:
            targets[CATALOG_ROLE_TARGET] = [str(filters.catalog_role_id)]
        events = events.filter(targets_q(targets))
    if filters.person_id is not None:
        events = events.filter(actor_id=filters.person_id)
    if filters.counterparty_id is not None:
        events = events.filter(_visible(filters.counterparty_id))
    return events.filter(_event_conditions(filters), _sequence_bounds(filters, "sequence"))


def audit_event_page(
    *,
    organisation: Organisation,
    filters: EventFilters,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> EventPage:
    """One page of the organisation's events matching `filters`, newest first.

    `before` (older page) or `after` (newer page) is a sequence number from a previous page.
    One query, whatever the page or the table size."""
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    newest_first = after is None
    events = _event_driven(organisation=organisation, filters=filters)
    if events is not None:
        events = events.exclude(_answered_intent(_result_filters(filters)))
        if before is not None:
            events = events.filter(sequence__lt=before)
        if after is not None:
            events = events.filter(sequence__gt=after)
        order = sequence_order(newest_first=newest_first, sort_matches=_by_targets(filters))
        ordered = events.order_by(order)[: limit + 1]
    else:
        driver = filters.counterparty_id or organisation.pk
        scopes = AuditEventScope.objects.filter(organisation_id=driver).filter(
            _event_conditions(filters, prefix="event__"), _sequence_bounds(filters, "event_id")
        )
        if filters.counterparty_id is not None:
            scopes = scopes.filter(_visible(organisation.pk, event_ref="event_id"))
        scopes = scopes.exclude(_answered_intent(_result_filters(filters), prefix="event__"))
        if before is not None:
            scopes = scopes.filter(event_id__lt=before)
        if after is not None:
            scopes = scopes.filter(event_id__gt=after)
        # The page's ids come from the scope index alone (see audit_events_for_organisation).
        page_ids = scopes.order_by("-event_id" if newest_first else "event_id").values("event_id")[
            : limit + 1
        ]
        ordered = AuditEvent.objects.filter(sequence__in=Subquery(page_ids)).order_by(
            "-sequence" if newest_first else "sequence"
        )
    rows = list(ordered)
    more = len(rows) > limit
    rows = attach_call_intents(rows[:limit])
    if not newest_first:
        rows.reverse()
    if not rows:
        return EventPage(events=[], older_cursor=None, newer_cursor=None)
    if newest_first:
        older = rows[-1].sequence if more else None
        newer = rows[0].sequence if before is not None else None
    else:
        older = rows[-1].sequence
        newer = rows[0].sequence if more else None
    return EventPage(events=rows, older_cursor=older, newer_cursor=newer)


def _result_filters(filters: EventFilters) -> Q:
    """The filters a call's result must match for it to stand for its intent: the same row
    conditions and time range (the organisation's scope is the same for both events)."""
    return _event_conditions(filters) & _sequence_bounds(filters, "sequence")


def audit_events_for_export(
    *, organisation: Organisation, filters: EventFilters
) -> QuerySet[AuditEvent]:
    """Every event matching `filters`, newest first, for `.iterator()`: the caller streams
    it in chunks, never the whole result at once."""
    events = _event_driven(organisation=organisation, filters=filters)
    if events is None:
        events = AuditEvent.objects.filter(_visible(organisation.pk))
        if filters.counterparty_id is not None:
            events = events.filter(_visible(filters.counterparty_id))
        events = events.filter(_event_conditions(filters), _sequence_bounds(filters, "sequence"))
    return events.order_by(sequence_order(newest_first=True, sort_matches=_by_targets(filters)))


@dataclass(frozen=True)
class ExportChain:
    """What a verifiable export walks: the organisation's chain from `oldest` to `newest`
    (the first and last matching event), every link of it, and the matching events in full.

    `org_head` is the organisation's newest event when the export started; nothing committed
    after it is exported, so the header and the lines agree however long the download takes.
    """

    org_head: tuple[int, str] | None  # (sequence, org_hash)
    newest: tuple[int, str] | None  # (sequence, org_hash) of the newest matching event
    oldest: tuple[int, str] | None  # (sequence, org_prev_hash) of the oldest matching event
    links: Iterable[tuple[int, str, str, str]]  # (sequence, hash, org_prev_hash, org_hash)
    events: Iterable[tuple[AuditEvent, list[Any]]]  # (event, its scope organisation ids)


def _export_batches(
    events: QuerySet[AuditEvent], *, batch_size: int
) -> Iterable[tuple[AuditEvent, list[Any]]]:
    """The events newest first, a keyset batch at a time, each with its scope organisations
    (one query per batch for those)."""
    cursor: int | None = None
    while True:
        page = events if cursor is None else events.filter(sequence__lt=cursor)
        batch = list(page[:batch_size])
        if not batch:
            return
        scopes: dict[int, list[Any]] = {event.sequence: [] for event in batch}
        for event_id, organisation_id in AuditEventScope.objects.filter(
            event_id__in=list(scopes)
        ).values_list("event_id", "organisation_id"):
            scopes[event_id].append(organisation_id)
        for event in batch:
            yield event, scopes[event.sequence]
        cursor = batch[-1].sequence


def audit_export_chain(
    *, organisation: Organisation, filters: EventFilters, batch_size: int = 2000
) -> ExportChain:
    """The organisation's chain for an export of the events matching `filters` (see
    `ExportChain`). Three small queries now; the rest as the caller iterates."""
    own = AuditEventScope.objects.filter(organisation_id=organisation.pk)
    head = own.order_by("-event_id").values_list("event_id", "org_hash").first()
    if head is None:
        return ExportChain(org_head=None, newest=None, oldest=None, links=(), events=())
    matched = audit_events_for_export(organisation=organisation, filters=filters).filter(
        sequence__lte=head[0]
    )
    bounds = matched.order_by().aggregate(low=Min("sequence"), high=Max("sequence"))
    if bounds["high"] is None:
        return ExportChain(org_head=head, newest=None, oldest=None, links=(), events=())
    newest = own.filter(event_id=bounds["high"]).values_list("event_id", "org_hash").get()
    oldest = own.filter(event_id=bounds["low"]).values_list("event_id", "org_prev_hash").get()
    links = (
        own.filter(event_id__gte=bounds["low"], event_id__lte=bounds["high"])
        .order_by("-event_id")
        .values_list("event_id", "event__hash", "org_prev_hash", "org_hash")
        .iterator(chunk_size=batch_size)
    )
    return ExportChain(
        org_head=head,
        newest=newest,
        oldest=oldest,
        links=links,
        events=_export_batches(matched, batch_size=batch_size),
    )


@dataclass(frozen=True)
class ChainedEvent:
    """An event as stored, with its scope organisations and its link in one organisation's
    chain: what an export writes for it."""

    event: AuditEvent
    scope_organisation_ids: list[Any]
    org_prev_hash: str
    org_hash: str


def audit_event_chained(*, organisation: Organisation, sequence: int) -> ChainedEvent:
    """The event `sequence` as stored (not as its writer's instance holds it) and its link in
    `organisation`'s chain."""
    scopes = list(
        AuditEventScope.objects.filter(event_id=sequence).values_list(
            "organisation_id", "org_prev_hash", "org_hash"
        )
    )
    own = next(scope for scope in scopes if str(scope[0]) == str(organisation.pk))
    return ChainedEvent(
        event=AuditEvent.objects.get(sequence=sequence),
        scope_organisation_ids=[scope[0] for scope in scopes],
        org_prev_hash=own[1],
        org_hash=own[2],
    )


def _by_targets(filters: EventFilters) -> bool:
    return filters.delegation_id is not None or filters.catalog_role_id is not None


def audit_event_get_for_organisation(*, organisation: Organisation, sequence: object) -> AuditEvent:
    """One event the organisation may see; 404 for anything else, exactly like a missing one."""
    number = whole_number(str(sequence), maximum=MAX_SEQUENCE)
    if not number:
        raise Http404
    own_link = AuditEventScope.objects.filter(
        event_id=OuterRef("pk"), organisation_id=organisation.pk
    )
    # The event's link in the viewer's own chain: what an offline check of an export is
    # compared with (see `audit.verify_export`).
    event = (
        AuditEvent.objects.filter(_visible(organisation.pk), sequence=number)
        .annotate(
            org_prev_hash=Subquery(own_link.values("org_prev_hash")[:1]),
            org_hash=Subquery(own_link.values("org_hash")[:1]),
        )
        .first()
    )
    if event is None:
        raise Http404
    return event


# Sequence numbers are 64-bit: anything larger is not an event (and SQLite refuses it).
MAX_SEQUENCE = 2**63 - 1


# --- what the filter form offers -------------------------------------------------------------


def audit_counterparties(*, organisation: Organisation) -> list[tuple[Any, str]]:
    """(id, name) of the organisations the viewer shares delegations with: partners for an
    owner, owners for a partner."""
    if organisation.is_owner:
        related = Delegation.objects.filter(owner=organisation).values_list("partner_id")
    else:
        related = Delegation.objects.filter(partner=organisation).values_list("owner_id")
    return list(
        Organisation.objects.filter(pk__in=related).order_by("name").values_list("pk", "name")
    )


def audit_catalog_roles(*, organisation: Organisation) -> QuerySet[CatalogRole]:
    if organisation.is_owner:
        roles = CatalogRole.objects.filter(organisation=organisation)
    else:
        roles = CatalogRole.objects.filter(
            pk__in=Delegation.objects.filter(partner=organisation).values("catalog_role_id")
        )
    return roles.select_related("cloud_account").order_by("role_name", "pk")


def audit_delegation_choices(*, organisation: Organisation) -> list[tuple[Any, str]]:
    """(id, "role (owner account) · counterparty · status · created") of the viewer's
    delegations, newest first: plain tuples, as an owner may have thousands. The account tells
    apart a fleet's delegations, one role name in each of the owner's accounts."""
    counterparty = "partner__name" if organisation.is_owner else "owner__name"
    labels = dict(Delegation.Status.choices)
    return [
        (pk, f"{role_in_account(role, uid)} · {name} · {labels.get(state, state)} · {day:%Y-%m-%d}")
        for pk, role, uid, name, state, day in Delegation.objects.filter(
            Q(owner=organisation) | Q(partner=organisation)
        )
        .order_by("-created_at")
        .values_list(
            "pk",
            "catalog_role__role_name",
            "managed_role__cloud_account__account_uid",
            counterparty,
            "status",
            "created_at",
        )
    ]


def audit_people(*, organisation: Organisation) -> list[tuple[int, str]]:
    """(user id, "email (organisation)") of the people an event filter may name: the
    viewer's members and, for an owner, the members of the partners it delegates to (their
    actions are in the owner's history)."""
    organisations = Q(organisation=organisation)
    if organisation.is_owner:
        organisations |= Q(
            organisation__in=Delegation.objects.filter(owner=organisation).values("partner_id")
        )
    return [
        (user_id, f"{email} ({name})")
        for user_id, email, name in Membership.objects.filter(organisations)
        .order_by("organisation__name", "user__email")
        .values_list("user_id", "user__email", "organisation__name")
    ]


# --- a delegation's timeline -----------------------------------------------------------------

# Role-level drift concerns every delegation on the role while it lasts; principal-level
# drift concerns the delegation whose principal it names, at any time after it began (a
# revoked partner who reappears in the trust policy is exactly what an auditor must see).
_ROLE_LEVEL_DRIFT = (
    DriftFinding.Kind.UNMANAGED_PRINCIPAL_ADDED,
    DriftFinding.Kind.POLICY_DETACHED,
    DriftFinding.Kind.ROLE_DELETED,
)


def delegation_drift_findings(*, delegation: Delegation) -> QuerySet[DriftFinding]:
    findings = DriftFinding.objects.filter(
        managed_role_id=delegation.managed_role_id, detected_at__gte=delegation.created_at
    )
    role_level = Q(kind__in=_ROLE_LEVEL_DRIFT)
    if delegation.ended_at is not None:
        role_level &= Q(detected_at__lte=delegation.ended_at)
    return findings.filter(Q(subject=delegation.principal_arn) | role_level)


def delegation_events(
    *, organisation: Organisation, delegation: Delegation
) -> QuerySet[AuditEvent]:
    """Every event the organisation may see about the delegation: its own, its cloud calls',
    any object pointing at it (assignments, credential issuances), and drift on its role.
    The target ids are read now (a few small queries); the events when the result is."""
    targets = delegation_target_ids([delegation.pk])
    targets[DRIFT_TARGET] = [
        str(pk)
        for pk in delegation_drift_findings(delegation=delegation)
        .order_by()
        .values_list("pk", flat=True)
    ]
    return AuditEvent.objects.filter(_visible(organisation.pk)).filter(targets_q(targets))


@dataclass(frozen=True)
class TimelinePage:
    events: list[AuditEvent]
    later_cursor: int | None  # pass as `after` for the next (later) page


def delegation_timeline_page(
    *, events: QuerySet[AuditEvent], after: int | None = None, limit: int = 200
) -> TimelinePage:
    """The delegation's events (from `delegation_events`) oldest first, `limit` at a time;
    a cloud call is one row (its result, with `call_intent`)."""
    events = events.exclude(_answered_intent(Q()))
    if after is not None:
        events = events.filter(sequence__gt=after)
    rows = list(events.order_by(sequence_order(newest_first=False, sort_matches=True))[: limit + 1])
    more = len(rows) > limit
    rows = attach_call_intents(rows[:limit])
    return TimelinePage(events=rows, later_cursor=rows[-1].sequence if more else None)


@dataclass(frozen=True)
class TimelineSummary:
    """The answers an auditor looks for first, each backed by the event that says so."""

    requested: AuditEvent | None
    approvals: list[AuditEvent]
    refusals: list[AuditEvent]
    activated: AuditEvent | None
    revoke_requested: AuditEvent | None
    ended: AuditEvent | None
    credentials_issued: int
    last_credential_expires: dt.datetime | None
    max_session_seconds: int
    # The role's power as its recorded calls show it: credentials stop working when it is
    # deleted or loses its last permission policy, whenever they expire.
    power: RolePower = field(default_factory=RolePower)

    @property
    def _stop(self) -> tuple[dt.datetime, str] | None:
        if self.ended is None:
            return None
        # The worker deletes the role (or detaches its policies) before it records the end.
        start = (self.revoke_requested or self.ended).occurred_at
        return self.power.first_stop(start, dt.datetime.max.replace(tzinfo=dt.UTC))

    @property
    def stopped_at(self) -> dt.datetime | None:
        """When credentials of the role stopped working after the end, if the role stopped."""
        stop = self._stop
        return stop[0] if stop else None

    @property
    def stopped_by(self) -> str:
        stop = self._stop
        return stop[1] if stop else ""

    def _cut(self, until: dt.datetime) -> dt.datetime:
        stopped = self.stopped_at
        return min(until, stopped) if stopped is not None else until

    @property
    def residual_until(self) -> dt.datetime | None:
        """When the last credential issued through the portal expires, if after the end (or
        when the role stopped working, if earlier)."""
        if self.ended is None or self.last_credential_expires is None:
            return None
        return self._cut(max(self.last_credential_expires, self.ended.occurred_at))

    @property
    def worst_case_until(self) -> dt.datetime | None:
        """Credentials a partner takes directly with the role last up to its maximum session
        duration: the end plus that is the latest anyone could still act (unless the role
        stopped working first)."""
        if self.ended is None or self.activated is None:
            return None
        bound = self.ended.occurred_at + dt.timedelta(seconds=self.max_session_seconds)
        return self._cut(max(bound, self.last_credential_expires or bound))


def delegation_role_power(*, delegation: Delegation) -> RolePower:
    """Whether the delegation's role could do anything, from every successful call that
    created, deleted, or attached or detached a policy of it, whichever round made it. Read
    for the partner too: they are the owner's events, but when the partner's credentials
    stopped working is the partner's to know (only the times reach the page)."""
    calls = [
        str(pk)
        for pk in CloudCall.objects.filter(
            managed_role_id=delegation.managed_role_id,
            action__in=ROLE_POWER_CALLS,
            mutating=True,
        ).values_list("pk", flat=True)
    ]
    power = RolePower()
    for event in AuditEvent.objects.filter(
        action=CALL_RESULT, target_type=CLOUD_CALL_TARGET, target_id__in=calls
    ).order_by("sequence"):
        power.feed(event, event.occurred_at)
    return power


_END_ACTIONS = (
    "delegation.revoked",
    "delegation.expired",
    "delegation.rejected",
    "delegation.withdrawn",
)


def delegation_timeline_summary(
    *, organisation: Organisation, delegation: Delegation, events: QuerySet[AuditEvent]
) -> TimelineSummary:
    """Four queries: the lifecycle events (a handful per delegation), one aggregate over
    the credential issuances among `events` (from `delegation_events`): their latest
    `expiration`, and the role's power calls (`delegation_role_power`)."""
    lifecycle = list(
        AuditEvent.objects.filter(
            _visible(organisation.pk),
            target_type=DELEGATION_TARGET,
            target_id=str(delegation.pk),
            action__startswith="delegation.",
        ).order_by("sequence")
    )

    def first(*actions: str) -> AuditEvent | None:
        return next((e for e in lifecycle if e.action in actions), None)

    def last(*actions: str) -> AuditEvent | None:
        return next((e for e in reversed(lifecycle) if e.action in actions), None)

    credentials = (
        events.filter(action__icontains="credential", outcome=AuditEvent.Outcome.SUCCESS)
        .filter(metadata__has_key="expiration")
        .aggregate(count=Count("sequence"), latest=Max(KeyTextTransform("expiration", "metadata")))
    )
    return TimelineSummary(
        power=delegation_role_power(delegation=delegation),
        requested=first("delegation.requested", "delegation.offered"),
        approvals=[
            e for e in lifecycle if e.action in ("delegation.approved", "delegation.offered")
        ],
        refusals=[e for e in lifecycle if e.action == "delegation.approve_denied"],
        activated=first("delegation.activated"),
        revoke_requested=last("delegation.revoke_requested", "delegation.expiring"),
        ended=last(*_END_ACTIONS),
        credentials_issued=credentials["count"] or 0,
        last_credential_expires=parse_time(credentials["latest"]),
        max_session_seconds=delegation.catalog_role.max_session_duration,
    )


# --- background verifications ----------------------------------------------------------------

RECENT_VERIFICATIONS = 10


def audit_verifications_recent(*, limit: int = RECENT_VERIFICATIONS) -> list[AuditVerification]:
    """The latest runs of the chain verifier, newest first. Runs are about the one shared
    chain, so every owner organisation sees them all (who asked is masked by the page)."""
    return list(AuditVerification.objects.order_by("-created_at")[:limit])


def audit_verification_in_flight() -> AuditVerification | None:
    return AuditVerification.objects.filter(status__in=AuditVerification.IN_FLIGHT).first()


def audit_verification_get(*, verification_id: uuid.UUID | str) -> AuditVerification:
    verification = AuditVerification.objects.filter(pk=verification_id).first()
    if verification is None:
        raise Http404("No such verification.")
    return verification


# Decisions the portal made by a rule, not a person: auto-approvals, break-glass
# escalations, access reviews closed at their deadline and what they revoked.
RULE_DECISIONS = (
    AuditAction.DELEGATION_AUTO_APPROVED,
    AuditAction.BREAK_GLASS_ESCALATED,
    AuditAction.REVIEW_CAMPAIGN_CLOSED,
)


def rule_decisions(*, organisation: Organisation, limit: int = 200) -> list[AuditEvent]:
    """The newest automatic decisions the organisation may see, each naming its rule and the
    rule's version in its metadata; plus revocations a rule made (no actor, a `rule`)."""
    by_rule = Q(action__in=[str(action) for action in RULE_DECISIONS]) | Q(
        action=str(AuditAction.DELEGATION_REVOKE_REQUESTED),
        actor__isnull=True,
        metadata__has_key="rule",
    )
    return list(
        AuditEvent.objects.filter(_visible(organisation.pk))
        .filter(by_rule)
        .order_by("-sequence")[:limit]
    )
