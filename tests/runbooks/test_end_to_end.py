"""The product's OOS scenario end to end through the portal, against cloudsim with the official
OOS, ECS and RAM SDKs: two owner accounts x cn-shanghai and cn-beijing, `echo hello`,
Concurrency 10, MaxErrors 0 -> every running instance answers `hello`; one failing instance
fails the run; a cancel mid-run ends it Cancelled; a revoked grant fails the next item."""

from __future__ import annotations

import time
from typing import Any

import pytest
from alibabacloud_oos20190601 import models as oos_models
from alibabacloud_ram20150501 import models as ram_models
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import escape

from accounts.models import Membership, Organisation
from cloud.client import CloudClient
from cloud.values import CloudCredentials
from core.crypto import encrypt_secret
from delegations.models import CloudAccount, Delegation, StaffAssignment
from runbooks import services, worker
from runbooks.models import OosConsent, RunbookInstanceResult, RunbookRun
from runbooks.services import RunChoice
from runbooks.tasks import oos_client_for
from tests.cloudsim.oos_scenario import REGIONS, ROLE, Scenario, trust
from tests.delegations.factories import CatalogRoleFactory, CloudAccountFactory, DelegationFactory
from tests.factories import OrganisationFactory
from tests.personas import make_member

pytestmark = pytest.mark.django_db
S = RunbookRun.Status


class World:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        executing = scenario.executing
        self.partner = OrganisationFactory(
            kind=Organisation.Kind.PARTNER, account_uid=executing.uid, slug=f"p{executing.uid}"
        )
        self.partner_admin = make_member(self.partner, Membership.Role.ADMIN)
        self.staff = make_member(self.partner, Membership.Role.STAFF)
        self.partner_account = self._connect(self.partner, executing)
        self.grants: list[Delegation] = []
        for owner_account in scenario.owners:
            owner = OrganisationFactory(
                kind=Organisation.Kind.OWNER,
                account_uid=owner_account.uid,
                slug=f"o{owner_account.uid}",
            )
            account = self._connect(owner, owner_account)
            role = CatalogRoleFactory(cloud_account=account, organisation=owner, role_name=ROLE)
            grant = DelegationFactory(
                catalog_role=role, partner=self.partner, status=Delegation.Status.ACTIVE
            )
            StaffAssignment.objects.create(
                delegation=grant, partner=self.partner, user=self.staff, assigned_by=self.staff
            )
            self.grants.append(grant)

    @staticmethod
    def _connect(organisation: Organisation, account: Any) -> CloudAccount:
        return CloudAccountFactory(
            organisation=organisation,
            account_uid=account.uid,
            access_key_id=account.access_key_id,
            secret_ciphertext=encrypt_secret(account.access_key_secret),
        )

    def connect_ram_user(self) -> None:
        """The partner's key becomes a RAM user's (root keys may not assume roles), allowed
        to run OOS and to assume roles, as a partner connects it in production."""
        executing = self.scenario.executing
        name = "portal-broker"
        user = self.scenario.sim.create_user(executing.uid, name)
        ram = self.scenario.ram(executing)
        for policy in ("AliyunOOSFullAccess", "AliyunSTSAssumeRoleAccess"):
            ram.attach_policy_to_user(
                ram_models.AttachPolicyToUserRequest(
                    policy_type="System", policy_name=policy, user_name=name
                )
            )
        CloudAccount.objects.filter(pk=self.partner_account.pk).update(
            access_key_id=user["access_key_id"],
            secret_ciphertext=encrypt_secret(user["access_key_secret"]),
        )

    def consent(self) -> None:
        consent = services.oos_consent_give(partner=self.partner, given_by=self.partner_admin)
        ram = CloudClient(
            CloudCredentials(
                self.scenario.executing.access_key_id, self.scenario.executing.access_key_secret
            )
        )
        consent = worker.oos_service_role_ensure(consent_id=consent.pk, client=ram)
        assert consent is not None and consent.status == OosConsent.Status.READY

    def start(self, **overrides: Any) -> RunbookRun:
        values: dict[str, Any] = {
            "targets": [(grant, region) for grant in self.grants for region in REGIONS],
            "command_type": "RunShellScript",
            "command_content": "echo hello",
            "timeout_seconds": 600,
            "target_type": "All",
            "concurrency": 10,
            "max_errors": 0,
        }
        values.update(overrides)
        run = services.run_start(
            partner=self.partner, started_by=self.staff, choice=RunChoice(**values)
        )
        submitted = worker.run_submit(run_id=run.pk, client=oos_client_for(self.partner.pk))
        assert submitted is not None
        return submitted

    def follow(self, run: RunbookRun, timeout: float = 60.0) -> RunbookRun:
        client = oos_client_for(self.partner.pk)
        deadline = time.monotonic() + timeout
        while worker.run_follow(run_id=run.pk, client=client).more:
            assert time.monotonic() < deadline, "the run did not end"
            time.sleep(0.1)
        return RunbookRun.objects.get(pk=run.pk)


