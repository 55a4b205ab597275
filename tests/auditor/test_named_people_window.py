"""The access report's named people over a window (issue 11): reconstructed from the recorded
trust-policy writes, so a person removed before the window is not listed, one added after it
neither, and each listed person has from/to -- not today's trust state."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Membership
from api.services import api_token_create
from audit.models import AuditEvent
from auditor.named_people import named_people_over_window, principal_spells
from delegations.lifecycle.named_people import trusted_person_decide
from delegations.models import Delegation, TrustedPerson, TrustScope
from delegations.trust import services
from tests.fixtures.partner import PartnerWorld
from tests.personas import make_member

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
PREFIX = "acs:ram::12345678:user/"


def _write(minutes: int, *, added=(), removed=(), action: str = "UpdateRole") -> SimpleNamespace:
    return SimpleNamespace(
        occurred_at=T0 + dt.timedelta(minutes=minutes),
        metadata={
            "cloud_action": action,
            "request": {"principals_added": list(added), "principals_removed": list(removed)},
        },
    )


def test_the_fold_opens_on_added_and_closes_on_removed_or_a_deleted_role() -> None:
    alice, bob, broker = (PREFIX + "Alice", PREFIX + "Bob", PREFIX + "portal-broker")
    spells = principal_spells(
        [
            _write(0, added=[alice, broker, "acs:ram::12345678:root"]),
            _write(10, added=[bob, "acs:ram::99999999:user/Eve"]),
            _write(20, removed=[alice]),
            _write(30, added=[alice]),
            _write(40, action="DeleteRole"),
            _write(50, added=[bob]),
        ],
        prefix=PREFIX,
        left_out=frozenset({broker}),
    )
    at = lambda minutes: T0 + dt.timedelta(minutes=minutes)  # noqa: E731
    assert dict(spells) == {
        alice: [[at(0), at(20)], [at(30), at(40)]],
        bob: [[at(10), at(40)], [at(50), None]],
    }


@pytest.fixture
def named(partner_world: PartnerWorld) -> tuple[PartnerWorld, Delegation]:
    world = partner_world
    delegation = world.active_delegation()
    services.trust_scope_set(
        delegation=delegation,
        changed_by=world.owner_admin,
        scope=TrustScope.NAMED_OWNER_APPROVED,
        named_people_cap=3,
        require_external_id=False,
        with_mfa=True,
    )
    world.drain()
    return world, delegation


def _approve(world: PartnerWorld, delegation: Delegation, name: str) -> TrustedPerson:
    person = services.trusted_person_propose(
        delegation=delegation, proposed_by=world.partner_admin, ram_user_name=name
    )
    trusted_person_decide(person=person, decided_by=world.owner_admin, approve=True, with_mfa=True)
    world.drain()
    return person


def _write_time(principal_name: str, key: str) -> dt.datetime:
    """When the worker's recorded trust-policy write added or removed this person."""
    arn = PREFIX + principal_name
    for event in AuditEvent.objects.filter(action="cloud.call_result").order_by("sequence"):
        if arn in ((event.metadata or {}).get("request") or {}).get(key, []):
            return event.occurred_at
    raise AssertionError(f"no write {key} {arn}")


def _spells(world: PartnerWorld, since: dt.datetime, until: dt.datetime) -> list:
    [line] = named_people_over_window(
        organisation=world.owner, account_uid="11223344", since=since, until=until
    )
    return [(s.ram_user_name, s.since, s.until) for s in line.could_act]


@pytest.mark.django_db
def test_people_added_and_removed_inside_and_outside_the_window(named) -> None:
    world, delegation = named
    before_anyone = dt.datetime.now(dt.UTC)
    alice = _approve(world, delegation, "Alice")
    _approve(world, delegation, "Bob")
    services.trusted_person_remove(person=alice, removed_by=world.partner_admin)
    world.drain()
    alice_in = _write_time("Alice", "principals_added")
    bob_in = _write_time("Bob", "principals_added")
    alice_out = _write_time("Alice", "principals_removed")
    assert alice_in < bob_in < alice_out
    tick = dt.timedelta(microseconds=1)
    now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)

    # Everything: Alice from/to, Bob from and still in.
    assert _spells(world, before_anyone, now) == [
        ("Alice", alice_in, alice_out),
        ("Bob", bob_in, None),
    ]
    # Before anyone was named: the delegation is listed, with nobody.
    assert _spells(world, before_anyone - dt.timedelta(hours=1), alice_in) == []
    # Alice only: the window ends before Bob's write.
    assert _spells(world, alice_in, bob_in) == [("Alice", alice_in, alice_out)]
    # After Alice left: only Bob, although Alice was named earlier that day.
    assert _spells(world, alice_out + tick, now) == [("Bob", bob_in, None)]
    # Today's state would say "Bob only" for every window; the record says otherwise.
    assert set(
        TrustedPerson.objects.filter(status=TrustedPerson.Status.APPROVED).values_list(
            "ram_user_name", flat=True
        )
    ) == {"Bob"}

    # The partner's own report shows its own people the same way.
    [line] = named_people_over_window(
        organisation=world.partner, account_uid="11223344", since=before_anyone, until=now
    )
    assert [s.ram_user_name for s in line.could_act] == ["Alice", "Bob"]


@pytest.mark.django_db
def test_the_report_page_lists_people_of_the_window_with_from_and_to(named, login) -> None:
    world, delegation = named
    alice = _approve(world, delegation, "Alice")
    services.trusted_person_remove(person=alice, removed_by=world.owner_admin)
    world.drain()
    refused = services.trusted_person_propose(
        delegation=delegation, proposed_by=world.partner_admin, ram_user_name="Bob"
    )
    trusted_person_decide(
        person=refused,
        decided_by=world.owner_admin,
        approve=False,
        reason="Not on the contract",
        with_mfa=True,
    )
    today = dt.datetime.now(dt.UTC).date()
    auditor = make_member(world.owner, Membership.Role.AUDITOR, email="auditor@company-a.example")
    report = reverse("audit:access_report")
    query = {"account": "11223344", "until": (today + dt.timedelta(days=1)).isoformat()}
    page = login(auditor).get(report, {**query, "since": today.isoformat()})
    assert page.status_code == 200
    section = page.content.decode().split('data-testid="named-people"', 1)[1]
    could, refused_part = section.split("not:", 1)
    assert 'data-testid="spell-Alice"' in could and "from " in could and "to " in could
    assert "Bob" not in could and "Bob" in refused_part and "refused" in refused_part

    # The API's access report carries the same list.
    token = api_token_create(user=auditor, name="t", scopes=["audit"], expires_in_days=1).raw
    answer = Client(headers={"Authorization": f"Bearer {token}"}).get(
        "/api/v1/audit/access-report/", {**query, "since": today.isoformat()}
    )
    assert answer.status_code == 200, answer.content
    [line] = answer.json()["named_people"]
    assert line["delegation_id"] == str(delegation.pk) and line["scope"] == "named_owner"
    [spell] = line["could_act"]
    assert spell["ram_user_name"] == "Alice" and spell["since"] and spell["until"]

    # A window that ended before Alice was named (the form's until is a whole day) lists nobody.
    earlier = {
        "since": (today - dt.timedelta(days=7)).isoformat(),
        "until": (today - dt.timedelta(days=1)).isoformat(),
    }
    old = login(auditor).get(report, {**query, **earlier})
    assert old.status_code == 200
    assert "spell-Alice" not in old.content.decode()
