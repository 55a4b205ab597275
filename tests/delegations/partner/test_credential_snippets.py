"""The snippets on the credentials pages work where they are pasted (issue 18 item 13).

With the portal on a non-Alibaba endpoint (cloudsim here, as in the demo) every snippet names
it; the Python one is run, as pasted, in a fresh interpreter against cloudsim and lists
company-a's instances. With Alibaba Cloud's own endpoints the snippets stay as they were.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from delegations.partner import credentials
from tests.fixtures.partner import PartnerWorld

pytestmark = pytest.mark.django_db

DEMO_INSTANCES = ["batch-1", "web-1", "web-2"]
URI = "https://portal.example/partner/credentials-uri/pak_example/"


@pytest.fixture
def issued(partner_world: PartnerWorld) -> credentials.IssuedForPerson:
    world = partner_world
    assignment = world.assign(world.active_delegation(), world.alice)
    world.drain()
    return credentials.credentials_issue(
        assignment=assignment, user=world.alice, duration_seconds=900
    )


def _run_pasted(snippet: str) -> subprocess.CompletedProcess[str]:
    """The snippet as a person pastes it into a new Python, then one call of their own. Their
    shell has no Alibaba variables or proxies of ours (the credentials library reads the
    environment when imported)."""
    program = (
        snippet
        + "\nfrom alibabacloud_ecs20140526.models import DescribeInstancesRequest\n"
        + "answer = ecs.describe_instances(DescribeInstancesRequest(region_id='cn-hangzhou'))\n"
        + "print(sorted(i.instance_name for i in answer.body.instances.instance))\n"
    )
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(("ALIBABA", "ALICLOUD", "HTTP_PROXY", "HTTPS_PROXY"))
    }
    return subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd="/",
    )


def test_the_python_snippet_pasted_as_is_lists_the_owners_instances(
    issued: credentials.IssuedForPerson, partner_world: PartnerWorld
) -> None:
    python = credentials.credential_formats(issued=issued)["python"]
    assert f'endpoint="{partner_world.sim.endpoint}", protocol="http"' in python

    run = _run_pasted(python)

    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == repr(DEMO_INSTANCES)


def test_every_snippet_names_a_non_alibaba_endpoint(
    issued: credentials.IssuedForPerson, partner_world: PartnerWorld
) -> None:
    host = partner_world.sim.endpoint
    formats = credentials.credential_formats(issued=issued)

    assert f"export ALIBABA_CLOUD_ENDPOINT={host}\n" in formats["bash"]
    assert f"$Env:ALIBABA_CLOUD_ENDPOINT = '{host}'\n" in formats["powershell"]
    command = shlex.split(formats["cli"].splitlines()[1])
    assert command[command.index("--endpoint") + 1] == host and "--insecure" in command
    assert json.loads(formats["config_json"])["endpoint"] == host

    delegation = issued.delegation
    uri = credentials.credentials_uri_formats(url=URI, delegation=delegation)
    assert f"export ALIBABA_CLOUD_ENDPOINT={host}\n" in uri["bash"]
    assert f"$Env:ALIBABA_CLOUD_ENDPOINT = '{host}'\n" in uri["powershell"]
    assert f"--endpoint {host} --insecure" in uri["cli"]
    assert f'endpoint="{host}", protocol="http"' in uri["python"]
    assert json.loads(uri["config_json"])["endpoint"] == host


def test_with_alibabas_own_endpoints_the_snippets_stay_as_they_were(
    issued: credentials.IssuedForPerson, settings
) -> None:
    settings.ALIBABA_STS_ENDPOINT = "sts.aliyuncs.com"
    settings.ALIBABA_CLOUD_PROTOCOL = "https"
    formats = credentials.credential_formats(issued=issued)
    uri = credentials.credentials_uri_formats(url=URI, delegation=issued.delegation)

    for text in [*formats.values(), *uri.values()]:
        assert "ENDPOINT" not in text and "endpoint" not in text and "--insecure" not in text
    assert formats["python"].endswith(
        f'ecs = EcsClient(Config(credential=credential, region_id="{issued.region_id}"))\n'
    )
    assert uri["python"].endswith("))\n") and "EcsClient" not in uri["python"]
    assert (
        formats["cli"]
        .splitlines()[1]
        .endswith("--profile company-a-" + issued.delegation.catalog_role.role_name)
    )


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("127.0.0.1:9100", ("127.0.0.1:9100", "http")),
        ("https://gateway.internal:8443/", ("gateway.internal:8443", "https")),
        ("sts.cn-hangzhou.aliyuncs.com", None),
        ("STS.ALIYUNCS.COM", None),
        ("", None),
    ],
)
def test_which_endpoints_the_snippets_name(settings, configured: str, expected) -> None:
    settings.ALIBABA_STS_ENDPOINT = configured
    settings.ALIBABA_CLOUD_PROTOCOL = "http"
    found = credentials.snippet_endpoint()
    assert (found.host, found.protocol) == expected if expected else found is None
