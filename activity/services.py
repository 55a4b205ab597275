"""Ingesting ActionTrail into the portal: incremental, exactly once, resumable, paced.

`activity_ingest_account` reads one owner account's events, in each region it uses (ActionTrail
is regional; a cursor per account and region), from the cursor (less an overlap window, since
ActionTrail delivers minutes late) up to now, page by page, from both ends of the window at
once (newest first and oldest first, until the two readers meet), reading the next pages while
the last ones are stored. Each batch of pages is stored in its own transaction, new event ids
only (a unique constraint backs it), so a crash between pages loses nothing and duplicates
nothing: the cursor moves only after the last page, and the next run reads the same window
again (a run that stops at its page limit moves it only as far as everything before it is in).
Throttling and server errors are retried with backoff in place; a key without
`actiontrail:LookupEvents` stops that account's ingestion with one clear message (and one
audit event) until the owner connects a key that has it."""

from __future__ import annotations

import gc
import logging
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import User
from activity.alerts import notify_alerts, row_alerts
from activity.attribution import Attributor, read_only_intended
from activity.events import ParsedEvent, UnusableEvent, event_time, parse_event
from activity.models import ActivityCursor, ActivityDaily, ActivityEvent
from activity.selectors import activity_right_sizing
from activity.storage import (
    NewEvent,
    count_daily,
    insert_events,
    relax_commit_wait,
    vacuum_and_analyze,
)
from audit.actions import AuditAction
from audit.services import audit_record
from cloud.actiontrail import ActionTrailClient, EventPage
from cloud.errors import CloudError, ErrorCategory
from core.i18n import stored_message
from delegations.catalog.account_policies import cloud_account_policies
from delegations.catalog.services import catalog_role_create
from delegations.connection.selectors import cloud_account_of_organisation
from delegations.connection.services import cloud_account_client, cloud_account_credentials
from delegations.models import ROLE_NAME_MAX_LENGTH, CatalogRole, CloudAccount, Delegation

logger = logging.getLogger(__name__)

ACTIONTRAIL_RETENTION = timedelta(days=90)
PAGE_ATTEMPTS = 4
MAX_PAGES_PER_RUN = 20_000
# Events per transaction: a commit per page of 50 would cost more than the events. A crash
# loses at most the batch being written, which the next run reads again (the cursor moves only
# at the end of a run).
STORE_BATCH = 1000
# Pages read ahead while earlier ones are stored (see _pages): more than a store batch's
# pages, so the reader keeps going while a batch is written.
READ_AHEAD = 3 * STORE_BATCH // 50
READER_SWITCH_INTERVAL = 0.0005
# A window of more than a page is read from both ends at once (see _pages).
READ_FROM_BOTH_ENDS = True
# Net new containers between two collections of the youngest generation during a run (see
# _collector_for_a_large_run); CPython's default is 700.
RUN_GC_THRESHOLD = 20_000
# A run that stored this many rows vacuums and analyzes the tables (see vacuum_and_analyze).
VACUUM_AFTER_ROWS = 20_000
MISSING_PERMISSION_MESSAGE = stored_message(
    gettext_noop(
        "The owner's AccessKey may not read ActionTrail: grant it actiontrail:LookupEvents "
        "(see docs/ram-policies/owner-portal.json), then connect the key again."
    )
)


@dataclass
class IngestReport:
    status: str  # "done" | "blocked" | "failed" | "skipped"
    pages: int = 0
    seen: int = 0
    stored: int = 0
    message: str = ""


def _role_sessions(events: list[dict]) -> list[ParsedEvent]:
    """The page's partner-session events, parsed: no database, so it can run while the
    database stores the batch before."""
    parsed_events = []
    for event in events:
        try:
            parsed = parse_event(event)
        except UnusableEvent as unusable:
            logger.warning("ActionTrail event without a usable %s skipped", unusable)
            continue
        # Only partner sessions in roles the portal manages are activity; the owner's own calls
        # (and its console) stay in ActionTrail.
        if parsed.fields.pop("is_role_session"):
            parsed_events.append(parsed)
    return parsed_events


