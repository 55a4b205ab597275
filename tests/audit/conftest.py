import itertools

import pytest
from django.db import connection, transaction

from accounts.models import Organisation, User
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record

_numbers = itertools.count(1)

# The event the ledger tests write when which one does not matter.
ANY_ACTION = AuditAction.ORGANISATION_SWITCHED


def make_organisation(kind: str = Organisation.Kind.OWNER, name: str | None = None) -> Organisation:
    number = next(_numbers)
    return Organisation.objects.create(
        name=name or f"Company {number}",
        slug=f"company-{number}-{kind}",
        kind=kind,
        account_uid=f"{10_000_000 + number}",
    )


def make_user(email: str | None = None, **extra: object) -> User:
    return User.objects.create_user(email or f"person{next(_numbers)}@example.com", "pw", **extra)


def record(**kwargs: object) -> AuditEvent:
    """audit_record inside its own transaction, the way a service calls it."""
    with transaction.atomic():
        return audit_record(**kwargs)


def write_events(count: int, *, organisation: Organisation | None = None, **kwargs: object):
    return [
        record(
            action=ANY_ACTION,
            organisation=organisation,
            target_type="test.thing",
            target_id=str(number),
            target_label=f"thing {number}",
            metadata={"number": number},
            **kwargs,
        )
        for number in range(count)
    ]


@pytest.fixture
def owner_org(db) -> Organisation:
    return make_organisation(Organisation.Kind.OWNER, name="Company A")


@pytest.fixture
def partner_org(db) -> Organisation:
    return make_organisation(Organisation.Kind.PARTNER, name="Company B")


@pytest.fixture
def admin_user(db) -> User:
    return make_user("ada@example.com", first_name="Ada", last_name="Admin")


requires_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs DATABASE_URL pointing at PostgreSQL"
)
