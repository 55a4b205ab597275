"""Where `pap` keeps its token: the OS keyring through the `keyring` package when a backend
works (an in-memory backend plugged in with `keyring.set_keyring`), else a 0600 file."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import PasswordDeleteError
from pap.store import KEYRING_SERVICE, Config, cache_path, write_private

PORTAL = "https://portal.example.test"
TOKEN = "pap_0123abcd_" + "s" * 43


class MemoryKeyring(KeyringBackend):
    """A keyring that keeps passwords in a dict: what an OS keyring does, in this process."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PAP_CONFIG_DIR", str(tmp_path / "pap"))
    monkeypatch.delenv("PAP_NO_KEYRING", raising=False)
    monkeypatch.delenv("PAP_TOKEN", raising=False)
    previous = keyring.get_keyring()
    yield tmp_path / "pap"
    keyring.set_keyring(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_token_goes_to_the_keyring_and_the_file_keeps_only_the_portal(home: Path) -> None:
    ring = MemoryKeyring()
    keyring.set_keyring(ring)

    where = Config().save(portal=PORTAL, token=TOKEN)

    assert where == "the OS keyring"
    assert ring.passwords == {(KEYRING_SERVICE, PORTAL): TOKEN}
    config_file = home / "config.json"
    assert json.loads(config_file.read_text()) == {"portal": PORTAL, "token_in_keyring": True}
    assert TOKEN not in config_file.read_text()
    assert _mode(config_file) == 0o600
    # A later run reads it back from the keyring.
    again = Config()
    assert again.portal == PORTAL
    assert again.token == TOKEN

    again.forget()
    assert ring.passwords == {}
    assert not config_file.exists()


def test_a_token_in_the_keyring_is_gone_when_the_keyring_is(home: Path) -> None:
    keyring.set_keyring(MemoryKeyring())
    Config().save(portal=PORTAL, token=TOKEN)
    # Another session of the desktop, where the keyring holds nothing for this portal.
    keyring.set_keyring(MemoryKeyring())
    assert Config().token == ""


def test_no_keyring_backend_falls_back_to_a_0600_file(home: Path) -> None:
    keyring.set_keyring(fail.Keyring())

    where = Config().save(portal=PORTAL, token=TOKEN)

    config_file = home / "config.json"
    assert where == str(config_file)
    assert json.loads(config_file.read_text()) == {"portal": PORTAL, "token": TOKEN}
    assert _mode(config_file) == 0o600
    assert _mode(home) == 0o700
    assert Config().token == TOKEN


def test_without_the_keyring_package_the_file_is_used(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    monkeypatch.setitem(sys.modules, "keyring", None)  # `import keyring` now fails

    Config().save(portal=PORTAL, token=TOKEN)

    assert ring.passwords == {}
    assert json.loads((home / "config.json").read_text())["token"] == TOKEN


def test_pap_no_keyring_keeps_the_token_in_the_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    monkeypatch.setenv("PAP_NO_KEYRING", "1")

    Config().save(portal=PORTAL, token=TOKEN)

    assert ring.passwords == {}
    assert _mode(home / "config.json") == 0o600


def test_signing_out_deletes_the_cached_credentials_too(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--cache` keeps live STS secrets in a file; after `pap logout` nothing of the sign-in,
    # credentials included, may stay behind on this computer.
    monkeypatch.setenv("PAP_NO_KEYRING", "1")
    Config().save(portal=PORTAL, token=TOKEN)
    cached = cache_path("0b6ad9a8-8d2b-4c55-9e49-7a1b3b0f6f11")
    write_private(cached, json.dumps({"access_key_secret": "s3cr3t"}))

    Config().forget()

    assert not (home / "config.json").exists()
    assert not cached.exists()
