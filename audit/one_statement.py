"""On PostgreSQL, the write half of `audit_record` (and of `audit_record_many`) in one statement.

After the chain head is locked (its own statement, so that what follows sees every event
committed before the lock was granted: a PostgreSQL statement keeps the snapshot it started
with), one statement with data-modifying CTEs inserts the event, reads each organisation's
previous link, inserts the event's scope rows with their links and moves the chain head.
That is two round trips per event instead of five; the values written are the same as the
portable path's (`org_hash` = SHA-256(org_prev_hash ‖ event hash) in hex, computed by the
database with `sha256()` on the ASCII text, as `audit.chain.org_link_hash` does).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection
from django.db.models.sql.subqueries import InsertQuery

from audit.chain import GENESIS_HASH
from audit.models import AuditChainHead, AuditEvent, AuditEventScope


def supported() -> bool:
    return connection.vendor == "postgresql"


def _event_insert(event: AuditEvent) -> tuple[str, tuple[Any, ...]]:
    """Django's own INSERT for `event` (field preparation, JSON adaptation), returning its id."""
    # The chain position is the primary key: every column is written, none is generated.
    fields = list(AuditEvent._meta.local_concrete_fields)
    query = InsertQuery(AuditEvent)
    query.insert_values(fields, [event])
    compiler = query.get_compiler(using=connection.alias)
    compiler.returning_fields = [AuditEvent._meta.pk]
    [(sql, params)] = compiler.as_sql()
    return sql, tuple(params)


def audit_write_event(*, event: AuditEvent, scope_ids: list[Any], head: AuditChainHead) -> None:
    """Insert `event` (hash and sequence already set), its scope rows and the new chain head,
    in one statement. The caller holds the chain head's lock."""
    quote = connection.ops.quote_name
    scope = quote(AuditEventScope._meta.db_table)
    head_table = quote(AuditChainHead._meta.db_table)
    insert_sql, insert_params = _event_insert(event)
    event_id = quote(AuditEvent._meta.pk.column)
    organisation_ids = [
        org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(str(org_id)) for org_id in scope_ids
    ]
    sql = (
        f"WITH new_event AS ({insert_sql}), "  # noqa: S608 (table names and Django's own SQL)
        "previous AS ("
        "  SELECT scoped.organisation_id, scoped.position, COALESCE("
        f"    (SELECT s.org_hash FROM {scope} s WHERE s.organisation_id = scoped.organisation_id"
        "     ORDER BY s.event_id DESC LIMIT 1), %s) AS org_prev_hash"
        "  FROM unnest(%s::uuid[]) WITH ORDINALITY AS scoped(organisation_id, position)"
        "), new_scopes AS ("
        f"  INSERT INTO {scope} (event_id, organisation_id, org_prev_hash, org_hash)"
        f"  SELECT new_event.{event_id}, previous.organisation_id, previous.org_prev_hash,"
        "    encode(sha256(convert_to(previous.org_prev_hash || %s, 'UTF8')), 'hex')"
        "  FROM new_event, previous ORDER BY previous.position"
        "  RETURNING 1"
        "), moved_head AS ("
        f"  UPDATE {head_table} SET sequence = %s, hash = %s WHERE id = %s RETURNING 1"
        f") SELECT (SELECT {event_id} FROM new_event),"
        " (SELECT count(*) FROM new_scopes), (SELECT count(*) FROM moved_head)"
    )
    params = (
        *insert_params,
        GENESIS_HASH,
        organisation_ids,
        event.hash,
        event.sequence,
        event.hash,
        head.pk,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written_id, scopes_written, heads_moved = cursor.fetchone()
    if written_id != event.sequence or scopes_written != len(organisation_ids) or heads_moved != 1:
        raise RuntimeError("The audit event was not written with its scopes and chain head.")
    event._state.adding = False
    event._state.db = connection.alias


def _events_insert(events: list[AuditEvent]) -> tuple[str, tuple[Any, ...]]:
    """Django's own multi-row INSERT for `events` (no RETURNING: the ids are the sequences)."""
    fields = list(AuditEvent._meta.local_concrete_fields)
    query = InsertQuery(AuditEvent)
    query.insert_values(fields, events)
    [(sql, params)] = query.get_compiler(using=connection.alias).as_sql()
    return sql, tuple(params)


def _batches(rows: list[Any], fields: int) -> list[list[Any]]:
    # The database's limit on one statement's parameters (PostgreSQL: 65,535).
    size = max(1, (connection.features.max_query_params or 65535) // fields)
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def insert_events(events: list[AuditEvent]) -> None:
    """Insert `events` (sequences, times and hashes set) in one statement per batch of the
    database's parameter limit, past the queryset's guard (which refuses a `bulk_create`
    that did not come from here: events are only written by `audit.services`)."""
    for batch in _batches(events, len(AuditEvent._meta.local_concrete_fields)):
        sql, params = _events_insert(batch)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    for event in events:
        event._state.adding = False
        event._state.db = connection.alias


def audit_write_events(
    *, events: list[AuditEvent], scopes: list[AuditEventScope], head: AuditChainHead
) -> None:
    """Insert `events` and their `scopes` (every hash and link already computed) and move the
    chain head to the last event, in one statement. The caller holds the chain head's lock and
    read the organisations' previous links after taking it."""
    columns = len(AuditEvent._meta.local_concrete_fields)
    if len(events) * columns + len(scopes) * 4 + 3 > 65535:
        # Past one statement's parameters: the events in batches, then the rest.
        insert_events(events)
        AuditEventScope.objects.bulk_create(scopes)
        AuditChainHead.objects.filter(pk=head.pk).update(sequence=head.sequence, hash=head.hash)
        return
    quote = connection.ops.quote_name
    scope = quote(AuditEventScope._meta.db_table)
    head_table = quote(AuditChainHead._meta.db_table)
    insert_sql, insert_params = _events_insert(events)
    sql = (
        f"WITH new_events AS ({insert_sql} RETURNING 1), "  # noqa: S608 (names, Django's SQL)
        "new_scopes AS ("
        f"  INSERT INTO {scope} (event_id, organisation_id, org_prev_hash, org_hash)"
        "  SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::text[], %s::text[])"
        "  RETURNING 1"
        "), moved_head AS ("
        f"  UPDATE {head_table} SET sequence = %s, hash = %s WHERE id = %s RETURNING 1"
        ") SELECT (SELECT count(*) FROM new_events),"
        " (SELECT count(*) FROM new_scopes), (SELECT count(*) FROM moved_head)"
    )
    params = (
        *insert_params,
        [row.event_id for row in scopes],
        [
            org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(str(org_id))
            for org_id in (row.organisation_id for row in scopes)
        ],
        [row.org_prev_hash for row in scopes],
        [row.org_hash for row in scopes],
        head.sequence,
        head.hash,
        head.pk,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written, scopes_written, heads_moved = cursor.fetchone()
    if written != len(events) or scopes_written != len(scopes) or heads_moved != 1:
        raise RuntimeError("The audit events were not written with their scopes and chain head.")
    for row in [*events, *scopes]:
        row._state.adding = False
        row._state.db = connection.alias
