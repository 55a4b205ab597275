"""cloud.client with the real SDKs against a scripted loopback server.

cloudsim answers like Alibaba Cloud; this server answers *badly* on purpose (wrong shapes,
HTML, dropped connections, slow replies) to prove the client's null checks, its one-request
contract, its recorders and its secrecy. The cloudsim integration tests cover the real flows.
"""

import json
import logging
import pickle
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import override_settings

from cloud.client import CloudClient, CloudCredentials, IssuedCredentials
from cloud.errors import CloudError, ErrorCategory
from cloud.oos import OosClient
from cloud.policies import PolicyError, build_trust_policy

SECRET = "canary-secret-5f0c2d9e"
TOKEN = "canary-token-0b7e41aa"
ROLE = {
    "RoleName": "ecs-admin",
    "Arn": "acs:ram::11223344:role/ecs-admin",
    "RoleId": "3001",
    "Description": "x",
    "AssumeRolePolicyDocument": json.dumps(build_trust_policy({"acs:ram::12345678:root"})),
    "MaxSessionDuration": 3600,
    "CreateDate": "2026-01-01T00:00:00Z",
}

Reply = tuple[int, dict, bytes] | str


class ScriptedCloud:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.replies: dict[str, list[Reply] | Callable[[dict], Reply]] = {}
        self.default: Reply = (200, {}, b'{"RequestId":"R-default"}')

    def reply(self, action: str, *replies: Reply) -> None:
        self.replies[action] = list(replies)

    def json(self, action: str, body: dict, status: int = 200, headers: dict | None = None) -> None:
        self.reply(action, (status, headers or {}, json.dumps(body).encode()))

    def count(self, action: str) -> int:
        return sum(1 for r in self.requests if r["action"] == action)

    def next_reply(self, request: dict) -> Reply:
        script = self.replies.get(request["action"])
        if callable(script):
            return script(request)
        if script:
            return script.pop(0) if len(script) > 1 else script[0]
        return self.default


