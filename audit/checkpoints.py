"""Signed checkpoints of the chain head, kept outside the database.

A hash chain shows edits, deletions and insertions, but not a tail cut off together with the
chain head row, nor a history rewritten and re-hashed from some row on. So Celery beat
writes `{sequence, hash, created_at}` signed with HMAC-SHA256 to a directory outside the
database (`AUDIT_CHECKPOINT_DIR`), with a key that is never stored in the database
(`AUDIT_CHECKPOINT_KEY`, environment only), and `manage.py audit_verify --checkpoints DIR`
checks the log against every checkpoint.
"""

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from audit.chain import GENESIS_HASH, canonical_json, canonical_time
from audit.models import AuditChainHead

CHECKPOINT_VERSION = 1
ALGORITHM = "HMAC-SHA256"
MIN_KEY_LENGTH = 32
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Checkpoint:
    name: str
    sequence: int
    hash: str
    created_at: str


@dataclass(frozen=True)
class InvalidCheckpoint:
    name: str
    reason: str
    claimed_sequence: int | None


def checkpoint_key() -> bytes | None:
    """The HMAC key (settings.AUDIT_CHECKPOINT_KEY, from the environment); None when unset."""
    key = getattr(settings, "AUDIT_CHECKPOINT_KEY", "")
    if not key:
        return None
    if len(key) < MIN_KEY_LENGTH:
        raise ImproperlyConfigured(
            f"AUDIT_CHECKPOINT_KEY must be at least {MIN_KEY_LENGTH} characters of random text."
        )
    return key.encode("utf-8")


def checkpoint_directory() -> Path:
    configured = getattr(settings, "AUDIT_CHECKPOINT_DIR", None)
    return Path(configured) if configured else Path(settings.DATA_DIR) / "audit-checkpoints"


def _signed_fields(*, sequence: int, hash_: str, created_at: str) -> dict[str, object]:
    return {
        "version": CHECKPOINT_VERSION,
        "algorithm": ALGORITHM,
        "sequence": sequence,
        "hash": hash_,
        "created_at": created_at,
    }


def checkpoint_sign(*, sequence: int, hash_: str, created_at: str, key: bytes) -> str:
    message = canonical_json(_signed_fields(sequence=sequence, hash_=hash_, created_at=created_at))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def checkpoint_document(*, sequence: int, hash_: str, created_at: str, key: bytes) -> dict:
    return {
        **_signed_fields(sequence=sequence, hash_=hash_, created_at=created_at),
        "signature": checkpoint_sign(
            sequence=sequence, hash_=hash_, created_at=created_at, key=key
        ),
    }


def checkpoint_write(*, directory: Path | None = None, key: bytes | None = None) -> Path:
    """Sign the current chain head and write it as a new file; returns its path.

    The file is written under a temporary name and renamed, so a reader never sees half a
    checkpoint; names sort by sequence, then time.
    """
    key = key if key is not None else checkpoint_key()
    if key is None:
        raise ImproperlyConfigured("AUDIT_CHECKPOINT_KEY is not set; no checkpoint written.")
    directory = directory if directory is not None else checkpoint_directory()
    with transaction.atomic():
        head = AuditChainHead.objects.filter(pk=AuditChainHead.SINGLETON_ID).first()
        sequence, hash_ = (head.sequence, head.hash) if head else (0, GENESIS_HASH)
    now = timezone.now()
    created_at = canonical_time(now)
    document = checkpoint_document(sequence=sequence, hash_=hash_, created_at=created_at, key=key)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"checkpoint-{sequence:020d}-{now:%Y%m%dT%H%M%S%fZ}.json"
    final = directory / name
    temporary = directory / f".{name}.tmp"
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, final)
    return final


def checkpoint_parse(name: str, text: str, key: bytes) -> Checkpoint | InvalidCheckpoint:
    try:
        document = json.loads(text)
    except ValueError:
        return InvalidCheckpoint(name=name, reason="not JSON", claimed_sequence=None)
    if not isinstance(document, dict):
        return InvalidCheckpoint(name=name, reason="not a JSON object", claimed_sequence=None)
    sequence = document.get("sequence")
    claimed = sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else None
    hash_ = document.get("hash")
    created_at = document.get("created_at")
    signature = document.get("signature")
    if (
        document.get("version") != CHECKPOINT_VERSION
        or document.get("algorithm") != ALGORITHM
        or claimed is None
        or claimed < 0
        or not isinstance(hash_, str)
        or len(hash_) != 64
        or not set(hash_) <= _HEX
        or not isinstance(created_at, str)
        or not isinstance(signature, str)
    ):
        return InvalidCheckpoint(name=name, reason="malformed fields", claimed_sequence=claimed)
    expected = checkpoint_sign(sequence=claimed, hash_=hash_, created_at=created_at, key=key)
    if not hmac.compare_digest(expected, signature):
        return InvalidCheckpoint(name=name, reason="bad signature", claimed_sequence=claimed)
    return Checkpoint(name=name, sequence=claimed, hash=hash_, created_at=created_at)


def checkpoints_load(
    *, directory: Path, key: bytes
) -> tuple[list[Checkpoint], list[InvalidCheckpoint]]:
    """Every `*.json` file in the directory, split into valid and invalid checkpoints."""
    if not directory.is_dir():
        raise FileNotFoundError(f"No checkpoint directory at {directory}.")
    valid: list[Checkpoint] = []
    invalid: list[InvalidCheckpoint] = []
    for path in sorted(directory.glob("*.json")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            invalid.append(InvalidCheckpoint(path.name, f"unreadable: {error}", None))
            continue
        parsed = checkpoint_parse(path.name, text, key)
        (valid if isinstance(parsed, Checkpoint) else invalid).append(parsed)  # type: ignore[arg-type]
    invalid.sort(key=lambda bad: (bad.claimed_sequence is None, bad.claimed_sequence or 0))
    return valid, invalid
