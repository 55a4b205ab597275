"""The federation exchange's failures become CloudErrors that carry no secret."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from cloud import console
from cloud.errors import CloudError, ErrorCategory
from cloud.values import IssuedCredentials

CREDENTIALS = IssuedCredentials(
    access_key_id="STS.key",
    access_key_secret="very-secret",
    security_token="very-token",
    expiration=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
)


class _Answer:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code = status
        self._body = body

    def json(self) -> Any:
        if isinstance(self._body, Exception):
            raise self._body
        return self._body


def _exchange(monkeypatch: pytest.MonkeyPatch, outcome: Any) -> str:
    sent: dict[str, Any] = {}

    def post(url: str, **kwargs: Any) -> Any:
        sent.update(url=url, **kwargs)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(console.requests, "post", post)
    token = console.federation_signin_token(
        signin_base_url="https://signin.example/",
        credentials=CREDENTIALS,
        ticket_type="normal",
        timeout_seconds=2,
    )
    assert sent["url"] == "https://signin.example/federation"
    assert sent["timeout"] == 2 and sent["allow_redirects"] is False
    assert sent["data"]["AccessKeySecret"] == "very-secret"  # in the body, never the URL
    return token


def test_a_token_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = _Answer(200, {"RequestId": "r", "SigninToken": "tok"})
    assert _exchange(monkeypatch, answer) == "tok"


@pytest.mark.parametrize(
    ("outcome", "category", "code"),
    [
        (requests.ConnectTimeout("slow"), ErrorCategory.TRANSPORT, None),
        (
            _Answer(401, {"RequestId": "r", "Code": "InvalidCredential.AuthenticateFail"}),
            ErrorCategory.REJECTED,
            "InvalidCredential.AuthenticateFail",
        ),
        (_Answer(200, {"RequestId": "r"}), ErrorCategory.INVALID_RESPONSE, None),
        (_Answer(502, ValueError("not json")), None, None),
    ],
)
def test_failures_are_cloud_errors_without_the_secret(
    monkeypatch: pytest.MonkeyPatch, outcome: Any, category: Any, code: Any
) -> None:
    with pytest.raises(CloudError) as raised:
        _exchange(monkeypatch, outcome)
    error = raised.value
    assert error.code == code
    if category is not None:
        assert error.category == category
    assert "very-secret" not in str(error) and "very-token" not in str(error)


def test_the_login_url_carries_the_token_and_where_to_go() -> None:
    url = console.federation_login_url(
        signin_base_url="https://signin.example",
        signin_token="tok",
        login_url="https://portal.example/",
        destination="https://home.console.example",
    )
    assert url.startswith("https://signin.example/federation?Action=Login&")
    assert "SigninToken=tok" in url and "Destination=https%3A%2F%2Fhome.console.example" in url
