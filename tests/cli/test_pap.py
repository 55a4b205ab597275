"""pap, the command line, against a live portal and cloudsim (issue 16): access, request,
credentials in every format, the 0600 cache, exec with the official ECS SDK, the aliyun
External profile read by alibabacloud-credentials, the console link, and one clear line with
a distinct exit status for every failure."""

from __future__ import annotations

import json
import stat
import sys
import textwrap

import pytest
import requests

from accounts.models import Membership
from api.services import api_token_create, service_account_create
from delegations.catalog.partner_links import partner_link_create
from delegations.models import CredentialIssuance, Delegation
from delegations.partner.services import staff_unassign
from tests.cli.conftest import Pap
from tests.delegations.factories import CloudAccountFactory
from tests.fixtures.partner import ecs_client, ecs_instance_names

pytestmark = pytest.mark.django_db(transaction=True)

NO_ACCESS, NOT_SIGNED_IN, UNREACHABLE, BAD_CONFIG = 4, 3, 6, 7


def one_clear_line(result: object) -> str:
    err = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err
    assert err.startswith("pap: ")
    return err


def test_access_lists_the_assigned_delegation(pap: Pap) -> None:
    result = pap.run("access", "--json")
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert [item["delegation"] for item in items] == [str(pap.delegation.pk)]
    assert items[0]["owner"] == "company-a" and items[0]["usable"] is True
    table = pap.run("access")
    assert f"company-a/{pap.world.role_name}" in table.stdout


