"""The partner admin's consent, carried out against cloudsim through the official RAM SDK:
OOSServiceRole in the partner's account, trusted by oos.aliyuncs.com, holding
AliyunSTSAssumeRoleAccess; repaired without dropping anyone, and idempotent."""

from __future__ import annotations

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from cloud import policies
from cloud.client import CloudClient
from cloud.values import CloudCredentials
from delegations.models import CloudAccount
from runbooks.models import OosConsent
from runbooks.worker import oos_service_role_ensure
from tests.delegations.cloud_fixtures import SimAccount
from tests.delegations.factories import CloudAccountFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner(sim_partner: SimAccount) -> tuple[SimAccount, CloudClient, OosConsent]:
    CloudAccountFactory(organisation=sim_partner.organisation)
    consent = OosConsent.objects.create(
        partner=sim_partner.organisation,
        account_uid=sim_partner.uid,
        given_by=sim_partner.admin,
        given_at=timezone.now(),
    )
    client = CloudClient(CloudCredentials(sim_partner.root_key_id, sim_partner.root_secret))
    return sim_partner, client, consent


def test_the_role_is_created_trusted_by_oos_with_sts_assume_role(partner):
    account, client, consent = partner
    consent = oos_service_role_ensure(consent_id=consent.pk, client=client)
    assert consent.status == OosConsent.Status.READY
    role = client.get_role("OOSServiceRole")
    assert role is not None
    assert policies.trust_policy_principals(role.trust_document).service == {"oos.aliyuncs.com"}
    attached = {p.key for p in client.list_policies_for_role("OOSServiceRole")}
    assert ("System", "AliyunSTSAssumeRoleAccess") in attached
    assert CloudAccount.objects.get(organisation=account.organisation).oos_service_role_ready_at
    event = AuditEvent.objects.get(action="runbook.oos_role_ready")
    assert event.metadata["calls"] == ["CreateRole", "AttachPolicyToRole"]


def test_an_existing_role_is_repaired_and_keeps_its_other_principals(partner):
    account, client, consent = partner
    other = policies.account_root_arn(account.uid)
    client.create_role(
        "OOSServiceRole",
        trust_document=policies.build_trust_policy([other]),
        description="made by hand",
        max_session_duration=3600,
    )
    seq = account.seq()
    oos_service_role_ensure(consent_id=consent.pk, client=client)
    trusted = policies.trust_policy_principals(client.get_role("OOSServiceRole").trust_document)
    assert trusted.service == {"oos.aliyuncs.com"} and other in trusted.ram
    actions = [call["action"] for call in account.calls_since(seq)]
    assert "UpdateRole" in actions and "CreateRole" not in actions


def test_running_it_again_changes_nothing(partner):
    account, client, consent = partner
    oos_service_role_ensure(consent_id=consent.pk, client=client)
    OosConsent.objects.filter(pk=consent.pk).update(status=OosConsent.Status.PENDING)
    seq = account.seq()
    oos_service_role_ensure(consent_id=consent.pk, client=client)
    mutations = {"CreateRole", "UpdateRole", "AttachPolicyToRole"}
    assert not mutations & {call["action"] for call in account.calls_since(seq)}
