"""Connecting cloud accounts, against the real cloudsim through the official SDKs: the key is
checked (GetCallerIdentity, then a RAM read), stored encrypted, replaced, disconnected; every
refusal is a clear message with nothing written."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from audit.models import AuditEvent
from cloud.client import CloudClient, CloudCredentials
from core import crypto
from delegations.catalog.allow_list import partner_allowance_add
from delegations.connection import services
from delegations.connection.services import (
    cloud_account_connect,
    cloud_account_credentials,
    cloud_account_disconnect,
    cloud_account_replace_key,
    cloud_account_verify,
    partner_ram_users,
)
from delegations.models import CloudAccount, Delegation
from tests.delegations.cloud_fixtures import SimAccount
from tests.delegations.factories import CatalogRoleFactory, DelegationFactory

pytestmark = pytest.mark.django_db


def connect(account: SimAccount, key: tuple[str, str] | None = None, **overrides) -> CloudAccount:
    key_id, secret = key or (account.root_key_id, account.root_secret)
    arguments = {
        "organisation": account.organisation,
        "connected_by": account.admin,
        "account_uid": account.uid,
        "alias": account.alias,
        "region": "cn-hangzhou",
        "access_key_id": key_id,
        "access_key_secret": secret,
    }
    arguments.update(overrides)
    return cloud_account_connect(**arguments)


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def test_owner_connects_with_a_checked_key_stored_encrypted(sim_owner: SimAccount) -> None:
    since = sim_owner.seq()
    account = connect(sim_owner)

    assert account.is_active and account.account_uid == sim_owner.uid
    assert account.caller_arn == f"acs:ram::{sim_owner.uid}:root"
    assert account.verified_at is not None
    assert sim_owner.root_secret not in account.secret_ciphertext
    assert account.secret_fingerprint == crypto.secret_fingerprint(sim_owner.root_secret)
    assert (
        account.secret_fingerprint.startswith("sha256:") and len(account.secret_fingerprint) == 15
    )
    assert cloud_account_credentials(cloud_account=account).access_key_secret == (
        sim_owner.root_secret
    )
    # The check: who is this key, then a harmless read of the account's policies.
    actions = [call["action"] for call in sim_owner.calls_since(since)]
    assert actions == ["GetCallerIdentity", "ListPolicies"]
    assert not any(call["mutating"] for call in sim_owner.calls_since(since))

    (event,) = events("cloud_account.connected")
    assert event.after["access_key_id"] == sim_owner.root_key_id
    assert event.after["key_fingerprint"] == account.secret_fingerprint
    assert event.metadata["root_key"] is True
    assert sim_owner.root_secret not in str(event.__dict__)


def test_a_ram_user_key_with_ram_rights_connects(sim_owner: SimAccount) -> None:
    key = sim_owner.user_with_key("portal-broker")
    CloudClient(
        CloudCredentials(sim_owner.root_key_id, sim_owner.root_secret)
    ).attach_policy_to_user(
        user_name="portal-broker", policy_type="System", policy_name="AliyunRAMFullAccess"
    )
    account = connect(sim_owner, key)
    assert account.caller_arn == f"acs:ram::{sim_owner.uid}:user/portal-broker"
    assert events("cloud_account.connected")[0].metadata["root_key"] is False


@pytest.mark.parametrize(
    ("spoil", "field", "words"),
    [
        (lambda key, secret: ("LTAI5tNoSuchKey000000", secret), "access_key_id", "does not know"),
        (lambda key, secret: (key, secret[:-4] + "abcd"), "access_key_secret", "does not belong"),
    ],
    ids=["unknown-key", "wrong-secret"],
)
def test_a_wrong_key_is_refused_with_a_clear_message(
    sim_owner: SimAccount, spoil, field: str, words: str
) -> None:
    key = spoil(sim_owner.root_key_id, sim_owner.root_secret)
    with pytest.raises(ValidationError) as refused:
        connect(sim_owner, key)
    assert field in refused.value.message_dict
    message = " ".join(refused.value.message_dict[field])
    assert words in message
    assert (
        "InvalidAccessKeyId.NotFound" if field == "access_key_id" else "SignatureDoesNotMatch"
    ) in (message)
    assert not CloudAccount.objects.exists()
    assert not events("cloud_account.connected")
    (failed,) = events("cloud_account.check_failed")
    assert failed.outcome == "failure"
    assert key[1] not in str(failed.metadata) and key[0] not in str(failed.metadata)


def test_a_key_of_another_account_is_refused(sim_owner: SimAccount, sim_partner) -> None:
    with pytest.raises(ValidationError) as refused:
        connect(sim_owner, (sim_partner.root_key_id, sim_partner.root_secret))
    message = " ".join(refused.value.message_dict["access_key_id"])
    assert f"belongs to the account {sim_partner.uid}" in message
    assert not CloudAccount.objects.exists()


def test_a_key_without_ram_rights_is_refused_with_what_to_attach(sim_owner: SimAccount) -> None:
    key = sim_owner.user_with_key("no-rights")
    with pytest.raises(ValidationError) as refused:
        connect(sim_owner, key)
    message = " ".join(refused.value.messages)
    assert "NoPermission" in message and "AliyunRAMFullAccess" in message
    assert not CloudAccount.objects.exists()


def test_partner_key_check_lists_users_and_partner_ram_users_lists_them(
    sim_partner: SimAccount,
) -> None:
    for name in ("Alice", "bob", "AAA"):
        sim_partner.sim.create_user(sim_partner.uid, name, with_access_key=False)
    since = sim_partner.seq()
    account = connect(sim_partner)
    assert [c["action"] for c in sim_partner.calls_since(since)] == [
        "GetCallerIdentity",
        "ListUsers",
    ]
    users = partner_ram_users(cloud_account=account)
    assert [user.user_name for user in users] == ["AAA", "Alice", "bob"]

    no_rights = sim_partner.user_with_key("no-rights")
    with pytest.raises(ValidationError) as refused:
        cloud_account_replace_key(
            cloud_account=account,
            replaced_by=sim_partner.admin,
            access_key_id=no_rights[0],
            access_key_secret=no_rights[1],
        )
    assert "may not list the account's RAM users" in " ".join(refused.value.messages)


def test_partner_ram_users_is_for_partner_accounts_only(sim_owner: SimAccount) -> None:
    with pytest.raises(ValidationError):
        partner_ram_users(cloud_account=connect(sim_owner))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"account_uid": "\uff11\uff12\uff13"}, "account_uid"),
        ({"account_uid": "99999999"}, "account_uid"),
        ({"alias": "Not An Alias"}, "alias"),
        ({"region": "hangzhou"}, "region"),
        ({"access_key_id": "has space in it"}, "access_key_id"),
        ({"access_key_secret": "short"}, "access_key_secret"),
        ({"access_key_secret": "x" * 20 + "\n"}, "access_key_secret"),
    ],
)
def test_bad_input_is_refused_before_any_cloud_call(
    sim_owner: SimAccount, overrides: dict, field: str
) -> None:
    since = sim_owner.seq()
    with pytest.raises(ValidationError) as refused:
        connect(sim_owner, **overrides)
    assert field in refused.value.message_dict
    assert sim_owner.seq() == since, "no cloud call for input that is wrong on its face"
    assert (
        not CloudAccount.objects.exists()
        and not AuditEvent.objects.filter(action__startswith="cloud_account.").exists()
    )


def test_without_an_encryption_key_nothing_is_checked_or_stored(
    sim_owner: SimAccount, settings
) -> None:
    settings.PORTAL_ENCRYPTION_KEYS = []
    since = sim_owner.seq()
    with pytest.raises(ImproperlyConfigured, match="PORTAL_ENCRYPTION_KEYS"):
        connect(sim_owner)
    assert sim_owner.seq() == since
    assert not CloudAccount.objects.exists()


def test_connecting_twice_is_refused(sim_owner: SimAccount) -> None:
    connect(sim_owner)
    with pytest.raises(ValidationError, match="already connected"):
        connect(sim_owner)
    assert CloudAccount.objects.count() == 1


def allow(owner: SimAccount, uid: str, label: str = "") -> None:
    partner_allowance_add(
        owner=owner.organisation, added_by=owner.admin, partner_account_uid=uid, label=label
    )


def refused_as_own(owner: SimAccount, account: SimAccount) -> str:
    """Connect `account` as another of `owner`'s accounts, with its root key: the refusal's
    message on the account UID, nothing stored."""
    with pytest.raises(ValidationError) as refused:
        connect(
            owner,
            (account.root_key_id, account.root_secret),
            account_uid=account.uid,
            alias="",
            name="staging",
        )
    assert not CloudAccount.objects.filter(account_uid=account.uid).exists()
    return " ".join(refused.value.message_dict["account_uid"])


def test_an_account_on_the_allow_list_is_not_connected_as_the_owners_own(
    sim_owner: SimAccount, sim_partner: SimAccount
) -> None:
    """The owner would trust its own account as a partner: it takes the account off the
    allow-list first (and the allow-list refuses the owner's own accounts, the converse)."""
    connect(sim_owner)
    allow(sim_owner, sim_partner.uid, label="Company B")
    since = sim_owner.seq()
    message = refused_as_own(sim_owner, sim_partner)
    assert f"{sim_partner.uid} is on your allow-list as Company B's account" in message
    assert "remove it from the allow-list first" in message
    assert sim_owner.seq() == since, "refused before the key is checked"


def test_an_account_put_on_the_allow_list_while_its_key_is_checked_is_not_connected(
    sim_owner: SimAccount, sim_partner: SimAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(sim_owner)
    check = services.cloud_account_check_key

    def added_meanwhile(**arguments):
        checked = check(**arguments)
        allow(sim_owner, sim_partner.uid)
        return checked

    monkeypatch.setattr(services, "cloud_account_check_key", added_meanwhile)
    message = refused_as_own(sim_owner, sim_partner)
    assert f"{sim_partner.uid} is on your allow-list as a partner's account" in message


def test_replace_rotates_the_key_and_audits_ids_and_fingerprints_only(
    sim_owner: SimAccount,
) -> None:
    account = connect(sim_owner)
    old_fingerprint = account.secret_fingerprint
    new_id, new_secret = sim_owner.user_with_key("broker-2")
    CloudClient(
        CloudCredentials(sim_owner.root_key_id, sim_owner.root_secret)
    ).attach_policy_to_user(
        user_name="broker-2", policy_type="System", policy_name="AliyunRAMFullAccess"
    )
    replaced = cloud_account_replace_key(
        cloud_account=account,
        replaced_by=sim_owner.admin,
        access_key_id=new_id,
        access_key_secret=new_secret,
        region="cn-shanghai",
    )
    assert replaced.pk == account.pk
    assert replaced.access_key_id == new_id and replaced.region == "cn-shanghai"
    assert cloud_account_credentials(cloud_account=replaced).access_key_secret == new_secret
    (event,) = events("cloud_account.replaced")
    assert event.before["access_key_id"] == sim_owner.root_key_id
    assert event.before["key_fingerprint"] == old_fingerprint
    assert event.after["access_key_id"] == new_id
    assert event.after["key_fingerprint"] == crypto.secret_fingerprint(new_secret)
    dump = str([e.__dict__ for e in AuditEvent.objects.all()])
    assert new_secret not in dump and sim_owner.root_secret not in dump


def test_a_failed_replace_keeps_the_old_key(sim_owner: SimAccount) -> None:
    account = connect(sim_owner)
    with pytest.raises(ValidationError):
        cloud_account_replace_key(
            cloud_account=account,
            replaced_by=sim_owner.admin,
            access_key_id=sim_owner.root_key_id,
            access_key_secret="WrongSecretWrongSecretWrong123",
        )
    fresh = CloudAccount.objects.get(pk=account.pk)
    assert fresh.secret_ciphertext == account.secret_ciphertext
    assert not events("cloud_account.replaced")


def test_verify_checks_the_stored_key_again(sim_owner: SimAccount) -> None:
    account = connect(sim_owner)
    verified = cloud_account_verify(cloud_account=account, checked_by=sim_owner.admin)
    assert verified.verified_at >= account.verified_at
    assert len(events("cloud_account.verified")) == 1


def test_disconnect_forgets_the_secret_and_reconnect_keeps_the_catalogue(
    sim_owner: SimAccount,
) -> None:
    account = connect(sim_owner)
    role = CatalogRoleFactory(cloud_account=account, role_name="ops")
    gone = cloud_account_disconnect(cloud_account=account, disconnected_by=sim_owner.admin)
    assert gone.changed and not gone.is_active and gone.secret_ciphertext == ""
    (event,) = events("cloud_account.disconnected")
    assert event.before["access_key_id"] == sim_owner.root_key_id
    with pytest.raises(ValidationError):
        cloud_account_credentials(cloud_account=gone)
    again = cloud_account_disconnect(cloud_account=gone, disconnected_by=sim_owner.admin)
    assert not again.changed and len(events("cloud_account.disconnected")) == 1

    back = connect(sim_owner)
    assert back.pk == account.pk
    role.refresh_from_db()
    assert role.cloud_account_id == back.pk


def test_disconnect_is_refused_while_delegations_need_the_key(sim_owner: SimAccount) -> None:
    account = connect(sim_owner)
    role = CatalogRoleFactory(cloud_account=account, role_name="ops")
    DelegationFactory(catalog_role=role, status=Delegation.Status.ACTIVE)
    with pytest.raises(ValidationError, match="1 delegation on this account"):
        cloud_account_disconnect(cloud_account=account, disconnected_by=sim_owner.admin)
    assert CloudAccount.objects.get(pk=account.pk).is_active


def test_the_secret_never_reaches_a_log(sim_owner: SimAccount, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    account = connect(sim_owner)
    cloud_account_verify(cloud_account=account, checked_by=sim_owner.admin)
    with pytest.raises(ValidationError):
        cloud_account_replace_key(
            cloud_account=account,
            replaced_by=sim_owner.admin,
            access_key_id=sim_owner.root_key_id,
            access_key_secret="WrongSecretWrongSecretWrong123",
        )
    assert sim_owner.root_key_id in caplog.text  # the id is logged, so the log was captured
    assert sim_owner.root_secret not in caplog.text
    assert "WrongSecretWrongSecretWrong123" not in caplog.text