@pytest.fixture
def scripted():
    cloud = ScriptedCloud()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            request = {
                "action": self.headers.get("x-acs-action"),
                "query": dict(parse_qsl(urlsplit(self.path).query)),
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
            cloud.requests.append(request)
            reply = cloud.next_reply(request)
            if reply == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if reply == "slow":
                time.sleep(0.6)
                reply = (200, {}, b'{"RequestId":"late"}')
            status, headers, body = reply
            self.send_response(status)
            headers = {"content-type": "application/json", **headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST

    class QuietServer(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address) -> None:
            pass  # the client hanging up on "slow" or "drop" replies is expected

    server = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    cloud.endpoint = f"127.0.0.1:{server.server_address[1]}"
    yield cloud
    server.shutdown()
    server.server_close()


def make_client(cloud, **kwargs) -> CloudClient:
    return CloudClient(
        CloudCredentials("LTAIexampleKEY", SECRET),
        ram_endpoint=cloud.endpoint,
        sts_endpoint=cloud.endpoint,
        protocol="http",
        **kwargs,
    )


# --- the one-request contract and the error mapping on real responses ---------------------------
@pytest.mark.parametrize(
    ("reply", "category", "code"),
    [
        (
            (500, {}, b'{"Code":"InternalError","Message":"boom","RequestId":"R5"}'),
            ErrorCategory.SERVER,
            "InternalError",
        ),
        (
            (400, {}, b'{"Code":"Throttling.User","Message":"slow down","RequestId":"R6"}'),
            ErrorCategory.THROTTLING,
            "Throttling.User",
        ),
        (
            (502, {"content-type": "text/html"}, b"<html>Bad Gateway</html>"),
            ErrorCategory.TRANSPORT,
            None,
        ),
        ("drop", ErrorCategory.TRANSPORT, None),
    ],
)
def test_transient_failures_are_sent_once_and_marked_transient(
    scripted, reply, category, code
) -> None:
    scripted.reply("GetRole", reply)
    with pytest.raises(CloudError) as caught:
        make_client(scripted).get_role("ecs-admin")
    assert scripted.count("GetRole") == 1  # the SDK did not retry by itself
    assert caught.value.category is category and caught.value.code == code
    assert caught.value.permanent is False


def test_retry_after_header_is_carried_in_milliseconds(scripted) -> None:
    scripted.json(
        "UpdateRole",
        {"Code": "Throttling.User", "Message": "x", "RequestId": "R7"},
        429,
        {"x-acs-retry-after": "750"},
    )
    with pytest.raises(CloudError) as caught:
        make_client(scripted).update_role("ecs-admin", max_session_duration=7200)
    assert scripted.count("UpdateRole") == 1
    assert caught.value.retry_after_ms == 750 and caught.value.request_id == "R7"


def test_read_timeout_is_transient(scripted) -> None:
    scripted.reply("GetRole", "slow")
    client = make_client(scripted, read_timeout_ms=200)
    with pytest.raises(CloudError) as caught:
        client.get_role("ecs-admin")
    assert caught.value.category is ErrorCategory.TRANSPORT and "timed out" in caught.value.message


def test_missing_role_is_none_and_other_404s_raise(scripted) -> None:
    scripted.json(
        "GetRole", {"Code": "EntityNotExist.Role", "Message": "gone", "RequestId": "R8"}, 404
    )
    assert make_client(scripted).get_role("ecs-admin") is None
    scripted.json(
        "GetRole",
        {"Code": "InvalidAccessKeyId.NotFound", "Message": "who?", "RequestId": "R9"},
        404,
    )
    with pytest.raises(CloudError) as caught:
        make_client(scripted).get_role("ecs-admin")
    assert caught.value.is_configuration and caught.value.permanent


# --- wrong shapes never pass silently ---------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {"RequestId": "R"},
        {"RequestId": "R", "Role": "ecs-admin"},
        {"RequestId": "R", "Role": []},
        {"RequestId": "R", "Role": {**ROLE, "MaxSessionDuration": "lots"}},
        {
            "RequestId": "R",
            "Role": {k: v for k, v in ROLE.items() if k != "AssumeRolePolicyDocument"},
        },
        {"RequestId": "R", "Role": {**ROLE, "Arn": 7}},
        ["not", "an", "object"],
    ],
)
def test_wrong_get_role_shapes_are_invalid_responses(scripted, body) -> None:
    scripted.json("GetRole", body)
    with pytest.raises(CloudError) as caught:
        make_client(scripted).get_role("ecs-admin")
    assert caught.value.category is ErrorCategory.INVALID_RESPONSE
    assert caught.value.permanent is False


def test_a_non_json_success_body_is_transient(scripted) -> None:
    scripted.reply("GetRole", (200, {"content-type": "text/html"}, b"<html>ok</html>"))
    with pytest.raises(CloudError) as caught:
        make_client(scripted).get_role("ecs-admin")
    assert caught.value.permanent is False


@pytest.mark.parametrize(
    "body",
    [
        {"RequestId": "R"},
        {"RequestId": "R", "Policies": "none"},
        {"RequestId": "R", "Policies": {"Policy": "AliyunECSFullAccess"}},
        {"RequestId": "R", "Policies": {"Policy": [{"PolicyName": "AliyunECSFullAccess"}]}},
    ],
)
def test_wrong_list_shapes_are_invalid_responses(scripted, body) -> None:
    scripted.json("ListPoliciesForRole", body)
    with pytest.raises(CloudError) as caught:
        make_client(scripted).list_policies_for_role("ecs-admin")
    assert caught.value.category is ErrorCategory.INVALID_RESPONSE


def test_an_empty_wrapper_is_an_empty_list(scripted) -> None:
    # RAM writes empty lists as {"Policies": {"Policy": []}}; the SDK reads {} the same way.
    for wrapper in ({"Policy": []}, {}):
        scripted.json("ListPoliciesForRole", {"RequestId": "R", "Policies": wrapper})
        assert make_client(scripted).list_policies_for_role("ecs-admin") == []


def test_string_numbers_from_the_wire_are_accepted(scripted) -> None:
    scripted.json("GetRole", {"RequestId": "R1", "Role": {**ROLE, "MaxSessionDuration": "7200"}})
    role = make_client(scripted).get_role("ecs-admin")
    assert role is not None and role.max_session_duration == 7200 and role.request_id == "R1"