def test_credentials_in_every_format(pap: Pap) -> None:
    ref = f"company-a/{pap.world.role_name}"
    external = pap.run("credentials", ref, "--format", "aliyun-external")
    assert external.returncode == 0, external.stderr
    body = json.loads(external.stdout)
    assert set(body) == {"mode", "access_key_id", "access_key_secret", "sts_token"}
    assert body["mode"] == "StsToken" and body["access_key_id"].startswith("STS.")

    as_json = json.loads(pap.run("credentials", ref, "--format", "json").stdout)
    assert set(as_json) >= {"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}
    env = pap.run("credentials", str(pap.delegation.pk), "--format", "env").stdout
    assert "export ALIBABA_CLOUD_ACCESS_KEY_ID=STS." in env
    assert "export ALIBABA_CLOUD_SECURITY_TOKEN=" in env
    ps = pap.run("credentials", pap.world.role_name, "--format", "powershell", "--duration", "15m")
    assert "$Env:ALIBABA_CLOUD_ACCESS_KEY_SECRET = '" in ps.stdout
    issued = CredentialIssuance.objects.filter(user=pap.world.alice)
    assert issued.count() == 4
    assert set(issued.values_list("via", flat=True)) == {"api"}
    assert issued.filter(duration_seconds=900).count() == 1


def test_cached_credentials_are_reused_from_a_0600_file(pap: Pap) -> None:
    first = pap.run("credentials", pap.world.role_name, "--format", "json", "--cache")
    second = pap.run("credentials", pap.world.role_name, "--format", "json", "--cache")
    assert first.returncode == second.returncode == 0
    assert json.loads(first.stdout)["AccessKeyId"] == json.loads(second.stdout)["AccessKeyId"]
    assert CredentialIssuance.objects.filter(user=pap.world.alice).count() == 1
    cache = next((pap.home / "pap" / "cache").iterdir())
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE((pap.home / "pap" / "config.json").stat().st_mode) == 0o600


def test_cached_credentials_are_kept_per_duration(pap: Pap) -> None:
    """Credentials cached for one --duration never answer for another: 15 minutes asked for
    are not an hour's, and an hour asked for is not what is left of 15 minutes."""

    def key_id(*duration: str) -> str:
        result = pap.run(
            "credentials", pap.world.role_name, "--format", "json", "--cache", *duration
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["AccessKeyId"]

    short, longer, longest = key_id("--duration", "15m"), key_id("--duration", "30m"), key_id()
    assert len({short, longer, longest}) == 3
    # The same duration, however it is written, is the same cached credentials.
    assert key_id("--duration", "900s") == short
    assert key_id("--duration", "30m") == longer
    assert key_id() == longest
    issued = CredentialIssuance.objects.filter(user=pap.world.alice)
    assert issued.count() == 3
    assert set(issued.values_list("duration_seconds", flat=True)) >= {900, 1800}
    # A duration pap cannot read is refused, cache or not.
    assert (
        pap.run("credentials", pap.world.role_name, "--cache", "--duration", "soon").returncode == 2
    )


def test_caching_new_credentials_deletes_those_of_no_further_use(pap: Pap) -> None:
    """Expired credentials, and files an older pap kept per access alone (they would answer
    any duration), do not stay on disk once pap caches new ones; live ones for another
    duration do."""
    assert (
        pap.run("credentials", pap.world.role_name, "--cache", "--duration", "15m").returncode == 0
    )
    cache = pap.home / "pap" / "cache"
    (live,) = list(cache.iterdir())
    delegation_id = live.name.removeprefix("credentials-").removesuffix("-900s.json")
    expired = cache / f"credentials-{delegation_id}-1800s.json"
    expired.write_text(json.dumps({"expiration": "2020-01-01T00:00:00Z"}))
    expired.chmod(0o600)
    legacy = cache / f"credentials-{delegation_id}.json"
    legacy.write_text(json.dumps({"expiration": "2999-01-01T00:00:00Z"}))
    legacy.chmod(0o600)

    assert pap.run("credentials", pap.world.role_name, "--cache").returncode == 0

    assert sorted(path.name for path in cache.iterdir()) == sorted(
        [live.name, f"credentials-{delegation_id}-longest.json"]
    )


def test_exec_runs_the_official_sdk_with_the_env_vars(pap: Pap) -> None:
    script = textwrap.dedent(
        f"""
        import os
        from alibabacloud_ecs20140526.client import Client
        from alibabacloud_ecs20140526 import models
        from alibabacloud_tea_openapi.utils_models import Config
        client = Client(Config(
            access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
            access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
            security_token=os.environ["ALIBABA_CLOUD_SECURITY_TOKEN"],
            endpoint={pap.world.sim.endpoint!r}, protocol="http", region_id="cn-hangzhou"))
        answer = client.describe_instances(models.DescribeInstancesRequest(region_id="cn-hangzhou"))
        print(sorted(i.instance_name for i in answer.body.instances.instance))
        """
    )
    result = pap.run("exec", pap.world.role_name, "--", sys.executable, "-c", script)
    assert result.returncode == 0, result.stderr
    owner_view = ecs_instance_names(ecs_client(pap.world.sim, *pap.world.sim.root_key("company-a")))
    assert result.stdout.strip() == str(owner_view)
    assert owner_view


def test_configure_aliyun_writes_an_external_profile_the_sdk_reads(
    pap: Pap, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alibabacloud_credentials.provider.cli_profile import CLIProfileCredentialsProvider

    config = pap.home / ".aliyun" / "config.json"
    config.parent.mkdir()
    other = {"name": "default", "mode": "AK", "access_key_id": "x", "access_key_secret": "y"}
    config.write_text(json.dumps({"current": "default", "profiles": [other], "meta_path": ""}))
    result = pap.run(
        "configure-aliyun",
        pap.world.role_name,
        "--profile",
        "company-a",
        "--aliyun-config",
        str(config),
    )
    assert result.returncode == 0, result.stderr
    written = json.loads(config.read_text())
    assert written["current"] == "default"
    assert written["profiles"][0] == other
    profile = written["profiles"][1]
    assert profile["mode"] == "External" and profile["name"] == "company-a"
    assert "--format aliyun-external" in profile["process_command"]
    assert json.loads(config.with_name("config.json.bak").read_text())["profiles"] == [other]

    # The official credentials library runs the profile's command and uses what it prints.
    for key, value in pap.env.items():
        monkeypatch.setenv(key, value)
    provider = CLIProfileCredentialsProvider(profile_name="company-a", profile_file=str(config))
    credentials = provider.get_credentials()
    assert credentials.get_access_key_id().startswith("STS.")
    client = ecs_client(
        pap.world.sim,
        credentials.get_access_key_id(),
        credentials.get_access_key_secret(),
        credentials.get_security_token(),
    )
    assert ecs_instance_names(client)


def test_console_prints_the_switch_role_link(pap: Pap) -> None:
    result = pap.run("console", pap.world.role_name, "--print")
    assert result.returncode == 0, result.stderr
    assert "switchRole.htm" in result.stdout and pap.world.role_name in result.stdout


def _signs_in_once(pap: Pap, url: str) -> None:
    """The one-click URL lands in cloudsim's console as role/session, and only once."""
    assert "AccessKeySecret" not in url and "SecurityToken" not in url
    landed = requests.get(url, allow_redirects=False, timeout=10)
    assert landed.status_code == 302, landed.text
    console = requests.get(
        pap.world.sim.url + "/console", cookies=landed.cookies, allow_redirects=False, timeout=10
    )
    assert console.status_code == 200
    assert f"{pap.world.role_name}/alice@company-b" in console.text
    replay = requests.get(url, allow_redirects=False, timeout=10)
    assert replay.status_code == 401 and "InvalidCredential" in replay.text


def test_console_signs_in_once_through_federation_when_the_portal_offers_it(
    pap: Pap, settings: object
) -> None:
    settings.PORTAL_CONSOLE_FEDERATION = True  # type: ignore[attr-defined]
    printed = pap.run("console", pap.world.role_name, "--print")
    assert printed.returncode == 0, printed.stderr
    url = printed.stdout.strip()
    assert "Action=Login" in url and "SigninToken=" in url
    assert "single use" in printed.stderr
    _signs_in_once(pap, url)
    issued = CredentialIssuance.objects.filter(via=CredentialIssuance.Via.CONSOLE)
    assert issued.count() == 1 and issued.get().user == pap.world.alice

    # Without --print the URL goes to the browser only (here a script that keeps it).
    browser = pap.home / "browser.sh"
    kept = pap.home / "opened-url"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {kept}\n')
    browser.chmod(0o700)
    opened = pap.run("console", pap.world.role_name, BROWSER=str(browser))
    assert opened.returncode == 0, opened.stderr
    assert "SigninToken" not in opened.stdout and "Opened the console" in opened.stdout
    _signs_in_once(pap, kept.read_text())


def test_request_files_a_request_and_prints_its_link(pap: Pap) -> None:
    world = pap.world
    _link, code = partner_link_create(owner=world.owner, created_by=world.owner_admin, label="B")
    token = api_token_create(
        user=world.partner_admin, name="t", scopes=["read", "request"], expires_in_days=1
    ).raw
    pap.sign_in(token=token)
    # The open delegation of the same role is a duplicate: revoke it first.
    world.revoke(pap.delegation)
    world.drain()
    result = pap.run(
        "request", "--code", code, "--role", world.role_name, "--reason", "Patching", "--for", "8h"
    )
    assert result.returncode == 0, result.stderr
    delegation = Delegation.objects.get(status=Delegation.Status.REQUESTED)
    assert f"/delegations/{delegation.pk}/" in result.stdout
    assert delegation.ends_at is not None


def test_request_in_another_of_the_owners_accounts_with_account(pap: Pap) -> None:
    """`--account UID` files the request in that owner account, where the role is offered
    (the open delegation in the role's home account is no duplicate of it); an account it is
    not offered in, or one that is not the owner's, is refused in one line that says so."""
    world = pap.world
    staging = CloudAccountFactory(
        organisation=world.owner, account_uid="11223355", alias="", is_primary=False
    )
    world.catalog_role.extra_accounts.add(staging)
    CloudAccountFactory(organisation=world.owner, account_uid="11223366", is_primary=False)
    _link, code = partner_link_create(owner=world.owner, created_by=world.owner_admin, label="B")
    token = api_token_create(
        user=world.partner_admin, name="t", scopes=["read", "request"], expires_in_days=1
    ).raw
    pap.sign_in(token=token)
    ask = ("request", "--code", code, "--role", world.role_name, "--reason", "Patching staging")

    refused = pap.run(*ask, "--account", "11223366")
    assert refused.returncode != 0
    assert f"{world.role_name} is not offered in the account 11223366." in one_clear_line(refused)
    # The partner's own account is not one of the owner's.
    refused = pap.run(*ask, "--account", world.partner_account.account_uid)
    assert refused.returncode != 0
    said = one_clear_line(refused)
    assert f"{world.owner.name} has no connected cloud account with this UID." in said
    assert not Delegation.objects.filter(status=Delegation.Status.REQUESTED).exists()
    result = pap.run(*ask, "--account", "11223355")

    assert result.returncode == 0, result.stderr
    delegation = Delegation.objects.get(status=Delegation.Status.REQUESTED)
    assert delegation.managed_role.cloud_account == staging
    assert f"/delegations/{delegation.pk}/" in result.stdout
    assert "in the account 11223355" in result.stdout


def test_roles_lists_what_an_owner_reached_before_grants_and_where(pap: Pap) -> None:
    """`pap roles --owner` shows the roles a partner admin may request of an owner their
    organisation requested from with a code, each with the accounts it is offered in (what
    `pap request --account` may name); before that request the owner is not found."""
    world = pap.world
    staging = CloudAccountFactory(
        organisation=world.owner, account_uid="11223355", alias="", is_primary=False
    )
    world.catalog_role.extra_accounts.add(staging)
    _link, code = partner_link_create(owner=world.owner, created_by=world.owner_admin, label="B")
    token = api_token_create(
        user=world.partner_admin, name="t", scopes=["read", "request"], expires_in_days=1
    ).raw
    pap.sign_in(token=token)
    owner = world.owner.slug

    unknown = pap.run("roles", "--owner", owner)
    assert unknown.returncode != 0
    assert "no valid partner link of this owner" in one_clear_line(unknown)
    asked = pap.run(
        "request", "--code", code, "--role", world.role_name, "--account", "11223355",
        "--reason", "Patching staging",
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    result = pap.run("roles", "--owner", owner)

    assert result.returncode == 0, result.stderr
    header, *rows = [line.split() for line in result.stdout.splitlines()]
    assert header == ["ID", "ROLE", "ACCOUNTS", "POLICIES"]
    assert rows == [
        [
            str(world.catalog_role.pk),
            world.role_name,
            f"{world.owner.account_uid},11223355",
            ",".join(policy["name"] for policy in world.catalog_role.policies),
        ]
    ]
    listed = json.loads(pap.run("roles", "--owner", owner, "--json").stdout)
    assert [role["offered_in_account_uids"] for role in listed] == [
        [world.owner.account_uid, "11223355"]
    ]


def test_a_pipeline_requests_with_its_service_account_token(pap: Pap) -> None:
    """CI: no sign-in, the service account's token in PAP_TOKEN; the request names it."""
    world = pap.world
    _link, code = partner_link_create(owner=world.owner, created_by=world.owner_admin, label="CI")
    token = service_account_create(
        organisation=world.partner,
        created_by=world.partner_admin,
        name="nightly",
        scopes=["read", "request"],
        expires_in_days=1,
    ).raw
    world.revoke(pap.delegation)
    world.drain()
    (pap.home / "pap" / "config.json").unlink()
    result = pap.run(
        "request",
        "--code",
        code,
        "--role",
        world.role_name,
        "--reason",
        "Nightly patch run",
        PAP_TOKEN=token,
        PAP_PORTAL=pap.portal,
    )
    assert result.returncode == 0, result.stderr
    delegation = Delegation.objects.get(status=Delegation.Status.REQUESTED)
    assert f"/delegations/{delegation.pk}/" in result.stdout
    assert delegation.requested_by is None
    assert delegation.requester == "service account nightly"
    # It has no access of its own to take credentials with.
    denied = pap.run("credentials", world.role_name, PAP_TOKEN=token, PAP_PORTAL=pap.portal)
    assert denied.returncode != 0
    one_clear_line(denied)


# --- denials: why, where to ask, and a distinct status -----------------------------------------


def test_revoked_access_says_so_and_where_to_request(pap: Pap) -> None:
    pap.world.revoke(pap.delegation)
    pap.world.drain()
    result = pap.run("credentials", str(pap.delegation.pk))
    assert result.returncode == NO_ACCESS
    err = one_clear_line(result)
    assert "revoked" in err
    assert "request access at http" in err


def test_an_unassigned_person_is_told(pap: Pap) -> None:
    assignment = pap.delegation.staff_assignments.get(user=pap.world.alice)
    staff_unassign(assignment=assignment, unassigned_by=pap.world.partner_admin)
    result = pap.run("credentials", str(pap.delegation.pk))
    assert result.returncode == NO_ACCESS
    assert "assignment" in one_clear_line(result)


def test_someone_with_no_access_at_all(pap: Pap) -> None:
    bob_token = api_token_create(
        user=pap.world.bob, name="t", scopes=["read", "credentials"], expires_in_days=1
    ).raw
    pap.sign_in(token=bob_token)
    result = pap.run("access")
    assert result.returncode == NO_ACCESS
    assert "no access" in result.stdout


def test_an_unreachable_portal_an_expired_token_and_a_bad_config(pap: Pap) -> None:
    pap.sign_in(portal="http://127.0.0.1:9")
    result = pap.run("access")
    assert result.returncode == UNREACHABLE
    assert "Cannot reach the portal" in one_clear_line(result)

    pap.sign_in(token="pap_00000000_expired")
    result = pap.run("access")
    assert result.returncode == NOT_SIGNED_IN
    assert "pap login" in one_clear_line(result)

    (pap.home / "pap" / "config.json").write_text("{not json")
    result = pap.run("access")
    assert result.returncode == BAD_CONFIG
    one_clear_line(result)


def test_a_removed_member_is_signed_out(pap: Pap) -> None:
    Membership.objects.filter(user=pap.world.alice).delete()
    result = pap.run("access")
    assert result.returncode == NOT_SIGNED_IN
    one_clear_line(result)


def test_an_admin_sees_the_organisation_s_active_delegations(pap: Pap) -> None:
    token = api_token_create(
        user=pap.world.partner_admin, name="t", scopes=["read"], expires_in_days=1
    ).raw
    pap.sign_in(token=token)
    result = pap.run("access")
    assert result.returncode == 0, result.stderr
    assert str(pap.delegation.pk) in result.stdout and "company-b" in result.stdout
    # A partner's admin also sees who of their staff is assigned to which delegation.
    role = pap.delegation.catalog_role.role_name
    staff_line = next(line for line in result.stdout.splitlines() if pap.world.alice.email in line)
    assert f"company-a/{role}" in staff_line and str(pap.delegation.pk) in staff_line
    listed = json.loads(pap.run("access", "--json").stdout)
    assert [item["id"] for item in listed["delegations"]] == [str(pap.delegation.pk)]
    assert [(item["user"], item["delegation"]) for item in listed["assignments"]] == [
        (pap.world.alice.email, str(pap.delegation.pk))
    ]
