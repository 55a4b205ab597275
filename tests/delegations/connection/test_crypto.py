"""Encryption at rest: MultiFernet over PORTAL_ENCRYPTION_KEYS, failing closed, rotation with
`manage.py rotate_secrets`, and no plaintext secret anywhere in the database."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import AuditEvent
from core import crypto
from delegations.connection.services import (
    cloud_account_connect,
    cloud_account_credentials,
)
from delegations.models import CloudAccount
from tests.delegations.cloud_fixtures import SimAccount
from tests.delegations.factories import CloudAccountFactory

CANARY = "CanarySecretValue0123456789xyz"


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_round_trip_and_the_ciphertext_does_not_show_the_secret(settings) -> None:
    settings.PORTAL_ENCRYPTION_KEYS = [new_key()]
    token = crypto.encrypt_secret(CANARY)
    assert CANARY not in token and token != crypto.encrypt_secret(CANARY)
    assert crypto.decrypt_secret(token) == CANARY


@pytest.mark.parametrize("keys", [[], [""], "  "])
def test_without_a_key_storing_and_reading_fail_closed(settings, keys) -> None:
    settings.PORTAL_ENCRYPTION_KEYS = [new_key()]
    token = crypto.encrypt_secret(CANARY)
    settings.PORTAL_ENCRYPTION_KEYS = keys
    with pytest.raises(ImproperlyConfigured, match="PORTAL_ENCRYPTION_KEYS is not set"):
        crypto.encrypt_secret(CANARY)
    with pytest.raises(ImproperlyConfigured, match="PORTAL_ENCRYPTION_KEYS is not set"):
        crypto.decrypt_secret(token)


def test_a_malformed_key_is_named_by_position_not_by_value(settings) -> None:
    settings.PORTAL_ENCRYPTION_KEYS = [new_key(), "not-a-fernet-key-but-long-enough"]
    with pytest.raises(ImproperlyConfigured) as refused:
        crypto.encrypt_secret(CANARY)
    assert "key number 2" in str(refused.value)
    assert "not-a-fernet-key" not in str(refused.value)


def test_a_wrong_key_is_a_clear_error_and_never_plaintext(settings) -> None:
    settings.PORTAL_ENCRYPTION_KEYS = [new_key()]
    token = crypto.encrypt_secret(CANARY)
    settings.PORTAL_ENCRYPTION_KEYS = [new_key()]
    with pytest.raises(crypto.SecretDecryptionError) as refused:
        crypto.decrypt_secret(token)
    message = str(refused.value)
    assert "cannot be decrypted" in message
    assert CANARY not in message and token not in message
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    settings.PORTAL_ENCRYPTION_KEYS = [new_key(), *settings.PORTAL_ENCRYPTION_KEYS]
    with pytest.raises(crypto.SecretDecryptionError):
        crypto.decrypt_secret(tampered)


def test_keys_from_a_comma_separated_setting(settings) -> None:
    first, second = new_key(), new_key()
    settings.PORTAL_ENCRYPTION_KEYS = [second]
    token = crypto.encrypt_secret(CANARY)
    settings.PORTAL_ENCRYPTION_KEYS = f"{first}, {second}"
    assert crypto.decrypt_secret(token) == CANARY


def test_fingerprint_is_short_and_stable() -> None:
    assert crypto.secret_fingerprint(CANARY) == crypto.secret_fingerprint(CANARY)
    assert crypto.secret_fingerprint(CANARY) != crypto.secret_fingerprint(CANARY + "x")
    assert len(crypto.secret_fingerprint(CANARY)) == len("sha256:") + 8


@pytest.mark.django_db
def test_rotate_secrets_moves_every_secret_to_the_new_key(settings) -> None:
    old, new = new_key(), new_key()
    settings.PORTAL_ENCRYPTION_KEYS = [old]
    accounts = [
        CloudAccountFactory(
            secret_ciphertext=crypto.encrypt_secret(f"{CANARY}{n}"),
            secret_fingerprint=crypto.secret_fingerprint(f"{CANARY}{n}"),
        )
        for n in range(3)
    ]
    disconnected = CloudAccountFactory(secret_ciphertext="", is_active=False)
    before = {a.pk: a.secret_ciphertext for a in accounts}

    # Only the new key: the old ciphertexts are unreadable (so the test proves a real move).
    settings.PORTAL_ENCRYPTION_KEYS = [new]
    with pytest.raises(crypto.SecretDecryptionError):
        cloud_account_credentials(cloud_account=accounts[0])

    settings.PORTAL_ENCRYPTION_KEYS = [new, old]
    out = StringIO()
    call_command("rotate_secrets", stdout=out)
    assert "Re-encrypted 3 stored secrets" in out.getvalue()

    settings.PORTAL_ENCRYPTION_KEYS = [new]
    for n, account in enumerate(accounts):
        fresh = CloudAccount.objects.get(pk=account.pk)
        assert fresh.secret_ciphertext != before[account.pk]
        assert cloud_account_credentials(cloud_account=fresh).access_key_secret == f"{CANARY}{n}"
    settings.PORTAL_ENCRYPTION_KEYS = [old]
    with pytest.raises(crypto.SecretDecryptionError):
        cloud_account_credentials(cloud_account=CloudAccount.objects.get(pk=accounts[0].pk))
    assert CloudAccount.objects.get(pk=disconnected.pk).secret_ciphertext == ""

    events = AuditEvent.objects.filter(action="cloud_account.secret_reencrypted")
    assert events.count() == 3
    assert CANARY not in str([e.__dict__ for e in events])


@pytest.mark.django_db
def test_rotate_secrets_reports_what_it_cannot_read_and_rotates_the_rest(settings) -> None:
    lost, kept = new_key(), new_key()
    settings.PORTAL_ENCRYPTION_KEYS = [lost]
    orphan = CloudAccountFactory(secret_ciphertext=crypto.encrypt_secret(CANARY))
    settings.PORTAL_ENCRYPTION_KEYS = [kept]
    readable = CloudAccountFactory(secret_ciphertext=crypto.encrypt_secret(CANARY + "2"))
    out = StringIO()
    with pytest.raises(CommandError, match="1 secret"):
        call_command("rotate_secrets", stdout=out)
    assert "Re-encrypted 1 stored secret " in out.getvalue()
    assert CloudAccount.objects.get(pk=orphan.pk).secret_ciphertext == orphan.secret_ciphertext
    assert CloudAccount.objects.get(pk=readable.pk).secret_ciphertext != readable.secret_ciphertext


@pytest.mark.django_db
def test_rotate_secrets_without_a_key_fails_closed(settings) -> None:
    settings.PORTAL_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured):
        call_command("rotate_secrets", stdout=StringIO())


def database_text() -> str:
    """Every row of every table, as text: what a database dump would show."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


@pytest.mark.django_db
def test_the_database_never_holds_the_plaintext_secret(sim_owner: SimAccount, settings) -> None:
    account = cloud_account_connect(
        organisation=sim_owner.organisation,
        connected_by=sim_owner.admin,
        account_uid=sim_owner.uid,
        alias=sim_owner.alias,
        region="cn-hangzhou",
        access_key_id=sim_owner.root_key_id,
        access_key_secret=sim_owner.root_secret,
    )
    settings.PORTAL_ENCRYPTION_KEYS = [new_key(), *settings.PORTAL_ENCRYPTION_KEYS]
    call_command("rotate_secrets", stdout=StringIO())
    dump = database_text()
    assert sim_owner.root_key_id in dump, "the dump covers the cloud account table"
    assert account.secret_fingerprint in dump
    assert sim_owner.root_secret not in dump
    if connection.vendor == "sqlite":
        assert sim_owner.root_secret not in "\n".join(connection.connection.iterdump())