def _attributed(parsed_events: list[ParsedEvent], attributor: Attributor) -> list[NewEvent]:
    """The events joined to their delegations and people (reading what the run has not yet
    read), with their alerts; events of no partner session are left out."""
    identities = [
        (
            fields["role_name"],
            fields["session_name"],
            fields["access_key_id"],
            fields["partner_account_uid"],
            fields["source_identity"],
        )
        for fields in (parsed.fields for parsed in parsed_events)
    ]
    attributor.prefetch(identities)
    read_only: dict[Any, bool] = {}
    rows = []
    for parsed, identity in zip(parsed_events, identities, strict=True):
        fields = parsed.fields
        found = attributor.attribute(identity, parsed.event_time)
        if found.via == ActivityEvent.Via.OTHER:
            continue
        row = NewEvent(
            event_id=parsed.event_id,
            event_time=parsed.event_time,
            delegation=found.delegation,
            person_id=found.person.pk if found.person is not None else None,
            person_label=found.person_label[:255],
            via=found.via,
            fields=fields,
            problems=parsed.problems,
            raw_json=parsed.raw_json,
        )
        delegation = found.delegation
        if delegation is not None and delegation.pk not in read_only:
            read_only[delegation.pk] = read_only_intended(delegation)
        row.alerts = row_alerts(row, delegation is not None and read_only[delegation.pk])
        rows.append(row)
    return rows


def _store(
    *, cursor: ActivityCursor, rows: list[NewEvent], meanwhile: Callable[[], None]
) -> list[NewEvent]:
    """The rows not stored before (by event id), stored now with their daily counts; returns
    those. The region's cursor row is locked meanwhile, so two runs never count one event
    twice (and the insert's ON CONFLICT backs the known-id check). `meanwhile` runs once,
    while the database takes the rows in (see `insert_events`)."""
    if not rows:
        meanwhile()
        return []
    cloud_account = cursor.cloud_account
    with transaction.atomic():
        relax_commit_wait()
        ActivityCursor.objects.select_for_update().filter(pk=cursor.pk).first()
        # An event stored before has the same time: one range read through the (account,
        # time) index finds them all (none at a first read) instead of a lookup per id.
        known = set(
            ActivityEvent.objects.filter(
                cloud_account=cloud_account,
                event_time__gte=min(row.event_time for row in rows),
                event_time__lte=max(row.event_time for row in rows),
            ).values_list("event_id", flat=True)
        )
        fresh: dict[str, NewEvent] = {}
        for row in rows:
            if row.event_id not in known:
                fresh.setdefault(row.event_id, row)
        stored = insert_events(
            cloud_account=cloud_account, rows=list(fresh.values()), meanwhile=meanwhile
        )
        count_daily(stored)
    return stored


def _fetch_page(
    *,
    client: ActionTrailClient,
    start: datetime,
    end: datetime,
    token: str | None,
    sleep: Callable[[float], None],
    oldest_first: bool = False,
) -> EventPage:
    for attempt in range(1, PAGE_ATTEMPTS + 1):
        try:
            return client.lookup_events(
                start=start, end=end, next_token=token, oldest_first=oldest_first
            )
        except CloudError as error:
            if error.permanent or attempt == PAGE_ATTEMPTS:
                raise
            wait = max(0.5 * 2 ** (attempt - 1), (error.retry_after_ms or 0) / 1000)
            logger.info("LookupEvents %s: retrying in %.1f s", error.code, wait)
            sleep(wait)
    raise AssertionError("unreachable")


