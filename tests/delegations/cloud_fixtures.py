"""Fixtures for connecting cloud accounts and building catalogues against the real cloudsim.

`sim` points the portal's adapter at the session's cloudsim process (faults cleared, the
policy cache emptied); `encryption_key` configures one fresh Fernet key; `sim_owner` and
`sim_partner` are organisations whose account is a fresh cloudsim account of their own, so
tests never see each other's policies, roles or users.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.cache import cache

from accounts.models import Membership, Organisation, User
from tests.fixtures.cloudsim import CloudSim

CANARY_PREFIX = "CanarySecret"


def random_uid() -> str:
    return str(10**15 + secrets.randbelow(9 * 10**15))


@dataclass
class SimAccount:
    """A fresh cloudsim account and the portal organisation registered with it."""

    sim: CloudSim
    uid: str
    alias: str
    root_key_id: str
    root_secret: str
    organisation: Organisation
    admin: User

    def user_with_key(self, name: str) -> tuple[str, str]:
        user = self.sim.create_user(self.uid, name)
        return user["access_key_id"], user["access_key_secret"]

    def seq(self) -> int:
        return self.sim.last_call_seq()

    def calls_since(self, seq: int) -> list[dict[str, Any]]:
        return self.sim.calls(seq)


@pytest.fixture
def encryption_key(settings: Any) -> str:
    key = Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEYS = [key]
    return key


@pytest.fixture
def sim(cloudsim: CloudSim, settings: Any) -> Iterator[CloudSim]:
    settings.ALIBABA_RAM_ENDPOINT = cloudsim.endpoint
    settings.ALIBABA_STS_ENDPOINT = cloudsim.endpoint
    settings.ALIBABA_CLOUD_PROTOCOL = "http"
    cache.clear()
    cloudsim.clear_faults()
    yield cloudsim
    cloudsim.clear_faults()
    cache.clear()


def make_sim_account(sim: CloudSim, kind: str) -> SimAccount:
    from tests.factories import OrganisationFactory
    from tests.personas import make_member

    uid = random_uid()
    alias = f"{kind}-{uid}"
    created = sim.create_account(uid=uid, alias=alias)
    organisation = OrganisationFactory(
        name=f"{kind.title()} {uid}",
        slug=f"{kind}-{uid}",
        kind=kind,
        account_uid=uid,
        enterprise_alias=alias,
    )
    admin = make_member(organisation, Membership.Role.ADMIN)
    return SimAccount(
        sim=sim,
        uid=uid,
        alias=alias,
        root_key_id=created["root"]["access_key_id"],
        root_secret=created["root"]["access_key_secret"],
        organisation=organisation,
        admin=admin,
    )


@pytest.fixture
def sim_owner(sim: CloudSim, db: None, encryption_key: str) -> SimAccount:
    return make_sim_account(sim, Organisation.Kind.OWNER)


@pytest.fixture
def sim_partner(sim: CloudSim, db: None, encryption_key: str) -> SimAccount:
    return make_sim_account(sim, Organisation.Kind.PARTNER)
