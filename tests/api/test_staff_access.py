"""Partner staff through the API (`pap credentials`, `pap console`) against cloudsim: a
narrowed assignment is never offered the console's switch-role link (it could not carry the
session policy)."""

from __future__ import annotations

from django.test import Client

from accounts.models import User
from api.services import api_token_create
from tests.fixtures.partner import PartnerWorld


def staff_api(user: User) -> Client:
    token = api_token_create(
        user=user, name="pap", scopes=["read", "credentials"], expires_in_days=1
    ).raw
    return Client(headers={"Authorization": f"Bearer {token}"})


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