class _WindowEnds:
    """How far the two readers of one window have come, one from each end; they stop where
    they meet.

    The newest-first reader has every event after `newest_reached` (and some at it), the
    oldest-first one every event before `oldest_reached` (and some at it). A page is cut where
    it passes the other reader's point, since all beyond it is the other's; the events of the
    meeting second may come from both, and the store keeps one of each (by event id). A reader
    whose query ends has read the whole window: the other stops too. Checked and moved under
    one lock, so no event falls between the two.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.newest_reached: datetime | None = None
        self.oldest_reached: datetime | None = None
        self.met = False

    def _before_the_other(self, moment: datetime, oldest_first: bool) -> bool:
        if oldest_first:
            return self.newest_reached is None or moment <= self.newest_reached
        return self.oldest_reached is None or moment >= self.oldest_reached

    def keep(self, events: list[dict], *, oldest_first: bool, last: bool) -> list[dict]:
        """The page's events its reader keeps; `met` is true after it when reading is over."""
        with self._lock:
            if self.met:
                return []
            kept: list[dict] = []
            times: list[datetime] = []
            for event in events:
                moment = event_time(event)
                if moment is not None and not self._before_the_other(moment, oldest_first):
                    self.met = True  # past the other reader's point: the rest is its
                    break
                kept.append(event)  # (one without a time is refused when parsed)
                if moment is not None:
                    times.append(moment)
            if times and oldest_first:
                self.oldest_reached = max(times)
            elif times:
                self.newest_reached = min(times)
            self.met = self.met or last
            return kept


_DONE = object()


def _pages(
    *,
    client: ActionTrailClient,
    start: datetime,
    end: datetime,
    sleep: Callable[[float], None],
    ends: _WindowEnds,
) -> Generator[tuple[bool, EventPage], None, None]:
    """The window's pages as (oldest_first, page), read from both ends at once, each requested
    while earlier ones are being stored.

    Fetching waits on the network and storing on the database: reader threads work ahead
    (at most `READ_AHEAD` pages, paced like any request) while the caller stores, so a run
    costs about the slower of the two instead of their sum. A window of more than one page is
    read from its newest end and, from the first page on, from its oldest end too (until the
    readers meet, see `_WindowEnds`), so two requests are in flight: the service's time
    answering one overlaps the other's. Each reader's pages come in its own order, so a run of
    one reader's pages spans one stretch of time. The readers touch no database and raise
    nothing themselves: an error comes out here, after the pages read before it.
    """
    pages: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()
    readers: list[threading.Thread] = []

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read(oldest_first: bool) -> None:
        token: str | None = None
        try:
            for _ in range(MAX_PAGES_PER_RUN):
                page = _fetch_page(
                    client=client,
                    start=start,
                    end=end,
                    token=token,
                    sleep=sleep,
                    oldest_first=oldest_first,
                )
                kept = ends.keep(page.events, oldest_first=oldest_first, last=not page.next_token)
                if token is None and not oldest_first and not ends.met and READ_FROM_BOTH_ENDS:
                    start_reader(oldest_first=True)
                if kept and not put((oldest_first, EventPage(kept, page.next_token))):
                    return
                if ends.met or stop.is_set():
                    break
                token = page.next_token
            put(_DONE)
        except BaseException as error:  # handed to the caller, which re-raises it
            put(error)

    def start_reader(*, oldest_first: bool) -> None:
        reader = threading.Thread(
            target=read,
            args=(oldest_first,),
            name=f"actiontrail-read-{'oldest' if oldest_first else 'newest'}-first",
            daemon=True,
        )
        readers.append(reader)
        reader.start()

    # The readers mostly wait on the network; each time a response arrives one needs the GIL,
    # which the storing thread, busy parsing, gives up only every switch interval (5 ms by
    # default). Waits like that on every page would slow the readers to the storer's pace, so
    # the interval is short while they run together.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(READER_SWITCH_INTERVAL)
    start_reader(oldest_first=False)
    finished = 0
    try:
        # A reader adds the other before it hands over its last item, so the count is whole
        # by the time the last one is seen.
        while finished < len(readers):
            item = pages.get()
            if item is _DONE:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=5)
        sys.setswitchinterval(switch_interval)


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
            metadata={
                "error_code": error.code,
                "request_id": error.request_id,
                "region": cursor.region,
            },
            outcome="failure",
        )


