"""Request signatures: ACS3-HMAC-SHA256, v1 HMAC-SHA1 (tea 'v2' and aliyun-python-sdk-core),
and every authentication failure, as the official SDKs see them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from alibabacloud_ram20150501 import models as ram
from alibabacloud_tea_openapi.utils import Utils
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest

from tests.cloudsim.conftest import Keys, error_of, trust_policy

SIGNATURE_STYLES = {"v3": {}, "v1": {"signature_algorithm": "v2"}}


@pytest.fixture
def role_session(sdk, partner_pair):
    owner, partner = partner_pair.owner, partner_pair.partner
    role = sdk.create_role(owner, "signed", trust_policy(partner.root_arn)).body.role
    sdk.attach_to_role(owner, "signed", "AliyunRAMReadOnlyAccess")
    sdk.attach_to_user(partner, "Alice", "AliyunSTSAssumeRoleAccess")
    return sdk.assume(partner_pair.alice, role.arn, "sig"), partner_pair


@pytest.mark.parametrize("style", SIGNATURE_STYLES)
def test_valid_signatures_for_every_key_type(sdk, role_session, style):
    session, pair = role_session
    options = SIGNATURE_STYLES[style]
    assert sdk.sts(pair.owner, **options).get_caller_identity().body.identity_type == "Account"
    assert sdk.sts(pair.alice, **options).get_caller_identity().body.identity_type == "RAMUser"
    assert sdk.sts(session, **options).get_caller_identity().body.identity_type == "AssumedRoleUser"
    # Parameters with spaces, '*', '~' and non-ASCII survive both canonicalisations.
    client = sdk.ram(pair.owner, **options)
    created = client.create_role(
        ram.CreateRoleRequest(
            role_name=f"enc-{style}",
            assume_role_policy_document=trust_policy(pair.partner.root_arn),
            description="spaces, *stars*, ~tilde~, ümlaut & ampersand=equals+plus",
        )
    ).body.role
    assert created.description == "spaces, *stars*, ~tilde~, ümlaut & ampersand=equals+plus"


@pytest.mark.parametrize("style", SIGNATURE_STYLES)
def test_wrong_secret(sdk, new_account, style):
    account = new_account()
    forged = Keys(account.access_key_id, "x" * 30)
    failure = error_of(sdk.sts(forged, **SIGNATURE_STYLES[style]).get_caller_identity)
    assert (failure.code, failure.statusCode) == ("SignatureDoesNotMatch", 400)


@pytest.mark.parametrize("style", SIGNATURE_STYLES)
def test_unknown_access_key(sdk, style):
    failure = error_of(
        sdk.sts(
            Keys("LTAInotakeyatall000000", "secret"), **SIGNATURE_STYLES[style]
        ).get_caller_identity
    )
    assert (failure.code, failure.statusCode) == ("InvalidAccessKeyId.NotFound", 404)


def test_inactive_access_key(sdk, new_account, new_user):
    owner = new_account()
    jack = new_user(owner, "jack")
    client = sdk.ram(owner)
    client.update_access_key(
        ram.UpdateAccessKeyRequest(
            user_name="jack", user_access_key_id=jack.access_key_id, status="Inactive"
        )
    )
    failure = error_of(sdk.caller, jack)
    assert (failure.code, failure.statusCode) == ("InvalidAccessKeyId.Inactive", 403)
    client.update_access_key(
        ram.UpdateAccessKeyRequest(
            user_name="jack", user_access_key_id=jack.access_key_id, status="Active"
        )
    )
    assert sdk.caller(jack).arn.endswith(":user/jack")


@pytest.mark.parametrize("style", SIGNATURE_STYLES)
def test_sts_credentials_need_their_token(sdk, role_session, style):
    session, _ = role_session
    options = SIGNATURE_STYLES[style]
    without = Keys(session.access_key_id, session.access_key_secret)
    missing = error_of(sdk.sts(without, **options).get_caller_identity)
    assert (missing.code, missing.statusCode) == ("MissingSecurityToken", 400)
    wrong = Keys(session.access_key_id, session.access_key_secret, "CAIS" + "A" * 100)
    mismatch = error_of(sdk.sts(wrong, **options).get_caller_identity)
    assert (mismatch.code, mismatch.statusCode) == ("InvalidSecurityToken.Mismatch", 400)
    forged_secret = Keys(session.access_key_id, "y" * 30, session.security_token)
    assert error_of(sdk.sts(forged_secret, **options).get_caller_identity).code == (
        "SignatureDoesNotMatch"
    )


def test_expired_sts_credentials(sdk, role_session):
    session, _ = role_session
    assert sdk.caller(session)
    sdk.sim.request("POST", "/_sim/expire-session", {"access_key_id": session.access_key_id})
    failure = error_of(sdk.caller, session)
    assert (failure.code, failure.statusCode) == ("InvalidSecurityToken.Expired", 400)
    failure_v1 = error_of(sdk.sts(session, signature_algorithm="v2").get_caller_identity)
    assert failure_v1.code == "InvalidSecurityToken.Expired"


@pytest.mark.parametrize("style", SIGNATURE_STYLES)
@pytest.mark.parametrize("skew_minutes", [-16, 16])
def test_clock_skew_window(sdk, new_account, monkeypatch, style, skew_minutes):
    account = new_account()
    skewed = datetime.now(UTC) + timedelta(minutes=skew_minutes)
    monkeypatch.setattr(
        Utils, "get_timestamp", staticmethod(lambda: skewed.strftime("%Y-%m-%dT%H:%M:%SZ"))
    )
    failure = error_of(sdk.sts(account, **SIGNATURE_STYLES[style]).get_caller_identity)
    assert (failure.code, failure.statusCode) == ("InvalidTimeStamp.Expired", 400)


@pytest.mark.parametrize("style", SIGNATURE_STYLES)
def test_small_skew_is_tolerated(sdk, new_account, monkeypatch, style):
    account = new_account()
    skewed = datetime.now(UTC) - timedelta(minutes=14)
    monkeypatch.setattr(
        Utils, "get_timestamp", staticmethod(lambda: skewed.strftime("%Y-%m-%dT%H:%M:%SZ"))
    )
    assert sdk.sts(account, **SIGNATURE_STYLES[style]).get_caller_identity().body.account_id


@pytest.mark.parametrize("style", SIGNATURE_STYLES)
def test_nonce_replay(sdk, new_account, monkeypatch, style):
    account = new_account()
    nonce = f"fixed-nonce-{account.uid}-{style}"
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: nonce))
    client = sdk.sts(account, **SIGNATURE_STYLES[style])
    assert client.get_caller_identity().body.account_id == account.uid
    replay = error_of(client.get_caller_identity)
    assert (replay.code, replay.statusCode) == ("SignatureNonceUsed", 400)


# --- aliyun-python-sdk-core (v1 signature, GET and POST, query and form parameters) ---


def _core_request(cloudsim, version: str, action: str, method: str) -> CommonRequest:
    request = CommonRequest(domain=cloudsim.endpoint, version=version, action_name=action)
    request.set_protocol_type("http")
    request.set_method(method)
    return request


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_aliyun_python_sdk_core(cloudsim, sdk, role_session, method):
    session, pair = role_session
    user = AcsClient(pair.alice.access_key_id, pair.alice.access_key_secret, "cn-hangzhou")
    identity = json.loads(
        user.do_action_with_exception(
            _core_request(cloudsim, "2015-04-01", "GetCallerIdentity", method)
        )
    )
    assert identity["Arn"] == f"acs:ram::{pair.partner.uid}:user/Alice"

    as_role = AcsClient(
        region_id="cn-hangzhou",
        credential=StsTokenCredential(
            session.access_key_id, session.access_key_secret, session.security_token
        ),
    )
    request = _core_request(cloudsim, "2015-05-01", "GetRole", method)
    if method == "POST":
        request.add_body_params("RoleName", "signed")  # form body, signed with the query
    else:
        request.add_query_param("RoleName", "signed")
    role = json.loads(as_role.do_action_with_exception(request))["Role"]
    assert role["RoleName"] == "signed" and role["MaxSessionDuration"] == 3600

    denied_request = _core_request(cloudsim, "2015-05-01", "CreateRole", method)
    denied_request.add_query_param("RoleName", "nope")
    denied_request.add_query_param("AssumeRolePolicyDocument", trust_policy("acs:ram::1:root"))
    with pytest.raises(ServerException) as denied:
        as_role.do_action_with_exception(denied_request)
    assert (denied.value.get_error_code(), denied.value.get_http_status()) == ("NoPermission", 403)

    forged = AcsClient(pair.alice.access_key_id, "z" * 30, "cn-hangzhou")
    with pytest.raises(ServerException) as bad:
        forged.do_action_with_exception(
            _core_request(cloudsim, "2015-04-01", "GetCallerIdentity", method)
        )
    assert (bad.value.get_error_code(), bad.value.get_http_status()) == (
        "SignatureDoesNotMatch",
        400,
    )
