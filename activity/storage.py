"""Writing ingested events: one `executemany` INSERT per batch, and the daily counts in one
upsert, both in the caller's transaction.

This is ingestion's hot path (a million events a run at the first read of an account), so it
avoids what costs per row: no model instances, no per-row validation, no per-value field
preparation (text goes as it is; times, keys and JSON are prepared once per distinct value or
dumped once), and no query per daily count. `INSERT … ON CONFLICT DO NOTHING` on the event id
backs the caller's "new ids only" under the account's lock; the daily counts add with
`ON CONFLICT … DO UPDATE SET calls = calls + excluded.calls` (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import json
import operator
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation

from activity.models import ActivityDaily, ActivityEvent
from delegations.models import CloudAccount, Delegation

# Columns of ActivityEvent that come straight from the parsed event's text fields.
TEXT_COLUMNS = (
    "identity_type",
    "user_name",
    "role_name",
    "session_name",
    "source_identity",
    "access_key_id",
    "partner_account_uid",
    "service_name",
    "event_name",
    "event_rw",
    "event_type",
    "resource_name",
    "resource_type",
    "region",
    "source_ip",
    "request_id",
    "outcome",
    "error_code",
)
# The columns the text filter searches, in `search_text`.
SEARCHED_COLUMNS = ("event_name", "resource_name", "source_ip", "request_id", "error_code")
_DAILY_KEY = ("delegation_id", "day", "person_label", "service_name", "event_name", "event_rw")


@dataclass(slots=True)
class NewEvent:
    """One event ready to store: what the page shows, without a model instance."""

    event_id: str
    event_time: datetime
    delegation: Delegation | None
    person_id: Any
    person_label: str
    via: str
    fields: dict[str, Any]
    problems: list[str]
    raw_json: str
    alerts: list[str] = field(default_factory=list)

    @property
    def search_text(self) -> str:
        found = [self.fields[name] for name in SEARCHED_COLUMNS if self.fields[name]]
        if self.person_label:
            found.append(self.person_label)
        return " ".join(found).lower()


# The INSERT's columns: these first, then TEXT_COLUMNS (read from the fields in one C call).
_OWN_COLUMNS = (
    "cloud_account_id",
    "event_id",
    "event_time",
    "delegation_id",
    "person_id",
    "person_label",
    "via",
    "alerts",
    "problems",
    "raw",
    "search_text",
    "ingested_at",
)
_COLUMNS = (*_OWN_COLUMNS, *TEXT_COLUMNS)
_text_values = operator.itemgetter(*TEXT_COLUMNS)


def _check_columns() -> None:
    names = {f.attname for f in ActivityEvent._meta.concrete_fields if not f.primary_key}
    # A new column must be filled here too; failing at import says so at once.
    if names != set(_COLUMNS):
        raise RuntimeError(f"activity.storage does not fill {sorted(names ^ set(_COLUMNS))}")


_check_columns()


class _Prepared:
    """Database values of the few non-text columns, prepared once per distinct value; as text
    when `as_text` (PostgreSQL's COPY: psycopg would otherwise adapt every UUID and number of
    every row again, which cost more than the rest of the row's text)."""

    def __init__(self, *, as_text: bool) -> None:
        self._cache: dict[tuple[str, Any], Any] = {}
        self._fields = {f.attname: f for f in ActivityEvent._meta.concrete_fields}
        self._as_text = as_text

    def __call__(self, attname: str, value: Any) -> Any:
        if value is None:
            return None
        key = (attname, value)
        if key not in self._cache:
            prepared = self._fields[attname].get_db_prep_save(value, connection)
            if self._as_text and not isinstance(prepared, str):
                prepared = prepared.isoformat() if isinstance(prepared, datetime) else str(prepared)
            self._cache[key] = prepared
        return self._cache[key]


def _json_text(value: list[str]) -> str:
    return json.dumps(value, separators=(",", ":")) if value else "[]"


def _nothing() -> None:
    return None


def insert_events(
    *,
    cloud_account: CloudAccount,
    rows: list[NewEvent],
    meanwhile: Callable[[], None] = _nothing,
) -> list[NewEvent]:
    """Store the rows (none stored before, by the caller's check); returns those stored, which
    are all of them unless another writer stored some in the meantime.

    `meanwhile` is called once, after the rows are sent and before waiting for the database to
    take them in: on PostgreSQL the database stores them on a core of its own while this
    process gets on with `meanwhile` (ingestion parses the next pages). It runs inside the
    write, so it must neither raise nor use the database connection.
    """
    if not rows:
        meanwhile()
        return rows
    quote = connection.ops.quote_name
    table = quote(ActivityEvent._meta.db_table)
    column_of = {f.attname: f.column for f in ActivityEvent._meta.concrete_fields}
    columns = ", ".join(quote(column_of[c]) for c in _COLUMNS)
    placeholders = ", ".join(["%s"] * len(_COLUMNS))
    # Only the model's own table and column names are interpolated; values are parameters.
    event_id = quote(column_of["event_id"])
    once = f"ON CONFLICT ({quote(column_of['cloud_account_id'])}, {event_id}) DO NOTHING"
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) {once}"  # noqa: S608
    copy = connection.vendor == "postgresql"
    prepared = _Prepared(as_text=copy)
    account_id = prepared("cloud_account_id", cloud_account.pk)
    ingested_at = prepared("ingested_at", timezone.now())
    # Event times are all distinct: COPY takes each as ISO text, made without psycopg's adapter.
    adapt_time = datetime.isoformat if copy else connection.ops.adapt_datetimefield_value
    values = [
        (
            account_id,
            row.event_id,
            adapt_time(row.event_time),
            prepared("delegation_id", getattr(row.delegation, "pk", None)),
            prepared("person_id", row.person_id),
            row.person_label,
            row.via,
            _json_text(row.alerts),
            _json_text(row.problems),
            row.raw_json,
            row.search_text,
            ingested_at,
            *_text_values(row.fields),
        )
        for row in rows
    ]
    with connection.cursor() as cursor:
        if not copy:
            # SQLite: one writer at a time for the whole database, so under the caller's lock
            # nothing else stores these ids; the conflict clause is only a backstop.
            cursor.executemany(sql, values)
            meanwhile()
            return rows
        stored_ids = _copy_events(
            cursor,
            table=table,
            columns=columns,
            event_id=event_id,
            once=once,
            values=values,
            meanwhile=meanwhile,
        )
    if stored_ids is None:
        return rows
    return [row for row in rows if row.event_id in stored_ids]


