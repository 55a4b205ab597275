"""Fault injection, observed through the official SDK (and set through the admin endpoint)."""

from __future__ import annotations

import json
import time

import pytest
from alibabacloud_ram20150501 import models as ram
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from darabonba.exceptions import UnretryableException
from darabonba.policy.retry import RetryOptions

from tests.cloudsim.conftest import trust_policy
from tests.fixtures.cloudsim import CloudSim, CloudSimError


def _identity_call(sdk, account, **options):
    return sdk.sts(account, **options).get_caller_identity()


def test_fixed_latency(cloudsim_faults, sdk, new_account):
    account = new_account()
    cloudsim_faults.set_faults("GetCallerIdentity:latency:1:300")
    started = time.monotonic()
    _identity_call(sdk, account)
    assert time.monotonic() - started >= 0.3


def test_global_random_latency(cloudsim_faults, sdk, new_account):
    account = new_account()
    cloudsim_faults.set_faults(latency_ms="100-150", seed=3)
    started = time.monotonic()
    _identity_call(sdk, account)
    assert time.monotonic() - started >= 0.1


def test_throttling_400(cloudsim_faults, sdk, new_account):
    account = new_account()
    cloudsim_faults.set_faults("GetCallerIdentity:throttle")
    with pytest.raises(ClientException) as caught:
        _identity_call(sdk, account)
    assert (caught.value.code, caught.value.statusCode) == ("Throttling.User", 400)
    assert caught.value.data["Message"] == "Request was denied due to user flow control."


def test_throttling_429_with_retry_after(cloudsim_faults, sdk, new_account):
    account = new_account()
    cloudsim_faults.set_faults("GetCallerIdentity:throttle429:1:250")
    with pytest.raises(ThrottlingException) as caught:
        _identity_call(sdk, account)
    assert caught.value.retry_after == 250
    assert caught.value.statusCode == 429 and caught.value.code == "Throttling.User"


def test_internal_error(cloudsim_faults, sdk, new_account):
    account = new_account()
    cloudsim_faults.set_faults("GetCallerIdentity:internal")
    with pytest.raises(ServerException) as caught:
        _identity_call(sdk, account)
    assert (caught.value.code, caught.value.statusCode) == ("InternalError", 500)


@pytest.mark.parametrize("kind", ["badgateway", "drop"])
def test_transport_level_faults(cloudsim_faults, sdk, new_account, kind):
    account = new_account()
    cloudsim_faults.set_faults(f"GetCallerIdentity:{kind}")
    with pytest.raises(UnretryableException) as caught:
        _identity_call(sdk, account)
    assert getattr(caught.value, "code", None) in (None, "")
    cloudsim_faults.clear_faults()
    assert _identity_call(sdk, account).body.account_id == account.uid


def test_hang_past_the_read_timeout(cloudsim_faults, sdk, new_account):
    account = new_account()
    cloudsim_faults.set_faults("GetCallerIdentity:hang:1:2")
    started = time.monotonic()
    with pytest.raises(UnretryableException):
        _identity_call(sdk, account, read_timeout=500)
    assert 0.5 <= time.monotonic() - started < 2


def test_applied_but_response_lost(cloudsim_faults, sdk, new_account):
    account = new_account()
    since = cloudsim_faults.last_call_seq()
    cloudsim_faults.set_faults("CreateRole:lost")
    with pytest.raises(UnretryableException):
        sdk.create_role(account, "lost-answer", trust_policy("acs:ram::1:root"))
    cloudsim_faults.clear_faults()
    role = sdk.ram(account).get_role(ram.GetRoleRequest(role_name="lost-answer")).body.role
    assert role.role_name == "lost-answer"
    [entry] = [
        c
        for c in cloudsim_faults.calls(since)
        if c["action"] == "CreateRole" and c["account"] == account.uid
    ]
    assert (entry["outcome"], entry["fault"], entry["mutating"]) == ("success", "lost", True)


