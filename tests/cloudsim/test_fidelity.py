"""Issue 18 items 15 and 13: what clients cloudsim's authors never used expect of it.

- 403 answers from RAM, STS and ECS carry ``AccessDeniedDetail``, as the current APIs do
  (the Node ECS SDK and tea-openapi read it into the exception);
- ``Format=XML`` gets XML (and XML is the answer when a v1 request names no Format);
- ``--tls`` adds an HTTPS listener with a self-signed certificate saved in the data
  directory, its path printed, for clients that insist on https;
- the console's address, the endpoint's root, is its sign-in page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_ram20150501 import models as ram
from alibabacloud_sts20150401 import models as sts
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest

from tests.cloudsim.conftest import Keys, error_of, permission_policy, trust_policy, unique
from tests.fixtures.cloudsim import REPO_ROOT, CloudSim

# --- AccessDeniedDetail ------------------------------------------------------------------------


def _detail(error) -> dict:
    detail = error.accessDeniedDetail
    assert detail == error.data["AccessDeniedDetail"]
    return detail


def test_ram_403_says_which_action_principal_and_policy_refused(sdk, new_account, new_user):
    owner = new_account()
    dora = new_user(owner, "dora")
    refused = error_of(sdk.ram(dora).get_role, ram.GetRoleRequest(role_name="anything"))
    assert (refused.code, refused.statusCode) == ("NoPermission", 403)
    detail = _detail(refused)
    assert detail["AuthAction"] == "ram:GetRole"
    assert detail["AuthPrincipalType"] == "SubUser"
    assert detail["AuthPrincipalOwnerId"] == owner.uid
    assert detail["AuthPrincipalDisplayName"] == "dora"
    assert (detail["NoPermissionType"], detail["PolicyType"]) == (
        "ImplicitDeny",
        "AccountLevelIdentityBasedPolicy",
    )
    decoded = json.loads(base64.b64decode(detail["EncodedDiagnosticMessage"]))
    assert decoded["AuthResource"] == f"acs:ram:*:{owner.uid}:role/anything"

    name = unique("deny")
    sdk.ram(owner).create_policy(
        ram.CreatePolicyRequest(
            policy_name=name, policy_document=permission_policy("ram:GetRole", effect="Deny")
        )
    )
    sdk.attach_to_user(owner, "dora", "AdministratorAccess")
    sdk.attach_to_user(owner, "dora", name, "Custom")
    explicit = error_of(sdk.ram(dora).get_role, ram.GetRoleRequest(role_name="anything"))
    assert _detail(explicit)["NoPermissionType"] == "ExplicitDeny"


def test_ecs_and_sts_403s_carry_the_detail_too(sdk, partner_pair):
    pair = partner_pair
    ecs = EcsClient(sdk.config(pair.alice))
    forbidden = error_of(
        ecs.describe_instances, ecs_models.DescribeInstancesRequest(region_id="cn-hangzhou")
    )
    assert (forbidden.code, forbidden.statusCode) == ("Forbidden.RAM", 403)
    assert _detail(forbidden)["AuthAction"] == "ecs:DescribeInstances"

    role = sdk.create_role(pair.owner, "target", trust_policy(pair.owner.root_arn)).body.role
    request = sts.AssumeRoleRequest(role_arn=role.arn, role_session_name="s1")
    unallowed = error_of(sdk.sts(pair.alice).assume_role, request)
    assert _detail(unallowed)["AuthAction"] == "sts:AssumeRole"
    assert _detail(unallowed)["PolicyType"] == "AccountLevelIdentityBasedPolicy"
    sdk.attach_to_user(pair.partner, "Alice", "AliyunSTSAssumeRoleAccess")
    untrusted = error_of(sdk.sts(pair.alice).assume_role, request)
    assert _detail(untrusted)["PolicyType"] == "AssumeRolePolicy"


def test_a_session_policy_refusal_names_the_session_policy(sdk, partner_pair):
    pair = partner_pair
    sdk.attach_to_user(pair.partner, "Alice", "AliyunSTSAssumeRoleAccess")
    role = sdk.create_role(pair.owner, "reader", trust_policy(pair.partner.root_arn)).body.role
    sdk.attach_to_role(pair.owner, "reader", "AliyunRAMReadOnlyAccess")
    narrow = sdk.assume(pair.alice, role.arn, policy=permission_policy("ram:ListRoles"))
    refused = error_of(sdk.ram(narrow).get_role, ram.GetRoleRequest(role_name="reader"))
    detail = _detail(refused)
    assert (detail["PolicyType"], detail["AuthPrincipalType"]) == (
        "SessionPolicy",
        "AssumedRoleUser",
    )
    assert detail["AuthPrincipalDisplayName"] == "reader:test-session"


def test_the_detail_is_in_the_plain_json_body(cloudsim, new_account, new_user):
    """Without an SDK: a 403 body is Alibaba's error object plus AccessDeniedDetail."""
    owner = new_account()
    dora = new_user(owner, "dora")
    status, headers, body = _v1_call(
        cloudsim, dora, "2014-05-26", "DescribeInstances", fmt="JSON", RegionId="cn-hangzhou"
    )
    assert status == 403
    assert _lower(headers)["content-type"] == "application/json;charset=utf-8"
    error = json.loads(body)
    assert set(error) == {
        "RequestId",
        "HostId",
        "Code",
        "Message",
        "Recommend",
        "AccessDeniedDetail",
    }
    assert error["AccessDeniedDetail"]["AuthAction"] == "ecs:DescribeInstances"


