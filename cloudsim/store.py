"""cloudsim's persistent state: one SQLite file under ``--data DIR``.

Concurrency model: every write runs inside ``Store.write()``, which takes one process-wide lock
and then ``BEGIN IMMEDIATE`` (so another process, e.g. the CLI, is serialised by SQLite's own
write lock too). Reads use ``Store.read()``, a deferred transaction that sees one consistent
WAL snapshot. Each thread keeps its own connection, so readers never wait for each other.

Names of users, roles and policies are unique per account *case-insensitively* ([UNVERIFIED]
choice, see the README): each table keeps the name as given plus a lower-cased ``*_key``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import string
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DB_FILENAME = "cloudsim.sqlite3"
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    uid TEXT PRIMARY KEY,
    alias TEXT NOT NULL,
    alias_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    account_uid TEXT NOT NULL REFERENCES accounts(uid),
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    user_id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    mobile_phone TEXT NOT NULL DEFAULT '',
    comments TEXT NOT NULL DEFAULT '',
    password_hash TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_login_at TEXT,
    PRIMARY KEY (account_uid, name_key)
);
CREATE TABLE IF NOT EXISTS access_keys (
    access_key_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    account_uid TEXT NOT NULL REFERENCES accounts(uid),
    user_key TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'Active',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS access_keys_owner ON access_keys(account_uid, user_key);
CREATE TABLE IF NOT EXISTS roles (
    account_uid TEXT NOT NULL REFERENCES accounts(uid),
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    role_id TEXT NOT NULL UNIQUE,
    trust_document TEXT NOT NULL,
    previous_trust_document TEXT,
    trust_changed_at REAL,
    description TEXT NOT NULL DEFAULT '',
    max_session_duration INTEGER NOT NULL DEFAULT 3600,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (account_uid, name_key)
);
CREATE TABLE IF NOT EXISTS policies (
    account_uid TEXT NOT NULL,
    policy_type TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    default_version TEXT NOT NULL,
    next_version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (account_uid, policy_type, name_key)
);
CREATE TABLE IF NOT EXISTS policy_versions (
    account_uid TEXT NOT NULL,
    policy_type TEXT NOT NULL,
    policy_key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (account_uid, policy_type, policy_key, version_id)
);
CREATE TABLE IF NOT EXISTS attachments (
    account_uid TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    principal_key TEXT NOT NULL,
    policy_type TEXT NOT NULL,
    policy_key TEXT NOT NULL,
    attached_at TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (account_uid, principal_type, principal_key, policy_type, policy_key)
);
CREATE INDEX IF NOT EXISTS attachments_policy
    ON attachments(account_uid, policy_type, policy_key);
CREATE TABLE IF NOT EXISTS sts_sessions (
    access_key_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    security_token TEXT NOT NULL,
    account_uid TEXT NOT NULL,
    role_key TEXT NOT NULL,
    role_name TEXT NOT NULL,
    role_id TEXT NOT NULL,
    session_name TEXT NOT NULL,
    session_policy TEXT,
    source_identity TEXT,
    caller_arn TEXT NOT NULL,
    caller_account TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ecs_instances (
    instance_id TEXT PRIMARY KEY,
    account_uid TEXT NOT NULL REFERENCES accounts(uid),
    region_id TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    instance_name TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    status TEXT NOT NULL,
    cpu INTEGER NOT NULL DEFAULT 2,
    memory INTEGER NOT NULL DEFAULT 4096,
    os_name TEXT NOT NULL DEFAULT '',
    image_id TEXT NOT NULL DEFAULT '',
    private_ip TEXT NOT NULL DEFAULT '',
    attributes TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status_changed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ecs_instances_owner ON ecs_instances(account_uid, region_id);
CREATE TABLE IF NOT EXISTS console_sessions (
    token TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at REAL NOT NULL
);
-- Cloud Assistant invocations (cloudsim.cloud_assistant) and OOS templates, executions and
-- task executions (cloudsim.oos): JSON documents, read and written by those modules only.
CREATE TABLE IF NOT EXISTS ecs_invocations (
    invoke_id TEXT PRIMARY KEY,
    account_uid TEXT NOT NULL,
    region_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ecs_invocations_owner ON ecs_invocations(account_uid, region_id, seq);
CREATE TABLE IF NOT EXISTS oos_templates (
    account_uid TEXT NOT NULL,
    region_id TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_uid, region_id, name)
);
CREATE TABLE IF NOT EXISTS oos_executions (
    execution_id TEXT PRIMARY KEY,
    account_uid TEXT NOT NULL,
    region_id TEXT NOT NULL,
    parent_id TEXT,
    status TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS oos_executions_owner ON oos_executions(account_uid, region_id, seq);
CREATE INDEX IF NOT EXISTS oos_executions_status ON oos_executions(status);
CREATE TABLE IF NOT EXISTS oos_task_executions (
    task_execution_id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS oos_task_executions_of ON oos_task_executions(execution_id, seq);
"""


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime | float | None = None) -> str:
    """Alibaba's date format: ``YYYY-MM-DDThh:mm:ssZ`` in UTC."""
    if moment is None:
        moment = utc_now()
    elif isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_text(alphabet: str, count: int) -> str:
    """``count`` uniformly random characters of ``alphabet`` from the OS CSPRNG.

    One urandom read per call (``secrets.choice`` reads once per character); bytes past the
    largest multiple of the alphabet size are rejected so every character stays equally likely.
    """
    limit = 256 - 256 % len(alphabet)
    chars: list[str] = []
    while len(chars) < count:
        for byte in secrets.token_bytes(2 * count):
            if byte < limit:
                chars.append(alphabet[byte % len(alphabet)])
                if len(chars) == count:
                    break
    return "".join(chars)