_collector_lock = threading.Lock()
_collector_runs = 0
_collector_saved: tuple[tuple[int, int, int], bool] = ((700, 10, 10), False)


@contextmanager
def _collector_for_a_large_run() -> Iterator[None]:
    """Python's cyclic garbage collector tuned for an ingestion run, and put back after it.

    A run makes millions of short-lived containers (each event is a few dicts, each page a
    list of them) while hundreds of thousands of long-lived ones (Django, the SDK, the run's
    caches) sit in the heap. The collector ran a young collection every 700 new containers and
    every so often a full one, which walked all the long-lived objects again: a fifth of a
    large run's time, with the GIL held. During the run what existed before it is frozen
    (`gc.freeze`: never scanned until thawed) and young collections come every
    `RUN_GC_THRESHOLD` containers; the events themselves are freed by their reference counts,
    not by the collector. Runs in several threads of one process share the setting; the last
    one out puts it back (and thaws only what it froze when nothing was frozen before).
    """
    global _collector_runs, _collector_saved
    with _collector_lock:
        if _collector_runs == 0:
            _collector_saved = (gc.get_threshold(), gc.get_freeze_count() == 0)
            gc.freeze()
            gc.set_threshold(RUN_GC_THRESHOLD, *_collector_saved[0][1:])
        _collector_runs += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_runs -= 1
            if _collector_runs == 0:
                thresholds, thaw = _collector_saved
                gc.set_threshold(*thresholds)
                if thaw:
                    gc.unfreeze()


def activity_regions(*, cloud_account: CloudAccount) -> list[str]:
    """The ActionTrail regions read for the account: its own region, then those named in
    PORTAL_ACTIVITY_REGIONS (each region keeps its own trail)."""
    regions = [cloud_account.region, *settings.PORTAL_ACTIVITY_REGIONS]
    return list(dict.fromkeys(region for region in regions if region))