_STAGING = "activity_event_staging"


def _copy_events(
    cursor: Any,
    *,
    table: str,
    columns: str,
    event_id: str,
    once: str,
    values: list[tuple[Any, ...]],
    meanwhile: Callable[[], None],
) -> set[str] | None:
    """PostgreSQL: the rows go by COPY, one stream with no per-row statement. Returns None when
    all were stored, else the ids of those stored.

    COPY has no conflict clause, so it goes straight into the table only under a savepoint:
    the caller's known-id check under the cursor lock leaves nothing to conflict with, except
    when another region's run of the same account stored one of these events meanwhile. Then
    the savepoint is rolled back and the rows go through a staging table instead, into the
    table by `INSERT … SELECT … ON CONFLICT DO NOTHING`, which keeps "once per (account,
    event id)" as a plain INSERT would. Straight in costs the database about half as much:
    no staging write, no second pass, no speculative insertion per row.
    """
    meanwhile_ran = False
    try:
        with (
            transaction.atomic(savepoint=True),
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in values:
                copy.write_row(row)
            meanwhile_ran = True
            meanwhile()
        return None
    except UniqueViolation:
        # The conflict shows while the rows are sent or once they all are: either way the
        # caller's work runs once.
        if not meanwhile_ran:
            meanwhile()
    # Created once per connection (and again after a rolled-back transaction dropped it).
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} ON COMMIT DELETE ROWS AS "  # noqa: S608
        f"SELECT {columns} FROM {table} WITH NO DATA"
    )
    with cursor.cursor.copy(f"COPY {_STAGING} ({columns}) FROM STDIN") as copy:
        for row in values:
            copy.write_row(row)
    cursor.execute(
        f"WITH staged AS (DELETE FROM {_STAGING} RETURNING {columns}) "  # noqa: S608
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM staged {once} "
        f"RETURNING {event_id}"
    )
    return {stored for (stored,) in cursor.fetchall()}


def count_daily(rows: list[NewEvent]) -> None:
    """Add the rows to their (delegation, day, person, action, outcome) counts."""
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    for row in rows:
        if row.delegation is None:
            continue
        fields = row.fields
        counts[
            (
                row.delegation.pk,
                row.event_time.date(),
                row.person_label,
                fields["service_name"],
                fields["event_name"],
                fields["event_rw"],
                fields["outcome"],
            )
        ] += 1
    if not counts:
        return
    quote = connection.ops.quote_name
    table = quote(ActivityDaily._meta.db_table)
    column_of = {f.attname: f.column for f in ActivityDaily._meta.concrete_fields}
    key_columns = [quote(column_of[c]) for c in (*_DAILY_KEY, "outcome")]
    calls = quote(column_of["calls"])
    # Table and column names are the model's own; values are parameters.
    sql = (
        f"INSERT INTO {table} ({', '.join(key_columns)}, {calls}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * (len(key_columns) + 1))}) "
        f"ON CONFLICT ({', '.join(key_columns)}) "
        f"DO UPDATE SET {calls} = {table}.{calls} + excluded.{calls}"
    )
    delegation_field = ActivityDaily._meta.get_field("delegation")
    adapt_day = connection.ops.adapt_datefield_value
    values = [
        [delegation_field.get_db_prep_save(key[0], connection), adapt_day(key[1]), *key[2:], n]
        for key, n in counts.items()
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)


def relax_commit_wait() -> None:
    """PostgreSQL: this transaction's commit does not wait for its WAL to reach the disk.

    A crash can then lose the last few stored batches, never part of one, and never a batch
    before a later one that survived (the WAL is written in order). Ingestion can afford that:
    the cursor moves only after the last page, in a commit that waits, so a lost batch is read
    again by the next run and stored once (the event id's unique constraint).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def vacuum_and_analyze() -> None:
    """PostgreSQL: VACUUM (ANALYZE) the activity tables after a large ingestion.

    ANALYZE: until autovacuum gets to it, the planner would think a delegation holds the few
    rows it held before, and read a page by sorting all of them instead of walking the
    (delegation, time) index: a page after the first million rows took seconds. VACUUM: it
    marks the new pages all-visible, so the text filter's bound is read from the index alone
    (10 ms instead of 34 at a million rows), and autovacuum has no large insert left to catch
    up with minutes later, when its read of the whole table slowed that filter from 100 ms to
    400. It reads what was stored since the last vacuum: 3 s after a million rows. Inside a
    transaction (VACUUM cannot run there) the statistics are refreshed alone.
    """
    if connection.vendor != "postgresql":
        return
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in (ActivityEvent, ActivityDaily):
            cursor.execute(f"{command} {quote(model._meta.db_table)}")