def _random_alnum(count: int) -> str:
    """``count`` uniformly random letters and digits: base64 of CSPRNG bytes without + and /
    (done in C; this runs for every AccessKey and STS session)."""
    out = b""
    while len(out) < count:
        out += base64.b64encode(secrets.token_bytes(count)).translate(None, b"+/=")
    return out[:count].decode()


def _random_digits(count: int, first: str = "") -> str:
    width = count - len(first)
    return first + str(secrets.randbelow(10**width)).zfill(width)


def new_access_key_id() -> str:
    return "LTAI" + _random_alnum(20)


def new_access_key_secret() -> str:
    return _random_alnum(30)


def new_sts_access_key_id() -> str:
    return "STS." + _random_alnum(28)


def new_security_token() -> str:
    return "CAIS" + base64.b64encode(secrets.token_bytes(240)).decode()


def new_role_id() -> str:
    return _random_digits(19, "3")


def new_user_id() -> str:
    return _random_digits(16, "2")


def new_instance_id() -> str:
    return "i-" + _random_text(string.ascii_lowercase + string.digits, 20)


PASSWORD_ITERATIONS = 120_000


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PASSWORD_ITERATIONS)
    return f"pbkdf2_sha256${PASSWORD_ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    try:
        scheme, iterations, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    digest = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), bytes.fromhex(salt_hex), int(iterations)
    )
    return hmac.compare_digest(digest.hex(), digest_hex)


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Account:
    uid: str
    alias: str
    created_at: str


@dataclass(frozen=True)
class User:
    account_uid: str
    name: str
    user_id: str
    display_name: str
    email: str
    mobile_phone: str
    comments: str
    password_hash: str | None
    created_at: str
    updated_at: str
    last_login_at: str | None

    @property
    def arn(self) -> str:
        return f"acs:ram::{self.account_uid}:user/{self.name}"


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret: str
    account_uid: str
    user_name: str | None  # None for the account's root key
    status: str
    created_at: str


@dataclass(frozen=True)
class Role:
    account_uid: str
    name: str
    role_id: str
    trust_document: str
    previous_trust_document: str | None
    trust_changed_at: float | None
    description: str
    max_session_duration: int
    created_at: str
    updated_at: str

    @property
    def arn(self) -> str:
        return role_arn(self.account_uid, self.name)


@dataclass(frozen=True)
class Policy:
    account_uid: str  # "" for System policies
    policy_type: str  # "System" | "Custom"
    name: str
    description: str
    default_version: str
    next_version: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class PolicyVersion:
    version_id: str
    document: str
    created_at: str


@dataclass(frozen=True)
class Attachment:
    policy_type: str
    policy_name: str
    principal_type: str
    principal_name: str
    attached_at: str


@dataclass(frozen=True)
class StsSession:
    access_key_id: str
    secret: str
    security_token: str
    account_uid: str
    role_name: str
    role_id: str
    session_name: str
    session_policy: str | None
    source_identity: str | None
    caller_arn: str
    caller_account: str
    created_at: str
    expires_at: float


@dataclass(frozen=True)
class EcsInstance:
    instance_id: str
    account_uid: str
    region_id: str
    zone_id: str
    instance_name: str
    instance_type: str
    status: str
    cpu: int
    memory: int
    os_name: str
    image_id: str
    private_ip: str
    attributes: dict
    created_at: str
    updated_at: str
    status_changed_at: float


def role_arn(account_uid: str, role_name: str) -> str:
    # [UNVERIFIED] the role name keeps its case in the ARN.
    return f"acs:ram::{account_uid}:role/{role_name}"


class StoreError(Exception):
    """A store-level rule broke (e.g. a unique name); handlers map it to an ApiError."""


# ---------------------------------------------------------------------------------------------
# Data access


# Which cached views a write to a table invalidates (see Store.cached). New STS sessions and
# ECS or console rows invalidate nothing: nothing cached can depend on a row that did not exist.
_WRITE_TARGET = re.compile(r"^\s*(INSERT(?: OR REPLACE)? INTO|UPDATE|DELETE FROM)\s+(\w+)", re.I)
_TOPICS_BY_TABLE = {
    "accounts": "auth",
    "users": "auth",
    "access_keys": "auth",
    "roles": "policy",
    "policies": "policy",
    "policy_versions": "policy",
    "attachments": "policy",
}
CACHE_TOPICS = ("auth", "policy")


def _topic_of(sql: str) -> str | None:
    match = _WRITE_TARGET.match(sql)
    if match is None:
        return None
    verb, table = match.group(1).upper(), match.group(2).lower()
    if table == "sts_sessions":
        return None if verb.startswith("INSERT") else "auth"
    return _TOPICS_BY_TABLE.get(table)