def test_assume_role_needs_every_credential_field(scripted) -> None:
    credentials = {
        "AccessKeyId": "STS.k",
        "AccessKeySecret": "s",
        "SecurityToken": "t",
        "Expiration": "2026-05-01T10:00:00Z",
    }
    for missing in credentials:
        scripted.json(
            "AssumeRole",
            {
                "RequestId": "R",
                "Credentials": {k: v for k, v in credentials.items() if k != missing},
            },
        )
        with pytest.raises(CloudError) as caught:
            make_client(scripted).assume_role(
                role_arn=ROLE["Arn"], session_name="alice@b", duration_seconds=900
            )
        assert caught.value.category is ErrorCategory.INVALID_RESPONSE, missing
    scripted.json(
        "AssumeRole", {"RequestId": "R", "Credentials": {**credentials, "Expiration": "soon"}}
    )
    with pytest.raises(CloudError):
        make_client(scripted).assume_role(
            role_arn=ROLE["Arn"], session_name="alice@b", duration_seconds=900
        )


def test_paging_follows_markers_and_stops_on_a_stuck_marker(scripted) -> None:
    def page(request):
        marker = request["query"].get("Marker")
        names = {None: ("P1", "m1", True), "m1": ("P2", "m2", True), "m2": ("P3", None, False)}[
            marker
        ]
        body = {
            "RequestId": f"R-{names[0]}",
            "IsTruncated": names[2],
            "Policies": {"Policy": [{"PolicyName": names[0], "PolicyType": "Custom"}]},
        }
        if names[1]:
            body["Marker"] = names[1]
        return (200, {}, json.dumps(body).encode())

    scripted.replies["ListPolicies"] = page
    assert [p.policy_name for p in make_client(scripted).list_policies("Custom")] == [
        "P1",
        "P2",
        "P3",
    ]
    assert scripted.count("ListPolicies") == 3
    scripted.json(
        "ListPolicies",
        {"RequestId": "R", "IsTruncated": True, "Marker": "same", "Policies": {"Policy": []}},
    )
    scripted.replies["ListPolicies"] = lambda request: (
        200,
        {},
        json.dumps(
            {"RequestId": "R", "IsTruncated": True, "Marker": "same", "Policies": {"Policy": []}}
        ).encode(),
    )
    with pytest.raises(CloudError, match="did not advance"):
        make_client(scripted).list_policies()


def test_oos_pages_by_next_token_and_refuses_a_token_that_does_not_advance(scripted) -> None:
    """OOS lists page by NextToken through the same loop as RAM's Marker: every page is read,
    and a token that does not advance is an invalid answer, for the task executions as for
    the executions (the task executions' loop once returned the partial list instead)."""
    client = OosClient(
        access_key_id="LTAIexampleKEY",
        access_key_secret=SECRET,
        endpoint=scripted.endpoint,
        ecs_endpoint=scripted.endpoint,
        protocol="http",
    )

    def task(number: int) -> dict:
        return {"TaskExecutionId": f"t-{number}", "ExecutionId": "exec-1", "Status": "Success"}

    def pages(request: dict) -> Reply:
        token = request["query"].get("NextToken")
        body = {"RequestId": f"R-{token}", "TaskExecutions": [task(1 if token is None else 2)]}
        if token is None:
            body["NextToken"] = "page-2"
        return (200, {}, json.dumps(body).encode())

    scripted.replies["ListTaskExecutions"] = pages
    found = client.list_task_executions(execution_id="exec-1")
    assert [t.task_execution_id for t in found] == ["t-1", "t-2"]
    assert scripted.count("ListTaskExecutions") == 2
    scripted.json(
        "ListTaskExecutions", {"RequestId": "R", "NextToken": "same", "TaskExecutions": [task(1)]}
    )
    with pytest.raises(CloudError, match="NextToken \\(it did not advance\\)"):
        client.list_task_executions(execution_id="exec-1")
    scripted.json("ListExecutions", {"RequestId": "R", "NextToken": "same", "Executions": []})
    with pytest.raises(CloudError, match="NextToken \\(it did not advance\\)"):
        client.list_executions()


