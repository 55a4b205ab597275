"""pap trusts only files that are its own, as ssh does with a private key: cached credentials
in a file other users can read or write, or that another user owns, are not used (pap takes
new ones, which replace the file), and config.json in that state is refused."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pap import main as pap_main
from pap.errors import BAD_CONFIG, PapError
from pap.store import Config

from tests.cli.conftest import StubServer, json_answer

DELEGATION = "0b6ad9a8-8d2b-4c55-9e49-7a1b3b0f6f11"
TOKEN = "pap_0123abcd_" + "s" * 43
EXPIRATION = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def credentials(key_id: str) -> dict[str, str]:
    return {
        "access_key_id": key_id,
        "access_key_secret": "secret",
        "security_token": "token",
        "expiration": EXPIRATION,
        "region_id": "cn-hangzhou",
    }


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAP_CONFIG_DIR", str(tmp_path / "pap"))
    monkeypatch.setenv("PAP_NO_KEYRING", "1")
    monkeypatch.delenv("PAP_TOKEN", raising=False)
    monkeypatch.delenv("PAP_PORTAL", raising=False)
    return tmp_path / "pap"


@pytest.fixture
def portal(
    stub_server: Callable[[], StubServer], home: Path, monkeypatch: pytest.MonkeyPatch
) -> StubServer:
    """A portal where the one access is usable; signed in through PAP_TOKEN (no config.json,
    so only the cache file is read)."""
    stub = stub_server()
    access = {"delegation": DELEGATION, "owner": "company-a", "role_name": "ecs-viewer"}
    stub.answer("/api/v1/access/", json_answer([{**access, "usable": True}]))
    monkeypatch.setenv("PAP_PORTAL", stub.url)
    monkeypatch.setenv("PAP_TOKEN", TOKEN)
    return stub


def _another_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on pap runs as someone other than the owner of the files written so far."""
    me = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: me + 1)


def _credentials(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """The access key id `pap credentials --cache` prints, and what it says on stderr."""
    status = pap_main.main(["credentials", "ecs-viewer", "--cache", "--format", "json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    return json.loads(out)["AccessKeyId"], err


@pytest.mark.parametrize(
    "made_unsafe", ["not at all", "group can read", "others can write", "another user owns it"]
)
def test_cached_credentials_only_from_a_file_of_one_s_own(
    portal: StubServer,
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    made_unsafe: str,
) -> None:
    issue = f"/api/v1/access/{DELEGATION}/credentials/"
    portal.answer(issue, json_answer(credentials("STS.first"), 201))
    assert _credentials(capsys)[0] == "STS.first"
    (cached,) = (home / "cache").iterdir()
    portal.answer(issue, json_answer(credentials("STS.second"), 201))

    if made_unsafe == "group can read":
        cached.chmod(0o640)
    elif made_unsafe == "others can write":
        cached.chmod(0o602)
    elif made_unsafe == "another user owns it":
        _another_user(monkeypatch)
    key_id, err = _credentials(capsys)

    issued = [request for request in portal.received if request.path == issue]
    if made_unsafe == "not at all":
        assert (key_id, len(issued), err) == ("STS.first", 1, "")
        return
    assert key_id == "STS.second" and len(issued) == 2
    assert err.startswith(f"pap: ignoring {cached}") and err.count("\n") == 1
    # The new credentials replaced the file, which is private again.
    assert cached.stat().st_mode & 0o777 == 0o600
    assert json.loads(cached.read_text())["access_key_id"] == "STS.second"


@pytest.mark.parametrize("made_unsafe", ["others can read", "another user owns it"])
def test_a_config_file_not_of_one_s_own_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, made_unsafe: str
) -> None:
    Config().save(portal="https://portal.example.test", token=TOKEN)
    if made_unsafe == "others can read":
        (home / "config.json").chmod(0o644)
    else:
        _another_user(monkeypatch)
    with pytest.raises(PapError) as refused:
        Config()
    assert refused.value.status == BAD_CONFIG
    assert str(home / "config.json") in refused.value.message
