"""Operator actions shared by the CLI, the ``/_sim`` endpoints and ``--demo``.

These bypass RAM authorisation on purpose: they are how accounts come into existence.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

from cloudsim import catalog
from cloudsim.store import Store, StoreError

DEMO_CREDENTIALS_FILE = "demo-credentials.json"
OPERATOR_TOKEN_FILE = "operator-token"  # noqa: S105 - a file name
UID_PATTERN = re.compile(r"^[0-9]{1,32}$")
ALIAS_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,48}[a-z0-9])?$")
USER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

DEMO_ACCOUNTS = (
    {"uid": "11223344", "alias": "company-a", "users": ()},
    {"uid": "12345678", "alias": "company-b", "users": ("Alice", "Bob", "AAA", "portal-broker")},
    # company-a's second (staging) account, so a fleet spans two owner accounts.
    # The portal's demo seed names it in demo/cloud_seed.py (OWNER_STAGING_ACCOUNT).
    {"uid": "11223355", "alias": "company-a-staging", "users": ()},
)
# System policies attached to demo users. Alice, Bob and AAA get none (the partner's admin
# grants them access through the portal); portal-broker is the RAM user the portal connects
# as in company-b: it manages its colleagues' policies and calls AssumeRole for them.
# AliyunOOSFullAccess lets it run partner runbooks through OOS in company-b.
DEMO_USER_POLICIES = {
    ("12345678", "portal-broker"): ("AliyunRAMFullAccess", "AliyunOOSFullAccess"),
}
# The owners' instances: (account, region, zone, name, status, private ip). Both owner
# accounts run a few in cn-shanghai and cn-beijing, one of them stopped, so a fleet runbook
# has targets in every account and region and a stopped instance it must leave alone.
DEMO_INSTANCES = (
    ("11223344", "cn-hangzhou", "cn-hangzhou-h", "web-1", "Running", "172.16.0.11"),
    ("11223344", "cn-hangzhou", "cn-hangzhou-h", "web-2", "Running", "172.16.0.12"),
    ("11223344", "cn-hangzhou", "cn-hangzhou-i", "batch-1", "Stopped", "172.16.1.21"),
    ("11223344", "cn-shanghai", "cn-shanghai-l", "db-1", "Running", "172.17.0.31"),
    ("11223344", "cn-shanghai", "cn-shanghai-l", "reporting-1", "Stopped", "172.17.0.32"),
    ("11223344", "cn-beijing", "cn-beijing-h", "api-1", "Running", "172.18.0.41"),
    ("11223344", "cn-beijing", "cn-beijing-h", "api-2", "Running", "172.18.0.42"),
    ("11223355", "cn-shanghai", "cn-shanghai-l", "stg-web-1", "Running", "172.20.0.11"),
    ("11223355", "cn-shanghai", "cn-shanghai-l", "stg-web-2", "Running", "172.20.0.12"),
    ("11223355", "cn-shanghai", "cn-shanghai-l", "stg-batch-1", "Stopped", "172.20.1.21"),
    ("11223355", "cn-beijing", "cn-beijing-h", "stg-api-1", "Running", "172.21.0.41"),
)


class AdminError(ValueError):
    """Bad operator input (reported as JSON by the CLI and the endpoints)."""


def _check(pattern: re.Pattern, value: str | None, what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise AdminError(f"invalid {what}: {value!r}")
    return value


def account_create(store: Store, *, uid: str, alias: str) -> dict:
    """Create an account with one root AccessKey."""
    _check(UID_PATTERN, uid, "uid (digits only)")
    _check(ALIAS_PATTERN, alias, "alias (lower-case letters, digits and -, 3-50 chars)")
    try:
        with store.write() as tx:
            account = tx.account_create(uid=uid, alias=alias)
            key = tx.access_key_create(account_uid=uid)
    except StoreError as exc:
        raise AdminError(str(exc)) from None
    return {
        "uid": account.uid,
        "alias": account.alias,
        "root": {"access_key_id": key.access_key_id, "access_key_secret": key.secret},
        "users": [],
    }


def user_create(store: Store, *, uid: str, name: str, password: str | None = None) -> dict:
    _check(USER_NAME_PATTERN, name, "user name")
    try:
        with store.write() as tx:
            if tx.account_get(uid) is None:
                raise AdminError(f"account {uid} does not exist")
            user = tx.user_create(account_uid=uid, name=name, password=password)
    except StoreError as exc:
        raise AdminError(str(exc)) from None
    with store.read() as tx:
        alias = tx.account_get(uid).alias  # type: ignore[union-attr]
    return {
        "uid": uid,
        "name": user.name,
        "user_id": user.user_id,
        "arn": user.arn,
        "principal_name": f"{user.name}@{alias}.onaliyun.com",
        "console_login": user.password_hash is not None,
    }


def access_key_create(store: Store, *, uid: str, user: str | None = None) -> dict:
    with store.write() as tx:
        if tx.account_get(uid) is None:
            raise AdminError(f"account {uid} does not exist")
        user_name = None
        if user is not None:
            found = tx.user_get(uid, user)
            if found is None:
                raise AdminError(f"user {user} does not exist in account {uid}")
            user_name = found.name
        key = tx.access_key_create(account_uid=uid, user_name=user_name)
    return {
        "uid": uid,
        "user": user_name,
        "access_key_id": key.access_key_id,
        "access_key_secret": key.secret,
    }


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def demo_password(name: str) -> str:
    return f"{name}-{secrets.token_urlsafe(9)}"


def seed_demo(store: Store, *, data_dir: Path, endpoint: str) -> dict:
    """Seed company-a and company-b when the store is empty; (re)write the credentials file.

    Returns the demo credentials document. On a store that already holds data, the existing
    file is kept and only its ``endpoint`` is refreshed (the port may have changed).
    """
    path = data_dir / DEMO_CREDENTIALS_FILE
    if not store.is_empty():
        if path.exists():
            document = json.loads(path.read_text(encoding="utf-8"))
            document["endpoint"] = endpoint
            _write_private(path, json.dumps(document, indent=2) + "\n")
            return document
        return _rebuild_demo_credentials(store, path=path, endpoint=endpoint)
    accounts = []
    for spec in DEMO_ACCOUNTS:
        entry = account_create(store, uid=spec["uid"], alias=spec["alias"])
        for name in spec["users"]:
            password = demo_password(name)
            user_create(store, uid=spec["uid"], name=name, password=password)
            key = access_key_create(store, uid=spec["uid"], user=name)
            with store.write() as tx:
                for policy_name in DEMO_USER_POLICIES.get((spec["uid"], name), ()):
                    tx.attachment_add(
                        account_uid=spec["uid"],
                        principal_type="User",
                        principal_name=name,
                        policy_type="System",
                        policy_name=policy_name,
                    )
            entry["users"].append(
                {
                    "name": name,
                    "access_key_id": key["access_key_id"],
                    "access_key_secret": key["access_key_secret"],
                    "password": password,
                }
            )
        accounts.append(entry)
    with store.write() as tx:
        for uid, region, zone, name, status, ip in DEMO_INSTANCES:
            tx.ecs_instance_create(
                account_uid=uid,
                region_id=region,
                zone_id=zone,
                instance_name=name,
                status=status,
                private_ip=ip,
                image_id="aliyun_3_x64_20G_alibase_20240819.vhd",
            )
    document = {"endpoint": endpoint, "accounts": accounts}
    _write_private(path, json.dumps(document, indent=2) + "\n")
    return document


def _rebuild_demo_credentials(store: Store, *, path: Path, endpoint: str) -> dict:
    """The file was deleted: rebuild it from the store, with fresh passwords for users."""
    accounts = []
    for spec in DEMO_ACCOUNTS:
        with store.read() as tx:
            account = tx.account_get(spec["uid"])
            root_keys = tx.access_key_list(spec["uid"], None) if account else []
        if account is None:
            continue
        if not root_keys:
            access_key_create(store, uid=spec["uid"])
            with store.read() as tx:
                root_keys = tx.access_key_list(spec["uid"], None)
        entry = {
            "uid": account.uid,
            "alias": account.alias,
            "root": {
                "access_key_id": root_keys[0].access_key_id,
                "access_key_secret": root_keys[0].secret,
            },
            "users": [],
        }
        for name in spec["users"]:
            with store.read() as tx:
                user = tx.user_get(spec["uid"], name)
                keys = tx.access_key_list(spec["uid"], name) if user else []
            if user is None:
                continue
            if not keys:
                access_key_create(store, uid=spec["uid"], user=name)
                with store.read() as tx:
                    keys = tx.access_key_list(spec["uid"], name)
            password = demo_password(name)
            with store.write() as tx:
                tx.user_set_password(account_uid=spec["uid"], name=name, password=password)
            entry["users"].append(
                {
                    "name": user.name,
                    "access_key_id": keys[0].access_key_id,
                    "access_key_secret": keys[0].secret,
                    "password": password,
                }
            )
        accounts.append(entry)
    document = {"endpoint": endpoint, "accounts": accounts}
    _write_private(path, json.dumps(document, indent=2) + "\n")
    return document


def load_operator_token(data_dir: Path, explicit: str | None) -> str:
    """``--operator-token``/``CLOUDSIM_OPERATOR_TOKEN``, else the saved one, else a new one;
    always saved to ``DIR/operator-token`` (mode 0600) for tools and tests."""
    path = data_dir / OPERATOR_TOKEN_FILE
    token = explicit or os.environ.get("CLOUDSIM_OPERATOR_TOKEN") or ""
    if not token and path.exists():
        token = path.read_text(encoding="utf-8").strip()
    if not token:
        token = secrets.token_urlsafe(32)
    _write_private(path, token + "\n")
    return token


def sync_system_policies(store: Store) -> int:
    """Install the System policy catalogue (cloudsim.catalog) into the store."""
    with store.write() as tx:
        for name, entry in catalog.SYSTEM_POLICIES.items():
            tx.policy_replace_system(
                name=name,
                document=entry["PolicyDocument"],
                description=entry["Description"],
                created_at=entry.get("CreateDate"),
            )
    return len(catalog.SYSTEM_POLICIES)
