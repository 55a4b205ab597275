""" "The longest credentials allowed" is worked out once, under the issuing lock.

The console, the credentials URI and the API ask for the longest duration allowed. When that
was computed by the caller and computed again under the lock a few microseconds later, a
second boundary passing in between made the request one second too long and it was refused
DurationTooLong (a few in a hundred clicks near a delegation's end). The clock below moves
one microsecond at every reading, starting on a whole second, so a second boundary passes
between the first reading and every later one.
"""

from __future__ import annotations

import datetime as dt
import types

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from delegations.models import CredentialIssuance, Delegation
from delegations.partner import credentials, services
from delegations.partner.console_sign_in import console_sign_in_url
from delegations.partner.credentials import CredentialRefused, credentials_issue
from tests.fixtures.partner import PartnerWorld


def moving_clock(monkeypatch: pytest.MonkeyPatch, *, left: dt.timedelta, ends: dt.datetime) -> None:
    """Every timezone.now() the credentials module reads is one microsecond later than the
    one before; the first leaves exactly `left` before `ends`."""
    state = {"t": ends - left}

    def now() -> dt.datetime:
        value = state["t"]
        state["t"] = value + dt.timedelta(microseconds=1)
        return value

    monkeypatch.setattr(credentials, "timezone", types.SimpleNamespace(now=now))


@pytest.fixture
def ending(partner_world: PartnerWorld) -> tuple[PartnerWorld, Delegation, object]:
    """Alice assigned to a delegation that ends in 30 minutes."""
    world = partner_world
    delegation = world.active_delegation(ends_at=timezone.now() + dt.timedelta(minutes=30))
    assignment = world.assign(delegation, world.alice)
    world.drain()
    return world, delegation, assignment


def test_no_duration_means_the_longest_allowed_when_the_lock_is_taken(
    ending, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, delegation, assignment = ending
    moving_clock(monkeypatch, left=dt.timedelta(seconds=1800), ends=delegation.ends_at)
    issued = credentials_issue(assignment=assignment, user=world.alice, duration_seconds=None)
    # 1800 s were left at the first reading, 1799 and a bit under the lock.
    assert issued.issuance.duration_seconds == 1799
    event = AuditEvent.objects.get(action="credentials.issued")
    assert event.metadata["duration_seconds"] == 1799


def test_the_console_sign_in_is_not_refused_when_a_second_boundary_passes(
    ending, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PORTAL_CONSOLE_FEDERATION = True
    world, delegation, assignment = ending
    moving_clock(monkeypatch, left=dt.timedelta(seconds=1800), ends=delegation.ends_at)
    url = console_sign_in_url(assignment=assignment, user=world.alice, login_url="http://portal/")
    assert "Action=Login" in url
    assert CredentialIssuance.objects.get().duration_seconds == 1799


def test_the_credentials_uri_is_not_refused_when_a_second_boundary_passes(
    ending, client, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, delegation, assignment = ending
    _key, raw = services.credentials_uri_create(
        assignment=assignment, user=world.alice, label="laptop", valid_days=7
    )
    moving_clock(monkeypatch, left=dt.timedelta(seconds=1800), ends=delegation.ends_at)
    response = client.get(reverse("delegations:credentials_uri", args=[raw]))
    assert response.status_code == 200, response.content
    assert response.json()["Code"] == "Success"
    assert CredentialIssuance.objects.get().duration_seconds == 1799


def test_the_credentials_uri_still_asks_for_no_more_than_its_key_allows(ending, client) -> None:
    world, _delegation, assignment = ending
    _key, raw = services.credentials_uri_create(
        assignment=assignment, user=world.alice, valid_days=7, duration_seconds=1000
    )
    response = client.get(reverse("delegations:credentials_uri", args=[raw]))
    assert response.status_code == 200, response.content
    assert CredentialIssuance.objects.get().duration_seconds == 1000


def test_the_longest_allowed_is_refused_when_under_the_lock_it_is_below_15_minutes(
    ending, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PORTAL_CONSOLE_FEDERATION = True
    world, delegation, assignment = ending
    since = world.sim.last_call_seq()
    # Exactly 900 s at the first reading, 899 under the lock: too short for STS.
    moving_clock(monkeypatch, left=dt.timedelta(seconds=900), ends=delegation.ends_at)
    with pytest.raises(CredentialRefused) as refused:
        console_sign_in_url(assignment=assignment, user=world.alice, login_url="http://portal/")
    assert (refused.value.code, refused.value.status) == ("DurationTooLong", 400)
    assert AuditEvent.objects.filter(action="credentials.refused").count() == 1
    assert not [c for c in world.sim.calls(since) if c.get("action") == "AssumeRole"]
    assert not CredentialIssuance.objects.exists()


def test_with_less_than_15_minutes_left_the_longest_allowed_is_refused_before_anything(
    ending, settings
) -> None:
    settings.PORTAL_CONSOLE_FEDERATION = True
    world, delegation, assignment = ending
    Delegation.objects.filter(pk=delegation.pk).update(
        ends_at=timezone.now() + dt.timedelta(minutes=10)
    )
    assignment.delegation.refresh_from_db()
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as invalid:
        credentials_issue(assignment=assignment, user=world.alice, duration_seconds=None)
    assert "Less than 15 minutes" in str(invalid.value)
    with pytest.raises(CredentialRefused) as refused:
        console_sign_in_url(assignment=assignment, user=world.alice, login_url="http://portal/")
    assert (refused.value.code, refused.value.status) == ("DurationTooLong", 400)
    # Bad input: nothing written, nothing called.
    assert AuditEvent.objects.count() == events
    assert not CredentialIssuance.objects.exists()
