"""`seed_demo` connects the demo organisations to cloudsim's demo accounts, builds company-a's
catalogue, allow-lists company-b and creates a partner link; a second run changes nothing;
without cloudsim's credentials file or an encryption key it says so and skips the cloud."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.urls import reverse

from accounts.models import User
from audit.models import AuditEvent
from cloud.client import CloudClient
from cloud.values import CloudCredentials
from delegations.connection.services import cloud_account_credentials
from delegations.models import (
    CatalogRole,
    CloudAccount,
    Delegation,
    FleetGrant,
    PartnerAllowance,
    PartnerLink,
    StaffAssignment,
    TrustedPerson,
    TrustScope,
)
from runbooks import worker as runbook_worker
from runbooks.models import OosConsent, RunbookInstanceResult, RunbookRun
from runbooks.tasks import oos_client_for
from tests.fixtures.cloudsim import CloudSim
from tests.runbooks.conftest import capture_publishes

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo_sim() -> Iterator[CloudSim]:
    """A cloudsim of its own, freshly seeded with --demo like `make run` starts it, so the
    demo accounts hold nothing other tests made."""
    with tempfile.TemporaryDirectory(prefix="cloudsim-seed-") as directory:
        sim = CloudSim(data_dir=Path(directory)).start()
        try:
            yield sim
        finally:
            sim.stop()


@pytest.fixture
def demo_settings(settings, demo_sim: CloudSim, tmp_path: Path):
    settings.DATA_DIR = tmp_path
    settings.CLOUDSIM_DATA_DIR = demo_sim.data_dir
    settings.ALIBABA_RAM_ENDPOINT = demo_sim.endpoint
    settings.ALIBABA_STS_ENDPOINT = demo_sim.endpoint
    settings.ALIBABA_OOS_ENDPOINT = demo_sim.endpoint
    settings.ALIBABA_ECS_ENDPOINT = demo_sim.endpoint
    settings.ALIBABA_CLOUD_PROTOCOL = "http"
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    return settings


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_connects_the_demo_accounts_and_is_idempotent(
    demo_settings, demo_sim: CloudSim
) -> None:
    first = seed()
    print(first)  # shown with -s: the output people see after `make run`
    a_key, a_secret = demo_sim.root_key("company-a")
    b_key, b_secret = demo_sim.user_key("company-b", "portal-broker")
    assert "root AccessKey" in first
    assert f"Connected company-a (11223344) with its root AccessKey {a_key}." in first
    assert (
        f"Connected company-b (12345678) with the RAM user portal-broker's AccessKey {b_key}."
        in first
    )
    assert "Catalogue role ecs-admin added (AliyunECSFullAccess)." in first
    assert "Catalogue role ecs-viewer added (AliyunECSReadOnlyAccess)." in first
    assert "Allow-listed 12345678 (Company B)." in first
    assert "Partner link for company-b created: code" in first
    assert "trust scope 'named people, owner-approved'; Alice proposed and approved" in first
    # Approval rules (issue 14): a quorum of 2, a break-glass role, an open access review.
    assert "Quorum: requests for ecs-viewer need 2 approvals" in first
    assert "Break-glass: alice@company-b.example may activate ecs-admin" in first
    assert "Access review: open until" in first
    assert a_secret not in first and b_secret not in first

    owner_account = CloudAccount.objects.get(
        organisation__slug="company-a", is_active=True, is_primary=True
    )
    partner_account = CloudAccount.objects.get(organisation__slug="company-b", is_active=True)
    assert cloud_account_credentials(cloud_account=owner_account).access_key_secret == a_secret
    # A RAM user, not the root: only a RAM user may call AssumeRole for partner staff.
    assert partner_account.caller_arn == "acs:ram::12345678:user/portal-broker"
    roles = {r.role_name: r.policies for r in CatalogRole.objects.all()}
    assert roles == {
        "ecs-admin": [{"type": "System", "name": "AliyunECSFullAccess"}],
        "ecs-viewer": [{"type": "System", "name": "AliyunECSReadOnlyAccess"}],
        "ecs-fleet-operator": [{"type": "System", "name": "AliyunECSFullAccess"}],
    }
    # company-a's second account, and one fleet grant over both accounts (issue 12).
    staging = CloudAccount.objects.get(organisation__slug="company-a", account_uid="11223355")
    assert staging.name == "staging" and not staging.is_primary
    assert "Connected company-a's second account staging (11223355)" in first
    fleet = FleetGrant.objects.get()
    assert fleet.regions == ["cn-shanghai", "cn-beijing"]
    assert sorted(
        fleet.delegations.values_list("managed_role__cloud_account__account_uid", flat=True)
    ) == ["11223344", "11223355"]
    # Applied by the worker's own task, run by the seed, so runbooks work straight away.
    assert set(fleet.delegations.values_list("status", flat=True)) == {Delegation.Status.ACTIVE}
    # Runbooks: the partner admin's consent, OOSServiceRole really in company-b's account,
    # and Alice assigned to each of the fleet's accounts.
    consent = OosConsent.objects.get()
    assert consent.status == OosConsent.Status.READY and consent.account_uid == "12345678"
    oos_role = CloudClient(
        CloudCredentials(*demo_sim.root_key("company-b")),
        ram_endpoint=demo_sim.endpoint,
        sts_endpoint=demo_sim.endpoint,
        protocol="http",
    ).get_role("OOSServiceRole")
    assert oos_role is not None and "oos.aliyuncs.com" in oos_role.trust_document
    assert "OOSServiceRole created in 12345678" in first
    assert sorted(
        StaffAssignment.objects.filter(
            delegation__fleet=fleet, user__email="alice@company-b.example", ended_at__isnull=True
        ).values_list("delegation__managed_role__cloud_account__account_uid", flat=True)
    ) == ["11223344", "11223355"]
    assert list(PartnerAllowance.objects.values_list("partner_account_uid", flat=True)) == [
        "12345678"
    ]
    assert PartnerLink.objects.count() == 1
    events = AuditEvent.objects.count()

    second = seed()
    assert "Already connected: company-a" in second and "Already connected: company-b" in second
    assert "Catalogue role ecs-admin already there." in second
    assert "Allow-list already has 12345678" in second
    assert "Partner link for company-b already exists" in second
    # One delegation whose trust policy names people (issue 11), made once.
    assert "Named-people delegation of ecs-viewer to Company B already there." in second
    assert "Quorum: ecs-viewer already needs 2 approvals." in second
    assert "Break-glass: ecs-admin for Company B already marked." in second
    assert "Access review: one is already there" in second
    assert "Fleet grant of ecs-fleet-operator to Company B already there." in second
    assert "Runbooks already allowed for Company B (OOSServiceRole ready)." in second
    assert FleetGrant.objects.count() == 1
    named = Delegation.objects.get(catalog_role__role_name="ecs-viewer")
    assert named.trust_scope == TrustScope.NAMED_OWNER_APPROVED
    assert list(
        TrustedPerson.objects.filter(delegation=named).values_list("ram_user_name", "status")
    ) == [("Alice", TrustedPerson.Status.APPROVED)]
    assert AuditEvent.objects.count() == events
    assert CloudAccount.objects.count() == 3 and CatalogRole.objects.count() == 3
    assert PartnerLink.objects.count() == 1


def test_where_the_demo_turns_mfa_off_no_seeded_decision_claims_it(demo_settings) -> None:
    """`make run` turns the MFA requirement off and no demo admin has MFA: the delegation
    page and the audit log must not say the seeded offers and approvals were made with it."""
    demo_settings.PORTAL_REQUIRE_MFA = False
    seed()
    assert Delegation.objects.exists() and TrustedPerson.objects.exists()
    assert not Delegation.objects.filter(approved_with_mfa=True).exists()
    assert not TrustedPerson.objects.filter(decided_with_mfa=True).exists()
    claims = [
        e.action for e in AuditEvent.objects.all() if (e.metadata or {}).get("with_mfa") is True
    ]
    assert claims == []


def test_a_new_encryption_key_reconnects_with_the_demo_keys(demo_settings) -> None:
    seed()
    demo_settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    again = seed()
    assert "Reconnected company-a" in again and "Reconnected company-b" in again
    assert "Reconnected the second account staging (11223355)" in again
    for account in CloudAccount.objects.filter(organisation__slug="company-a", is_active=True):
        assert (
            cloud_account_credentials(cloud_account=account).access_key_id == account.access_key_id
        )


def test_without_the_credentials_file_the_cloud_part_is_skipped(
    demo_settings, tmp_path: Path
) -> None:
    demo_settings.CLOUDSIM_DATA_DIR = tmp_path / "no-cloudsim-here"
    output = seed()
    assert "demo-credentials.json does not exist" in output
    assert "Demo sign-ins" in output
    assert not CloudAccount.objects.exists()


def test_without_an_encryption_key_the_cloud_part_is_skipped(demo_settings) -> None:
    demo_settings.PORTAL_ENCRYPTION_KEYS = []
    output = seed()
    assert "PORTAL_ENCRYPTION_KEYS is not set" in output
    assert not CloudAccount.objects.exists()


def test_an_unreachable_cloud_is_a_note(demo_settings) -> None:
    demo_settings.ALIBABA_RAM_ENDPOINT = "127.0.0.1:9"
    demo_settings.ALIBABA_STS_ENDPOINT = "127.0.0.1:9"
    output = seed()
    assert "Note: Could not connect company-a" in output and "could not be reached" in output
    assert not CloudAccount.objects.exists()


def test_after_the_seed_alice_runs_echo_hello_across_the_demo_fleet_from_the_page(
    demo_settings, demo_sim: CloudSim, login, monkeypatch
) -> None:
    """What a newcomer does after `make run`: sign in as Alice (partner staff), Runbooks →
    New run, every account x region of the demo fleet, `echo hello`; OOS runs it in cloudsim
    on every running instance of company-a's two accounts."""
    seed()
    published = capture_publishes(monkeypatch)
    alice = User.objects.get(email="alice@company-b.example")
    client = login(alice)
    page = client.get(reverse("runbooks:new"))
    assert page.status_code == 200
    fleet = FleetGrant.objects.get()
    targets = [
        f"{member.pk}|{region}" for member in fleet.delegations.all() for region in fleet.regions
    ]
    for target in targets:
        assert target in page.content.decode()
    response = client.post(
        reverse("runbooks:new"),
        {
            "title": "hello fleet",
            "targets": targets,
            "command_type": "RunShellScript",
            "command_content": "echo hello",
            "working_dir": "",
            "timeout_seconds": "600",
            "target_type": "All",
            "instance_ids": "",
            "tags": "",
            "concurrency": "10",
            "max_errors": "0",
        },
    )
    run = RunbookRun.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ("runbooks.submit_run", str(run.pk)) in published
    # The worker's part, as its tasks do it, with company-b's connected key.
    client_oos = oos_client_for(run.partner_id)
    assert runbook_worker.run_submit(run_id=run.pk, client=client_oos) is not None
    deadline = time.monotonic() + 60
    while runbook_worker.run_follow(run_id=run.pk, client=client_oos).more:
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.1)
    run.refresh_from_db()
    assert run.status == RunbookRun.Status.SUCCEEDED, run.status_message
    results = RunbookInstanceResult.objects.filter(run=run)
    accounts = {r.target.account_uid for r in results}
    assert accounts == {"11223344", "11223355"}
    assert {r.output.strip() for r in results} == {"hello"}