def test_policy_version_and_cascade_parameters_on_the_wire(scripted) -> None:
    client = make_client(scripted)
    assert client.delete_policy_version(policy_name="portal-assume", version_id="v2") == (
        "R-default"
    )
    client.delete_policy("portal-assume", cascade=True)
    client.delete_policy("portal-assume")
    sent = [(r["action"], r["query"]) for r in scripted.requests]
    assert sent == [
        ("DeletePolicyVersion", {"PolicyName": "portal-assume", "VersionId": "v2"}),
        ("DeletePolicy", {"PolicyName": "portal-assume", "CascadingDelete": "True"}),
        ("DeletePolicy", {"PolicyName": "portal-assume"}),
    ]


# --- validation before sending ------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_role("../x"),
        lambda c: c.create_role(
            "r", trust_document="{", description="d", max_session_duration=3600
        ),
        lambda c: c.create_role(
            "r",
            trust_document=build_trust_policy({"acs:ram::1:root"}),
            description="d",
            max_session_duration=100,
        ),
        lambda c: c.create_role(
            "r",
            trust_document=build_trust_policy({"acs:ram::1:root"}),
            description="",
            max_session_duration=3600,
        ),
        lambda c: c.attach_policy_to_role(role_name="r", policy_type="Managed", policy_name="p"),
        lambda c: c.attach_policy_to_role(role_name="r", policy_type="System", policy_name="a b"),
        lambda c: c.assume_role(
            role_arn="acs:ram::*:role/x", session_name="alice", duration_seconds=900
        ),
        lambda c: c.assume_role(role_arn=ROLE["Arn"], session_name="a", duration_seconds=900),
        lambda c: c.assume_role(
            role_arn=ROLE["Arn"], session_name="alice\nx", duration_seconds=900
        ),
        lambda c: c.assume_role(role_arn=ROLE["Arn"], session_name="alice", duration_seconds=899),
        lambda c: c.assume_role(
            role_arn=ROLE["Arn"], session_name="alice", duration_seconds=3600.5
        ),
        lambda c: c.assume_role(
            role_arn=ROLE["Arn"], session_name="alice", duration_seconds=900, policy="{}"
        ),
        lambda c: c.get_user("a b"),
        lambda c: c.create_policy(
            policy_name="p",
            document='{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*"}]}',
        ),
    ],
)
def test_bad_values_never_reach_the_cloud(scripted, call) -> None:
    with pytest.raises(PolicyError):
        call(make_client(scripted))
    assert scripted.requests == []


# --- recorders ----------------------------------------------------------------------------------
def test_intent_is_recorded_before_mutating_calls_only(scripted) -> None:
    events: list[tuple] = []
    scripted.json("GetRole", {"RequestId": "R-get", "Role": ROLE})
    scripted.json("DeleteRole", {"RequestId": "R-del"})

    def intent(*, action, target):
        events.append(("intent", action, target, len(scripted.requests)))

    def record(*, action, target, request_id, outcome, error_code):
        events.append(("call", action, target, request_id, outcome, error_code))

    client = make_client(scripted, intent_recorder=intent, call_recorder=record)
    client.get_role("ecs-admin")
    assert client.delete_role("ecs-admin") == "R-del"
    assert events == [
        ("call", "GetRole", "role/ecs-admin", "R-get", "succeeded", None),
        ("intent", "DeleteRole", "role/ecs-admin", 1),  # written while only GetRole had been sent
        ("call", "DeleteRole", "role/ecs-admin", "R-del", "succeeded", None),
    ]


def test_a_failing_intent_write_means_no_request(scripted) -> None:
    def intent(*, action, target):
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        make_client(scripted, intent_recorder=intent).delete_role("ecs-admin")
    assert scripted.requests == []


def test_failures_are_recorded_with_their_code(scripted) -> None:
    calls = []
    scripted.json(
        "DeleteRole",
        {"Code": "DeleteConflict.Role.Policy", "Message": "x", "RequestId": "R-c"},
        409,
    )
    client = make_client(scripted, call_recorder=lambda **kw: calls.append(kw))
    with pytest.raises(CloudError) as caught:
        client.delete_role("ecs-admin")
    assert caught.value.is_delete_conflict
    assert calls == [
        {
            "action": "DeleteRole",
            "target": "role/ecs-admin",
            "request_id": "R-c",
            "outcome": "failed",
            "error_code": "DeleteConflict.Role.Policy",
        }
    ]
    scripted.reply("DeleteRole", "drop")
    with pytest.raises(CloudError):
        client.delete_role("ecs-admin")
    assert calls[-1]["outcome"] == "failed" and calls[-1]["error_code"] == "transport"


