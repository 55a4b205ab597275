"""Where pap keeps its sign-in and (with --cache) credentials: the OS keyring when the
`keyring` package is installed and works, else 0600 files under the config directory."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from pap.errors import BAD_CONFIG, PapError

KEYRING_SERVICE = "pap"


def config_dir() -> Path:
    base = os.environ.get("PAP_CONFIG_DIR") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config"), "pap"
    )
    return Path(base)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, atomically (never a moment when the
    file exists with wider permissions)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class UnsafeFile(PapError):
    """A file pap keeps secrets in that another user could read, or could have written."""

    def __init__(self, path: Path, problem: str, fix: str) -> None:
        super().__init__(f"{path} {problem}; pap does not trust it ({fix}).", status=BAD_CONFIG)
        self.problem = problem


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise _unreadable(path, error) from None
    return _parsed(path, text)


def read_private_json(path: Path) -> dict[str, Any] | None:
    """read_json for a file of secrets, trusted only as ssh trusts a private key: this user
    owns it and nobody else may read or write it; UnsafeFile otherwise. Checked on the open
    file, so a file swapped in after the check is not the one read."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise _unreadable(path, error) from None
    with handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.getuid():
            raise UnsafeFile(
                path, f"belongs to another user (uid {info.st_uid})", "check it, then delete it"
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise UnsafeFile(
                path, f"is open to other users (mode {mode:04o})", "run chmod 600 on it"
            )
        try:
            text = handle.read()
        except (OSError, ValueError) as error:
            raise _unreadable(path, error) from None
    return _parsed(path, text)


def _unreadable(path: Path, error: Exception) -> PapError:
    return PapError(
        f"{path} cannot be read ({error.__class__.__name__}); fix it or delete it and run pap "
        "login again.",
        status=BAD_CONFIG,
    )


def _parsed(path: Path, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise PapError(
            f"{path} is not valid JSON ({error.__class__.__name__}); fix it or delete it and "
            "run pap login again.",
            status=BAD_CONFIG,
        ) from None
    if not isinstance(data, dict):
        raise PapError(
            f"{path} should hold a JSON object; delete it and run pap login.", status=BAD_CONFIG
        )
    return data


def _keyring() -> Any:
    if os.environ.get("PAP_NO_KEYRING"):
        return None
    try:
        import keyring  # optional dependency
        from keyring.backends import fail
    except ImportError:
        return None
    if isinstance(keyring.get_keyring(), fail.Keyring):
        return None
    return keyring


class Config:
    """The portal's URL and the token. The token goes to the keyring when there is one."""

    def __init__(self) -> None:
        self.path = config_dir() / "config.json"
        data = read_private_json(self.path) or {}
        self.portal: str = str(data.get("portal") or "")
        self._file_token: str = str(data.get("token") or "")
        self.token_in_keyring: bool = bool(data.get("token_in_keyring"))

    @property
    def token(self) -> str:
        override = os.environ.get("PAP_TOKEN")
        if override:
            return override
        if self.token_in_keyring:
            ring = _keyring()
            return (ring.get_password(KEYRING_SERVICE, self.portal) or "") if ring else ""
        return self._file_token

    def save(self, *, portal: str, token: str) -> str:
        """Store the sign-in; answers where the token went."""
        self.portal = portal
        ring = _keyring()
        if ring is not None:
            ring.set_password(KEYRING_SERVICE, portal, token)
            body = {"portal": portal, "token_in_keyring": True}
            where = "the OS keyring"
        else:
            body = {"portal": portal, "token": token}
            where = str(self.path)
        write_private(self.path, json.dumps(body, indent=2) + "\n")
        return where

    def forget(self) -> None:
        ring = _keyring()
        if ring is not None and self.portal:
            # Nothing stored there (or the keyring refuses): the file below is what counts.
            with contextlib.suppress(Exception):
                ring.delete_password(KEYRING_SERVICE, self.portal)
        if self.path.exists():
            self.path.unlink()
        # Credentials cached with --cache stay valid for up to hours: signing out removes them.
        for cached in cache_dir().glob("credentials-*.json"):
            cached.unlink(missing_ok=True)


def cache_dir() -> Path:
    return config_dir() / "cache"


def cache_path(delegation_id: str, duration_seconds: int | None = None) -> Path:
    """One file per access and duration asked for (None: the longest allowed), so credentials
    cached for one duration never answer a request for another."""
    asked = "longest" if duration_seconds is None else f"{duration_seconds}s"
    return cache_dir() / f"credentials-{delegation_id}-{asked}.json"
