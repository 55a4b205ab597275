"""The cloud half of the embedded demo (`manage.py seed_demo`): connect company-a and company-b
to cloudsim's demo accounts, give company-a a small catalogue, allow company-b's account, and
create a partner link. Idempotent: a second run changes nothing and says so.

Everything goes through the same services as the web pages (connect checks the keys with
real calls; the catalogue validates policies against the live list). The keys come from
cloudsim's `demo-credentials.json` (the accounts' root AccessKeys: acceptable for a local
demo, and the output says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models.functions import Lower

from accounts.models import Organisation, User
from core import crypto
from delegations.catalog.allow_list import partner_allowance_add
from delegations.catalog.partner_links import partner_link_create
from delegations.catalog.services import catalog_role_create
from delegations.connection.services import (
    cloud_account_connect,
    cloud_account_credentials,
    cloud_account_replace_key,
)
from delegations.models import CatalogRole, CloudAccount, PartnerAllowance, PartnerLink
from demo.activity_seed import demo_activity_seed
from demo.fleet_seed import FLEET_ROLE, demo_fleet_seed
from demo.people import first_admin
from demo.rules_seed import demo_rules_seed
from demo.runbook_seed import demo_runbook_seed
from demo.trust_seed import demo_named_people_seed

DEMO_CREDENTIALS_FILE = "demo-credentials.json"
OWNER_SLUG = "company-a"
PARTNER_SLUG = "company-b"
PARTNER_LINK_LABEL = "Company B (demo)"


@dataclass(frozen=True)
class DemoCloudAccount:
    uid: str
    alias: str
    label: str


# company-a's second cloud account (staging): cloudsim's `--demo` creates it with its own root
# AccessKey (in demo-credentials.json, read with `owner_staging_root_key`) and running ECS
# instances in cn-shanghai and cn-beijing (one stopped), like company-a's production account
# there. The one place the portal's demo names it (for fleets and runbooks).
OWNER_STAGING_ACCOUNT = DemoCloudAccount(
    uid="11223355", alias="company-a-staging", label="company-a staging"
)
# The regions where both of company-a's accounts run instances: the demo fleet's regions.
DEMO_FLEET_REGIONS = ("cn-shanghai", "cn-beijing")


@dataclass(frozen=True)
class DemoRole:
    name: str
    description: str
    policy: tuple[str, str]


DEMO_ROLES = (
    DemoRole(
        "ecs-admin", "Operate the ECS fleet: start, stop, reboot", ("System", "AliyunECSFullAccess")
    ),
    DemoRole(
        "ecs-viewer", "See the ECS fleet, change nothing", ("System", "AliyunECSReadOnlyAccess")
    ),
)


class _Skip(Exception):
    """The demo's cloud part cannot go on; the message says why."""


def _admin_of(organisation: Organisation) -> User:
    admin = first_admin(organisation)
    if admin is None:
        raise _Skip(f"{organisation.name} has no admin to act as.")
    return admin


def _root_key(document: dict[str, Any], uid: str) -> tuple[str, str]:
    for account in document.get("accounts", []):
        if isinstance(account, dict) and str(account.get("uid")) == uid:
            root = account.get("root") or {}
            key_id, secret = root.get("access_key_id"), root.get("access_key_secret")
            if isinstance(key_id, str) and isinstance(secret, str):
                return key_id, secret
    raise _Skip(f"cloudsim's demo credentials have no root AccessKey for account {uid}.")


def owner_staging_root_key(document: dict[str, Any]) -> tuple[str, str]:
    """(AccessKey id, secret) of company-a's staging account in cloudsim's demo credentials."""
    return _root_key(document, OWNER_STAGING_ACCOUNT.uid)


def _stored_key_works(account: CloudAccount, key_id: str) -> bool:
    """Whether the stored key is this one and still decrypts (the encryption key may be new)."""
    if account.access_key_id != key_id:
        return False
    try:
        cloud_account_credentials(cloud_account=account)
    except (crypto.SecretDecryptionError, ValidationError):
        return False
    return True


# The RAM user cloudsim's demo gives company-b for the portal: a root key cannot call
# AssumeRole, so partner staff could not be issued credentials through it.
PARTNER_BROKER_USER = "portal-broker"


def _user_key(document: dict[str, Any], uid: str, name: str) -> tuple[str, str] | None:
    for account in document.get("accounts", []):
        if isinstance(account, dict) and str(account.get("uid")) == uid:
            for user in account.get("users") or []:
                if isinstance(user, dict) and user.get("name") == name:
                    key_id, secret = user.get("access_key_id"), user.get("access_key_secret")
                    if key_id and secret:
                        return str(key_id), str(secret)
    return None


def _connect(
    organisation: Organisation, document: dict[str, Any], *, as_user: str | None = None
) -> tuple[CloudAccount, str]:
    admin = _admin_of(organisation)
    user_key = _user_key(document, organisation.account_uid, as_user) if as_user else None
    if user_key is not None:
        key_id, secret = user_key
        what = (
            f"{organisation.slug} ({organisation.account_uid}) with the RAM user {as_user}'s "
            f"AccessKey {key_id}"
        )
    else:
        key_id, secret = _root_key(document, organisation.account_uid)
        what = f"{organisation.slug} ({organisation.account_uid}) with its root AccessKey {key_id}"
    account = CloudAccount.objects.filter(
        organisation=organisation, is_active=True, is_primary=True
    ).first()
    try:
        if account is None:
            account = cloud_account_connect(
                organisation=organisation,
                connected_by=admin,
                account_uid=organisation.account_uid,
                alias=organisation.enterprise_alias,
                region="cn-hangzhou",
                access_key_id=key_id,
                access_key_secret=secret,
            )
            return account, f"Connected {what}."
        if _stored_key_works(account, key_id):
            return account, f"Already connected: {what}."
        account = cloud_account_replace_key(
            cloud_account=account,
            replaced_by=admin,
            access_key_id=key_id,
            access_key_secret=secret,
        )
        return account, f"Reconnected {what} (cloudsim's demo keys changed)."
    except ValidationError as error:
        raise _Skip(f"Could not connect {organisation.slug}: {' '.join(error.messages)}") from None