# --- Format=XML ----------------------------------------------------------------------------------


def _v1_call(
    cloudsim, keys, version: str, action: str, *, fmt: str | None = None, **params: str
) -> tuple[int, dict[str, str], bytes]:
    """A v1-signed GET by hand, so the Format parameter can be left out."""
    params.pop("uid", None)
    query = {
        "Action": action,
        "Version": version,
        "AccessKeyId": keys.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **params,
    }
    if fmt is not None:
        query["Format"] = fmt

    def encode(text: str) -> str:
        return quote(text, safe="-_.~")

    canonical = "&".join(f"{encode(k)}={encode(query[k])}" for k in sorted(query))
    string_to_sign = f"GET&%2F&{encode(canonical)}"
    digest = hmac.new(
        (keys.access_key_secret + "&").encode(), string_to_sign.encode(), hashlib.sha1
    ).digest()
    query["Signature"] = base64.b64encode(digest).decode()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{cloudsim.url}/?{urlencode(query)}", timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _xml(body: bytes) -> ET.Element:
    return ET.fromstring(body)  # noqa: S314 - the answer of the test's own emulator


def test_v1_format_picks_the_answer_format_and_xml_is_the_default(cloudsim, new_account):
    root = new_account()
    for fmt in (None, "XML", "xml"):
        status, headers, body = _v1_call(cloudsim, root, "2015-04-01", "GetCallerIdentity", fmt=fmt)
        assert status == 200
        assert _lower(headers)["content-type"] == "text/xml;charset=utf-8"
        document = _xml(body)
        assert document.tag == "GetCallerIdentityResponse"
        assert document.findtext("AccountId") == root.uid
        assert document.findtext("RequestId") == _lower(headers)["x-acs-request-id"]
    status, headers, body = _v1_call(cloudsim, root, "2015-04-01", "GetCallerIdentity", fmt="JSON")
    assert json.loads(body)["AccountId"] == root.uid
    status, headers, body = _v1_call(cloudsim, root, "2015-04-01", "GetCallerIdentity", fmt="yaml")
    assert (status, json.loads(body)["Code"]) == (400, "InvalidParameter.Format")


def test_xml_errors_are_alibabas_error_element(cloudsim, new_account):
    root = new_account()
    status, _, body = _v1_call(
        cloudsim, root, "2015-05-01", "GetRole", fmt="XML", RoleName="missing"
    )
    assert status == 404
    error = _xml(body)
    assert error.tag == "Error"
    assert error.findtext("Code") == "EntityNotExist.Role"
    assert {child.tag for child in error} == {"RequestId", "HostId", "Code", "Message", "Recommend"}


def _core_client(keys) -> AcsClient:
    return AcsClient(keys.access_key_id, keys.access_key_secret, "cn-hangzhou")


def _core_request(cloudsim, version: str, action: str, **params: str) -> CommonRequest:
    request = CommonRequest(domain=cloudsim.endpoint, version=version, action_name=action)
    request.set_protocol_type("http")
    request.set_accept_format("XML")
    for key, value in params.items():
        request.add_query_param(key, value)
    return request


def test_aliyun_python_sdk_core_with_format_xml(cloudsim, sdk, new_account, new_user):
    """The old RPC SDK's ``set_accept_format('XML')``: lists become repeated elements."""
    owner = new_account()
    for name in ("first", "second"):
        sdk.create_role(owner, name, trust_policy(owner.root_arn))
    client = _core_client(owner)
    with pytest.warns(DeprecationWarning):
        body = client.do_action(_core_request(cloudsim, "2015-05-01", "ListRoles"))
    document = _xml(body)
    assert document.tag == "ListRolesResponse"
    assert document.findtext("IsTruncated") == "false"
    assert [r.findtext("RoleName") for r in document.iter("Role")] == ["first", "second"]

    dora = new_user(owner, "dora")
    with pytest.warns(DeprecationWarning):
        denied = _core_client(dora).do_action(
            _core_request(cloudsim, "2015-05-01", "GetRole", RoleName="first")
        )
    error = _xml(denied)
    assert error.findtext("Code") == "NoPermission"
    assert error.findtext("AccessDeniedDetail/AuthAction") == "ram:GetRole"
    assert error.findtext("AccessDeniedDetail/NoPermissionType") == "ImplicitDeny"


def test_acs3_calls_still_get_json(sdk, new_account):
    owner = new_account()
    assert sdk.caller(owner).account_id == owner.uid


