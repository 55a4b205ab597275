"""The RAM policies the README gives operators for the portal's keys (docs/ram-policies/) are
enough for the whole flow, against cloudsim's policy evaluation: the owner's key creates, grows,
shrinks and deletes the role; the partner's broker grants and removes staff's AssumeRole and
issues their credentials. Nothing here uses a root key or AliyunRAMFullAccess for the portal.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from cloud.client import CloudClient
from delegations.connection.services import cloud_account_replace_key
from delegations.models import Delegation
from delegations.partner.credentials import credentials_issue
from tests.fixtures.partner import OWNER_UID, PARTNER_UID, PartnerWorld, sdk_client

POLICIES = Path(__file__).resolve().parents[2] / "docs" / "ram-policies"


def ram_user_with(world: PartnerWorld, root: CloudClient, uid: str, document_file: str):
    """A fresh RAM user in `uid` holding only the documented policy; its AccessKey."""
    name = f"portal-least-{secrets.token_hex(3)}"
    user = world.sim.create_user(uid, name)
    document = json.loads((POLICIES / document_file).read_text())
    root.create_policy(policy_name=name, document=document)
    root.attach_policy_to_user(user_name=name, policy_type="Custom", policy_name=name)
    return name, (user["access_key_id"], user["access_key_secret"])


@pytest.mark.django_db
def test_the_documented_ram_policies_run_the_whole_flow(partner_world: PartnerWorld) -> None:
    world = partner_world
    _, owner_key = ram_user_with(world, world.owner_root(), OWNER_UID, "owner-portal.json")
    broker, partner_key = ram_user_with(
        world, world.partner_root(), PARTNER_UID, "partner-broker.json"
    )
    for account, key, admin in (
        (world.owner_account, owner_key, world.owner_admin),
        (world.partner_account, partner_key, world.partner_admin),
    ):
        cloud_account_replace_key(
            cloud_account=account,
            replaced_by=admin,
            access_key_id=key[0],
            access_key_secret=key[1],
        )

    # Owner side: the role is created with its policies and the partner in its trust.
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")  # the broker's key lists company-b's RAM users
    assignment = world.assign(delegation, world.alice)
    world.drain()
    # Partner side: Alice's RAM user and the broker got AssumeRole on exactly that role.
    assert world.user_may_assume("Alice")
    issued = credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    assert issued.credentials.access_key_id.startswith("STS.")
    as_alice = sdk_client(
        world.sim,
        (
            issued.credentials.access_key_id,
            issued.credentials.access_key_secret,
            issued.credentials.security_token,
        ),
    )
    assert as_alice.get_caller_identity().arn.endswith(f"/{issued.issuance.session_name}")

    # Revoking removes everything again: the role is deleted, the policies go.
    world.revoke(Delegation.objects.get(pk=delegation.pk))
    world.drain()
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.REVOKED, delegation.last_error_message
    assert not world.user_may_assume("Alice")
    assert world.managed_policy_document("Alice") is None
    assert world.managed_policy_document(broker) is None