def _catalogue(owner: Organisation, admin: User) -> list[str]:
    lines = []
    for demo in DEMO_ROLES:
        exists = (
            CatalogRole.objects.annotate(lowered=Lower("role_name"))
            .filter(organisation=owner, lowered=demo.name.lower())
            .exists()
        )
        if exists:
            lines.append(f"Catalogue role {demo.name} already there.")
            continue
        try:
            catalog_role_create(
                owner=owner,
                created_by=admin,
                role_name=demo.name,
                description=demo.description,
                policy_keys=[demo.policy],
                max_session_duration=3600,
            )
        except ValidationError as error:
            lines.append(f"Could not add {demo.name}: {' '.join(error.messages)}")
        else:
            lines.append(f"Catalogue role {demo.name} added ({demo.policy[1]}).")
    return lines


def _allow(owner: Organisation, partner: Organisation, admin: User) -> str:
    uid = partner.account_uid
    if PartnerAllowance.objects.filter(organisation=owner, partner_account_uid=uid).exists():
        return f"Allow-list already has {uid} ({partner.name})."
    partner_allowance_add(owner=owner, added_by=admin, partner_account_uid=uid, label=partner.name)
    return f"Allow-listed {uid} ({partner.name})."


def _link(owner: Organisation, admin: User) -> str:
    existing = [
        link
        for link in PartnerLink.objects.filter(organisation=owner, label=PARTNER_LINK_LABEL)
        if link.is_usable
    ]
    if existing:
        return (
            f"Partner link for company-b already exists (code ends …{existing[0].code_hint}; "
            "codes are shown once: create another on the Partner links page if needed)."
        )
    _link_row, code = partner_link_create(owner=owner, created_by=admin, label=PARTNER_LINK_LABEL)
    return f"Partner link for company-b created: code {code} (shown once)."


def demo_cloud_seed(*, cloudsim_data_dir: Path) -> list[str]:
    """Connect the demo organisations to cloudsim and build company-a's catalogue. Returns the
    lines to print. Never raises for a missing file, key or cloud: it says what it skipped."""
    credentials_file = Path(cloudsim_data_dir) / DEMO_CREDENTIALS_FILE
    if not credentials_file.exists():
        return [
            f"Note: {credentials_file} does not exist, so the demo cloud accounts were not "
            "connected. Start cloudsim with --demo (`make run` does) and run seed_demo again."
        ]
    try:
        crypto.encryption()
    except ImproperlyConfigured as error:
        return [f"Note: the demo cloud accounts were not connected: {error}"]
    try:
        document = json.loads(credentials_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return [f"Note: {credentials_file} could not be read ({type(error).__name__}); skipped."]

    owner = Organisation.objects.filter(slug=OWNER_SLUG).first()
    partner = Organisation.objects.filter(slug=PARTNER_SLUG).first()
    if owner is None or partner is None:
        return ["Note: company-a or company-b is missing; the cloud part was skipped."]
    lines = [
        "Cloud (cloudsim): the demo connects company-a with its root AccessKey and company-b "
        f"with its RAM user {PARTNER_BROKER_USER}, from {credentials_file.name}; a real "
        "deployment uses RAM users with only the rights needed."
    ]
    try:
        _account, said = _connect(owner, document)
        lines.append(said)
        admin = _admin_of(owner)
        lines.extend(_catalogue(owner, admin))
        lines.append(_allow(owner, partner, admin))
        lines.append(_link(owner, admin))
        _partner_account, said = _connect(partner, document, as_user=PARTNER_BROKER_USER)
        lines.append(said)
        # One delegation whose trust policy names people rather than the account.
        lines.extend(demo_named_people_seed(owner=owner, partner=partner))
        # Alice and Bob linked to their RAM users, whom the demo trail's calls name.
        lines.extend(demo_activity_seed(partner=partner))
        # Approval rules: a quorum of 2, a break-glass role, an open access review.
        lines.extend(demo_rules_seed(owner=owner, partner=partner))
        # company-a's second account and a fleet grant over both.
        try:
            staging_key: tuple[str, str] | None = owner_staging_root_key(document)
        except _Skip:
            staging_key = None
        lines.extend(
            demo_fleet_seed(
                owner=owner,
                partner=partner,
                owner_admin=admin,
                staging_uid=OWNER_STAGING_ACCOUNT.uid,
                staging_key=staging_key,
                regions=DEMO_FLEET_REGIONS,
            )
        )
        # Runbooks over that fleet: consent given, the fleet applied, Alice on it.
        lines.extend(
            demo_runbook_seed(
                partner=partner, partner_admin=_admin_of(partner), fleet_role=FLEET_ROLE
            )
        )
    except _Skip as skipped:
        lines.append(f"Note: {skipped} The rest of the cloud part was skipped.")
    return lines
