"""SDK clients and fresh accounts for the cloudsim tests.

Every test that changes state works in accounts of its own (``partner_pair``, ``new_account``)
so tests stay independent although they share one emulator process.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_sts20150401 import models as sts_models
from alibabacloud_sts20150401.client import Client as StsClient
from Tea.exceptions import TeaException

from tests.fixtures.cloudsim import CloudSim


def trust_policy(
    *principals: str, service: str | None = None, condition: dict | None = None
) -> str:
    principal: dict = {}
    if principals:
        principal["RAM"] = list(principals)
    if service:
        principal["Service"] = [service]
    statement: dict = {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": principal}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Statement": [statement], "Version": "1"})


def permission_policy(
    actions: list[str] | str,
    resources: list[str] | str = "*",
    effect: str = "Allow",
    condition: dict | None = None,
) -> str:
    statement: dict = {"Effect": effect, "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "1", "Statement": [statement]})


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def error_of(call: Callable, *args, **kwargs) -> TeaException:
    """Run an SDK call that must fail; return the SDK's exception."""
    with pytest.raises(TeaException) as caught:
        call(*args, **kwargs)
    return caught.value


@dataclass
class Account:
    uid: str
    alias: str
    access_key_id: str
    access_key_secret: str

    @property
    def root_arn(self) -> str:
        return f"acs:ram::{self.uid}:root"


@dataclass
class Keys:
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None


class Sdk:
    """Official SDK clients pointed at the session's cloudsim."""

    def __init__(self, sim: CloudSim) -> None:
        self.sim = sim

    def config(self, keys: Keys | Account, **options):
        return self.sim.sdk_config(
            keys.access_key_id,
            keys.access_key_secret,
            getattr(keys, "security_token", None),
            **options,
        )

    def ram(self, keys: Keys | Account, **options) -> RamClient:
        return RamClient(self.config(keys, **options))

    def sts(self, keys: Keys | Account, **options) -> StsClient:
        return StsClient(self.config(keys, **options))

    # --- frequent steps -----------------------------------------------------------------
    def create_role(self, owner: Account | Keys, name: str, trust: str, **fields):
        return self.ram(owner).create_role(
            ram_models.CreateRoleRequest(
                role_name=name, assume_role_policy_document=trust, **fields
            )
        )

    def attach_to_role(self, owner, role: str, policy: str, policy_type: str = "System"):
        return self.ram(owner).attach_policy_to_role(
            ram_models.AttachPolicyToRoleRequest(
                policy_type=policy_type, policy_name=policy, role_name=role
            )
        )

    def attach_to_user(self, owner, user: str, policy: str, policy_type: str = "System"):
        return self.ram(owner).attach_policy_to_user(
            ram_models.AttachPolicyToUserRequest(
                policy_type=policy_type, policy_name=policy, user_name=user
            )
        )

    def assume(
        self, caller: Keys | Account, role_arn: str, session: str = "test-session", **fields
    ) -> Keys:
        response = self.sts(caller).assume_role(
            sts_models.AssumeRoleRequest(role_arn=role_arn, role_session_name=session, **fields)
        )
        credentials = response.body.credentials
        return Keys(
            credentials.access_key_id, credentials.access_key_secret, credentials.security_token
        )

    def caller(self, keys: Keys | Account):
        return self.sts(keys).get_caller_identity().body


@pytest.fixture(scope="session")
def sdk(cloudsim: CloudSim) -> Sdk:
    return Sdk(cloudsim)


@pytest.fixture
def new_account(cloudsim: CloudSim) -> Callable[..., Account]:
    def create(alias_prefix: str = "acct") -> Account:
        created = cloudsim.create_account(alias=None)
        return Account(
            created["uid"],
            created["alias"],
            created["root"]["access_key_id"],
            created["root"]["access_key_secret"],
        )

    return create


@pytest.fixture
def new_user(cloudsim: CloudSim) -> Callable[..., Keys]:
    def create(account: Account, name: str, password: str | None = None) -> Keys:
        user = cloudsim.create_user(account.uid, name, password)
        return Keys(user["access_key_id"], user["access_key_secret"])

    return create


@dataclass
class PartnerPair:
    """An owner account A and a partner account B with RAM users Alice and Bob."""

    owner: Account
    partner: Account
    alice: Keys
    bob: Keys


@pytest.fixture
def partner_pair(new_account, new_user) -> PartnerPair:
    owner = new_account()
    partner = new_account()
    return PartnerPair(owner, partner, new_user(partner, "Alice"), new_user(partner, "Bob"))
