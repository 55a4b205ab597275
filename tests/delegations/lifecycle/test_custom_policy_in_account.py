"""A Custom policy is the account's own: a catalogue role granted in another of the owner's
accounts attaches that account's policy of the name, which it usually does not have. Every
decision that grants the role in an account (approve, offer, retry, the auto-approval rule,
a break-glass activation) refuses it there while one of its Custom policies is missing,
naming the policy and the account, before anything is enqueued or sent to the cloud. The
read is the one the high-privilege check makes anyway (GetPolicy, fresh). Against cloudsim."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Membership, Organisation
from audit.models import AuditEvent
from cloud.client import CloudClient
from delegations.approvals.services import approval_rule_set
from delegations.catalog.partner_links import partner_link_create
from delegations.lifecycle.automatic import delegation_mark_failed
from delegations.lifecycle.services import delegation_approve, delegation_retry
from delegations.lifecycle.starting import (
    delegation_auto_approve,
    delegation_offer,
    delegation_request,
)
from delegations.models import CloudAccount, Delegation, OutboxMessage
from delegations.worker.owner_role import managed_role_reconcile
from tests.delegations.fleet.test_worker import connect_another
from tests.fixtures.worker import OwnerWorld
from tests.personas import make_member

pytestmark = pytest.mark.django_db
S = Delegation.Status
HARMLESS = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"}],
}


@pytest.fixture
def staging(owner_world: OwnerWorld) -> tuple[CloudAccount, CloudClient]:
    """ecs-admin holds AliyunECSFullAccess and the home account's Custom OpsHelper, and is
    offered in a second connected account, staging, which has no OpsHelper."""
    owner_world.client().create_policy(policy_name="OpsHelper", document=HARMLESS)
    role = owner_world.catalog_role
    role.policies = [
        {"type": "System", "name": "AliyunECSFullAccess"},
        {"type": "Custom", "name": "OpsHelper"},
    ]
    role.save()
    account, client = connect_another(owner_world, "staging")
    # Offered there as the catalogue did before it checked (and as "all accounts" offers a
    # role in an account connected later).
    role.extra_accounts.set([account])
    return account, client


def missing_message(account: CloudAccount) -> str:
    return f"Custom policy OpsHelper does not exist in the account {account.label}"


def request_in(world: OwnerWorld, account: CloudAccount, partner: Organisation | None = None):
    partner = partner or world.partner(name="Partner Co")
    link, _code = partner_link_create(owner=world.organisation, created_by=world.admin, label="p")
    return delegation_request(
        partner=partner,
        requested_by=make_member(partner, Membership.Role.ADMIN),
        partner_link=link,
        catalog_role=world.catalog_role,
        reason="Patch staging",
        ends_at=timezone.now() + dt.timedelta(hours=4),
        cloud_account=account,
    )


def test_approval_in_an_account_without_the_custom_policy_is_refused_then_works_once_made(
    owner_world: OwnerWorld, staging: tuple[CloudAccount, CloudClient]
) -> None:
    world, (account, client) = owner_world, staging
    delegation = request_in(world, account)
    since = world.sim.last_call_seq()

    with pytest.raises(ValidationError) as refused:
        delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    message = " ".join(refused.value.messages)
    assert missing_message(account) in message and "create it there first" in message
    assert Delegation.objects.get(pk=delegation.pk).status == S.REQUESTED
    assert not OutboxMessage.objects.exists()
    assert [c for c in world.sim.calls(since) if c.get("mutating")] == []
    denied = AuditEvent.objects.get(action="delegation.approve_denied")
    assert missing_message(account) in denied.metadata["denied_because"]

    # The owner creates it there; the next approval goes through and the worker applies it.
    client.create_policy(policy_name="OpsHelper", document=HARMLESS)
    approved = delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    assert approved.status == S.APPROVED
    managed_role_reconcile(managed_role_id=approved.managed_role_id)
    assert Delegation.objects.get(pk=delegation.pk).status == S.ACTIVE
    assert {p.key for p in client.list_policies_for_role(world.role_name)} == {
        ("System", "AliyunECSFullAccess"),
        ("Custom", "OpsHelper"),
    }


def test_an_offer_there_is_refused_and_creates_nothing(
    owner_world: OwnerWorld, staging: tuple[CloudAccount, CloudClient]
) -> None:
    world, (account, _client) = owner_world, staging
    with pytest.raises(ValidationError) as refused:
        delegation_offer(
            owner=world.organisation,
            offered_by=world.admin,
            partner=world.partner(),
            catalog_role=world.catalog_role,
            reason="Patch staging",
            ends_at=None,
            with_mfa=True,
            cloud_account=account,
        )
    assert missing_message(account) in refused.value.message_dict["catalog_role"][0]
    assert not Delegation.objects.exists()
    assert not OutboxMessage.objects.exists()
    # In the home account, where the policy lives, the same offer goes through.
    assert world.offer().status == S.APPROVED


def test_the_auto_approval_rule_leaves_it_to_the_approvers(
    owner_world: OwnerWorld, staging: tuple[CloudAccount, CloudClient]
) -> None:
    world, (account, _client) = owner_world, staging
    approval_rule_set(
        catalog_role=world.catalog_role,
        approvals_required=1,
        auto_approve_max_hours=8,
        set_by=world.admin,
    )
    delegation = request_in(world, account)
    assert not delegation_auto_approve(delegation=delegation).changed
    assert Delegation.objects.get(pk=delegation.pk).status == S.REQUESTED
    assert not OutboxMessage.objects.exists()


def test_a_role_offered_in_all_accounts_is_refused_in_an_account_connected_later(
    owner_world: OwnerWorld,
) -> None:
    world = owner_world
    world.client().create_policy(policy_name="OpsHelper", document=HARMLESS)
    role = world.catalog_role
    role.policies = [{"type": "Custom", "name": "OpsHelper"}]
    role.offered_in_all_accounts = True
    role.save()
    later, _client = connect_another(world, "later")
    delegation = request_in(world, later)
    with pytest.raises(ValidationError) as refused:
        delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    assert missing_message(later) in " ".join(refused.value.messages)


def test_retrying_a_failed_grant_is_refused_while_the_policy_is_missing(
    owner_world: OwnerWorld, staging: tuple[CloudAccount, CloudClient]
) -> None:
    world, (account, client) = owner_world, staging
    client.create_policy(policy_name="OpsHelper", document=HARMLESS)
    delegation = request_in(world, account)
    delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    delegation_mark_failed(delegation=delegation, error_code="Throttling", error_message="x")
    client.delete_policy("OpsHelper")
    outbox_before = OutboxMessage.objects.count()
    with pytest.raises(ValidationError) as refused:
        delegation_retry(delegation=delegation, retried_by=world.admin)
    assert missing_message(account) in " ".join(refused.value.messages)
    assert Delegation.objects.get(pk=delegation.pk).status == S.FAILED
    assert OutboxMessage.objects.count() == outbox_before


def test_a_grant_in_the_home_account_is_refused_once_its_custom_policy_was_deleted(
    owner_world: OwnerWorld,
) -> None:
    """The home account is judged the same way: a Custom policy deleted in the console
    since the role was added is missing there too (before, it read as "not high
    privilege" and the grant went on to fail in the worker)."""
    world = owner_world
    world.client().create_policy(policy_name="OpsHelper", document=HARMLESS)
    role = world.catalog_role
    role.policies = [{"type": "Custom", "name": "OpsHelper"}]
    role.save()
    world.client().delete_policy("OpsHelper")
    with pytest.raises(ValidationError) as refused:
        world.offer()
    assert missing_message(world.cloud_account) in " ".join(refused.value.messages)


def test_a_policy_deleted_after_the_approval_fails_the_grant_once_with_a_readable_reason(
    owner_world: OwnerWorld, staging: tuple[CloudAccount, CloudClient]
) -> None:
    """Deleted in the console between the approval and the worker: the cloud's
    EntityNotExist.Policy is a permanent answer, so the delegation fails at once (no retry
    loop), with the portal's own reason naming the policy and the account, in its history
    and on its page (read in the reader's language); the role the round created to attach
    it is removed again, so the partner is trusted nowhere."""
    from django.utils import translation

    from core.i18n import read_stored

    world, (account, client) = owner_world, staging
    client.create_policy(policy_name="OpsHelper", document=HARMLESS)
    delegation = request_in(world, account)
    delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    client.delete_policy("OpsHelper")

    report = managed_role_reconcile(managed_role_id=delegation.managed_role_id)

    assert report.outcome == "failed" and report.error_code == "EntityNotExist.Policy"
    failed = Delegation.objects.get(pk=delegation.pk)
    assert (failed.status, failed.failed_phase) == (S.FAILED, Delegation.Phase.APPLYING)
    assert failed.last_error_code == "EntityNotExist.Policy"
    assert failed.last_error_request_id
    expected = (
        f"Custom policy OpsHelper does not exist in the account {account.label}; create it "
        "there first, then retry."
    )
    assert failed.last_error_message == expected
    event = AuditEvent.objects.get(action="delegation.failed", target_id=str(delegation.pk))
    assert event.metadata["error_message"] == expected
    with translation.override("zh-hans"):
        assert read_stored(expected) != expected
    assert client.get_role(world.role_name) is None

    # Made again, a retry (which checks first) converges.
    client.create_policy(policy_name="OpsHelper", document=HARMLESS)
    delegation_retry(delegation=failed, retried_by=world.admin)
    managed_role_reconcile(managed_role_id=delegation.managed_role_id)
    assert Delegation.objects.get(pk=delegation.pk).status == S.ACTIVE
