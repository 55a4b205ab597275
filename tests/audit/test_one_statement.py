"""On PostgreSQL an audit write is one round trip (issue 19 item 5): the database function
`audit_append()` locks the chain head, computes the hashes from it and writes. What it writes
is exactly what the verifier recomputes, whatever the event holds."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AuditChainHead, AuditEvent, AuditEventScope
from audit.services import audit_record
from audit.verify import verify_chain
from tests.audit.conftest import ANY_ACTION, record

pytestmark = pytest.mark.django_db


def test_an_event_is_written_in_one_statement_on_postgresql(owner_org, partner_org, admin_user):
    record(action=ANY_ACTION, organisation=owner_org)
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        event = audit_record(
            action=ANY_ACTION,
            actor=admin_user,
            organisation=owner_org,
            related_organisations=[partner_org],
            before=None,
            after={"status": "active", "names": ["ünïcode", "\u2028", 'quote"s']},
            # Keys and values that look like the parts the database fills in.
            metadata={"sequence": 7, "occurred_at": "2020-01-01T00:00:00.000000Z", "n": 1.5},
        )
    if connection.vendor == "postgresql":
        assert len(captured.captured_queries) == 1, captured.captured_queries
        assert "audit_append" in captured.captured_queries[0]["sql"]
    stored = AuditEvent.objects.get(pk=event.sequence)
    assert (stored.hash, stored.prev_hash, stored.occurred_at) == (
        event.hash,
        event.prev_hash,
        event.occurred_at,
    )
    assert stored.before is None and stored.metadata["sequence"] == 7
    head = AuditChainHead.objects.get()
    assert (head.sequence, head.hash) == (event.sequence, event.hash)
    assert AuditEventScope.objects.filter(event_id=event.sequence).count() == 2
    assert verify_chain().ok


def test_times_follow_the_chain(owner_org):
    events = [record(action=ANY_ACTION, organisation=owner_org) for _ in range(5)]
    assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
    assert [e.sequence for e in events] == list(range(events[0].sequence, events[0].sequence + 5))
    assert verify_chain().ok
