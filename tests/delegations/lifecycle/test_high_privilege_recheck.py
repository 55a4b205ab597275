"""The high-privilege opt-in is checked again whenever access is granted (approve, offer,
retry), not only when the catalogue role was created: a Custom policy can gain RAM rights in
the console afterwards, and a role may lack the opt-in. A refusal grants nothing, enqueues
nothing and makes no mutating cloud call. Against a real cloudsim account."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, User
from audit.models import AuditEvent
from delegations.catalog.account_policies import catalog_policies_high_privilege
from delegations.catalog.partner_links import partner_link_create
from delegations.lifecycle import transitions
from delegations.lifecycle.automatic import delegation_mark_failed
from delegations.lifecycle.services import delegation_approve, delegation_retry
from delegations.lifecycle.starting import delegation_request
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import Delegation, OutboxMessage
from tests.delegations.lifecycle.test_views import with_mfa
from tests.fixtures.worker import OwnerWorld
from tests.personas import make_member

pytestmark = pytest.mark.django_db
S = Delegation.Status
HARMLESS = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"}],
}
RAM_EVERYTHING = {
    "Version": "1",
    "Statement": [{"Effect": "Allow", "Action": "ram:*", "Resource": "*"}],
}


@pytest.fixture
def world(owner_world: OwnerWorld) -> OwnerWorld:
    """ecs-admin holds a harmless Custom policy, created without the opt-in (as the
    catalogue would: nothing in it granted RAM administration then)."""
    owner_world.client().create_policy(policy_name="OpsHelper", document=HARMLESS)
    role = owner_world.catalog_role
    role.policies = [{"type": "Custom", "name": "OpsHelper"}]
    role.allows_high_privilege = False
    role.save()
    return owner_world


def request_from_partner(world: OwnerWorld) -> Delegation:
    partner = world.partner(name="Partner Co")
    partner_admin = make_member(partner, Membership.Role.ADMIN)
    link, _code = partner_link_create(owner=world.organisation, created_by=world.admin, label="p")
    return delegation_request(
        partner=partner,
        requested_by=partner_admin,
        partner_link=link,
        catalog_role=world.catalog_role,
        reason="Patch the fleet",
        ends_at=None,
    )


def escalate(world: OwnerWorld) -> None:
    """Someone with RAM rights publishes a new default version granting ram:*."""
    world.client().create_policy_version(
        policy_name="OpsHelper", document=RAM_EVERYTHING, set_as_default=True
    )


def nothing_granted(world: OwnerWorld, delegation: Delegation, since: int) -> None:
    assert Delegation.objects.get(pk=delegation.pk).status == S.REQUESTED
    assert not OutboxMessage.objects.exists()
    assert world.cloud_calls(since, mutating=True) == []


def test_approving_reads_the_custom_policy_and_grants_when_it_is_harmless(
    world: OwnerWorld,
) -> None:
    delegation = request_from_partner(world)
    since = world.last_seq()
    approved = delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    assert approved.status == S.APPROVED
    assert [c["action"] for c in world.cloud_calls(since)] == ["GetPolicy"]
    assert OutboxMessage.objects.count() == 1


def test_approval_is_refused_when_a_custom_policy_gained_ram_rights_since_creation(
    world: OwnerWorld,
) -> None:
    delegation = request_from_partner(world)
    # The catalogue's cached verdict still says harmless: approval must not trust it.
    assert (
        catalog_policies_high_privilege(
            cloud_account=world.cloud_account, policy_keys=[("Custom", "OpsHelper")]
        )
        == []
    )
    escalate(world)
    since = world.last_seq()
    with pytest.raises(ValidationError) as refused:
        delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    message = " ".join(refused.value.messages)
    assert "now includes OpsHelper" in message and "no opt-in for high privilege" in message
    nothing_granted(world, delegation, since)
    denied = AuditEvent.objects.get(action="delegation.approve_denied")
    assert denied.outcome == AuditEvent.Outcome.DENIED
    assert "OpsHelper" in denied.metadata["denied_because"]


def test_a_role_whose_opt_in_was_withdrawn_is_not_granted_and_no_cloud_call_is_needed(
    world: OwnerWorld,
) -> None:
    role = world.catalog_role
    role.policies = [{"type": "System", "name": "AdministratorAccess"}]
    role.allows_high_privilege = True
    role.save()
    delegation = request_from_partner(world)
    role.allows_high_privilege = False  # the opt-in withdrawn after the role was created
    role.save()
    since = world.last_seq()
    with pytest.raises(ValidationError, match="AdministratorAccess"):
        delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    assert world.cloud_calls(since) == []  # judged by name
    nothing_granted(world, delegation, since)
    # With the opt-in in place, the same approval goes through.
    role.allows_high_privilege = True
    role.save()
    approved = delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    assert approved.status == S.APPROVED


def test_an_offer_is_refused_the_same_way_and_creates_nothing(world: OwnerWorld) -> None:
    escalate(world)
    since = world.last_seq()
    with pytest.raises(ValidationError) as refused:
        world.offer()
    assert "now includes OpsHelper" in refused.value.message_dict["catalog_role"][0]
    assert not Delegation.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert world.cloud_calls(since, mutating=True) == []


def test_retrying_a_failed_apply_is_refused_once_the_role_became_high_privilege(
    world: OwnerWorld,
) -> None:
    delegation = world.offer()
    delegation_mark_failed(delegation=delegation, error_code="Throttling", error_message="x")
    escalate(world)
    outbox_before = OutboxMessage.objects.count()
    with pytest.raises(ValidationError, match="now includes OpsHelper"):
        delegation_retry(delegation=delegation, retried_by=world.admin)
    assert Delegation.objects.get(pk=delegation.pk).status == S.FAILED
    assert OutboxMessage.objects.count() == outbox_before
    # Retrying a failed removal is not a grant: it goes ahead.
    Delegation.objects.filter(pk=delegation.pk).update(failed_phase=Delegation.Phase.REVOKING)
    retried = delegation_retry(delegation=delegation, retried_by=world.admin)
    assert retried.status == S.REVOKING


def test_when_the_cloud_cannot_answer_nothing_is_granted(world: OwnerWorld) -> None:
    delegation = request_from_partner(world)
    world.sim.set_faults("GetPolicy:internal")
    since = world.last_seq()
    with pytest.raises(ValidationError, match="could not be asked"):
        delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    world.sim.clear_faults()
    nothing_granted(world, delegation, since)


def test_a_role_edited_between_the_check_and_the_lock_is_a_conflict(
    world: OwnerWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    delegation = request_from_partner(world)
    real = transitions.policies_problem

    def check_then_edit(*, catalog_role, cloud_account=None):
        answer = real(catalog_role=catalog_role, cloud_account=cloud_account)
        type(catalog_role).objects.filter(pk=catalog_role.pk).update(
            policies=[{"type": "System", "name": "AliyunRAMFullAccess"}]
        )
        return answer

    monkeypatch.setattr(transitions, "policies_problem", check_then_edit)
    with pytest.raises(DelegationConflict, match="was edited while you were deciding"):
        delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    assert Delegation.objects.get(pk=delegation.pk).status == S.REQUESTED
    assert not OutboxMessage.objects.exists()


def test_the_approve_page_shows_the_refusal(world: OwnerWorld, client: Client) -> None:
    delegation = request_from_partner(world)
    escalate(world)
    admin: User = world.admin
    client.force_login(admin)
    with_mfa(client, admin)
    response = client.post(
        reverse("delegations:approve", args=[delegation.pk]), {"version": delegation.version}
    )
    assert response.status_code == 400
    assert "now includes OpsHelper" in response.content.decode()
    assert Delegation.objects.get(pk=delegation.pk).status == S.REQUESTED
    assert not OutboxMessage.objects.exists()


def test_a_grant_in_another_account_judges_that_accounts_custom_policy(
    world: OwnerWorld,
) -> None:
    """A Custom policy is the account's own: a grant in the owner's second account (a fleet's,
    or a request that chose it) attaches that account's OpsHelper, which may grant RAM rights
    where the home account's does not. Approving and offering judge that one."""
    from delegations.lifecycle.starting import delegation_offer
    from tests.delegations.fleet.test_worker import connect_another

    staging, staging_client = connect_another(world, "staging")
    staging_client.create_policy(policy_name="OpsHelper", document=RAM_EVERYTHING)
    role = world.catalog_role
    role.offered_in_all_accounts = True
    role.save(update_fields=["offered_in_all_accounts"])
    partner = world.partner(name="Partner Co")
    partner_admin = make_member(partner, Membership.Role.ADMIN)
    link, _code = partner_link_create(owner=world.organisation, created_by=world.admin, label="p")
    delegation = delegation_request(
        partner=partner,
        requested_by=partner_admin,
        partner_link=link,
        catalog_role=role,
        reason="Patch staging",
        ends_at=None,
        cloud_account=staging,
    )
    since = world.last_seq()

    with pytest.raises(ValidationError) as refused:
        delegation_approve(delegation=delegation, approved_by=world.admin, with_mfa=True)
    assert "now includes OpsHelper" in " ".join(refused.value.messages)
    nothing_granted(world, delegation, since)
    other = world.partner(name="Other Co")
    with pytest.raises(ValidationError) as refused:
        delegation_offer(
            owner=world.organisation,
            offered_by=world.admin,
            partner=other,
            catalog_role=role,
            reason="Patch staging",
            ends_at=None,
            with_mfa=True,
            cloud_account=staging,
        )
    assert "now includes OpsHelper" in " ".join(refused.value.messages)
    assert not Delegation.objects.filter(partner=other).exists()
    # Nor does the role's auto-approval rule approve it there by itself.
    import datetime as dt

    from django.utils import timezone

    from delegations.approvals.services import approval_rule_set
    from delegations.lifecycle.starting import delegation_auto_approve

    approval_rule_set(
        catalog_role=role, approvals_required=1, auto_approve_max_hours=8, set_by=world.admin
    )
    short = delegation_request(
        partner=other,
        requested_by=make_member(other, Membership.Role.ADMIN),
        partner_link=link,
        catalog_role=role,
        reason="Patch staging tonight",
        ends_at=timezone.now() + dt.timedelta(hours=4),
        cloud_account=staging,
    )
    assert not delegation_auto_approve(delegation=short).changed
    assert Delegation.objects.get(pk=short.pk).status == S.REQUESTED
