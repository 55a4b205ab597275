"""On PostgreSQL, an audit write in one round trip.

`audit_append`: one event (`audit_record`), through the database function `audit_append()`
(audit/append_function.py), which locks the chain head and writes the event, its scope rows
and the new head in that one call. `audit_write_events`: a batch (`audit_record_many`), whose
caller locked the head and read the organisations' previous links; one statement with
data-modifying CTEs then inserts every event and scope row and moves the head. The values
written are the portable path's (`org_hash` = SHA-256(org_prev_hash ‖ event hash) in hex, as
`audit.chain.org_link_hash` computes it).
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

from django.db import connection
from django.db.models.sql.subqueries import InsertQuery
from django.utils import timezone

from audit.chain import GENESIS_HASH, canonical_json, link_hash
from audit.models import AuditChainHead, AuditEvent, AuditEventScope
from core.db import json_rows_insert


def supported() -> bool:
    return connection.vendor == "postgresql"


def audit_append(*, event: AuditEvent, scope_ids: list[Any]) -> bool:
    """Append `event` (checked and cleaned, not yet on the chain) and its scope rows in one
    round trip: the database function `audit_append()` (migration 0005) locks the chain head,
    takes the time, computes the hashes and writes. Sets the event's sequence, time and hashes
    as written; False (nothing written) when the chain head row is missing."""
    # The canonical JSON with stand-ins for the two values only the lock decides, cut around
    # them: the database puts the real ones in the same places (sorted keys put the time
    # before the sequence), so the bytes hashed are exactly `canonical_json` of the event.
    time_mark, sequence_mark = secrets.token_hex(16), 10**18 + secrets.randbelow(10**17)
    event.sequence, event.occurred_at = 0, timezone.now()
    payload = event.chain_payload(scope_ids)
    payload["occurred_at"], payload["sequence"] = time_mark, sequence_mark
    text = canonical_json(payload).decode("utf-8")
    time_at, sequence_at = f'"occurred_at":"{time_mark}"', f'"sequence":{sequence_mark}'
    if text.count(time_at) != 1 or text.count(sequence_at) != 1:
        raise RuntimeError("The audit event's canonical form could not be cut for the chain.")
    before_time, rest = text.split(time_at)
    between, after = rest.split(sequence_at)
    columns = {
        field.column: _json_value(field.value_from_object(event))
        for field in AuditEvent._meta.local_concrete_fields
        if field.column not in ("sequence", "occurred_at", "prev_hash", "hash")
    }
    organisation_ids = [
        org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(str(org_id)) for org_id in scope_ids
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sequence, occurred_at, prev_hash, hash FROM audit_append(%s::jsonb, %s::uuid[],"
            " %s, %s, %s)",
            (
                json.dumps(columns),
                organisation_ids,
                before_time + '"occurred_at":"',
                '"' + between + '"sequence":',
                after,
            ),
        )
        row = cursor.fetchone()
    if row is None:
        return False
    event.sequence, event.occurred_at, event.prev_hash, event.hash = row
    # The database's arithmetic, checked against the verifier's: a difference would be a
    # chain that does not verify, so the change is refused instead.
    if event.hash != link_hash(event.prev_hash, event.chain_payload(scope_ids)):
        raise RuntimeError("The database computed a different audit hash than the verifier.")
    event._state.adding = False
    event._state.db = connection.alias
    return True


def _json_value(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def _events_insert(events: list[AuditEvent]) -> tuple[str, tuple[Any, ...]]:
    """Django's own multi-row INSERT for `events` (no RETURNING: the ids are the sequences)."""
    fields = list(AuditEvent._meta.local_concrete_fields)
    query = InsertQuery(AuditEvent)
    query.insert_values(fields, list[Any](events))
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
    read the organisations' previous links after taking it. The rows travel as two JSON
    parameters (`core.db.json_rows_insert`), so a batch of any size is one statement."""
    head_table = connection.ops.quote_name(AuditChainHead._meta.db_table)
    insert_events_sql, event_rows = json_rows_insert(AuditEvent, events)
    insert_scopes_sql, scope_rows = json_rows_insert(AuditEventScope, scopes)
    sql = (
        f"WITH new_events AS ({insert_events_sql} RETURNING 1), "  # noqa: S608 (names)
        f"new_scopes AS ({insert_scopes_sql} RETURNING 1), "
        f"moved_head AS (UPDATE {head_table} SET sequence = %s, hash = %s WHERE id = %s"
        " RETURNING 1)"
        " SELECT (SELECT count(*) FROM new_events),"
        " (SELECT count(*) FROM new_scopes), (SELECT count(*) FROM moved_head)"
    )
    params = (event_rows, scope_rows, head.sequence, head.hash, head.pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written, scopes_written, heads_moved = cursor.fetchone()
    if written != len(events) or scopes_written != len(scopes) or heads_moved != 1:
        raise RuntimeError("The audit events were not written with their scopes and chain head.")
    for row in [*events, *scopes]:
        row._state.adding = False
        row._state.db = connection.alias


def org_heads(organisation_ids: list[Any]) -> dict[str, str]:
    """The last `org_hash` of each organisation's chain (zeros for none), in one statement
    with one index probe per organisation, as plain SQL (the ORM's form, a subquery per
    organisation, took seconds to build for a batch of a hundred partners)."""
    scope = connection.ops.quote_name(AuditEventScope._meta.db_table)
    ids = [
        org_id if isinstance(org_id, uuid.UUID) else uuid.UUID(str(org_id))
        for org_id in organisation_ids
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT wanted.id, (SELECT s.org_hash FROM "  # noqa: S608 (a table name)
            f"{scope} s WHERE s.organisation_id = wanted.id ORDER BY s.event_id DESC LIMIT 1)"
            " FROM unnest(%s::uuid[]) AS wanted(id)",
            (ids,),
        )
        found = {str(org_id): org_hash for org_id, org_hash in cursor.fetchall()}
    return {str(org_id): found.get(str(org_id)) or GENESIS_HASH for org_id in organisation_ids}
