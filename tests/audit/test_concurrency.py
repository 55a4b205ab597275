"""Concurrent writers queue on the chain head: the chain never forks."""

import itertools
import threading

import pytest
from django.db import connection, connections, transaction

from audit.models import AuditEvent
from audit.services import audit_record
from audit.verify import verify_chain
from tests.audit.conftest import ANY_ACTION, make_organisation, requires_postgresql

THREADS = 8
EVENTS_PER_THREAD = 25


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_many_threads_writing_at_once_keep_one_linear_chain():
    organisation = make_organisation()
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            start.wait()
            for index in range(EVENTS_PER_THREAD):
                with transaction.atomic():
                    audit_record(
                        action=ANY_ACTION,
                        organisation=organisation,
                        target_type="test.writer",
                        target_id=str(number),
                        metadata={"index": index},
                    )
        except BaseException as error:  # collected and re-raised in the main thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)

    total = THREADS * EVENTS_PER_THREAD
    rows = list(
        AuditEvent.objects.order_by("sequence").values_list("sequence", "prev_hash", "hash")
    )
    assert [sequence for sequence, _, _ in rows] == list(range(1, total + 1))
    for (_, _, previous_hash), (_, prev_hash, _) in itertools.pairwise(rows):
        assert prev_hash == previous_hash
    assert len({hash_ for _, _, hash_ in rows}) == total
    # Each writer's own events appear in the order it wrote them.
    for number in range(THREADS):
        indexes = [
            event.metadata["index"]
            for event in AuditEvent.objects.filter(target_id=str(number)).order_by("sequence")
        ]
        assert indexes == list(range(EVENTS_PER_THREAD))
    result = verify_chain()
    assert result.ok and result.count == total, result.summary()


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_writer_waits_for_the_chain_head_lock():
    """While one transaction holds the head, another writer blocks instead of forking."""
    holding = threading.Event()
    release = threading.Event()
    sequences: dict[str, int] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                sequences["first"] = audit_record(action=ANY_ACTION).sequence
                holding.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            holding.wait(timeout=30)
            with transaction.atomic():
                sequences["second"] = audit_record(action=ANY_ACTION).sequence
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    holding.wait(timeout=30)
    threads[1].join(timeout=1)
    assert threads[1].is_alive(), "the second writer should be waiting on the head lock"
    assert "second" not in sequences
    release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert sequences == {"first": 1, "second": 2}
    assert verify_chain().ok
    assert connection.vendor == "postgresql"