@pytest.fixture
def world(cloudsim, settings, published) -> World:
    for name in ("RAM", "STS", "OOS", "ECS"):
        setattr(settings, f"ALIBABA_{name}_ENDPOINT", cloudsim.endpoint)
    settings.ALIBABA_CLOUD_PROTOCOL = "http"
    settings.PORTAL_RUNBOOK_REGIONS = list(REGIONS)
    world = World(Scenario(cloudsim))
    world.consent()
    return world


def test_echo_hello_on_every_running_instance_of_two_accounts_in_two_regions(world):
    run = world.follow(world.start())
    assert run.status == S.SUCCEEDED, run.status_message
    results = RunbookInstanceResult.objects.filter(run=run)
    expected = {
        (owner.uid, region, instance)
        for owner in world.scenario.owners
        for region, instance in owner.running()
    }
    got = {(r.target.account_uid, r.target.region_id, r.instance_id) for r in results}
    assert got == expected
    assert {r.output.strip() for r in results} == {"hello"}
    assert {r.exit_code for r in results} == {0}
    assert set(run.targets.values_list("status", flat=True)) == {"Success"}


def test_one_failing_instance_with_max_errors_0_fails_the_run(world):
    owner = world.scenario.owners[0]
    _region, instance = owner.running()[0]
    world.scenario.fail_commands(instance)
    run = world.follow(world.start(concurrency=1))
    assert run.status == S.FAILED
    failed = RunbookInstanceResult.objects.get(run=run, instance_id=instance)
    assert failed.status == "Failed"


def test_cancel_mid_run(world):
    run = world.start(command_content="sleep 2000")
    time.sleep(0.5)
    run = services.run_cancel(run=run, cancelled_by=world.staff)
    assert run.status == S.CANCELLING
    assert worker.run_cancel_in_cloud(run_id=run.pk, client=oos_client_for(world.partner.pk))
    run = world.follow(run)
    assert run.status == S.CANCELLED


def test_a_revoked_grant_fails_the_next_item_and_runs_nothing_more_there(world):
    revoked = world.scenario.owners[1]
    # The owner takes the partner out of the role's trust policy while the run waits its turn.
    world.scenario.set_trust(revoked, trust({"RAM": ["acs:ram::1:root"]}))
    run = world.follow(world.start(concurrency=1, max_errors=0))
    assert run.status == S.FAILED
    assert not RunbookInstanceResult.objects.filter(
        run=run, target__account_uid=revoked.uid, status="Success"
    ).exists()


def test_a_stopped_or_unknown_instance_id_is_a_form_error_and_nothing_starts(world, published):
    world.connect_ram_user()
    owner = world.scenario.owners[0]
    stopped = next(i for i, status in owner.instances["cn-shanghai"] if status == "Stopped")
    region, running = owner.running()[0]
    unknown = "i-notinanyaccount0"
    with pytest.raises(ValidationError) as refused:
        world.start(target_type="ResourceIds", instance_ids=[running, stopped, unknown])
    messages = " ".join(refused.value.message_dict["instance_ids"])
    assert f"{stopped} (Stopped)" in messages
    assert unknown in messages
    assert running not in messages
    # Nothing was started: no run, nothing handed to the worker, no execution in OOS.
    assert not RunbookRun.objects.exists()
    assert not [name for name, _ in published if name == "runbooks.submit_run"]
    assert world.scenario.oos.list_executions(
        oos_models.ListExecutionsRequest(region_id="cn-hangzhou")
    ).body.executions in (None, [])

    # The running instance alone starts, and only it runs the command.
    run = world.follow(world.start(target_type="ResourceIds", instance_ids=[running]))
    assert run.status == S.SUCCEEDED, run.status_message
    results = RunbookInstanceResult.objects.filter(run=run)
    assert {(r.target.region_id, r.instance_id, r.output.strip()) for r in results} == {
        (region, running, "hello")
    }


def test_over_two_owners_each_owner_sees_only_its_own_instance_and_not_the_loops_message(
    world, login
):
    """The run page showed every owner the partner's whole list of instance ids and OOS's
    parent message, which quotes the first failed loop item (here the other owner's)."""
    world.connect_ram_user()  # the instance check assumes the owner roles with this key
    mine, theirs = world.scenario.owners
    (_region, my_instance), (_other, their_instance) = mine.running()[0], theirs.running()[0]
    world.scenario.fail_commands(their_instance)
    run = world.follow(
        world.start(
            target_type="ResourceIds", instance_ids=[their_instance, my_instance], concurrency=1
        )
    )
    assert run.status == S.FAILED
    assert their_instance in run.status_message  # cloudsim's loop quotes its first failure
    my_admin = make_member(world.grants[0].owner, Membership.Role.ADMIN)
    client = login(my_admin)
    for name in ("runbooks:detail", "runbooks:live"):
        page = client.get(reverse(name, args=[run.pk])).content.decode()
        assert their_instance not in page and theirs.uid not in page, name
    assert my_instance in client.get(reverse("runbooks:detail", args=[run.pk])).content.decode()
    partner = login(world.staff)
    detail = partner.get(reverse("runbooks:detail", args=[run.pk])).content.decode()
    assert their_instance in detail and my_instance in detail
    live = partner.get(reverse("runbooks:live", args=[run.pk])).content.decode()
    assert escape(run.status_message) in live