# --- configuration and secrecy ------------------------------------------------------------------
def test_endpoints_protocol_and_timeouts_come_from_settings(scripted) -> None:
    scripted.json(
        "GetCallerIdentity",
        {
            "RequestId": "R",
            "AccountId": "11223344",
            "Arn": "acs:ram::11223344:user/portal",
            "IdentityType": "RAMUser",
        },
    )
    with override_settings(
        ALIBABA_RAM_ENDPOINT=scripted.endpoint,
        ALIBABA_STS_ENDPOINT=scripted.endpoint,
        ALIBABA_CLOUD_PROTOCOL="http",
        ALIBABA_CLOUD_READ_TIMEOUT_MS=2000,
    ):
        identity = CloudClient(CloudCredentials("LTAIexampleKEY", SECRET)).get_caller_identity()
    assert identity.account_id == "11223344" and identity.request_id == "R"
    sent = scripted.requests[0]["headers"]
    assert sent["authorization"].startswith("ACS3-HMAC-SHA256 Credential=LTAIexampleKEY,")
    assert "PartnerAccessPortal" in sent["user-agent"]


def test_sts_credentials_sign_with_their_token(scripted) -> None:
    scripted.json(
        "GetCallerIdentity",
        {"RequestId": "R", "AccountId": "1", "Arn": "acs:ram::1:assumed-role/r/s"},
    )
    client = CloudClient(
        CloudCredentials("STS.tmp", SECRET, TOKEN),
        ram_endpoint=scripted.endpoint,
        sts_endpoint=scripted.endpoint,
        protocol="http",
    )
    client.get_caller_identity()
    assert scripted.requests[0]["headers"]["x-acs-security-token"] == TOKEN


def test_no_secret_in_reprs_errors_or_logs(scripted, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    credentials = CloudCredentials("LTAIexampleKEY", SECRET, TOKEN)
    client = CloudClient(
        credentials, ram_endpoint=scripted.endpoint, sts_endpoint=scripted.endpoint, protocol="http"
    )
    scripted.json(
        "AssumeRole",
        {
            "RequestId": "R-a",
            "AssumedRoleUser": {"Arn": "acs:ram::1:role/r/alice", "AssumedRoleId": "3:alice"},
            "Credentials": {
                "AccessKeyId": "STS.issued",
                "AccessKeySecret": "issued-" + SECRET,
                "SecurityToken": "issued-" + TOKEN,
                "Expiration": "2026-05-01T10:00:00Z",
            },
        },
    )
    issued = client.assume_role(
        role_arn=ROLE["Arn"], session_name="alice@company-b", duration_seconds=900
    )
    assert isinstance(issued, IssuedCredentials) and issued.access_key_secret == "issued-" + SECRET
    assert issued.expiration.isoformat() == "2026-05-01T10:00:00+00:00"
    scripted.json(
        "GetRole", {"Code": "SignatureDoesNotMatch", "Message": "bad", "RequestId": "R-s"}, 400
    )
    with pytest.raises(CloudError) as caught:
        client.get_role("ecs-admin")
    scripted.reply("GetRole", "drop")
    with pytest.raises(CloudError) as dropped:
        client.get_role("ecs-admin")
    assert dropped.value.__cause__ is None and dropped.value.__suppress_context__
    texts = [
        repr(credentials),
        str(credentials),
        repr(client),
        repr(issued),
        str(issued),
        repr(caught.value),
        str(caught.value),
        repr(dropped.value),
        caplog.text,
    ]
    for text in texts:
        assert SECRET not in text and TOKEN not in text
    assert "cloud call AssumeRole" in caplog.text and "R-a" in caplog.text


def test_secrets_refuse_to_be_pickled() -> None:
    issued = IssuedCredentials("STS.k", SECRET, TOKEN, datetime(2026, 1, 1, tzinfo=UTC))
    for value in (CloudCredentials("LTAI", SECRET, TOKEN), issued):
        with pytest.raises(TypeError, match="serialised"):
            pickle.dumps(value)


def test_credentials_need_both_halves() -> None:
    with pytest.raises(ValueError):
        CloudCredentials("", SECRET)
    with pytest.raises(ValueError):
        CloudCredentials("LTAI", "")
