"""The call log (never a secret) and the operator's pages under /_sim."""

from __future__ import annotations

import http.client
import json
import threading
import time
from urllib.parse import quote

import pytest
from alibabacloud_ram20150501 import models as ram
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi import utils_models

from cloudsim import admin
from cloudsim.calllog import CallLog
from cloudsim.faults import FaultSet
from cloudsim.server import make_server
from cloudsim.store import Store
from tests.cloudsim.conftest import error_of, trust_policy
from tests.fixtures.cloudsim import CloudSimError

ENTRY_KEYS = {
    "seq",
    "time",
    "request_id",
    "account",
    "caller_arn",
    "product",
    "action",
    "version",
    "parameters",
    "mutating",
    "outcome",
    "error_code",
    "status",
    "source_ip",
    "duration_ms",
}


def test_calls_are_logged_with_caller_outcome_and_request_id(cloudsim, sdk, partner_pair):
    since = cloudsim.last_call_seq()
    owner, partner = partner_pair.owner, partner_pair.partner
    created = sdk.create_role(owner, "logged", trust_policy(partner.root_arn), description="d")
    missing = error_of(sdk.ram(owner).get_role, ram.GetRoleRequest(role_name="absent"))
    calls = [c for c in cloudsim.calls(since) if c["account"] == owner.uid]
    create, get = calls
    assert set(create) >= ENTRY_KEYS
    assert (create["product"], create["action"], create["mutating"], create["outcome"]) == (
        "ram",
        "CreateRole",
        True,
        "success",
    )
    assert create["caller_arn"] == f"acs:ram::{owner.uid}:root"
    assert create["request_id"] == created.body.request_id
    assert create["parameters"]["RoleName"] == "logged"
    assert create["resource"] == f"acs:ram::{owner.uid}:role/logged"
    assert (get["action"], get["mutating"], get["outcome"], get["error_code"], get["status"]) == (
        "GetRole",
        False,
        "error",
        "EntityNotExist.Role",
        404,
    )
    assert get["request_id"] == missing.data["RequestId"]


def test_no_secret_ever_reaches_the_log(cloudsim, sdk, partner_pair):
    owner, partner = partner_pair.owner, partner_pair.partner
    role = sdk.create_role(owner, "secretive", trust_policy(partner.root_arn)).body.role
    sdk.attach_to_user(partner, "Alice", "AliyunSTSAssumeRoleAccess")
    session = sdk.assume(partner_pair.alice, role.arn, "canary")
    sdk.caller(session)
    sdk.sts(session, signature_algorithm="v2").get_caller_identity()
    new_key = (
        sdk.ram(partner)
        .create_access_key(ram.CreateAccessKeyRequest(user_name="Bob"))
        .body.access_key
    )
    cloudsim.create_user(partner.uid, "Carol", password="Carol-canary-password-1")
    secrets = [
        session.access_key_secret,
        session.security_token,
        new_key.access_key_secret,
        partner_pair.alice.access_key_secret,
        owner.access_key_secret,
        "Carol-canary-password-1",
        *[u["password"] for u in cloudsim.account("company-b")["users"]],
    ]
    log_text = (cloudsim.data_dir / "calls.jsonl").read_text()
    endpoint_text = json.dumps(cloudsim.calls(0))
    for secret in secrets:
        assert secret not in log_text
        assert secret not in endpoint_text
    assert '"Signature"' not in log_text and '"SecurityToken"' not in log_text
    assert session.access_key_id in log_text  # key ids are not secrets: they identify callers


def test_calls_endpoint_paging_and_auth(cloudsim, sdk, new_account):
    account = new_account()
    since = cloudsim.last_call_seq()
    for _ in range(3):
        sdk.caller(account)
    mine = [c for c in cloudsim.calls(since) if c["account"] == account.uid]
    assert len(mine) == 3
    later = cloudsim.calls(mine[1]["seq"])
    assert mine[2]["seq"] in [c["seq"] for c in later]
    assert mine[0]["seq"] not in [c["seq"] for c in later]
    with pytest.raises(CloudSimError, match="400"):
        cloudsim.request("GET", "/_sim/calls?since=abc")
    with pytest.raises(CloudSimError, match="403"):
        cloudsim.request("GET", "/_sim/calls", operator=False)


def test_noop_is_open_and_empty(cloudsim):
    assert cloudsim.request("GET", "/_sim/noop", operator=False) == {}


def _get(cloudsim, path: str, headers: dict | None = None):
    connection = http.client.HTTPConnection(cloudsim.endpoint, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_operator_page_login_and_escaping(cloudsim, sdk, new_account):
    account = new_account()
    sdk.create_role(account, "visible-role", trust_policy("acs:ram::12345678:user/Alice"))
    hostile = "<script>alert(1)</script>"
    error_of(sdk.create_role, account, hostile, trust_policy("acs:ram::1:root"))

    status, _, body = _get(cloudsim, "/_sim/")
    assert status == 403 and json.loads(body)["Code"] == "Forbidden.OperatorToken"
    status, _, _ = _get(cloudsim, "/_sim/?token=wrong")
    assert status == 403

    status, headers, _ = _get(cloudsim, "/_sim/?token=" + quote(cloudsim.operator_token))
    assert status == 303 and headers["location"] == "/_sim/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, headers, page = _get(cloudsim, "/_sim/", {"Cookie": cookie.split(";")[0]})
    assert status == 200 and headers["content-type"].startswith("text/html")
    html = page.decode()
    assert account.alias in html and "visible-role" in html
    assert "acs:ram::12345678:user/Alice" in html  # the trust policy is shown
    assert "company-b" in html and "Alice" in html
    assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert cloudsim.operator_token not in html

    status, _, page = _get(
        cloudsim, "/_sim/", {"X-Cloudsim-Operator-Token": cloudsim.operator_token}
    )
    assert status == 200 and b"Recent calls" in page


class _SlowCallLog(CallLog):
    """Takes its time writing each entry, as a loaded machine may."""

    def record(self, **fields: object) -> dict:
        time.sleep(0.3)
        return super().record(**fields)


def test_a_call_is_in_the_log_before_its_answer_arrives(tmp_path):
    # Tests order events by call-log position (for example: no AssumeRole after a revoke), so
    # whoever has an answer must find its call already logged.
    store = Store(tmp_path)
    call_log = _SlowCallLog(tmp_path)
    admin.account_create(store, uid="5550001", alias="ordered")
    key = admin.access_key_create(store, uid="5550001")
    server = make_server(
        host="127.0.0.1",
        port=0,
        store=store,
        call_log=call_log,
        faults=FaultSet(seed=0, rules=[]),
        operator_token="t",
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        config = utils_models.Config(
            access_key_id=key["access_key_id"],
            access_key_secret=key["access_key_secret"],
            endpoint=server.endpoint,
            protocol="http",
            region_id="cn-hangzhou",
        )
        answer = StsClient(config).get_caller_identity()
        logged = call_log.since(0)
        assert [entry["request_id"] for entry in logged] == [answer.body.request_id]
        assert logged[0]["outcome"] == "success"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        call_log.close()
        store.close()
