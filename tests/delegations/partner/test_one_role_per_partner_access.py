"""A partner's staff on a catalogue role with one role per partner (issue 19 item 1): the
switch-role link and STS credentials name the partner's own role, end to end in cloudsim."""

from __future__ import annotations

from django.urls import reverse

from delegations.partner.credentials import credentials_issue
from tests.fixtures.partner import OWNER_UID, PartnerWorld


def test_staff_switch_to_and_assume_their_partners_own_role(
    partner_world: PartnerWorld, login
) -> None:
    world = partner_world
    world.catalog_role.one_role_per_partner = True
    world.catalog_role.save(update_fields=["one_role_per_partner"])
    delegation = world.active_delegation()
    own_role = delegation.managed_role.role_name
    alias = world.partner.enterprise_alias or world.partner.account_uid
    assert own_role == f"{world.role_name}-{alias}"
    world.link(world.alice, "Alice")
    assignment = world.assign(delegation, world.alice)
    world.drain()

    html = login(world.alice).get(reverse("delegations:my_access")).content.decode()
    assert f"roleName={own_role}" in html
    assert f"roleName={world.role_name}&" not in html

    issued = credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    # STS answers with the role's ARN (RAM compares role names without regard to case).
    assumed = issued.credentials.assumed_role_arn.lower()
    assert assumed.startswith(f"acs:ram::{OWNER_UID}:role/{own_role.lower()}/")


def test_the_switch_role_steps_name_the_role_the_link_fills_in(
    partner_world: PartnerWorld, login
) -> None:
    """The console shows the partner's own role; the steps that tell the person what to check
    before pressing Submit name that role, not the catalogue's."""
    world = partner_world
    world.catalog_role.one_role_per_partner = True
    world.catalog_role.save(update_fields=["one_role_per_partner"])
    delegation = world.active_delegation()
    own_role = delegation.managed_role.role_name
    world.link(world.alice, "Alice")
    world.assign(delegation, world.alice)
    world.drain()

    html = login(world.alice).get(reverse("delegations:my_access")).content.decode()
    steps = html[html.index('<ol class="steps">') : html.index("</ol>")]
    assert f'role <span class="mono">{own_role}</span> are filled in' in steps
    assert f'You now act as <span class="mono">{own_role}</span>' in steps
