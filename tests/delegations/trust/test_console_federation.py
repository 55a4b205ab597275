"""One-click console: the portal assumes the role as the person and signs them in through
cloudsim's federation endpoint; the token works once; people not named are refused first."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from api.services import api_token_create
from core.security_headers import origin_of
from delegations.lifecycle.named_people import trusted_person_decide
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
        trust_broker=True,  # one-click console is brokered by the portal
    )
    person = services.trusted_person_propose(
        delegation=delegation, proposed_by=world.partner_admin, ram_user_name="Alice"
    )
    trusted_person_decide(person=person, decided_by=world.owner_admin, approve=True, with_mfa=True)
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


# --- Open console is a real redirect: the CSP allows exactly the sign-in origin ------------------


def _form_action(response) -> list[str]:
    policy = response["Content-Security-Policy"]
    [directive] = [part.strip() for part in policy.split(";") if "form-action" in part]
    return directive.split()[1:]


def test_open_console_is_a_303_to_the_sign_in_and_my_access_allows_only_that_origin(
    named, login, settings
) -> None:
    world, alice, _ = named
    client = login(world.alice)
    page = client.get("/delegations/my-access/")
    assert page.status_code == 200 and b'data-testid="open-console"' in page.content
    assert _form_action(page) == ["'self'", world.sim.url]

    answer = client.post(f"/delegations/my-access/{alice.delegation_id}/console/")
    assert answer.status_code == 303
    location = answer["Location"]
    assert location.startswith(f"{world.sim.url}/federation?") and "SigninToken=" in location
    assert "AccessKeySecret" not in location
    assert answer["Referrer-Policy"] == "no-referrer"
    assert "no-store" in answer["Cache-Control"]
    landed = requests.get(location, allow_redirects=False, timeout=10)
    assert landed.status_code == 302  # the cloud's console takes it, once

    # Federation off, or a person without the button: the portal's own policy, unwidened.
    bob_page = login(world.bob).get("/delegations/my-access/")
    assert _form_action(bob_page) == ["'self'"]
    settings.PORTAL_CONSOLE_FEDERATION = False
    assert _form_action(client.get("/delegations/my-access/")) == ["'self'"]


def test_the_step_up_page_in_front_of_open_console_allows_the_sign_in_origin_too(
    named, login
) -> None:
    world, alice, _ = named
    client = login(world.alice, reauthenticated=False)
    console_path = f"/delegations/my-access/{alice.delegation_id}/console/"
    suspended = client.post(console_path)
    assert suspended.status_code == 302 and "reauthenticate" in suspended["Location"]
    confirm = client.get(suspended["Location"])
    assert confirm.status_code == 200
    assert _form_action(confirm) == ["'self'", world.sim.url]
    # The same page for anything else keeps form-action 'self'.
    other = client.get("/accounts/reauthenticate/?next=/delegations/my-access/")
    assert _form_action(other) == ["'self'"]


@pytest.mark.parametrize(
    "url",
    ["*", "https://*", "https://*.aliyun.com", "javascript:alert(1)", "", "https://", "data:x"],
)
def test_only_one_concrete_http_origin_is_ever_allowed(url: str) -> None:
    with pytest.raises(ValueError):
        origin_of(url)


def test_an_origin_is_the_scheme_and_host_only() -> None:
    assert origin_of("https://signin.aliyun.com/federation?x=1") == "https://signin.aliyun.com"
    assert origin_of("http://127.0.0.1:8123/") == "http://127.0.0.1:8123"


def test_pap_console_follows_the_trust_scope(named, settings) -> None:
    """`POST /api/v1/access/<id>/console/`: the named person gets a one-click URL; a person
    the scope leaves out is told why (no URL); without the broker trusted, the switch-role
    link for the person's own RAM user."""
    world, alice, _ = named

    def console(user):
        token = api_token_create(
            user=user, name="pap", scopes=["read", "credentials"], expires_in_days=1
        ).raw
        client = Client(headers={"Authorization": f"Bearer {token}"})
        return client.post(
            f"/api/v1/access/{alice.delegation_id}/console/", {}, content_type="application/json"
        )

    answer = console(world.alice)
    assert answer.status_code == 201 and answer.json()["mode"] == "federation"
    assert "no-store" in answer["Cache-Control"]
    refused = console(world.bob)
    assert refused.status_code == 403 and refused.json()["code"] == "NotNamed"
    assert "propose you" in refused.json()["detail"] and "url" not in refused.json()

    services.trust_scope_set(
        delegation=alice.delegation,
        changed_by=world.owner_admin,
        scope=TrustScope.NAMED_OWNER_APPROVED,
        named_people_cap=3,
        require_external_id=True,
        with_mfa=True,
        trust_broker=False,
    )
    link = console(world.alice).json()
    assert link["mode"] == "switch_role" and "switchRole.htm" in link["url"]
