"""The documented owner key (docs/ram-policies/owner-portal.json) may read ActionTrail; a key
without `actiontrail:LookupEvents` stops ingestion with one clear message, against cloudsim's
own policy evaluation."""

from __future__ import annotations

import json
import secrets

import pytest

from activity.models import ActivityCursor
from activity.services import activity_ingest_account
from audit.models import AuditEvent
from delegations.connection.services import cloud_account_replace_key
from tests.delegations.test_least_privilege_keys import POLICIES, ram_user_with
from tests.fixtures.partner import OWNER_UID, PartnerWorld

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(partner_world: PartnerWorld, settings) -> PartnerWorld:
    settings.ALIBABA_ACTIONTRAIL_ENDPOINT = partner_world.sim.endpoint
    settings.ALIBABA_ACTIONTRAIL_QPS = 0
    return partner_world


def use_key(world: PartnerWorld, key: tuple[str, str]) -> None:
    cloud_account_replace_key(
        cloud_account=world.owner_account,
        replaced_by=world.owner_admin,
        access_key_id=key[0],
        access_key_secret=key[1],
    )
    world.owner_account.refresh_from_db()


def test_the_documented_owner_policy_reads_actiontrail(world):
    _, key = ram_user_with(world, world.owner_root(), OWNER_UID, "owner-portal.json")
    use_key(world, key)
    assert activity_ingest_account(cloud_account=world.owner_account).status == "done"


def test_a_key_without_lookup_events_stops_with_one_message(world):
    # The documented policy without its ActionTrail statement.
    document = json.loads((POLICIES / "owner-portal.json").read_text())
    document["Statement"] = [
        s for s in document["Statement"] if "actiontrail:LookupEvents" not in s["Action"]
    ]
    name = f"owner-no-trail-{secrets.token_hex(3)}"
    user = world.sim.create_user(OWNER_UID, name)
    root = world.owner_root()
    root.create_policy(policy_name=name, document=document)
    root.attach_policy_to_user(user_name=name, policy_type="Custom", policy_name=name)
    use_key(world, (user["access_key_id"], user["access_key_secret"]))
    report = activity_ingest_account(cloud_account=world.owner_account)
    assert report.status == "blocked"
    cursor = ActivityCursor.objects.get(cloud_account=world.owner_account)
    assert "actiontrail:LookupEvents" in cursor.last_error_message
    assert activity_ingest_account(cloud_account=world.owner_account).status == "skipped"
    assert AuditEvent.objects.filter(action="activity.ingestion_blocked").count() == 1
