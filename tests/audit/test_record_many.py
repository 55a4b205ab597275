"""`audit_record_many`: several events with one lock of the chain head, each exactly what
`audit_record` would write, failing closed the same way."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AuditChainHead, AuditEvent, AuditEventScope
from audit.services import (
    AuditSecretError,
    audit_record_many,
)
from audit.verify import verify_chain
from tests.audit.conftest import ANY_ACTION, record

pytestmark = pytest.mark.django_db


def test_a_batch_continues_the_chain_as_single_events_would(owner_org, partner_org, admin_user):
    record(action=ANY_ACTION, organisation=owner_org)
    with transaction.atomic():
        events = audit_record_many(
            [
                {
                    "action": ANY_ACTION,
                    "actor": admin_user,
                    "organisation": owner_org,
                    "related_organisations": [partner_org],
                    "metadata": {"n": n},
                }
                for n in range(3)
            ]
            + [{"action": ANY_ACTION, "organisation": partner_org}]
        )
        record(action=ANY_ACTION, organisation=owner_org)

    rows = list(AuditEvent.objects.order_by("sequence"))
    assert [e.sequence for e in events] == [rows[1].sequence + n for n in range(4)]
    assert [r.metadata for r in rows[1:4]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert rows[1].actor == admin_user and rows[1].actor_organisation == owner_org
    for previous, event in itertools.pairwise(rows):
        assert event.prev_hash == previous.hash
    head = AuditChainHead.objects.get()
    assert (head.sequence, head.hash) == (rows[-1].sequence, rows[-1].hash)
    assert AuditEventScope.objects.filter(organisation=partner_org).count() == 4
    assert verify_chain().ok


def test_the_head_is_locked_once_for_the_batch(owner_org):
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        audit_record_many([{"action": ANY_ACTION, "organisation": owner_org}] * 5)
    locks = [q["sql"] for q in captured.captured_queries if "audit_auditchainhead" in q["sql"]]
    if connection.vendor == "postgresql":
        # One lock, then one statement per event (which also moves the head).
        assert len(captured.captured_queries) == 1 + 5
        assert sum("FOR UPDATE" in sql for sql in locks) == 1
    assert AuditEvent.objects.count() == 5 and verify_chain().ok


def test_a_bad_event_in_a_batch_writes_none_of_it(owner_org):
    with pytest.raises(AuditSecretError), transaction.atomic():
        audit_record_many(
            [
                {"action": ANY_ACTION, "organisation": owner_org},
                {"action": ANY_ACTION, "organisation": owner_org, "metadata": {"password": "x"}},
            ]
        )
    assert not AuditEvent.objects.exists()


def test_an_empty_batch_writes_nothing():
    with transaction.atomic():
        assert audit_record_many([]) == []
    assert not AuditEvent.objects.exists()
