"""An attacker with full database rights: lifts the triggers and edits rows directly.

Every helper keeps foreign keys consistent (scopes move with their events), as a careful
attacker would, so only the hash chain can tell.
"""

from django.db import connection, transaction

from audit.chain import link_hash, org_link_hash
from audit.models import AuditEvent, AuditEventScope
from audit.triggers import append_only_suspended

FAR = 10**12  # parks rows out of the way while sequences are shifted


def execute(*statements: tuple[str, list]) -> None:
    with append_only_suspended(connection), connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)


def hash_of(sequence: int) -> str:
    return AuditEvent.objects.values_list("hash", flat=True).get(pk=sequence)


COLUMNS = frozenset(field.column for field in AuditEvent._meta.fields)


def edit_column(sequence: int, column: str, value: object) -> None:
    if column not in COLUMNS:
        raise ValueError(f"No column {column!r} in the audit table.")
    sql = f"UPDATE audit_auditevent SET {column} = %s WHERE sequence = %s"  # noqa: S608 (allowlisted column)
    execute((sql, [value, sequence]))


def delete_row(sequence: int) -> None:
    execute(
        ("DELETE FROM audit_auditeventscope WHERE event_id = %s", [sequence]),
        ("DELETE FROM audit_auditevent WHERE sequence = %s", [sequence]),
    )


def truncate_tail(count: int, *, rewind_head: bool = False) -> None:
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    keep = last - count
    statements = [
        ("DELETE FROM audit_auditeventscope WHERE event_id > %s", [keep]),
        ("DELETE FROM audit_auditevent WHERE sequence > %s", [keep]),
    ]
    if rewind_head:
        statements.append(
            ("UPDATE audit_auditchainhead SET sequence = %s, hash = %s", [keep, hash_of(keep)])
        )
    execute(*statements)


def _move(sequence_from: int, sequence_to: int) -> list[tuple[str, list]]:
    return [
        (
            "UPDATE audit_auditeventscope SET event_id = %s WHERE event_id = %s",
            [sequence_to, sequence_from],
        ),
        (
            "UPDATE audit_auditevent SET sequence = %s WHERE sequence = %s",
            [sequence_to, sequence_from],
        ),
    ]


def swap_rows(first: int, second: int) -> None:
    execute(*_move(first, FAR), *_move(second, first), *_move(FAR, second))


def _shift_up_from(sequence: int) -> list[tuple[str, list]]:
    # Two steps, so no intermediate row collides with a unique sequence.
    return [
        (
            "UPDATE audit_auditeventscope SET event_id = event_id + %s WHERE event_id >= %s",
            [FAR, sequence],
        ),
        (
            "UPDATE audit_auditevent SET sequence = sequence + %s WHERE sequence >= %s",
            [FAR, sequence],
        ),
        (
            "UPDATE audit_auditeventscope SET event_id = event_id - %s WHERE event_id >= %s",
            [FAR - 1, FAR],
        ),
        (
            "UPDATE audit_auditevent SET sequence = sequence - %s WHERE sequence >= %s",
            [FAR - 1, FAR],
        ),
    ]


def forged_event(sequence: int, prev_hash: str, *, proper_hash: bool) -> AuditEvent:
    template = AuditEvent.objects.order_by("sequence").first()
    event = AuditEvent(
        sequence=sequence,
        occurred_at=template.occurred_at,
        action="member.added",
        actor_label="Mallory <mallory@example.com>",
        target_type="accounts.membership",
        target_id="forged",
        target_label="mallory@example.com",
        metadata={},
        prev_hash=prev_hash,
    )
    event.hash = link_hash(prev_hash, event.chain_payload([])) if proper_hash else "e" * 64
    return event


def insert_row(at: int, *, proper_hash: bool) -> None:
    """A forged event at position `at`; the rows from `at` on move up by one."""
    prev_hash = hash_of(at - 1) if at > 1 else "0" * 64
    with append_only_suspended(connection):
        with connection.cursor() as cursor:
            for sql, params in _shift_up_from(at):
                cursor.execute(sql, params)
        forged_event(at, prev_hash, proper_hash=proper_hash).save()


def append_row(*, proper_hash: bool, advance_head: bool = False) -> int:
    last = AuditEvent.objects.order_by("-sequence").first()
    event = forged_event(last.sequence + 1, last.hash, proper_hash=proper_hash)
    with transaction.atomic():
        event.save()
        if advance_head:
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE audit_auditchainhead SET sequence = %s, hash = %s",
                    [event.sequence, event.hash],
                )
    return event.sequence


def delete_scope(sequence: int) -> None:
    execute(("DELETE FROM audit_auditeventscope WHERE event_id = %s", [sequence]))


def add_scope(sequence: int, organisation_id: object) -> None:
    with transaction.atomic():
        AuditEventScope.objects.create(event_id=sequence, organisation_id=organisation_id)


def rewrite_history_from(sequence: int, *, new_label: str = "rewritten") -> None:
    """Edit row `sequence` and re-hash it and every later row (the organisations' chains
    too), then move the chain head: a consistent forgery that only signed checkpoints can
    expose."""
    events = list(AuditEvent.objects.filter(sequence__gte=sequence).order_by("sequence"))
    prev_hash = hash_of(sequence - 1) if sequence > 1 else "0" * 64
    org_heads = {
        str(org): org_hash
        for org, org_hash in AuditEventScope.objects.filter(event_id__lt=sequence)
        .order_by("event_id")
        .values_list("organisation_id", "org_hash")
    }
    statements = []
    for event in events:
        if event.sequence == sequence:
            event.target_label = new_label
        scopes = list(
            AuditEventScope.objects.filter(event_id=event.sequence).values_list(
                "organisation_id", flat=True
            )
        )
        event.prev_hash = prev_hash
        event.hash = link_hash(prev_hash, event.chain_payload(scopes))
        statements.append(
            (
                "UPDATE audit_auditevent SET target_label = %s, prev_hash = %s, hash = %s "
                "WHERE sequence = %s",
                [event.target_label, event.prev_hash, event.hash, event.sequence],
            )
        )
        for organisation_id in scopes:
            org_prev = org_heads.get(str(organisation_id), "0" * 64)
            org_heads[str(organisation_id)] = org_link_hash(org_prev, event.hash)
            statements.append(
                (
                    "UPDATE audit_auditeventscope SET org_prev_hash = %s, org_hash = %s "
                    "WHERE event_id = %s AND organisation_id = %s",
                    [
                        org_prev,
                        org_heads[str(organisation_id)],
                        event.sequence,
                        AuditEventScope._meta.get_field("organisation").get_db_prep_value(
                            organisation_id, connection
                        ),
                    ],
                )
            )
        prev_hash = event.hash
    statements.append(("UPDATE audit_auditchainhead SET hash = %s", [prev_hash]))
    execute(*statements)
