"""Runbook fixtures: company-a's account and role granted to company-b (active), company-b's
connected account with OOS allowed, and a recording OOS double."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Organisation, User
from core.crypto import encrypt_secret
from delegations.models import CloudAccount, Delegation, StaffAssignment
from runbooks import dispatch, services
from runbooks.models import OosConsent, RunbookRun
from runbooks.services import RunChoice

# Cloud-account fixtures against the real cloudsim (sim, sim_owner, sim_partner).
from tests.delegations.cloud_fixtures import encryption_key, sim, sim_owner, sim_partner  # noqa: F401
from tests.delegations.factories import CatalogRoleFactory, CloudAccountFactory, DelegationFactory
from tests.runbooks.fakes import FakeOos


def capture_publishes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Tasks the services hand to the broker (name, id), kept instead of published; what the
    services hand over on commit happens at once (tests run inside one transaction)."""
    sent: list[tuple[str, str]] = []

    def send(name: str, object_id: object, *, countdown: float | None = None) -> None:
        sent.append((name, str(object_id)))

    monkeypatch.setattr(dispatch, "send", send)
    monkeypatch.setattr(
        "django.db.transaction.on_commit", lambda func, using=None, robust=False: func()
    )
    return sent


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    return capture_publishes(monkeypatch)


@pytest.fixture
def oos() -> FakeOos:
    return FakeOos()


def owner_account_of(organisation: Organisation) -> CloudAccount:
    return CloudAccountFactory(
        organisation=organisation, secret_ciphertext=encrypt_secret("not-a-real-secret")
    )


@pytest.fixture
def partner_account(company_b: Organisation) -> CloudAccount:
    return owner_account_of(company_b)


@pytest.fixture
def owner_account(company_a: Organisation) -> CloudAccount:
    return owner_account_of(company_a)


@pytest.fixture
def consent(company_b: Organisation, partner_admin: User, partner_account: CloudAccount):
    return OosConsent.objects.create(
        partner=company_b,
        account_uid=company_b.account_uid,
        given_by=partner_admin,
        status=OosConsent.Status.READY,
        ready_at=timezone.now(),
    )


def active_grant(owner_account: CloudAccount, partner: Organisation, **extra: Any) -> Delegation:
    role = CatalogRoleFactory(cloud_account=owner_account, organisation=owner_account.organisation)
    return DelegationFactory(
        catalog_role=role, partner=partner, status=Delegation.Status.ACTIVE, **extra
    )


@pytest.fixture
def grant(owner_account: CloudAccount, company_b: Organisation, partner_staff: User) -> Delegation:
    delegation = active_grant(owner_account, company_b)
    StaffAssignment.objects.create(
        delegation=delegation, partner=company_b, user=partner_staff, assigned_by=partner_staff
    )
    return delegation


@pytest.fixture
def choice(grant: Delegation) -> Callable[..., RunChoice]:
    def make(**overrides: Any) -> RunChoice:
        values: dict[str, Any] = {
            "targets": [(grant, "cn-shanghai"), (grant, "cn-beijing")],
            "command_type": "RunShellScript",
            "command_content": "echo hello",
            "timeout_seconds": 600,
            "target_type": "All",
            "concurrency": 10,
            "max_errors": 0,
            "title": "say hello",
        }
        values.update(overrides)
        return RunChoice(**values)

    return make


# Instance ids of a run over two owners: each runs in its own owner's account only.
A_INSTANCE = "i-a1111111111111111"
C_INSTANCE = "i-c3333333333333333"


@pytest.fixture
def two_owner_run(
    company_b: Organisation,
    company_c: Organisation,
    partner_staff: User,
    consent: OosConsent,
    choice: Callable[..., RunChoice],
    grant: Delegation,
    published: list[tuple[str, str]],
) -> RunbookRun:
    """A partner's run by instance ids over company-a's account (cn-shanghai and cn-beijing)
    and company-c's (cn-shanghai); A_INSTANCE runs in company-a's cn-shanghai, C_INSTANCE in
    company-c's."""
    other = active_grant(owner_account_of(company_c), company_b)
    StaffAssignment.objects.create(
        delegation=other, partner=company_b, user=partner_staff, assigned_by=partner_staff
    )
    running = {(grant.pk, "cn-shanghai"): A_INSTANCE, (other.pk, "cn-shanghai"): C_INSTANCE}

    def lookup(
        *, delegation: Delegation, region_id: str, instance_ids: Sequence[str]
    ) -> dict[str, str]:
        here = running.get((delegation.pk, region_id))
        return {here: "Running"} if here in instance_ids else {}

    return services.run_start(
        partner=company_b,
        started_by=partner_staff,
        choice=choice(
            targets=[(grant, "cn-shanghai"), (grant, "cn-beijing"), (other, "cn-shanghai")],
            target_type="ResourceIds",
            instance_ids=[C_INSTANCE, A_INSTANCE],
        ),
        instance_lookup=lookup,
    )