def activity_ingest_account(
    *,
    cloud_account: CloudAccount,
    client: ActionTrailClient | None = None,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> IngestReport:
    """Read the account's new ActionTrail events, in each of its regions, into
    `ActivityEvent` rows (see the module). `client` replaces the SDK client of every region."""
    if not cloud_account.is_active or not cloud_account.organisation.is_owner:
        return IngestReport("skipped", message="not a connected owner account")
    blocked = ActivityCursor.objects.filter(
        cloud_account=cloud_account,
        blocked_key_fingerprint=cloud_account.secret_fingerprint,
    ).exclude(blocked_key_fingerprint="")
    for cursor in blocked[:1]:
        return IngestReport("skipped", message=cursor.last_error_message)
    end = now or timezone.now()
    attributor = Attributor(cloud_account)
    total = IngestReport("done")
    fresh_all: list[NewEvent] = []
    for region in activity_regions(cloud_account=cloud_account):
        with _collector_for_a_large_run():
            report = _ingest_region(
                cloud_account=cloud_account,
                region=region,
                client=client,
                end=end,
                sleep=sleep,
                attributor=attributor,
                fresh_all=fresh_all,
            )
        total.pages += report.pages
        total.seen += report.seen
        total.stored += report.stored
        if report.status == "blocked":
            total.status, total.message = report.status, report.message
            break  # the key is the account's: every region would refuse it alike
        if report.status == "failed":
            total.status, total.message = report.status, report.message
        elif report.message and total.status == "done":
            total.message = report.message  # a run that stopped before the window's end
    if fresh_all:
        notify_alerts(cloud_account=cloud_account, fresh=fresh_all, run_key=end.isoformat())
    return total


class _Batches:
    """The window's pages, parsed, a batch of about `STORE_BATCH` events at a time; each
    batch holds one reader's events (see `_pages`), so it spans one stretch of time.

    `read_next` reads and parses until the next batch is ready. It touches no database and
    keeps the cloud's error in `failure` rather than raising it, so it can run while the
    database stores the batch before; the caller raises the error once what was read before it
    is stored.
    """

    def __init__(self, pages: Iterator[tuple[bool, EventPage]], report: IngestReport) -> None:
        self._pages = pages
        self._report = report
        self._reading: dict[bool, list[ParsedEvent]] = {False: [], True: []}
        self._ready: list[list[ParsedEvent]] = []
        self.failure: CloudError | None = None

    def read_next(self) -> None:
        try:
            while not self._ready:
                item = next(self._pages, None)
                if item is None:
                    self._flush()  # the end: each reader's last events
                    return
                oldest_first, page = item
                self._report.pages += 1
                self._report.seen += len(page.events)
                reading = self._reading[oldest_first]
                reading += _role_sessions(page.events)
                if len(reading) >= STORE_BATCH:
                    self._ready.append(reading)
                    self._reading[oldest_first] = []
        except CloudError as error:
            self.failure = error
            self._flush()  # what was read before the error is stored

    def _flush(self) -> None:
        self._ready += [reading for reading in self._reading.values() if reading]
        self._reading = {False: [], True: []}

    def take(self) -> list[ParsedEvent] | None:
        return self._ready.pop(0) if self._ready else None


def _ingest_region(
    *,
    cloud_account: CloudAccount,
    region: str,
    client: ActionTrailClient | None,
    end: datetime,
    sleep: Callable[[float], None],
    attributor: Attributor,
    fresh_all: list[NewEvent],
) -> IngestReport:
    cursor, _ = ActivityCursor.objects.get_or_create(cloud_account=cloud_account, region=region)
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
            cloud_account_credentials(cloud_account=cloud_account), region_id=region
        )
    report = IngestReport("done")
    ends = _WindowEnds()
    pages = _pages(client=client, start=start, end=end, sleep=sleep, ends=ends)
    batch = _Batches(pages, report)
    try:
        batch.read_next()
        while (parsed := batch.take()) is not None:
            rows = _attributed(parsed, attributor)
            # The next batch is read and parsed while the database stores this one.
            fresh = _store(cursor=cursor, rows=rows, meanwhile=batch.read_next)
            report.stored += len(fresh)
            fresh_all.extend(row for row in fresh if row.alerts)
        if batch.failure is not None:
            raise batch.failure  # what was read before it is stored: as good as any
    except CloudError as error:
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
    finally:
        pages.close()
    # Readers that stopped at MAX_PAGES_PER_RUN before meeting left a stretch unread: the
    # cursor moves only as far as everything before it is in (the next run reads on from there).
    ingested_until = end if ends.met else ends.oldest_reached
    if ingested_until is None:
        ingested_until = cursor.ingested_until
    if not ends.met:
        report.message = gettext(
            "More events than one run reads: the next run reads on from %(moment)s."
        ) % {"moment": ingested_until.isoformat() if ingested_until else start.isoformat()}
        logger.warning("ActivityCursor %s: %s", cursor.pk, report.message)
    ActivityCursor.objects.filter(pk=cursor.pk).update(
        ingested_until=ingested_until,
        last_success_at=end,
        last_error_code="",
        last_error_message="",
        blocked_key_fingerprint="",
        events_stored=F("events_stored") + report.stored,
    )
    # After the cursor has moved: the run's events are in, whatever the tables' upkeep does.
    if report.stored >= VACUUM_AFTER_ROWS:
        vacuum_and_analyze()
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
    the actions the role's sessions used (created in the owner's primary account, where a new
    catalogue role lives), and a new catalogue role holding only that policy. The delegation
    and its role stay as they are: the owner offers the narrower role when ready; nothing is
    narrowed automatically.

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
    # The new role's home is the owner's primary account (`catalog_role_create`), which need
    # not be the source role's (the primary can change): its Custom policy must be there.
    home = cloud_account_of_organisation(organisation=source.organisation)
    if home is None:
        raise ValidationError(gettext("Connect your Alibaba Cloud account before adding roles."))
    client = cloud_account_client(cloud_account=home)
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
    cloud_account_policies(cloud_account=home, refresh=True)
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
