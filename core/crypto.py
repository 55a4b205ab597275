"""Encryption at rest for the secrets the portal stores: cloud AccessKey secrets
(`delegations`) and the TOTP keys and recovery-code seeds of allauth's MFA (`accounts`).

`cryptography`'s MultiFernet over `settings.PORTAL_ENCRYPTION_KEYS` (newest first): new
ciphertexts use the first key, any listed key decrypts, and `rotate_secrets` re-encrypts old
ciphertexts with the first key. The keys come from the environment and never touch the database.

Fails closed: with no key configured, storing or reading a secret raises
`ImproperlyConfigured`; a ciphertext none of the keys opens raises `SecretDecryptionError`.
Neither error ever carries the plaintext, the ciphertext or a key.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FINGERPRINT_HEX_LENGTH = 8
FINGERPRINT_PREFIX = "sha256:"


class SecretDecryptionError(Exception):
    """A stored secret none of the configured keys can open (wrong key, or altered data)."""


def _configured_keys() -> tuple[str, ...]:
    raw = getattr(settings, "PORTAL_ENCRYPTION_KEYS", None) or ()
    if isinstance(raw, str):
        raw = raw.split(",")
    return tuple(key.strip() for key in raw if isinstance(key, str) and key.strip())


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode("ascii")))
        except (ValueError, UnicodeEncodeError) as exc:
            # The position, never the key: this message may end up in a log.
            raise ImproperlyConfigured(
                f"PORTAL_ENCRYPTION_KEYS: key number {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes, as Fernet.generate_key() makes)."
            ) from exc
    return MultiFernet(fernets)


def encryption() -> MultiFernet:
    """The MultiFernet for the configured keys; ImproperlyConfigured when there are none."""
    keys = _configured_keys()
    if not keys:
        raise ImproperlyConfigured(
            "PORTAL_ENCRYPTION_KEYS is not set: the portal cannot store or read cloud AccessKey "
            "secrets or two-factor (TOTP) keys without an encryption key. Set it to one or "
            "more comma-separated Fernet keys, newest first (`make run` creates one in the data "
            "directory)."
        )
    return _multifernet(keys)


def encrypt_secret(plaintext: str) -> str:
    if not isinstance(plaintext, str) or not plaintext:
        raise ValueError("Only a non-empty text secret can be encrypted.")
    return encryption().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt_secret(ciphertext: str) -> str:
    fernet = encryption()
    if not isinstance(ciphertext, str) or not ciphertext:
        raise SecretDecryptionError("No secret is stored here.")
    try:
        return fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise SecretDecryptionError(
            "A stored secret cannot be decrypted with the configured PORTAL_ENCRYPTION_KEYS: "
            "the key that encrypted it is missing from the list (keep old keys after the new "
            "one until `manage.py rotate_secrets` has run) or the stored value was altered."
        ) from None


def rotate_secret(ciphertext: str) -> str:
    """The same secret encrypted with the first (newest) key."""
    fernet = encryption()
    try:
        return fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError, AttributeError):
        raise SecretDecryptionError(
            "A stored secret cannot be re-encrypted: none of the configured "
            "PORTAL_ENCRYPTION_KEYS decrypts it."
        ) from None


def secret_fingerprint(secret: str) -> str:
    """Enough of SHA-256 to tell two keys apart on a page, far too little to guess the secret."""
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()
    return FINGERPRINT_PREFIX + digest[:FINGERPRINT_HEX_LENGTH]
