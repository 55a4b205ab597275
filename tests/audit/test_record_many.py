"""`audit_record_many`: several events with one lock of the chain head, each exactly what
`audit_record` would write, failing closed the same way."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import Organisation
from audit.models import AuditChainHead, AuditEvent, AuditEventScope
from audit.services import (
    AuditSecretError,
    audit_record_many,
)
from audit.verify import verify_chain
from tests.audit.conftest import ANY_ACTION, make_organisation, record

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


def _statements_of_a_batch(events: int, organisations: list) -> list[str]:
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        audit_record_many(
            [
                {
                    "action": ANY_ACTION,
                    "organisation": organisations[0],
                    "related_organisations": [organisations[1 + n % (len(organisations) - 1)]],
                }
                for n in range(events)
            ]
        )
    return [q["sql"] for q in captured.captured_queries]


def test_a_batch_takes_the_same_statements_whatever_its_size(owner_org):
    """Issue 19 item 6: a worker moving a role's hundred partners wrote an event per round trip
    while holding the chain head; now the lock, one read of the organisations' previous links
    and the writes, however many events (each still its own row, link and scope rows)."""
    partners = [make_organisation(Organisation.Kind.PARTNER) for _ in range(12)]
    small = _statements_of_a_batch(3, [owner_org, *partners])
    large = _statements_of_a_batch(40, [owner_org, *partners])
    assert len(small) == len(large)
    locks = [sql for sql in large if "audit_auditchainhead" in sql and "FOR UPDATE" in sql]
    assert len(locks) == (1 if connection.features.has_select_for_update else 0)
    if connection.vendor == "postgresql":
        # The lock, the previous links, then events, scope rows and head in one statement.
        assert len(large) == 3
    assert AuditEvent.objects.count() == 43
    assert AuditEventScope.objects.count() == 86
    assert verify_chain().ok


def test_a_batch_links_each_organisation_chain_through_its_own_events(owner_org, partner_org):
    """Several events of one batch on the same organisations: each scope row links to the one
    before it in the batch, as single events would."""
    record(action=ANY_ACTION, organisation=partner_org)
    with transaction.atomic():
        audit_record_many(
            [
                {
                    "action": ANY_ACTION,
                    "organisation": owner_org,
                    "related_organisations": [partner_org],
                }
            ]
            * 4
        )
    for organisation in (owner_org, partner_org):
        links = list(AuditEventScope.objects.filter(organisation=organisation).order_by("event_id"))
        for previous, scope in itertools.pairwise(links):
            assert scope.org_prev_hash == previous.org_hash
    assert verify_chain().ok


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


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"action": ANY_ACTION, "organisaton": None}, "unexpected keyword argument 'organisaton'"),
        ({"organisation": None}, "missing a required keyword-only argument: 'action'"),
    ],
)
def test_a_record_that_is_not_audit_record_s_arguments_is_refused_as_a_call_would_be(
    owner_org, bad, message
):
    with pytest.raises(TypeError, match=message), transaction.atomic():
        audit_record_many([{"action": ANY_ACTION, "organisation": owner_org}, bad])
    assert not AuditEvent.objects.exists()
