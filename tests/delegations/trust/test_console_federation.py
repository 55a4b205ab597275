"""One-click console: the portal assumes the role as the person and signs them in through
cloudsim's federation endpoint; the token works once; people not named are refused first."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from delegations.models import CredentialIssuance, TrustScope
from delegations.partner.console_sign_in import console_sign_in_url
from delegations.partner.credentials import CredentialRefused
from delegations.trust import services
from tests.fixtures.partner import PartnerWorld


@pytest.fixture
def named(partner_world: PartnerWorld, settings):
    settings.PORTAL_CONSOLE_FEDERATION = True
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    world.link(world.bob, "Bob")
    alice = world.assign(delegation, world.alice)
    bob = world.assign(delegation, world.bob)
    services.trust_scope_set(
        delegation=delegation,
        changed_by=world.owner_admin,
        scope=TrustScope.NAMED_OWNER_APPROVED,
        named_people_cap=3,
        require_external_id=True,
        with_mfa=True,
    )
    person = services.trusted_person_propose(
        delegation=delegation, proposed_by=world.partner_admin, ram_user_name="Alice"
    )
    services.trusted_person_decide(
        person=person, decided_by=world.owner_admin, approve=True, with_mfa=True
    )
    world.drain()
    alice.refresh_from_db()
    bob.refresh_from_db()
    return world, alice, bob


def test_alice_opens_the_console_in_one_click_and_the_token_works_once(named) -> None:
    world, alice, _ = named
    url = console_sign_in_url(assignment=alice, user=world.alice, login_url="http://portal/")
    query = parse_qs(urlsplit(url).query)
    assert query["Action"] == ["Login"] and query["SigninToken"]
    assert "AccessKeySecret" not in url and "SecurityToken" not in url

    landed = requests.get(url, allow_redirects=False, timeout=10)
    assert landed.status_code == 302
    assert urlsplit(landed.headers["Location"]).path == "/console"
    console = requests.get(
        world.sim.url + "/console", cookies=landed.cookies, allow_redirects=False, timeout=10
    )
    assert console.status_code == 200
    assert f"{world.role_name}/alice@company-b" in console.text
    assert "company-a" in console.text
    assert "web-1" in console.text  # the role's ECS rights, as the role session

    replay = requests.get(url, allow_redirects=False, timeout=10)
    assert replay.status_code == 401
    assert "InvalidCredential" in replay.text
    issuance = CredentialIssuance.objects.get(via=CredentialIssuance.Via.CONSOLE)
    assert issuance.user == world.alice


def test_bob_not_named_is_refused_before_any_cloud_call(named) -> None:
    world, _, bob = named
    with pytest.raises(CredentialRefused) as refused:
        console_sign_in_url(assignment=bob, user=world.bob, login_url="http://portal/")
    assert refused.value.code == "NotNamed"
    assert not CredentialIssuance.objects.filter(user=world.bob).exists()


def test_long_term_keys_get_no_signin_token(named) -> None:
    world, _, _ = named
    key_id, secret = world.demo_user_key("Alice")
    answer = requests.post(
        world.sim.url + "/federation",
        data={
            "Action": "GetSigninToken",
            "AccessKeyId": key_id,
            "AccessKeySecret": secret,
            "SecurityToken": "x",
            "TicketType": "normal",
        },
        timeout=10,
    )
    assert answer.status_code == 401
    assert answer.json()["Code"] == "InvalidCredential.AuthenticateFail"


def test_the_setting_off_means_no_console_sign_in(named, settings) -> None:
    world, alice, _ = named
    settings.PORTAL_CONSOLE_FEDERATION = False
    with pytest.raises(CredentialRefused) as refused:
        console_sign_in_url(assignment=alice, user=world.alice, login_url="http://portal/")
    assert refused.value.code == "ConsoleFederationOff"
