"""TOTP keys and recovery-code seeds are encrypted at rest with PORTAL_ENCRYPTION_KEYS: the
row never shows them, sign-in still works, keys rotate like the cloud secrets, and rows
written in plaintext before this are sealed by migration accounts.0003 exactly once."""

from __future__ import annotations

import importlib
import json
from io import StringIO

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import generate_totp_secret
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import Client

from accounts import mfa_secrets
from accounts.models import Organisation, User
from core.crypto import SecretDecryptionError
from tests.accounts.helpers import all_event_text, events
from tests.accounts.test_mfa import current_code
from tests.personas import enable_totp, make_member

pytestmark = pytest.mark.django_db

PASSWORD = "Quiet-harbour-lantern-42"
migration = importlib.import_module("accounts.migrations.0003_encrypt_mfa_secrets")


def new_key() -> str:
    return Fernet.generate_key().decode()


def stored_data(authenticator_id: int) -> str:
    """The `data` column exactly as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT data FROM mfa_authenticator WHERE id = %s", [authenticator_id])
        (raw,) = cursor.fetchone()
    return raw if isinstance(raw, str) else json.dumps(raw)


def sign_in_with_totp(user: User, secret: str) -> Client:
    client = Client()
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    response = client.post("/accounts/2fa/authenticate/", {"code": current_code(secret)})
    assert response.status_code == 302, response.content.decode()[:500]
    assert client.get("/").status_code == 200
    return client


@pytest.fixture
def admin(company_a: Organisation) -> User:
    return make_member(company_a, "admin", email="sealed.admin@example.com", mfa=False)


def test_the_row_holds_ciphertext_and_totp_sign_in_works(admin: User) -> None:
    secret = enable_totp(admin)
    authenticator = Authenticator.objects.get(user=admin, type="totp")
    raw = stored_data(authenticator.pk)
    assert secret not in raw
    assert authenticator.data["secret"].startswith(mfa_secrets.SEALED_PREFIX)
    sign_in_with_totp(admin, secret)
    assert len(events("auth.sign_in_succeeded")) == 1


def test_enrolment_through_the_page_stores_ciphertext(login, admin: User) -> None:
    client = login(admin)
    secret = client.get("/accounts/2fa/totp/activate/").context["form"].secret
    response = client.post("/accounts/2fa/totp/activate/", {"code": current_code(secret)})
    assert response.status_code == 302
    totp = Authenticator.objects.get(user=admin, type="totp")
    assert secret not in stored_data(totp.pk)
    # allauth creates recovery codes with the first authenticator: their seed is sealed too.
    codes = Authenticator.objects.get(user=admin, type="recovery_codes")
    seed = mfa_secrets.unseal(codes.data["seed"])
    assert seed not in stored_data(codes.pk)
    assert codes.data["seed"].startswith(mfa_secrets.SEALED_PREFIX)


def test_recovery_codes_from_a_sealed_seed_sign_in(admin: User) -> None:
    enable_totp(admin)
    codes = RecoveryCodes.activate(admin).generate_codes()
    client = Client()
    client.post("/accounts/login/", {"login": admin.email, "password": PASSWORD})
    response = client.post("/accounts/2fa/authenticate/", {"code": codes[0]})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_a_new_key_first_and_the_old_one_second_still_signs_in(admin: User, settings) -> None:
    old = new_key()
    settings.PORTAL_ENCRYPTION_KEYS = [old]
    secret = enable_totp(admin)
    settings.PORTAL_ENCRYPTION_KEYS = [new_key(), old]
    sign_in_with_totp(admin, secret)


def test_rotate_secrets_moves_totp_keys_to_the_new_key(admin: User, settings) -> None:
    old, new = new_key(), new_key()
    settings.PORTAL_ENCRYPTION_KEYS = [old]
    secret = enable_totp(admin)
    before = Authenticator.objects.get(user=admin, type="totp").data["secret"]
    settings.PORTAL_ENCRYPTION_KEYS = [new, old]
    out = StringIO()
    call_command("rotate_secrets", stdout=out)
    assert "Re-encrypted 1 two-factor secret with the first key." in out.getvalue()
    after = Authenticator.objects.get(user=admin, type="totp").data["secret"]
    assert after != before and after.startswith(mfa_secrets.SEALED_PREFIX)
    [event] = events("mfa.secret_reencrypted")
    assert event.target_label == admin.email
    assert secret not in all_event_text() and after not in all_event_text()
    settings.PORTAL_ENCRYPTION_KEYS = [new]  # the old key can now be dropped
    sign_in_with_totp(admin, secret)


def test_without_the_encrypting_key_decryption_fails_closed(admin: User, settings) -> None:
    enable_totp(admin)
    settings.PORTAL_ENCRYPTION_KEYS = [new_key()]
    stored = Authenticator.objects.get(user=admin, type="totp").data["secret"]
    with pytest.raises(SecretDecryptionError):
        mfa_secrets.unseal(stored)


def test_enrolment_without_any_key_fails_closed(admin: User, settings) -> None:
    settings.PORTAL_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured):
        enable_totp(admin)
    assert not Authenticator.objects.filter(user=admin).exists()


def test_sealing_is_idempotent_and_never_double_encrypts() -> None:
    secret = generate_totp_secret()
    sealed = mfa_secrets.seal(secret)
    assert mfa_secrets.seal(sealed) == sealed
    assert mfa_secrets.unseal(sealed) == secret
    # A plaintext value from before encryption reads as it is.
    assert mfa_secrets.unseal(secret) == secret


def _plaintext_rows(user: User) -> tuple[str, str, list[str]]:
    """Rows as allauth wrote them before the adapter encrypted anything."""
    secret = generate_totp_secret()
    seed = RecoveryCodes.generate_seed()
    Authenticator.objects.create(user=user, type="totp", data={"secret": secret})
    Authenticator.objects.create(
        user=user,
        type="recovery_codes",
        data={"seed": seed, "used_mask": 0, "migrated_codes": ["12345678", "87654321"]},
    )
    return secret, seed, ["12345678", "87654321"]


def test_plaintext_rows_still_sign_in_before_the_migration(admin: User) -> None:
    secret, _, _ = _plaintext_rows(admin)
    sign_in_with_totp(admin, secret)


def test_the_migration_seals_plaintext_rows_once_and_reverses(admin: User) -> None:
    secret, seed, migrated = _plaintext_rows(admin)
    totp = Authenticator.objects.get(user=admin, type="totp")
    codes = Authenticator.objects.get(user=admin, type="recovery_codes")
    plaintext_codes = RecoveryCodes(codes).generate_codes()

    migration.encrypt_plaintext_secrets(apps, None)
    totp.refresh_from_db()
    codes.refresh_from_db()
    assert secret not in stored_data(totp.pk)
    raw_codes = stored_data(codes.pk)
    assert seed not in raw_codes and not any(code in raw_codes for code in migrated)
    assert codes.data["used_mask"] == 0
    assert RecoveryCodes(codes).generate_codes() == plaintext_codes

    sealed = (totp.data, codes.data)
    migration.encrypt_plaintext_secrets(apps, None)  # a second run changes nothing
    totp.refresh_from_db()
    codes.refresh_from_db()
    assert (totp.data, codes.data) == sealed
    sign_in_with_totp(admin, secret)

    migration.decrypt_secrets(apps, None)
    totp.refresh_from_db()
    codes.refresh_from_db()
    assert totp.data == {"secret": secret}
    assert codes.data["seed"] == seed and codes.data["migrated_codes"] == migrated


def test_the_migration_needs_a_key_only_when_there_is_plaintext(admin: User, settings) -> None:
    settings.PORTAL_ENCRYPTION_KEYS = []
    migration.encrypt_plaintext_secrets(apps, None)  # nothing stored: nothing to do
    _plaintext_rows(admin)
    with pytest.raises(ImproperlyConfigured):
        migration.encrypt_plaintext_secrets(apps, None)
