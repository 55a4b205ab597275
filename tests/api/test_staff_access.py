"""Partner staff through the API (`pap credentials`, `pap console`) against cloudsim: the
default duration is the longest allowed when the lock is taken, and a narrowed assignment is
never offered the console's switch-role link (it could not carry the session policy)."""

from __future__ import annotations

import datetime as dt
import types

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from api.services import api_token_create
from delegations.models import CredentialIssuance
from delegations.partner import credentials
from tests.fixtures.partner import PartnerWorld


def staff_api(user: User) -> Client:
    token = api_token_create(
        user=user, name="pap", scopes=["read", "credentials"], expires_in_days=1
    ).raw
    return Client(headers={"Authorization": f"Bearer {token}"})


def test_credentials_without_a_duration_are_not_refused_when_a_second_boundary_passes(
    partner_world: PartnerWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = partner_world
    delegation = world.active_delegation(ends_at=timezone.now() + dt.timedelta(minutes=30))
    world.assign(delegation, world.alice)
    world.drain()
    # Every reading of the clock is a microsecond later; the first leaves exactly 1800 s.
    state = {"t": delegation.ends_at - dt.timedelta(seconds=1800)}

    def now() -> dt.datetime:
        value = state["t"]
        state["t"] = value + dt.timedelta(microseconds=1)
        return value

    monkeypatch.setattr(credentials, "timezone", types.SimpleNamespace(now=now))
    answer = staff_api(world.alice).post(
        f"/api/v1/access/{delegation.pk}/credentials/", {}, content_type="application/json"
    )
    assert answer.status_code == 201, answer.content
    assert CredentialIssuance.objects.get().duration_seconds == 1799


def test_an_explicit_duration_is_still_validated(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation(ends_at=timezone.now() + dt.timedelta(minutes=30))
    world.assign(delegation, world.alice)
    world.drain()
    answer = staff_api(world.alice).post(
        f"/api/v1/access/{delegation.pk}/credentials/",
        {"duration_seconds": 3600},
        content_type="application/json",
    )
    assert answer.status_code == 400
    assert not CredentialIssuance.objects.exists()


def test_a_narrowed_assignment_gets_no_switch_role_link(
    partner_world: PartnerWorld, settings
) -> None:
    settings.PORTAL_CONSOLE_FEDERATION = False
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    world.link(world.bob, "Bob")
    world.assign(delegation, world.alice, session_policy_kind="read_only")
    world.assign(delegation, world.bob)
    world.drain()

    refused = staff_api(world.alice).post(
        f"/api/v1/access/{delegation.pk}/console/", {}, content_type="application/json"
    )
    assert refused.status_code == 403, refused.content
    problem = refused.json()
    assert problem["code"] == "SessionPolicyNarrowed" and "url" not in problem
    assert "portal" in problem["detail"]
    access = staff_api(world.alice).get(f"/api/v1/access/{delegation.pk}/").json()
    assert access["switch_role_url"] == ""

    # Not narrowed: the link, as before.
    link = staff_api(world.bob).post(
        f"/api/v1/access/{delegation.pk}/console/", {}, content_type="application/json"
    )
    assert link.status_code == 201 and link.json()["mode"] == "switch_role"