def test_stale_read_window(cloudsim_faults, sdk, new_account):
    account = new_account()
    old, new = trust_policy("acs:ram::1:root"), trust_policy("acs:ram::2:root")
    sdk.create_role(account, "stale", old)
    cloudsim_faults.set_faults("GetRole:stale:1:1")
    client = sdk.ram(account)
    client.update_role(
        ram.UpdateRoleRequest(role_name="stale", new_assume_role_policy_document=new)
    )
    read = client.get_role(ram.GetRoleRequest(role_name="stale")).body.role
    assert read.assume_role_policy_document == old
    deadline = time.monotonic() + 5
    while (
        client.get_role(ram.GetRoleRequest(role_name="stale")).body.role.assume_role_policy_document
        != new
    ):
        assert time.monotonic() < deadline, "the stale window never closed"
        time.sleep(0.1)
    # Without the fault, reads are consistent at once.
    cloudsim_faults.clear_faults()
    client.update_role(
        ram.UpdateRoleRequest(role_name="stale", new_assume_role_policy_document=old)
    )
    assert (
        client.get_role(ram.GetRoleRequest(role_name="stale")).body.role.assume_role_policy_document
        == old
    )


def _pattern(sim: CloudSim, sdk, account, seed: int, calls: int = 24) -> list[bool]:
    sim.set_faults("GetCallerIdentity:throttle:0.5", seed=seed)
    outcomes = []
    for _ in range(calls):
        try:
            _identity_call(sdk, account)
            outcomes.append(True)
        except ClientException:
            outcomes.append(False)
    return outcomes


def test_seeded_faults_are_reproducible(cloudsim_faults, sdk, new_account):
    account = new_account()
    first = _pattern(cloudsim_faults, sdk, account, seed=7)
    again = _pattern(cloudsim_faults, sdk, account, seed=7)
    other = _pattern(cloudsim_faults, sdk, account, seed=8)
    assert first == again
    assert True in first and False in first
    assert other != first


def test_other_actions_are_unaffected(cloudsim_faults, sdk, new_account):
    account = new_account()
    cloudsim_faults.set_faults("GetRole:internal")
    assert _identity_call(sdk, account).body.account_id == account.uid


def test_count_limited_fault_and_sdk_retries(cloudsim_faults, sdk, new_account):
    account = new_account()
    since = cloudsim_faults.last_call_seq()
    cloudsim_faults.set_faults({"action": "GetCallerIdentity", "kind": "throttle", "count": 2})
    retry = RetryOptions(
        {
            "retryable": True,
            "retryCondition": [
                {
                    "maxAttempts": 3,
                    "errorCode": ["Throttling.User"],
                    "backoff": {"policy": "Fixed", "period": 10},
                }
            ],
        }
    )
    assert _identity_call(sdk, account, retry_options=retry).body.account_id == account.uid
    outcomes = [
        (c["outcome"], c.get("fault"))
        for c in cloudsim_faults.calls(since)
        if c["action"] == "GetCallerIdentity" and c["account"] == account.uid
    ]
    assert outcomes == [("fault", "throttle"), ("fault", "throttle"), ("success", None)]
    state = cloudsim_faults.request("GET", "/_sim/faults")
    assert state["faults"][0]["fired"] == 2


def test_wildcard_action_and_post_appends(cloudsim_faults, sdk, new_account):
    account = new_account()
    cloudsim_faults.set_faults("*:internal:1")
    with pytest.raises(ServerException):
        _identity_call(sdk, account)
    cloudsim_faults.clear_faults()
    cloudsim_faults.add_faults("GetRole:throttle")
    cloudsim_faults.add_faults("ListRoles:throttle")
    assert len(cloudsim_faults.request("GET", "/_sim/faults")["faults"]) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"faults": ["GetRole:explode"]},
        {"faults": ["GetRole"]},
        {"faults": ["GetRole:throttle:2"]},
        {"faults": ["Get Role:throttle"]},
        {"faults": ["GetRole:latency:1:abc"]},
        {"faults": [{"action": "GetRole", "kind": "throttle", "count": -1}]},
        {"faults": "GetRole:throttle"},
        {"seed": "x"},
        {"latency_ms": "fast"},
    ],
)
def test_admin_endpoint_rejects_bad_specs(cloudsim_faults, body):
    with pytest.raises(CloudSimError, match="400"):
        cloudsim_faults.request("PUT", "/_sim/faults", body)


def test_admin_endpoint_needs_the_operator_token(cloudsim_faults):
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for headers in ({}, {"X-Cloudsim-Operator-Token": "wrong"}):
        request = urllib.request.Request(
            cloudsim_faults.url + "/_sim/faults",
            data=json.dumps({"faults": []}).encode(),
            method="PUT",
            headers=headers,
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            opener.open(request, timeout=5)
        assert caught.value.code == 403
        assert json.loads(caught.value.read())["Code"] == "Forbidden.OperatorToken"