class Tx:
    """Data access inside one transaction (read or write); obtained from Store.read/write."""

    def __init__(
        self, conn: sqlite3.Connection, *, writable: bool, touched: set[str] | None = None
    ) -> None:
        self.conn = conn
        self.writable = writable
        self.touched = touched if touched is not None else set()

    def _one(self, sql: str, args: tuple = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, args).fetchall()

    def _exec(self, sql: str, args: tuple = ()) -> int:
        if not self.writable:
            raise RuntimeError("write attempted inside Store.read()")
        topic = _topic_of(sql)
        if topic is not None:
            self.touched.add(topic)
        return self.conn.execute(sql, args).rowcount

    def next_seq(self) -> int:
        """A monotonically increasing number, used to order listings and markers."""
        row = self._one("SELECT value FROM meta WHERE key = 'seq'")
        value = int(row["value"]) + 1 if row else 1
        self._exec("INSERT OR REPLACE INTO meta(key, value) VALUES ('seq', ?)", (str(value),))
        return value

    # --- meta -------------------------------------------------------------------------
    def meta_get(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else None

    def meta_set(self, key: str, value: str) -> None:
        self._exec("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # --- accounts -----------------------------------------------------------------------
    def account_get(self, uid: str) -> Account | None:
        row = self._one("SELECT uid, alias, created_at FROM accounts WHERE uid = ?", (uid,))
        return Account(**row) if row else None

    def account_by_alias(self, alias: str) -> Account | None:
        row = self._one(
            "SELECT uid, alias, created_at FROM accounts WHERE alias_key = ?", (alias.lower(),)
        )
        return Account(**row) if row else None

    def account_list(self) -> list[Account]:
        return [
            Account(**r)
            for r in self._all("SELECT uid, alias, created_at FROM accounts ORDER BY uid")
        ]

    def account_create(self, *, uid: str, alias: str) -> Account:
        if self.account_get(uid):
            raise StoreError(f"account {uid} already exists")
        if self.account_by_alias(alias):
            raise StoreError(f"alias {alias} is already used")
        created = iso()
        self._exec(
            "INSERT INTO accounts(uid, alias, alias_key, created_at) VALUES (?, ?, ?, ?)",
            (uid, alias, alias.lower(), created),
        )
        return Account(uid, alias, created)

    def account_set_alias(self, *, uid: str, alias: str) -> None:
        other = self.account_by_alias(alias)
        if other and other.uid != uid:
            raise StoreError(f"alias {alias} is already used")
        self._exec(
            "UPDATE accounts SET alias = ?, alias_key = ? WHERE uid = ?",
            (alias, alias.lower(), uid),
        )

    # --- users --------------------------------------------------------------------------
    _USER_COLUMNS = (
        "account_uid, name, user_id, display_name, email, mobile_phone, comments, "
        "password_hash, created_at, updated_at, last_login_at"
    )

    def user_get(self, account_uid: str, name: str) -> User | None:
        row = self._one(
            f"SELECT {self._USER_COLUMNS} FROM users WHERE account_uid = ? AND name_key = ?",  # noqa: S608
            (account_uid, name.lower()),
        )
        return User(**row) if row else None

    def user_list(self, account_uid: str, *, after_key: str = "", limit: int = 1000) -> list[User]:
        rows = self._all(
            f"SELECT {self._USER_COLUMNS} FROM users WHERE account_uid = ? AND name_key > ? "  # noqa: S608
            "ORDER BY name_key LIMIT ?",
            (account_uid, after_key, limit),
        )
        return [User(**r) for r in rows]

    def user_count(self, account_uid: str) -> int:
        return self._one("SELECT COUNT(*) AS n FROM users WHERE account_uid = ?", (account_uid,))[
            "n"
        ]

    def user_create(
        self,
        *,
        account_uid: str,
        name: str,
        display_name: str = "",
        email: str = "",
        mobile_phone: str = "",
        comments: str = "",
        password: str | None = None,
    ) -> User:
        if self.user_get(account_uid, name):
            raise StoreError(f"user {name} already exists")
        now = iso()
        password_hash = hash_password(password) if password else None
        user_id = new_user_id()
        self._exec(
            "INSERT INTO users(account_uid, name, name_key, user_id, display_name, email, "
            "mobile_phone, comments, password_hash, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                account_uid,
                name,
                name.lower(),
                user_id,
                display_name or name,
                email,
                mobile_phone,
                comments,
                password_hash,
                now,
                now,
            ),
        )
        return self.user_get(account_uid, name)  # type: ignore[return-value]

    def user_set_password(self, *, account_uid: str, name: str, password: str | None) -> None:
        self._exec(
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE account_uid = ? AND "
            "name_key = ?",
            (hash_password(password) if password else None, iso(), account_uid, name.lower()),
        )

    def user_touch_login(self, *, account_uid: str, name: str) -> None:
        self._exec(
            "UPDATE users SET last_login_at = ? WHERE account_uid = ? AND name_key = ?",
            (iso(), account_uid, name.lower()),
        )

    def user_delete(self, *, account_uid: str, name: str) -> None:
        key = name.lower()
        self._exec("DELETE FROM users WHERE account_uid = ? AND name_key = ?", (account_uid, key))

    # --- access keys --------------------------------------------------------------------
    def _access_key(self, row: sqlite3.Row | None) -> AccessKey | None:
        if row is None:
            return None
        user_name = None
        if row["user_key"]:
            user = self.user_get(row["account_uid"], row["user_key"])
            user_name = user.name if user else row["user_key"]
        return AccessKey(
            row["access_key_id"],
            row["secret"],
            row["account_uid"],
            user_name,
            row["status"],
            row["created_at"],
        )

    def access_key_get(self, access_key_id: str) -> AccessKey | None:
        return self._access_key(
            self._one("SELECT * FROM access_keys WHERE access_key_id = ?", (access_key_id,))
        )

    def access_key_list(self, account_uid: str, user_name: str | None) -> list[AccessKey]:
        rows = self._all(
            "SELECT * FROM access_keys WHERE account_uid = ? AND user_key = ? ORDER BY "
            "created_at, access_key_id",
            (account_uid, (user_name or "").lower()),
        )
        return [self._access_key(r) for r in rows]  # type: ignore[misc]

    def access_key_create(self, *, account_uid: str, user_name: str | None = None) -> AccessKey:
        access_key_id = new_access_key_id()
        secret = new_access_key_secret()
        now = iso()
        self._exec(
            "INSERT INTO access_keys(access_key_id, secret, account_uid, user_key, status, "
            "created_at) "
            "VALUES (?, ?, ?, ?, 'Active', ?)",
            (access_key_id, secret, account_uid, (user_name or "").lower(), now),
        )
        return AccessKey(access_key_id, secret, account_uid, user_name, "Active", now)

    def access_key_set_status(self, *, access_key_id: str, status: str) -> None:
        self._exec(
            "UPDATE access_keys SET status = ? WHERE access_key_id = ?", (status, access_key_id)
        )

    def access_key_delete(self, access_key_id: str) -> None:
        self._exec("DELETE FROM access_keys WHERE access_key_id = ?", (access_key_id,))

    # --- roles --------------------------------------------------------------------------
    _ROLE_COLUMNS = (
        "account_uid, name, role_id, trust_document, previous_trust_document, trust_changed_at, "
        "description, max_session_duration, created_at, updated_at"
    )

    def role_get(self, account_uid: str, name: str) -> Role | None:
        row = self._one(
            f"SELECT {self._ROLE_COLUMNS} FROM roles WHERE account_uid = ? AND name_key = ?",  # noqa: S608
            (account_uid, name.lower()),
        )
        return Role(**row) if row else None

    def role_list(
        self, account_uid: str, *, after_seq: int = 0, limit: int = 100
    ) -> list[tuple[int, Role]]:
        rows = self._all(
            f"SELECT seq, {self._ROLE_COLUMNS} FROM roles WHERE account_uid = ? AND seq > ? "  # noqa: S608
            "ORDER BY seq LIMIT ?",
            (account_uid, after_seq, limit),
        )
        result = []
        for row in rows:
            data = dict(row)
            seq = data.pop("seq")
            result.append((seq, Role(**data)))
        return result

    def role_count(self, account_uid: str) -> int:
        return self._one("SELECT COUNT(*) AS n FROM roles WHERE account_uid = ?", (account_uid,))[
            "n"
        ]

    def role_create(
        self,
        *,
        account_uid: str,
        name: str,
        trust_document: str,
        description: str,
        max_session_duration: int,
    ) -> Role:
        if self.role_get(account_uid, name):
            raise StoreError(f"role {name} already exists")
        now = iso()
        self._exec(
            "INSERT INTO roles(account_uid, name, name_key, role_id, trust_document, description, "
            "max_session_duration, created_at, updated_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)",
            (
                account_uid,
                name,
                name.lower(),
                new_role_id(),
                trust_document,
                description,
                max_session_duration,
                now,
                now,
                self.next_seq(),
            ),
        )
        return self.role_get(account_uid, name)  # type: ignore[return-value]

    def role_update(
        self,
        *,
        account_uid: str,
        name: str,
        trust_document: str | None = None,
        description: str | None = None,
        max_session_duration: int | None = None,
    ) -> Role:
        role = self.role_get(account_uid, name)
        if role is None:
            raise StoreError(f"role {name} does not exist")
        previous = role.previous_trust_document
        changed_at = role.trust_changed_at
        if trust_document is not None and trust_document != role.trust_document:
            previous = role.trust_document
            changed_at = time.time()
        self._exec(
            "UPDATE roles SET trust_document = ?, previous_trust_document = ?, trust_changed_at "
            "= ?, "
            "description = ?, max_session_duration = ?, updated_at = ? "
            "WHERE account_uid = ? AND name_key = ?",
            (
                trust_document if trust_document is not None else role.trust_document,
                previous,
                changed_at,
                description if description is not None else role.description,
                max_session_duration
                if max_session_duration is not None
                else role.max_session_duration,
                iso(),
                account_uid,
                name.lower(),
            ),
        )
        return self.role_get(account_uid, name)  # type: ignore[return-value]

    def role_delete(self, *, account_uid: str, name: str) -> None:
        self._exec(
            "DELETE FROM roles WHERE account_uid = ? AND name_key = ?", (account_uid, name.lower())
        )

    # --- policies -----------------------------------------------------------------------
    _POLICY_COLUMNS = (
        "account_uid, policy_type, name, description, default_version, next_version, "
        "created_at, updated_at"
    )

    def policy_get(self, account_uid: str, policy_type: str, name: str) -> Policy | None:
        owner = "" if policy_type == "System" else account_uid
        row = self._one(
            f"SELECT {self._POLICY_COLUMNS} FROM policies "  # noqa: S608
            "WHERE account_uid = ? AND policy_type = ? AND name_key = ?",
            (owner, policy_type, name.lower()),
        )
        return Policy(**row) if row else None

    def policy_list(
        self,
        account_uid: str,
        *,
        policy_type: str | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[tuple[int, Policy]]:
        where = ["seq > ?"]
        args: list[Any] = [after_seq]
        if policy_type == "System":
            where.append("account_uid = '' AND policy_type = 'System'")
        elif policy_type == "Custom":
            where.append("account_uid = ? AND policy_type = 'Custom'")
            args.append(account_uid)
        else:
            where.append(
                "((account_uid = '' AND policy_type = 'System') OR "
                "(account_uid = ? AND policy_type = 'Custom'))"
            )
            args.append(account_uid)
        args.append(limit)
        rows = self._all(
            f"SELECT seq, {self._POLICY_COLUMNS} FROM policies WHERE "  # noqa: S608
            + " AND ".join(where)
            + " ORDER BY seq LIMIT ?",
            tuple(args),
        )
        result = []
        for row in rows:
            data = dict(row)
            seq = data.pop("seq")
            result.append((seq, Policy(**data)))
        return result

    def policy_count(self, account_uid: str) -> int:
        return self._one(
            "SELECT COUNT(*) AS n FROM policies WHERE account_uid = ? AND policy_type = 'Custom'",
            (account_uid,),
        )["n"]

    def policy_create(
        self,
        *,
        account_uid: str,
        policy_type: str,
        name: str,
        document: str,
        description: str,
        created_at: str | None = None,
    ) -> Policy:
        owner = "" if policy_type == "System" else account_uid
        if self.policy_get(account_uid, policy_type, name):
            raise StoreError(f"policy {name} already exists")
        now = created_at or iso()
        self._exec(
            "INSERT INTO policies(account_uid, policy_type, name, name_key, description, "
            "default_version, next_version, created_at, updated_at, seq) "
            "VALUES (?, ?, ?, ?, ?, 'v1', 2, ?, ?, ?)",
            (owner, policy_type, name, name.lower(), description, now, now, self.next_seq()),
        )
        self._exec(
            "INSERT INTO policy_versions(account_uid, policy_type, policy_key, version_id, "
            "document, created_at, seq) VALUES (?, ?, ?, 'v1', ?, ?, ?)",
            (owner, policy_type, name.lower(), document, now, self.next_seq()),
        )
        return self.policy_get(account_uid, policy_type, name)  # type: ignore[return-value]

    def policy_replace_system(
        self, *, name: str, document: str, description: str, created_at: str | None = None
    ) -> None:
        """Install or refresh a System policy from the catalogue (its v1 document)."""
        existing = self.policy_get("", "System", name)
        if existing is None:
            self.policy_create(
                account_uid="",
                policy_type="System",
                name=name,
                document=document,
                description=description,
                created_at=created_at,
            )
            return
        self._exec(
            "UPDATE policies SET description = ? WHERE account_uid = '' AND policy_type = 'System' "
            "AND name_key = ?",
            (description, name.lower()),
        )
        self._exec(
            "UPDATE policy_versions SET document = ? WHERE account_uid = '' AND policy_type = "
            "'System' "
            "AND policy_key = ? AND version_id = ?",
            (document, name.lower(), existing.default_version),
        )

    def policy_delete(self, *, account_uid: str, policy_type: str, name: str) -> None:
        owner = "" if policy_type == "System" else account_uid
        key = name.lower()
        self._exec(
            "DELETE FROM policy_versions WHERE account_uid = ? AND policy_type = ? AND "
            "policy_key = ?",
            (owner, policy_type, key),
        )
        self._exec(
            "DELETE FROM policies WHERE account_uid = ? AND policy_type = ? AND name_key = ?",
            (owner, policy_type, key),
        )

    def policy_versions(self, account_uid: str, policy_type: str, name: str) -> list[PolicyVersion]:
        owner = "" if policy_type == "System" else account_uid
        rows = self._all(
            "SELECT version_id, document, created_at FROM policy_versions "
            "WHERE account_uid = ? AND policy_type = ? AND policy_key = ? ORDER BY seq",
            (owner, policy_type, name.lower()),
        )
        return [PolicyVersion(**r) for r in rows]

    def policy_default_document(self, account_uid: str, policy_type: str, name: str) -> str | None:
        owner = "" if policy_type == "System" else account_uid
        row = self._one(
            "SELECT v.document FROM policies p JOIN policy_versions v "
            "ON v.account_uid = p.account_uid AND v.policy_type = p.policy_type "
            "AND v.policy_key = p.name_key AND v.version_id = p.default_version "
            "WHERE p.account_uid = ? AND p.policy_type = ? AND p.name_key = ?",
            (owner, policy_type, name.lower()),
        )
        return row["document"] if row else None

    def policy_version_add(
        self,
        *,
        account_uid: str,
        name: str,
        document: str,
        set_as_default: bool,
    ) -> PolicyVersion:
        policy = self.policy_get(account_uid, "Custom", name)
        if policy is None:
            raise StoreError(f"policy {name} does not exist")
        version_id = f"v{policy.next_version}"
        now = iso()
        self._exec(
            "INSERT INTO policy_versions(account_uid, policy_type, policy_key, version_id, "
            "document, "
            "created_at, seq) VALUES (?, 'Custom', ?, ?, ?, ?, ?)",
            (account_uid, name.lower(), version_id, document, now, self.next_seq()),
        )
        self._exec(
            "UPDATE policies SET next_version = next_version + 1, updated_at = ?, "
            "default_version = CASE WHEN ? THEN ? ELSE default_version END "
            "WHERE account_uid = ? AND policy_type = 'Custom' AND name_key = ?",
            (now, 1 if set_as_default else 0, version_id, account_uid, name.lower()),
        )
        return PolicyVersion(version_id, document, now)

    def policy_version_delete(self, *, account_uid: str, name: str, version_id: str) -> None:
        self._exec(
            "DELETE FROM policy_versions WHERE account_uid = ? AND policy_type = 'Custom' "
            "AND policy_key = ? AND version_id = ?",
            (account_uid, name.lower(), version_id),
        )

    # --- attachments --------------------------------------------------------------------
    def attachment_list(
        self, account_uid: str, principal_type: str, principal_name: str
    ) -> list[Attachment]:
        rows = self._all(
            "SELECT a.policy_type, COALESCE(p.name, a.policy_key) AS policy_name, a.attached_at "
            "FROM attachments a LEFT JOIN policies p ON p.policy_type = a.policy_type "
            "AND p.name_key = a.policy_key "
            "AND p.account_uid = CASE WHEN a.policy_type = 'System' THEN '' ELSE a.account_uid END "
            "WHERE a.account_uid = ? AND a.principal_type = ? AND a.principal_key = ? ORDER BY "
            "a.seq",
            (account_uid, principal_type, principal_name.lower()),
        )
        return [
            Attachment(
                r["policy_type"], r["policy_name"], principal_type, principal_name, r["attached_at"]
            )
            for r in rows
        ]

    def attachment_exists(
        self,
        account_uid: str,
        principal_type: str,
        principal_name: str,
        policy_type: str,
        policy_name: str,
    ) -> bool:
        return (
            self._one(
                "SELECT 1 FROM attachments WHERE account_uid = ? AND principal_type = ? AND "
                "principal_key = ? AND policy_type = ? AND policy_key = ?",
                (
                    account_uid,
                    principal_type,
                    principal_name.lower(),
                    policy_type,
                    policy_name.lower(),
                ),
            )
            is not None
        )

    def attachment_count_for_policy(self, account_uid: str, policy_type: str, name: str) -> int:
        return self._one(
            "SELECT COUNT(*) AS n FROM attachments WHERE account_uid = ? AND policy_type = ? "
            "AND policy_key = ?",
            (account_uid, policy_type, name.lower()),
        )["n"]

    def attachment_count_for_principal(
        self, account_uid: str, principal_type: str, principal_name: str, policy_type: str
    ) -> int:
        return self._one(
            "SELECT COUNT(*) AS n FROM attachments WHERE account_uid = ? AND principal_type = ? "
            "AND principal_key = ? AND policy_type = ?",
            (account_uid, principal_type, principal_name.lower(), policy_type),
        )["n"]

    def attachment_add(
        self,
        *,
        account_uid: str,
        principal_type: str,
        principal_name: str,
        policy_type: str,
        policy_name: str,
    ) -> None:
        self._exec(
            "INSERT INTO attachments(account_uid, principal_type, principal_key, policy_type, "
            "policy_key, attached_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                account_uid,
                principal_type,
                principal_name.lower(),
                policy_type,
                policy_name.lower(),
                iso(),
                self.next_seq(),
            ),
        )

    def attachment_remove(
        self,
        *,
        account_uid: str,
        principal_type: str,
        principal_name: str,
        policy_type: str,
        policy_name: str,
    ) -> int:
        return self._exec(
            "DELETE FROM attachments WHERE account_uid = ? AND principal_type = ? AND "
            "principal_key = ? AND policy_type = ? AND policy_key = ?",
            (account_uid, principal_type, principal_name.lower(), policy_type, policy_name.lower()),
        )

    def attachment_principal_types_for_policy(
        self, account_uid: str, policy_type: str, name: str
    ) -> list[str]:
        rows = self._all(
            "SELECT DISTINCT principal_type FROM attachments WHERE account_uid = ? "
            "AND policy_type = ? AND policy_key = ? ORDER BY principal_type",
            (account_uid, policy_type, name.lower()),
        )
        return [r["principal_type"] for r in rows]

    def attachments_remove_policy(self, *, account_uid: str, policy_type: str, name: str) -> int:
        return self._exec(
            "DELETE FROM attachments WHERE account_uid = ? AND policy_type = ? AND policy_key = ?",
            (account_uid, policy_type, name.lower()),
        )

    def attached_documents(
        self, account_uid: str, principal_type: str, principal_name: str
    ) -> list[str]:
        """Default-version documents of every policy attached to a user or role."""
        rows = self._all(
            "SELECT v.document FROM attachments a "
            "JOIN policies p ON p.policy_type = a.policy_type AND p.name_key = a.policy_key "
            "AND p.account_uid = CASE WHEN a.policy_type = 'System' THEN '' ELSE a.account_uid END "
            "JOIN policy_versions v ON v.account_uid = p.account_uid AND v.policy_type = "
            "p.policy_type "
            "AND v.policy_key = p.name_key AND v.version_id = p.default_version "
            "WHERE a.account_uid = ? AND a.principal_type = ? AND a.principal_key = ? ORDER BY "
            "a.seq",
            (account_uid, principal_type, principal_name.lower()),
        )
        return [r["document"] for r in rows]

    def attachments_remove_principal(
        self, *, account_uid: str, principal_type: str, name: str
    ) -> None:
        self._exec(
            "DELETE FROM attachments WHERE account_uid = ? AND principal_type = ? AND "
            "principal_key = ?",
            (account_uid, principal_type, name.lower()),
        )

    # --- STS sessions -------------------------------------------------------------------
    _STS_COLUMNS = (
        "access_key_id, secret, security_token, account_uid, role_name, role_id, session_name, "
        "session_policy, source_identity, caller_arn, caller_account, created_at, expires_at"
    )

    def sts_session_get(self, access_key_id: str) -> StsSession | None:
        row = self._one(
            f"SELECT {self._STS_COLUMNS} FROM sts_sessions WHERE access_key_id = ?",  # noqa: S608
            (access_key_id,),
        )
        return StsSession(**row) if row else None

    def sts_session_create(
        self,
        *,
        account_uid: str,
        role: Role,
        session_name: str,
        session_policy: str | None,
        source_identity: str | None,
        caller_arn: str,
        caller_account: str,
        duration_seconds: int,
    ) -> StsSession:
        now = time.time()
        session = StsSession(
            access_key_id=new_sts_access_key_id(),
            secret=new_access_key_secret(),
            security_token=new_security_token(),
            account_uid=account_uid,
            role_name=role.name,
            role_id=role.role_id,
            session_name=session_name,
            session_policy=session_policy,
            source_identity=source_identity,
            caller_arn=caller_arn,
            caller_account=caller_account,
            created_at=iso(now),
            expires_at=float(int(now) + duration_seconds),
        )
        self._exec(
            "INSERT INTO sts_sessions(access_key_id, secret, security_token, account_uid, "
            "role_key, "
            "role_name, role_id, session_name, session_policy, source_identity, caller_arn, "
            "caller_account, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)",
            (
                session.access_key_id,
                session.secret,
                session.security_token,
                account_uid,
                role.name.lower(),
                role.name,
                role.role_id,
                session_name,
                session_policy,
                source_identity,
                caller_arn,
                caller_account,
                session.created_at,
                session.expires_at,
            ),
        )
        return session

    def sts_session_expire(self, *, access_key_id: str, at: float) -> int:
        return self._exec(
            "UPDATE sts_sessions SET expires_at = ? WHERE access_key_id = ?", (at, access_key_id)
        )

    def sts_sessions_purge_expired(self, *, older_than: float) -> int:
        return self._exec("DELETE FROM sts_sessions WHERE expires_at < ?", (older_than,))

    # --- ECS instances (the ECS product module, owned by cloudsim-console, uses these) --------
    _ECS_COLUMNS = (
        "instance_id, account_uid, region_id, zone_id, instance_name, instance_type, status, cpu, "
        "memory, os_name, image_id, private_ip, attributes, created_at, updated_at, "
        "status_changed_at"
    )

    def _ecs(self, row: sqlite3.Row) -> EcsInstance:
        data = dict(row)
        data["attributes"] = json.loads(data["attributes"] or "{}")
        return EcsInstance(**data)

    def ecs_instance_get(self, instance_id: str) -> EcsInstance | None:
        row = self._one(
            f"SELECT {self._ECS_COLUMNS} FROM ecs_instances WHERE instance_id = ?",  # noqa: S608
            (instance_id,),
        )
        return self._ecs(row) if row else None

    def ecs_instance_list(
        self, account_uid: str, *, region_id: str | None = None
    ) -> list[EcsInstance]:
        sql = f"SELECT {self._ECS_COLUMNS} FROM ecs_instances WHERE account_uid = ?"  # noqa: S608
        args: list[Any] = [account_uid]
        if region_id is not None:
            sql += " AND region_id = ?"
            args.append(region_id)
        sql += " ORDER BY created_at, instance_id"
        return [self._ecs(r) for r in self._all(sql, tuple(args))]

    def ecs_instance_create(
        self,
        *,
        account_uid: str,
        region_id: str,
        zone_id: str,
        instance_name: str,
        instance_type: str = "ecs.g7.large",
        status: str = "Running",
        cpu: int = 2,
        memory: int = 8192,
        os_name: str = "Alibaba Cloud Linux 3",
        image_id: str = "",
        private_ip: str = "",
        attributes: dict | None = None,
        instance_id: str | None = None,
    ) -> EcsInstance:
        now = iso()
        instance_id = instance_id or new_instance_id()
        self._exec(
            "INSERT INTO ecs_instances(instance_id, account_uid, region_id, zone_id, "
            "instance_name, "
            "instance_type, status, cpu, memory, os_name, image_id, private_ip, attributes, "
            "created_at, updated_at, status_changed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                instance_id,
                account_uid,
                region_id,
                zone_id,
                instance_name,
                instance_type,
                status,
                cpu,
                memory,
                os_name,
                image_id,
                private_ip,
                json.dumps(attributes or {}),
                now,
                now,
                time.time(),
            ),
        )
        return self.ecs_instance_get(instance_id)  # type: ignore[return-value]

    def ecs_instance_set_status(self, *, instance_id: str, status: str) -> None:
        self._exec(
            "UPDATE ecs_instances SET status = ?, updated_at = ?, status_changed_at = ? "
            "WHERE instance_id = ?",
            (status, iso(), time.time(), instance_id),
        )

    def ecs_instance_set_attributes(self, *, instance_id: str, attributes: dict) -> None:
        self._exec(
            "UPDATE ecs_instances SET attributes = ?, updated_at = ? WHERE instance_id = ?",
            (json.dumps(attributes), iso(), instance_id),
        )

    # --- JSON documents of the newer products (Cloud Assistant, OOS) -------------------------
    def document_rows(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        """Rows of the document tables (``ecs_invocations``, ``oos_*``); their modules own the
        SQL, the store only runs it inside this transaction."""
        return self._all(sql, args)

    def document_write(self, sql: str, args: tuple = ()) -> int:
        return self._exec(sql, args)

    # --- console sessions (browser sign-in state for cloudsim.console) ----------------------
    def console_session_get(self, token: str) -> dict | None:
        row = self._one("SELECT data, expires_at FROM console_sessions WHERE token = ?", (token,))
        if row is None or row["expires_at"] < time.time():
            return None
        return json.loads(row["data"])

    def console_session_put(self, *, token: str, data: dict, expires_at: float) -> None:
        self._exec(
            "INSERT OR REPLACE INTO console_sessions(token, data, expires_at) VALUES (?, ?, ?)",
            (token, json.dumps(data), expires_at),
        )

    def console_session_delete(self, token: str) -> None:
        self._exec("DELETE FROM console_sessions WHERE token = ?", (token,))


class Store:
    """The SQLite database under a data directory, shared by all server threads."""

    # One lock per process and database file: two Store objects on one file still serialise.
    _locks: dict[str, threading.RLock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = str((self.data_dir / DB_FILENAME).resolve())
        with Store._locks_guard:
            self._write_lock = Store._locks.setdefault(self.path, threading.RLock())
        self._local = threading.local()
        self._generations = dict.fromkeys(CACHE_TOPICS, 0)
        self._caches: dict[str, dict] = {topic: {} for topic in CACHE_TOPICS}
        with self._write_lock:
            self._connection().executescript(SCHEMA)
        with self.write() as tx:
            if tx.meta_get("schema_version") is None:
                tx.meta_set("schema_version", str(SCHEMA_VERSION))

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=30, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A consistent snapshot for reading (no writes allowed)."""
        conn = self._connection()
        if conn.in_transaction:  # nested inside a write on this thread: reuse it
            yield Tx(conn, writable=False)
            return
        conn.execute("BEGIN")
        try:
            yield Tx(conn, writable=False)
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A serialised write transaction: committed on success, rolled back on any exception."""
        conn = self._connection()
        with self._write_lock:
            if conn.in_transaction:  # re-entrant use on the same thread joins the outer write
                yield Tx(conn, writable=True, touched=self._local.touched)
                return
            touched: set[str] = set()
            self._local.touched = touched
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(conn, writable=True, touched=touched)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            # After the commit, so a value cached from pre-commit data carries an old number.
            for topic in touched:
                self._generations[topic] += 1

    def cached(self, topic: str, key: object, compute: Callable[[], Any]) -> Any:
        """``compute()``, remembered until a committed write touches ``topic``'s tables.

        The generation is read *before* computing, so a value read from data that a
        concurrent write is replacing is stored under the old generation and never served.
        ``None`` (not found) is never cached. One server process per data directory is
        assumed; the management CLI only adds rows, which no cached value depends on.
        """
        generation = self._generations[topic]
        cache = self._caches[topic]
        entry = cache.get(key)
        if entry is not None and entry[0] == generation:
            return entry[1]
        value = compute()
        if value is not None:
            if len(cache) > 50_000:
                cache.clear()
            cache[key] = (generation, value)
        return value

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def is_empty(self) -> bool:
        with self.read() as tx:
            return not tx.account_list()
