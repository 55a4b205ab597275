"""Ingesting ActionTrail into the portal: incremental, exactly once, resumable, paced.

`activity_ingest_account` reads one owner account's events from its cursor (less an overlap
window, since ActionTrail delivers minutes late) up to now, page by page. Each page is stored
in its own transaction, new event ids only (a unique constraint backs it), so a crash between
pages loses nothing and duplicates nothing: the cursor moves only after the last page, and the
next run reads the same window again. Throttling and server errors are retried with backoff in
place; a key without `actiontrail:LookupEvents` stops that account's ingestion with one clear
message (and one audit event) until the owner connects a key that has it.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _

from accounts.models import User
from activity.attribution import Attributor, read_only_intended
from activity.events import UnusableEvent, parse_event
from activity.models import ActivityCursor, ActivityDaily, ActivityEvent
from activity.selectors import activity_right_sizing
from audit.actions import AuditAction
from audit.services import audit_record
from cloud.actiontrail import ActionTrailClient, EventPage
from cloud.errors import CloudError, ErrorCategory
from delegations.catalog.services import catalog_role_create, cloud_account_policies
from delegations.connection.services import cloud_account_client, cloud_account_credentials
from delegations.models import ROLE_NAME_MAX_LENGTH, CatalogRole, CloudAccount, Delegation
from notifications.events import NotificationEvent
from notifications.services import Notice, notify, organisation_admins

logger = logging.getLogger(__name__)

ACTIONTRAIL_RETENTION = timedelta(days=90)
PAGE_ATTEMPTS = 4
MAX_PAGES_PER_RUN = 20_000
STORE_BATCH = 1000
MISSING_PERMISSION_MESSAGE = (
    "The owner's AccessKey may not read ActionTrail: grant it actiontrail:LookupEvents "
    "(see docs/ram-policies/owner-portal.json), then connect the key again."
)


class Alert:
    DENIED = "denied"
    AFTER_END = "after_end"
    WRITE_READ_ONLY = "write_read_only"
    UNKNOWN_SESSION = "unknown_session"

    LABELS = {
        DENIED: gettext_lazy("denied calls"),
        AFTER_END: gettext_lazy("calls after the grant ended"),
        WRITE_READ_ONLY: gettext_lazy("writes under a read-only role"),
        UNKNOWN_SESSION: gettext_lazy("calls from sessions the portal never issued"),
    }


@dataclass
class IngestReport:
    status: str  # "done" | "blocked" | "failed" | "skipped"
    pages: int = 0
    seen: int = 0
    stored: int = 0
    message: str = ""


def _alerts_for(row: ActivityEvent, delegation: Delegation | None) -> list[str]:
    alerts = []
    if row.outcome == ActivityEvent.Outcome.DENIED:
        alerts.append(Alert.DENIED)
    if row.via == ActivityEvent.Via.UNKNOWN:
        alerts.append(Alert.UNKNOWN_SESSION)
    if delegation is not None:
        if delegation.ended_at is not None and row.event_time > delegation.ended_at:
            alerts.append(Alert.AFTER_END)
        if (
            row.event_rw == "Write"
            and row.outcome == ActivityEvent.Outcome.ALLOWED
            and read_only_intended(delegation)
        ):
            alerts.append(Alert.WRITE_READ_ONLY)
    return alerts


def _rows_for_page(
    *, cloud_account: CloudAccount, events: list[dict], attributor: Attributor
) -> list[ActivityEvent]:
    rows = []
    for event in events:
        try:
            parsed = parse_event(event)
        except UnusableEvent as unusable:
            logger.warning("ActionTrail event without a usable %s skipped", unusable)
            continue
        fields = parsed.fields
        # Only partner sessions in roles the portal manages are activity; the owner's own calls
        # (and its console) stay in ActionTrail.
        if not fields.pop("is_role_session"):
            continue
        found = attributor.attribute(
            role_name=fields["role_name"],
            session_name=fields["session_name"],
            access_key_id=fields["access_key_id"],
            partner_uid=fields["partner_account_uid"],
            moment=parsed.event_time,
            source_identity=fields["source_identity"],
        )
        if found.via == ActivityEvent.Via.OTHER:
            continue
        row = ActivityEvent(
            cloud_account=cloud_account,
            event_id=parsed.event_id,
            event_time=parsed.event_time,
            delegation=found.delegation,
            person=found.person,
            person_label=found.person_label[:255],
            via=found.via,
            problems=parsed.problems,
            **fields,
        )
        row.alerts = _alerts_for(row, found.delegation)
        rows.append(row)
    return rows


def _count_daily(rows: list[ActivityEvent]) -> None:
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    for row in rows:
        if row.delegation_id is None:
            continue
        key = (
            row.delegation_id,
            row.event_time.date(),
            row.person_label,
            row.service_name,
            row.event_name,
            row.event_rw,
            row.outcome,
        )
        counts[key] += 1
    for (delegation_id, day, person, service, name, rw, outcome), calls in counts.items():
        lookup = {
            "delegation_id": delegation_id,
            "day": day,
            "person_label": person,
            "service_name": service,
            "event_name": name,
            "event_rw": rw,
            "outcome": outcome,
        }
        updated = ActivityDaily.objects.filter(**lookup).update(calls=F("calls") + calls)
        if not updated:
            ActivityDaily.objects.create(**lookup, calls=calls)


_EVENT_FIELDS = [f for f in ActivityEvent._meta.concrete_fields if not f.primary_key]


def _insert_events(rows: list[ActivityEvent]) -> None:
    """One `executemany` INSERT: the ORM's bulk_create compiles SQL per batch of a few dozen
    rows on SQLite, which cost more than everything else ingestion does. Values go through
    each field's own `get_db_prep_save` (text as it is), as the ORM would store them."""
    if not rows:
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _EVENT_FIELDS)
    placeholders = ", ".join(["%s"] * len(_EVENT_FIELDS))
    table = quote(ActivityEvent._meta.db_table)
    # Only the model's own table and column names are interpolated; values are parameters.
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608
    # Text needs no preparing; the few other fields (times, keys, JSON) get their own.
    prepare = [
        None if isinstance(f, models.CharField | models.TextField) else f.get_db_prep_save
        for f in _EVENT_FIELDS
    ]
    values = [
        [
            getattr(row, f.attname) if p is None else p(getattr(row, f.attname), connection)
            for f, p in zip(_EVENT_FIELDS, prepare, strict=True)
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)


def _store_page(*, cloud_account: CloudAccount, rows: list[ActivityEvent]) -> list[ActivityEvent]:
    """The rows not stored before (by event id), stored now with their daily counts; returns
    those. The account's cursor row is locked meanwhile, so two runs never count one event
    twice."""
    ids = {row.event_id for row in rows}
    with transaction.atomic():
        ActivityCursor.objects.select_for_update().filter(cloud_account=cloud_account).first()
        known = set(
            ActivityEvent.objects.filter(cloud_account=cloud_account, event_id__in=ids).values_list(
                "event_id", flat=True
            )
        )
        fresh: dict[str, ActivityEvent] = {}
        for row in rows:
            if row.event_id not in known:
                fresh.setdefault(row.event_id, row)
        _insert_events(list(fresh.values()))
        _count_daily(list(fresh.values()))
    return list(fresh.values())


def _fetch_page(
    *,
    client: ActionTrailClient,
    start: datetime,
    end: datetime,
    token: str | None,
    sleep: Callable[[float], None],
) -> EventPage:
    for attempt in range(1, PAGE_ATTEMPTS + 1):
        try:
            return client.lookup_events(start=start, end=end, next_token=token)
        except CloudError as error:
            if error.permanent or attempt == PAGE_ATTEMPTS:
                raise
            wait = max(0.5 * 2 ** (attempt - 1), (error.retry_after_ms or 0) / 1000)
            logger.info("LookupEvents %s: retrying in %.1f s", error.code, wait)
            sleep(wait)
    raise AssertionError("unreachable")


def _block(cursor: ActivityCursor, error: CloudError) -> None:
    cloud_account = cursor.cloud_account
    with transaction.atomic():
        cursor = ActivityCursor.objects.select_for_update().get(pk=cursor.pk)
        if cursor.blocked_key_fingerprint == cloud_account.secret_fingerprint:
            return
        cursor.blocked_key_fingerprint = cloud_account.secret_fingerprint
        cursor.last_error_code = error.code or ""
        cursor.last_error_message = MISSING_PERMISSION_MESSAGE
        cursor.save(
            update_fields=["blocked_key_fingerprint", "last_error_code", "last_error_message"]
        )
        audit_record(
            action=AuditAction.ACTIVITY_INGESTION_BLOCKED,
            organisation=cloud_account.organisation,
            target=cloud_account,
            target_label=f"cloud account {cloud_account.account_uid}",
            metadata={"error_code": error.code, "request_id": error.request_id},
            outcome="failure",
        )


def _notify(*, cloud_account: CloudAccount, fresh: list[ActivityEvent], run_key: str) -> None:
    """Per delegation with new alerts: one audit event, and one notice to the owner's admins
    and the owner's subscribed chat channels (`notifications.notify`, sent after the commit).
    `run_key` names the ingestion run, so a notice is written once."""
    by_delegation: dict[Delegation | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in fresh:
        for alert in row.alerts:
            by_delegation[row.delegation][alert] += 1
    owner = cloud_account.organisation
    for delegation, counts in by_delegation.items():
        link = (
            reverse("audit:activity", args=[delegation.pk]) + "?alerts=1"
            if delegation is not None
            else ""
        )
        where = (
            f"{delegation.catalog_role.role_name} for {delegation.partner.name}"
            if delegation is not None
            else f"account {cloud_account.account_uid}"
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
                metadata={"alerts": dict(counts), "link": link},
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


def activity_ingest_account(
    *,
    cloud_account: CloudAccount,
    client: ActionTrailClient | None = None,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> IngestReport:
    """Read the account's new ActionTrail events into `ActivityEvent` rows (see the module)."""
    cursor, _ = ActivityCursor.objects.get_or_create(cloud_account=cloud_account)
    if not cloud_account.is_active or not cloud_account.organisation.is_owner:
        return IngestReport("skipped", message="not a connected owner account")
    if (
        cursor.blocked_key_fingerprint
        and cursor.blocked_key_fingerprint == cloud_account.secret_fingerprint
    ):
        return IngestReport("skipped", message=cursor.last_error_message)
    end = now or timezone.now()
    oldest = end - ACTIONTRAIL_RETENTION
    start = oldest
    if cursor.ingested_until is not None:
        start = max(
            oldest,
            cursor.ingested_until - timedelta(seconds=settings.PORTAL_ACTIVITY_OVERLAP_SECONDS),
        )
    ActivityCursor.objects.filter(pk=cursor.pk).update(last_run_at=end)
    if client is None:
        client = ActionTrailClient(
            cloud_account_credentials(cloud_account=cloud_account), region_id=cloud_account.region
        )
    attributor = Attributor(cloud_account)
    report = IngestReport("done")
    token: str | None = None
    fresh_all: list[ActivityEvent] = []
    pending: list[ActivityEvent] = []

    def flush() -> None:
        fresh = _store_page(cloud_account=cloud_account, rows=pending)
        report.stored += len(fresh)
        fresh_all.extend(row for row in fresh if row.alerts)
        pending.clear()

    try:
        for _ in range(MAX_PAGES_PER_RUN):
            page = _fetch_page(client=client, start=start, end=end, token=token, sleep=sleep)
            report.pages += 1
            report.seen += len(page.events)
            pending += _rows_for_page(
                cloud_account=cloud_account, events=page.events, attributor=attributor
            )
            # Several pages per transaction: a commit per 50 events would cost more than the
            # events. A crash loses at most the pending pages, which the next run reads again.
            if len(pending) >= STORE_BATCH:
                flush()
            token = page.next_token
            if not token:
                break
        flush()
    except CloudError as error:
        flush()  # what was read before the failure is as good as any
        if error.category == ErrorCategory.CONFIGURATION:
            _block(cursor, error)
            return IngestReport(
                "blocked", report.pages, report.seen, report.stored, MISSING_PERMISSION_MESSAGE
            )
        ActivityCursor.objects.filter(pk=cursor.pk).update(
            last_error_code=error.code or error.category.value,
            last_error_message=error.message[:2000],
        )
        report.status, report.message = "failed", error.message
        return report
    ActivityCursor.objects.filter(pk=cursor.pk).update(
        ingested_until=end,
        last_success_at=end,
        last_error_code="",
        last_error_message="",
        blocked_key_fingerprint="",
        events_stored=cursor.events_stored + report.stored,
    )
    if fresh_all:
        _notify(cloud_account=cloud_account, fresh=fresh_all, run_key=end.isoformat())
    return report


def activity_purge_expired(*, now: datetime | None = None) -> int:
    """Delete activity older than PORTAL_ACTIVITY_RETENTION_DAYS; returns how many rows."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.PORTAL_ACTIVITY_RETENTION_DAYS)
    deleted, _ = ActivityEvent.objects.filter(event_time__lt=cutoff).delete()
    ActivityDaily.objects.filter(day__lt=cutoff.date()).delete()
    return deleted


def owner_accounts_to_ingest() -> list[Any]:
    return list(
        CloudAccount.objects.filter(is_active=True, organisation__kind="owner").values_list(
            "pk", flat=True
        )
    )


# --- right-sizing: a narrower role, proposed by the owner -----------------------------------
NARROW_SUFFIX = "-used"


def _narrow_name(role_name: str, limit: int) -> str:
    base = re.sub(r"[^A-Za-z0-9-]", "-", role_name)[: limit - len(NARROW_SUFFIX)]
    return base + NARROW_SUFFIX


def activity_propose_narrower_role(*, delegation: Delegation, proposed_by: User) -> CatalogRole:
    """Turn the right-sizing draft into a catalogue change: a Custom policy allowing exactly
    the actions the role's sessions used (created in the owner's account), and a new catalogue
    role holding only that policy. The delegation and its role stay as they are: the owner
    offers the narrower role when ready; nothing is narrowed automatically.

    Raises ValidationError when nothing was used, the names are taken, or the cloud refuses.
    """
    sizing = activity_right_sizing(delegation=delegation)
    if not sizing.draft_policy:
        raise ValidationError(
            gettext("No allowed call was recorded: there is nothing to narrow to.")
        )
    source = delegation.catalog_role
    policy_name = _narrow_name(source.role_name, 128)
    role_name = _narrow_name(source.role_name, ROLE_NAME_MAX_LENGTH)
    client = cloud_account_client(cloud_account=source.cloud_account)
    try:
        if client.get_policy(policy_type="Custom", policy_name=policy_name) is not None:
            raise ValidationError(
                gettext(
                    "The account already has a policy named %(policy_name)s: remove it or "
                    "rename it, then propose again."
                )
                % {"policy_name": policy_name}
            )
        client.create_policy(
            policy_name=policy_name,
            document=sizing.draft_policy,
            description=f"Actions {source.role_name}'s partner sessions used in {sizing.days} days",
        )
    except CloudError as error:
        raise ValidationError(
            gettext(
                "The cloud refused to create the policy %(policy_name)s: %(code)s "
                "(%(message)s). The owner's key needs ram:CreatePolicy and ram:GetPolicy."
            )
            % {"policy_name": policy_name, "code": error.code, "message": error.message}
        ) from None
    # The catalogue checks policies against its cached list of the account's: read it anew.
    cloud_account_policies(cloud_account=source.cloud_account, refresh=True)
    role = catalog_role_create(
        owner=source.organisation,
        created_by=proposed_by,
        role_name=role_name,
        description=f"Narrower {source.role_name}: the actions its sessions used",
        policy_keys=[("Custom", policy_name)],
        max_session_duration=source.max_session_duration,
    )
    with transaction.atomic():
        audit_record(
            action=AuditAction.ACTIVITY_NARROWER_ROLE_PROPOSED,
            actor=proposed_by,
            organisation=source.organisation,
            target=role,
            target_label=role.role_name,
            metadata={
                "delegation_id": str(delegation.pk),
                "from_role": source.role_name,
                "policy_name": policy_name,
                "actions": sizing.used_actions,
                "granted": sizing.granted_policies,
            },
        )
    return role
