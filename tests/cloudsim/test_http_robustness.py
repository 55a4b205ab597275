"""Whatever a hand-written HTTP client sends gets Alibaba's error shape, never a traceback.

These tests use raw sockets and ``http.client`` because the SDKs cannot send malformed
requests; signed requests are signed with the SDK's own ``Utils.get_authorization``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from alibabacloud_ram20150501 import models as ram
from alibabacloud_tea_openapi.utils import Utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from Tea.exceptions import TeaException

from tests.cloudsim.conftest import trust_policy

# Any character UTF-8 can carry (lone surrogates cannot leave the client at all).
TEXT = st.characters(blacklist_categories=("Cs",))
ERROR_KEYS = {"RequestId", "HostId", "Code", "Message", "Recommend"}


def _raw(cloudsim, payload: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are; read one response (by Content-Length, else until close)."""
    host, port = cloudsim.endpoint.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(payload)
        reader = connection.makefile("rb")
        status_line = reader.readline().decode("latin-1")
        headers = {}
        while True:
            line = reader.readline().decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get("content-length")
        body = reader.read(int(length)) if length is not None else reader.read()
    return int(status_line.split()[1]), headers, body


def _request(cloudsim, method: str, target: str, body: bytes = b"", headers: dict | None = None):
    connection = http.client.HTTPConnection(cloudsim.endpoint, timeout=10)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _assert_alibaba_error(status: int, body: bytes, expected_status: int, code: str) -> dict:
    assert status == expected_status
    document = json.loads(body)
    assert set(document) == ERROR_KEYS
    assert document["Code"] == code
    assert b"Traceback" not in body
    return document


@pytest.mark.parametrize(
    ("target", "headers", "status", "code"),
    [
        ("/?Action=NoSuchThing&Version=2015-05-01", {}, 404, "InvalidAction.NotFound"),
        ("/?Action=GetRole&Version=1999-01-01", {}, 400, "InvalidVersion"),
        ("/?Action=GetRole", {}, 400, "MissingParameter"),
        ("/", {"x-acs-action": "GetRole", "x-acs-version": "2099-12-31"}, 400, "InvalidVersion"),
        ("/?Action=GetRole&Version=2015-05-01", {}, 400, "MissingAuthorization"),
        ("/?Action=GetRole&Version=2015-05-01&AccessKeyId=LTAIx", {}, 400, "IncompleteSignature"),
        ("/", {}, 400, "MissingParameter"),
        ("/no/such/page", {}, 404, "InvalidPath.NotFound"),
        (
            "/?Action=GetRole&Version=2015-05-01&RoleName=%FF%FE",
            {},
            400,
            "InvalidParameter.Encoding",
        ),
    ],
)
def test_bad_api_requests(cloudsim, target, headers, status, code):
    got_status, _, body = _request(cloudsim, "POST", target, headers=headers)
    _assert_alibaba_error(got_status, body, status, code)


def test_host_ids_name_the_product(cloudsim):
    for version, host in (("2015-05-01", "ram"), ("2015-04-01", "sts"), ("2014-05-26", "ecs")):
        _, _, body = _request(cloudsim, "POST", f"/?Action=Nope&Version={version}")
        assert json.loads(body)["HostId"] == f"{host}.aliyuncs.com"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_wrong_method_for_the_api(cloudsim, method):
    status, _, body = _request(cloudsim, method, "/?Action=GetRole&Version=2015-05-01")
    _assert_alibaba_error(status, body, 405, "UnsupportedHTTPMethod")


def test_unknown_http_method(cloudsim):
    status, _, body = _raw(cloudsim, b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n")
    _assert_alibaba_error(status, body, 501, "UnsupportedHTTPMethod")


def test_malformed_request_line(cloudsim):
    status, _, body = _raw(cloudsim, b"GARBAGE\r\n\r\n")
    _assert_alibaba_error(status, body, 400, "BadRequest")


def test_oversized_body_is_rejected_without_reading_it(cloudsim):
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(20 * 1024 * 1024),
    }
    status, response_headers, body = _raw(
        cloudsim,
        b"POST /?Action=GetRole&Version=2015-05-01 HTTP/1.1\r\nHost: x\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        + b"\r\n"
        + b"a" * 1000,
    )
    _assert_alibaba_error(status, body, 413, "RequestEntityTooLarge")
    assert response_headers.get("connection") == "close"


