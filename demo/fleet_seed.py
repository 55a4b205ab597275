"""The demo's fleet: company-a's second cloud account (staging,
`cloud_seed.OWNER_STAGING_ACCOUNT`) connected next to production, and an active fleet grant
of `ecs-fleet-operator` for company-b over both accounts x the demo fleet's regions, so a
newcomer sees one grant applied account by account (and has what a runbook runs on).
Idempotent; through the same services as the pages; the running worker applies the offer."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Organisation, User
from core.crypto import SecretDecryptionError
from delegations.catalog.services import catalog_role_create, catalog_role_set_accounts
from delegations.connection.selectors import cloud_accounts_of_organisation
from delegations.connection.services import (
    cloud_account_connect,
    cloud_account_credentials,
    cloud_account_replace_key,
)
from delegations.fleet.services import fleet_offer
from delegations.models import FINAL_STATUSES, CatalogRole, Delegation, FleetGrant
from demo.people import seed_decides_with_mfa

STAGING_NAME = "staging"
FLEET_ROLE = "ecs-fleet-operator"


def _connect_staging(
    owner: Organisation, admin: User, staging_uid: str, key: tuple[str, str] | None
) -> str:
    if key is None:
        raise ValidationError(
            f"cloudsim has no account {staging_uid} (its data predates it: delete var/ to "
            "start afresh)"
        )
    connected = [
        account
        for account in cloud_accounts_of_organisation(organisation=owner)
        if account.account_uid == staging_uid
    ]
    if connected:
        try:
            works = cloud_account_credentials(cloud_account=connected[0]).access_key_id == key[0]
        except (SecretDecryptionError, ValidationError):
            works = False  # e.g. a new encryption key: store cloudsim's key again
        if works:
            return f"Second account {STAGING_NAME} ({staging_uid}) already connected."
        cloud_account_replace_key(
            cloud_account=connected[0],
            replaced_by=admin,
            access_key_id=key[0],
            access_key_secret=key[1],
        )
        return f"Reconnected the second account {STAGING_NAME} ({staging_uid})."
    cloud_account_connect(
        organisation=owner,
        connected_by=admin,
        account_uid=staging_uid,
        alias="",
        name=STAGING_NAME,
        region="cn-hangzhou",
        access_key_id=key[0],
        access_key_secret=key[1],
    )
    return f"Connected company-a's second account {STAGING_NAME} ({staging_uid}), root AccessKey."


def _fleet_role(owner: Organisation, admin: User) -> CatalogRole:
    role = CatalogRole.objects.filter(organisation=owner, role_name=FLEET_ROLE).first()
    if role is None:
        role = catalog_role_create(
            owner=owner,
            created_by=admin,
            role_name=FLEET_ROLE,
            description="Operate the ECS fleet in every account: run commands, start, stop",
            policy_keys=[("System", "AliyunECSFullAccess")],
            max_session_duration=3600,
        )
    return catalog_role_set_accounts(catalog_role=role, changed_by=admin, all_accounts=True)


def demo_fleet_seed(
    *,
    owner: Organisation,
    partner: Organisation,
    owner_admin: User,
    staging_uid: str,
    staging_key: tuple[str, str] | None,
    regions: tuple[str, ...],
) -> list[str]:
    """Lines to print; never raises for what the demo cannot do (it says so instead).
    `staging_key`: the staging account's root AccessKey from cloudsim's demo credentials."""
    try:
        lines = [_connect_staging(owner, owner_admin, staging_uid, staging_key)]
        role = _fleet_role(owner, owner_admin)
        open_fleet = (
            FleetGrant.objects.filter(owner=owner, partner=partner, catalog_role=role)
            .exclude(delegations__status__in=list(FINAL_STATUSES))
            .exists()
        )
        if open_fleet:
            return [*lines, f"Fleet grant of {FLEET_ROLE} to {partner.name} already there."]
        accounts = [
            a
            for a in cloud_accounts_of_organisation(organisation=owner)
            if not Delegation.objects.filter(
                partner=partner, catalog_role=role, managed_role__cloud_account=a
            )
            .exclude(status__in=list(FINAL_STATUSES))
            .exists()
        ]
        fleet_offer(
            owner=owner,
            offered_by=owner_admin,
            partner=partner,
            catalog_role=role,
            accounts=accounts,
            regions=list(regions),
            reason="Demo: operate company-a's ECS fleet in production and staging",
            ends_at=None,
            with_mfa=seed_decides_with_mfa(),
            concurrency=5,
            max_errors=0,
        )
    except (ValidationError, PermissionDenied) as error:
        why = " ".join(getattr(error, "messages", [str(error)]))
        return [f"Note: the fleet demo was skipped: {why}"]
    return [
        *lines,
        f"Offered {FLEET_ROLE} to {partner.name} as one fleet grant over "
        f"{len(accounts)} accounts x {', '.join(regions)} (Delegations → Fleet grants).",
    ]
