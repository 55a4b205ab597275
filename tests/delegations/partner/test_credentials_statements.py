"""Credential issuance in few round trips (issue 19 item 5): the rows it stands on are locked
and read again in one statement, and the statements of one issuance are pinned per database,
so a change that adds a round trip fails here (counted with Django's CaptureQueriesContext;
no time is measured)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership
from delegations.models import CredentialsUriToken
from delegations.partner.credentials import CredentialRefused, credentials_issue
from delegations.partner.issuing_lock import issuing_rows_lock
from delegations.partner.services import credentials_uri_create
from tests.fixtures.partner import PartnerWorld

# Every statement of one web issuance (early checks, the intent event, the locks, the result
# row and its event, the security notice to the person), on each database the suite runs on.
# Lower it when you cut one.
PINNED_STATEMENTS = {"postgresql": 11, "sqlite": 21}


def _issue(world: PartnerWorld) -> list[str]:
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)
    with CaptureQueriesContext(connection) as captured:
        credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    return [query["sql"] for query in captured.captured_queries]


def test_an_issuance_locks_its_rows_in_one_statement(partner_world: PartnerWorld) -> None:
    statements = _issue(partner_world)

    locking = [sql for sql in statements if "FOR UPDATE" in sql.upper()]
    if connection.features.has_select_for_update_of:
        # The chain head of each of the two audit events, and the issuance's four rows at once.
        issuing = [sql for sql in locking if "FOR UPDATE OF" in sql.upper()]
        assert len(issuing) == 1, issuing
        for table in ("delegation", "membership", "staffassignment"):
            assert table in issuing[0]
    assert len(statements) == PINNED_STATEMENTS[connection.vendor], "\n".join(statements)


def test_the_locked_read_sees_a_member_who_is_no_longer_staff(
    partner_world: PartnerWorld,
) -> None:
    world = partner_world
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)
    Membership.objects.filter(user=world.alice, organisation=world.partner).update(
        role=Membership.Role.ADMIN
    )

    with pytest.raises(CredentialRefused) as refused:
        credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)

    assert refused.value.code == "NotStaff"


def test_the_locked_read_of_someone_who_left_says_not_a_member(
    partner_world: PartnerWorld,
) -> None:
    world = partner_world
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)
    Membership.objects.filter(user=world.alice, organisation=world.partner).delete()

    rows = issuing_rows_lock(
        delegation=delegation, assignment=assignment, user=world.alice, uri_key=None
    )

    assert rows.member_role is None
    assert rows.status == delegation.status and rows.ended_at is None


def test_the_locked_read_carries_the_uri_keys_state(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)
    key, _raw = credentials_uri_create(assignment=assignment, user=world.alice, valid_days=7)
    CredentialsUriToken.objects.filter(pk=key.pk).update(use_count=3)

    rows = issuing_rows_lock(
        delegation=delegation, assignment=assignment, user=world.alice, uri_key=key
    )

    assert rows.key_use_count == 3 and rows.member_role == Membership.Role.STAFF
    assert rows.key_revoked_at is None and rows.key_expires_at == key.expires_at