def test_body_just_over_the_limit(cloudsim):
    status, _, body = _request(
        cloudsim,
        "POST",
        "/?Action=GetRole&Version=2015-05-01",
        body=b"x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _assert_alibaba_error(status, body, 413, "RequestEntityTooLarge")


def test_oversized_query(cloudsim):
    status, _, body = _raw(
        cloudsim,
        b"GET /?Action=GetRole&Version=2015-05-01&RoleName="
        + b"a" * 70_000
        + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    _assert_alibaba_error(status, body, 414, "RequestURITooLong")


def test_too_many_headers(cloudsim):
    headers = b"".join(f"X-H{i}: v\r\n".encode() for i in range(150))
    status, _, body = _raw(cloudsim, b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    _assert_alibaba_error(status, body, 431, "RequestHeaderFieldsTooLarge")


def test_bad_encodings(cloudsim):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = _request(
        cloudsim,
        "POST",
        "/?Action=GetRole&Version=2015-05-01",
        body=b"RoleName=\xff\xfe",
        headers=form,
    )
    _assert_alibaba_error(status, body, 400, "InvalidParameter.Encoding")
    status, _, body = _raw(
        cloudsim,
        b"GET /?Action=GetRole&Version=2015-05-01&RoleName=\xc3\x28 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    _assert_alibaba_error(status, body, 400, "InvalidParameter.Encoding")
    status, _, body = _request(
        cloudsim, "POST", "/?Action=GetRole&Version=2015-05-01&Role%00Name=x"
    )
    _assert_alibaba_error(status, body, 400, "InvalidParameter.Encoding")


@pytest.mark.parametrize(
    "value",
    [
        "Basic dXNlcjpwYXNz",
        "ACS3-HMAC-SHA256",
        "ACS3-HMAC-SHA256 Credential=x",
        "ACS3-HMAC-SHA256 Credential=x,SignedHeaders=host,Signature=00",
    ],
)
def test_malformed_authorization(cloudsim, value):
    status, _, body = _request(
        cloudsim,
        "POST",
        "/",
        headers={"Authorization": value, "x-acs-action": "GetRole", "x-acs-version": "2015-05-01"},
    )
    _assert_alibaba_error(status, body, 400, "IncompleteSignature")


def _signed(
    cloudsim,
    keys,
    action: str,
    version: str,
    query: dict,
    body: bytes = b"",
    content_sha: str | None = None,
) -> tuple[int, bytes]:
    headers = {
        "host": cloudsim.endpoint,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": content_sha or hashlib.sha256(body).hexdigest(),
        "accept": "application/json",
    }
    request = SimpleNamespace(method="POST", pathname="/", query=query, headers=headers)
    headers["authorization"] = Utils.get_authorization(
        request,
        "ACS3-HMAC-SHA256",
        headers["x-acs-content-sha256"],
        keys.access_key_id,
        keys.access_key_secret,
    )
    status, _, response = _request(cloudsim, "POST", "/?" + urlencode(query), body, headers)
    return status, response


def test_hand_signed_v3_request_and_body_hash(cloudsim, new_account):
    account = new_account()
    status, body = _signed(cloudsim, account, "GetCallerIdentity", "2015-04-01", {})
    assert status == 200 and json.loads(body)["AccountId"] == account.uid
    status, body = _signed(
        cloudsim,
        account,
        "GetCallerIdentity",
        "2015-04-01",
        {},
        body=b"tampered",
        content_sha=hashlib.sha256(b"").hexdigest(),
    )
    _assert_alibaba_error(status, body, 400, "SignatureDoesNotMatch")


def test_oversized_parameters_through_the_sdk(sdk, new_account):
    """A 60 KB description travels in the query: a clean 400, not a crash."""
    client = sdk.ram(new_account())
    with pytest.raises(TeaException) as caught:
        client.create_role(
            ram.CreateRoleRequest(
                role_name="big",
                assume_role_policy_document=trust_policy("acs:ram::1:root"),
                description="d" * 60_000,
            )
        )
    assert caught.value.statusCode in (400, 414)


@settings(
    max_examples=150,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.text(TEXT, max_size=80),
    document=st.one_of(st.text(TEXT, max_size=300), st.just(trust_policy("acs:ram::1:root"))),
    description=st.text(TEXT, max_size=1100),
    duration=st.integers(min_value=-(2**63), max_value=2**63),
)
def test_fuzzed_create_role_never_fails_on_the_server(
    sdk, new_account, name, document, description, duration
):
    client = sdk.ram(new_account())
    try:
        client.create_role(
            ram.CreateRoleRequest(
                role_name=name,
                assume_role_policy_document=document,
                description=description,
                max_session_duration=duration,
            )
        )
    except TeaException as error:
        assert 400 <= error.statusCode < 500, (error.code, error.message)


def test_control_bytes_in_a_header(cloudsim):
    status, _, body = _raw(
        cloudsim,
        b"POST /?Action=GetRole&Version=2015-05-01 HTTP/1.1\r\nHost: x\r\n"
        b"x-acs-signature-nonce: \x85\x9f\r\nContent-Length: 0\r\n\r\n",
    )
    _assert_alibaba_error(status, body, 400, "InvalidParameter.Encoding")