# --- the console at the root ---------------------------------------------------------------------


def test_the_endpoint_root_is_the_console_sign_in_page(cloudsim):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{cloudsim.url}/", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        page = response.read().decode()
    assert "action='/login.htm'" in page and "type='password'" in page
    request = urllib.request.Request(f"{cloudsim.url}/", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as missing:
        opener.open(request, timeout=10)
    assert json.loads(missing.value.read())["Code"] == "MissingParameter"


# --- the TLS listener ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tls_prints_its_endpoint_and_certificate(tmp_path: Path):
    process = subprocess.Popen(
        [sys.executable, "-m", "cloudsim", "--port", "0", "--data", str(tmp_path), "--tls"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = json.loads(process.stdout.readline())  # type: ignore[union-attr]
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()  # type: ignore[union-attr]
    assert line["endpoint"].startswith("http://127.0.0.1:")
    assert line["tls_endpoint"].startswith("https://127.0.0.1:")
    assert Path(line["tls_certificate"]) == (tmp_path / "tls-cert.pem").resolve()
    assert (tmp_path / "tls-key.pem").stat().st_mode & 0o777 == 0o600


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory):
    port = _free_port()
    sim = CloudSim(
        data_dir=tmp_path_factory.mktemp("cloudsim-tls"),
        extra_args=["--tls", "--tls-port", str(port)],
    ).start()
    sim.tls_endpoint = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
    sim.certificate = sim.data_dir / "tls-cert.pem"  # type: ignore[attr-defined]
    yield sim
    sim.stop()


def test_sdks_that_use_https_work_against_the_tls_listener(tls_sim):
    company_b = next(a for a in tls_sim.credentials["accounts"] if a["alias"] == "company-b")
    alice = next(u for u in company_b["users"] if u["name"] == "Alice")
    config = tls_sim.sdk_config(alice["access_key_id"], alice["access_key_secret"])
    config.protocol = "https"
    config.endpoint = tls_sim.tls_endpoint
    config.ca = str(tls_sim.certificate)
    from alibabacloud_sts20150401.client import Client as StsClient

    identity = StsClient(config).get_caller_identity().body
    assert identity.arn == f"acs:ram::{company_b['uid']}:user/Alice"

    context = ssl.create_default_context(cafile=str(tls_sim.certificate))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    with opener.open(f"https://{tls_sim.tls_endpoint}/_sim/noop", timeout=10) as response:
        assert json.loads(response.read()) == {}
    # Untrusted by default: the certificate is the data directory's own.
    with pytest.raises(urllib.error.URLError):
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            f"https://{tls_sim.tls_endpoint}/_sim/noop", timeout=10
        )


def test_plain_http_to_the_tls_port_fails_without_harming_the_server(tls_sim):
    host, port = tls_sim.tls_endpoint.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as plain:
        plain.sendall(b"GET /_sim/noop HTTP/1.1\r\nHost: x\r\n\r\n")
        plain.settimeout(5)
        try:
            answer = plain.recv(100)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"HTTP/1.1 200")
    context = ssl.create_default_context(cafile=str(tls_sim.certificate))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    with opener.open(f"https://{tls_sim.tls_endpoint}/_sim/noop", timeout=10) as response:
        assert response.status == 200


def test_secure_transport_is_true_only_over_tls(tls_sim, sdk):
    """``acs:SecureTransport`` in a policy: allowed over https, refused over http."""
    company_b = next(a for a in tls_sim.credentials["accounts"] if a["alias"] == "company-b")
    root = Keys(company_b["root"]["access_key_id"], company_b["root"]["access_key_secret"])
    bob = next(u for u in company_b["users"] if u["name"] == "Bob")
    bob_keys = Keys(bob["access_key_id"], bob["access_key_secret"])
    plain = tls_sim.sdk_config(root.access_key_id, root.access_key_secret)
    from alibabacloud_ram20150501.client import Client as RamClient

    name = unique("tls-only")
    RamClient(plain).create_policy(
        ram.CreatePolicyRequest(
            policy_name=name,
            policy_document=permission_policy(
                "ram:ListRoles", condition={"Bool": {"acs:SecureTransport": "true"}}
            ),
        )
    )
    RamClient(plain).attach_policy_to_user(
        ram.AttachPolicyToUserRequest(policy_type="Custom", policy_name=name, user_name="Bob")
    )
    over_http = tls_sim.sdk_config(bob_keys.access_key_id, bob_keys.access_key_secret)
    refused = error_of(RamClient(over_http).list_roles, ram.ListRolesRequest())
    assert refused.code == "NoPermission"
    over_https = tls_sim.sdk_config(bob_keys.access_key_id, bob_keys.access_key_secret)
    over_https.protocol = "https"
    over_https.endpoint = tls_sim.tls_endpoint
    over_https.ca = str(tls_sim.certificate)
    assert RamClient(over_https).list_roles(ram.ListRolesRequest()).body.roles is not None
