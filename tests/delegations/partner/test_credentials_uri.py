"""The credentials URI against pytest-django's live server, read by the official
`alibabacloud-credentials` URI provider (`Config(type='credentials_uri', ...)` and the
`ALIBABA_CLOUD_CREDENTIALS_URI` variable), with the ECS SDK using what it fetched.

Every fetch is authorised afresh: revoking the delegation, unassigning the person, removing
them from the organisation, revoking or expiring the key each turn the next fetch into a
403 JSON error whose `Code` is not Success. Fetches are rate-limited and audited.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, User
from audit.models import AuditEvent
from delegations.models import CredentialIssuance, CredentialsUriToken, Delegation
from delegations.partner import services
from tests.fixtures.partner import PartnerWorld, ecs_instance_names

pytestmark = pytest.mark.django_db(transaction=True)

EXPIRATION = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str) -> tuple[int, dict]:
    try:
        with _OPENER.open(url, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def uri(partner_world_tx: PartnerWorld, live_server):
    """An active delegation, Alice assigned, and her credentials URI on the live server."""
    world = partner_world_tx
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)
    world.drain()
    key, raw = services.credentials_uri_create(
        assignment=assignment, user=world.alice, label="laptop", valid_days=7
    )
    url = live_server.url + reverse("delegations:credentials_uri", args=[raw])
    yield world, delegation, assignment, key, url
    # The SDK keeps a keep-alive connection per host; close the one to this live server so
    # no server thread is left waiting on it when the live server stops.
    from Tea.core import TeaCore

    for session_key in [k for k in TeaCore._sessions if k.endswith(live_server.url.split("//")[1])]:
        TeaCore._sessions.pop(session_key).close()


def test_the_sdk_uri_provider_fetches_working_credentials(uri) -> None:
    from alibabacloud_credentials.client import Client as CredentialClient
    from alibabacloud_credentials.models import Config as CredentialConfig
    from alibabacloud_ecs20140526.client import Client as EcsClient
    from alibabacloud_tea_openapi.utils_models import Config

    world, _delegation, _assignment, key, url = uri
    status, body = fetch(url)
    assert status == 200
    assert set(body) == {"Code", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}
    assert body["Code"] == "Success"
    assert EXPIRATION.match(body["Expiration"])

    credential = CredentialClient(CredentialConfig(type="credentials_uri", credentials_uri=url))
    fetched = credential.get_credential()
    assert fetched.access_key_id.startswith("STS.") or fetched.access_key_id
    ecs = EcsClient(
        Config(
            credential=credential,
            endpoint=world.sim.endpoint,
            protocol="http",
            region_id="cn-hangzhou",
        )
    )
    assert ecs_instance_names(ecs) == ["batch-1", "web-1", "web-2"]

    issuances = CredentialIssuance.objects.filter(via="uri", uri_token=key)
    assert issuances.count() == 2
    assert {i.session_name for i in issuances} == {"alice@company-b"}
    key.refresh_from_db()
    assert key.use_count == 2 and key.last_used_at is not None
    assert AuditEvent.objects.filter(action="credentials.issued").count() == 2


def test_the_environment_variable_route(uri, tmp_path: Path) -> None:
    """ALIBABA_CLOUD_CREDENTIALS_URI, read by the SDK's default credentials chain in a fresh
    process (it reads the variable when it is imported)."""
    _world, _delegation, _assignment, _key, url = uri
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "ALIBABA_CLOUD_CREDENTIALS_URI": url,
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    script = (
        "from alibabacloud_credentials.client import Client\n"
        "c = Client().get_credential()\n"
        "print(c.access_key_id, c.provider_name if hasattr(c, 'provider_name') else '')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    issued = CredentialIssuance.objects.get(via="uri")
    assert issued.access_key_id in done.stdout


@pytest.mark.parametrize(
    "how", ["revoke", "unassign", "remove_member", "revoke_key", "expire_key", "deactivate_user"]
)
def test_every_fetch_is_authorised_afresh(uri, how: str) -> None:
    world, delegation, assignment, key, url = uri
    assert fetch(url)[0] == 200
    if how == "revoke":
        world.revoke(Delegation.objects.get(pk=delegation.pk))
    elif how == "unassign":
        services.staff_unassign(assignment=assignment, unassigned_by=world.partner_admin)
    elif how == "remove_member":
        from accounts.services import membership_remove

        membership_remove(
            membership=Membership.objects.get(user=world.alice, organisation=world.partner),
            removed_by=world.partner_admin,
        )
    elif how == "deactivate_user":
        # As the API refuses a deactivated person's tokens, the URI refuses their keys.
        User.objects.filter(pk=world.alice.pk).update(is_active=False)
    elif how == "revoke_key":
        services.credentials_uri_revoke(uri_key=key, revoked_by=world.alice)
    else:
        CredentialsUriToken.objects.filter(pk=key.pk).update(
            expires_at=timezone.now() - dt.timedelta(seconds=1)
        )
    since = world.sim.last_call_seq()
    status, body = fetch(url)
    assert status == 403
    assert body["Code"] != "Success" and body["Message"]
    if how == "deactivate_user":
        assert body["Code"] == "UserInactive"
    assert "AccessKeySecret" not in body
    assert not [c for c in world.sim.calls(since) if c.get("action") == "AssumeRole"]
    assert CredentialIssuance.objects.count() == 1
    refused = AuditEvent.objects.filter(action="credentials.refused").last()
    assert refused is not None and refused.outcome == "denied"


def test_the_sdk_provider_reports_a_refusal(uri) -> None:
    from alibabacloud_credentials.client import Client as CredentialClient
    from alibabacloud_credentials.models import Config as CredentialConfig

    world, delegation, _assignment, _key, url = uri
    world.revoke(Delegation.objects.get(pk=delegation.pk))
    credential = CredentialClient(CredentialConfig(type="credentials_uri", credentials_uri=url))
    with pytest.raises(Exception) as refused:
        credential.get_credential()
    assert "DelegationNotActive" in str(refused.value)


@pytest.mark.usefixtures("fixed_rate_window")
def test_unknown_keys_and_rate_limits(uri, settings) -> None:
    _world, _delegation, _assignment, _key, url = uri
    status, body = fetch(url[:-6] + "AAAAAA")
    assert (status, body["Code"]) == (403, "InvalidCredentialsURI")
    assert AuditEvent.objects.filter(action="credentials.uri_unknown").count() == 1

    settings.PORTAL_CREDENTIALS_URI_RATE = "2/60"
    from django.core.cache import cache

    cache.clear()
    assert fetch(url)[0] == 200
    assert fetch(url)[0] == 200
    status, body = fetch(url)
    assert (status, body["Code"]) == (429, "Throttling")
    assert CredentialIssuance.objects.count() == 2


def test_the_uri_page_shows_the_key_once_and_only_its_hint_after(
    partner_world_tx: PartnerWorld, client, live_server
) -> None:
    from tests.personas import mark_reauthenticated

    world = partner_world_tx
    delegation = world.active_delegation()
    world.assign(delegation, world.alice)
    client.force_login(world.alice)
    mark_reauthenticated(client, world.alice)
    url = reverse("delegations:uri_keys", args=[delegation.pk])
    response = client.post(url, {"label": "ci runner", "valid_days": "3"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    html = response.content.decode()
    (raw,) = re.findall(r"credentials-uri/(pcu_[A-Za-z0-9_\-]+)", html)[:1]
    key = CredentialsUriToken.objects.get()
    assert key.token_hash != raw and raw not in key.token_hash
    assert "--mode CredentialsURI" in html and "ALIBABA_CLOUD_CREDENTIALS_URI" in html
    again = client.get(url).content.decode()
    assert raw not in again and key.token_hint in again
    for bad in ({"valid_days": "0"}, {"valid_days": "91"}, {"valid_days": "x"}):
        assert client.post(url, bad).status_code == 400
    assert CredentialsUriToken.objects.count() == 1
    revoke = reverse("delegations:uri_key_revoke", args=[delegation.pk, key.pk])
    assert client.post(revoke).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
