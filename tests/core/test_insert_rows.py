"""`core.db.insert_rows` stores exactly what `bulk_create` stores, on SQLite and PostgreSQL.

On PostgreSQL the rows travel as one JSON parameter and the database casts each value to its
column's type, so every kind of value the portal writes in bulk is checked against Django's
own insert: text that needs escaping, timestamps to the microsecond, UUIDs, foreign keys,
JSON structures, nulls and integers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Organisation, User
from core.db import insert_rows
from notifications.models import Delivery

pytestmark = pytest.mark.django_db

AWKWARD = 'it\'s a "quote", a back\\slash, a\nnewline, 中文, 🙂 and %s %(name)s'


def _deliveries(prefix: str, organisation: Organisation, person: User) -> list[Delivery]:
    when = dt.datetime(2026, 12, 7, 3, 4, 5, 678901, tzinfo=dt.UTC)
    return [
        Delivery(
            idempotency_key=f"{prefix}-{n}",
            event="delegation.active",
            organisation=organisation,
            recipient=person,
            recipient_email=f"p{n}@example.com",
            content={"title": AWKWARD, "facts": [["Role", AWKWARD], ["n", n]], "none": None},
            attempts=n,
            last_error=AWKWARD if n == 1 else "",
            available_at=when + dt.timedelta(microseconds=n),
            dispatched_at=None if n else when,
        )
        for n in range(3)
    ]


def _stored(prefix: str) -> list[tuple[Any, ...]]:
    return [
        (key.removeprefix(prefix), *rest)
        for key, *rest in Delivery.objects.filter(idempotency_key__startswith=prefix)
        .order_by("idempotency_key")
        .values_list(
            "idempotency_key",
            "event",
            "organisation_id",
            "recipient_id",
            "recipient_email",
            "content",
            "status",
            "attempts",
            "last_error",
            "available_at",
            "dispatched_at",
        )
    ]


def test_rows_read_back_as_bulk_create_wrote_them(owner_admin: User) -> None:
    organisation = owner_admin.memberships.get().organisation
    Delivery.objects.bulk_create(_deliveries("django", organisation, owner_admin))
    with CaptureQueriesContext(connection) as queries:
        insert_rows(_deliveries("ours", organisation, owner_admin))

    assert len(queries) == 1
    assert _stored("ours") == _stored("django")
    assert _stored("ours")[1][5]["title"] == AWKWARD
    assert (
        Delivery.objects.filter(idempotency_key__startswith="ours", id__isnull=False).count() == 3
    )


def test_conflicting_rows_are_skipped_only_when_asked(owner_admin: User) -> None:
    from django.db import IntegrityError, transaction

    organisation = owner_admin.memberships.get().organisation
    insert_rows(_deliveries("once", organisation, owner_admin)[:1])
    insert_rows(_deliveries("once", organisation, owner_admin), ignore_conflicts=True)
    assert len(_stored("once")) == 3

    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(_deliveries("once", organisation, owner_admin)[:1])


def test_nothing_to_insert_sends_nothing() -> None:
    with CaptureQueriesContext(connection) as queries:
        insert_rows([])
    assert len(queries) == 0
