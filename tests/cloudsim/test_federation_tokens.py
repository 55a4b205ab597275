"""cloudsim's federation sign-in tokens, in process: 30 seconds, single use, role sessions only."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from cloudsim import federation
from cloudsim.api import PageRequest
from cloudsim.identity import ASSUMED_ROLE, RAM_USER, Identity, ResolvedKey
from cloudsim.store import Store

SESSION_SECRET = "secret"


def _request(store: Store, query: dict[str, str], method: str = "GET") -> PageRequest:
    return PageRequest(
        method=method,
        path="/federation",
        query=query if method == "GET" else {},
        headers={"host": "127.0.0.1:9100"},
        body=b"",
        form=query if method == "POST" else {},
        client_ip="127.0.0.1",
        store=store,
        server=None,
        request_id="req-1",
    )


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path)


@pytest.fixture
def role_session(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    keys: dict[str, ResolvedKey] = {
        "STS.abc": ResolvedKey(
            Identity(
                kind=ASSUMED_ROLE,
                account_uid="11223344",
                access_key_id="STS.abc",
                role_name="ecs-admin",
                session_name="alice@company-b",
            ),
            "secret",
            "Active",
            security_token="token",
            expires_at=time.time() + 3600,
        ),
        "LTAIuser": ResolvedKey(
            Identity(
                kind=RAM_USER, account_uid="12345678", access_key_id="LTAIuser", user_name="Alice"
            ),
            "secret",
            "Active",
        ),
    }
    monkeypatch.setattr(federation, "resolve_access_key", lambda _store, key_id: keys.get(key_id))
    return keys


def _token(store: Store, key_id: str = "STS.abc", secret: str = SESSION_SECRET) -> Any:
    return federation._federation(
        _request(
            store,
            {
                "Action": "GetSigninToken",
                "AccessKeyId": key_id,
                "AccessKeySecret": secret,
                "SecurityToken": "token",
                "TicketType": "normal",
            },
            method="POST",
        )
    )


def _login(store: Store, token: str) -> Any:
    return federation._federation(
        _request(
            store,
            {
                "Action": "Login",
                "LoginUrl": "http://portal/",
                "Destination": "http://127.0.0.1:9100/console",
                "SigninToken": token,
            },
        )
    )


def test_a_token_works_once(store: Store, role_session) -> None:
    answer = _token(store)
    assert answer.status == 200
    token = json.loads(answer.body)["SigninToken"]
    first = _login(store, token)
    assert (
        first.status == 302 and dict(first.headers)["Location"] == "http://127.0.0.1:9100/console"
    )
    assert _login(store, token).status == 401


def test_a_token_older_than_30_seconds_is_refused(
    store: Store, role_session, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = json.loads(_token(store).body)["SigninToken"]
    later = time.time() + federation.TOKEN_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert _login(store, token).status == 401


def test_long_term_keys_and_wrong_secrets_get_no_token(store: Store, role_session) -> None:
    assert _token(store, key_id="LTAIuser").status == 401
    assert _token(store, secret="wrong").status == 401
    assert _token(store, key_id="STS.unknown").status == 401


def test_an_unknown_action_or_missing_parameters_are_400(store: Store, role_session) -> None:
    assert federation._federation(_request(store, {"Action": "Nope"})).status == 400
    answer = federation._federation(_request(store, {"Action": "Login", "SigninToken": "x"}))
    assert answer.status == 400
    assert json.loads(answer.body)["Code"] == "MissingParameter.LoginUrl"
