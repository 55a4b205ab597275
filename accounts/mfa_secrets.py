"""Encryption at rest for the secrets allauth's MFA keeps in `mfa_authenticator.data`.

allauth stores the TOTP key (`data["secret"]`) and the recovery codes' seed (`data["seed"]`,
or `data["migrated_codes"]` for codes imported from elsewhere) through its MFA adapter's
`encrypt`/`decrypt` hooks; `PortalMFAAdapter` points them here. A stored value is
`"fernet:" + <MultiFernet token>` over `PORTAL_ENCRYPTION_KEYS` (`core.crypto`), so the
keys and their rotation are the cloud secrets' ones.

The prefix is what tells ciphertext from the plaintext rows written before this existed: the
TOTP key is base32 (A-Z, 2-7) and the seed hex, so neither can ever start with "fernet:".
Sealing a sealed value returns it unchanged (never double-encrypted), and opening a value
without the prefix returns it as it is: a plaintext row still signs in until migration
`accounts.0003` (or `manage.py rotate_secrets`) seals it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import crypto

SEALED_PREFIX = "fernet:"

# Authenticator type -> the keys of its `data` that hold a secret (a text or a list of texts).
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "totp": ("secret",),
    "recovery_codes": ("seed", "migrated_codes"),
}


def is_sealed(value: str) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def seal(text: str) -> str:
    """`text` encrypted with the newest key, behind the prefix; a sealed value as it is."""
    if is_sealed(text):
        return text
    return SEALED_PREFIX + crypto.encrypt_secret(text)


def unseal(stored: str) -> str:
    """The plaintext of a sealed value (any configured key opens it); a legacy plaintext value
    as it is. Raises `crypto.SecretDecryptionError` when no configured key opens it."""
    if not is_sealed(stored):
        return stored
    return crypto.decrypt_secret(stored[len(SEALED_PREFIX) :])


def reseal(stored: str) -> str:
    """The same secret sealed with the newest key (legacy plaintext gets sealed too)."""
    if not is_sealed(stored):
        return seal(stored)
    return SEALED_PREFIX + crypto.rotate_secret(stored[len(SEALED_PREFIX) :])


def _transform(value: Any, change: Any) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [change(item) if isinstance(item, str) else item for item in value]
    return value


def sealed_data(authenticator_type: str, data: Mapping[str, Any], *, rotate: bool = False) -> dict:
    """A copy of an authenticator's `data` with every secret field sealed (`rotate`: re-sealed
    with the newest key as well). Other fields and other authenticator types are untouched."""
    change = reseal if rotate else seal
    result = dict(data)
    for field in SECRET_FIELDS.get(authenticator_type, ()):
        if field in result:
            result[field] = _transform(result[field], change)
    return result


def unsealed_data(authenticator_type: str, data: Mapping[str, Any]) -> dict:
    """The inverse of `sealed_data`: every secret field as plaintext (the migration's reverse)."""
    result = dict(data)
    for field in SECRET_FIELDS.get(authenticator_type, ()):
        if field in result:
            result[field] = _transform(result[field], unseal)
    return result
