"""The hash chain's arithmetic: canonical JSON of an event and the link hashes.

Two chains: the global one (each event's `hash` = SHA-256(prev_hash ‖ canonical JSON)) and one
per organisation (each scope row's `org_hash` = SHA-256(org_prev_hash ‖ event hash)), which runs
through exactly the events the organisation may see, so its exports verify on their own.

Pure functions shared by the writer (`audit.services`), the verifier (`audit.verify`) and the
offline export check (`audit.verify_export`), so all agree on what a row's bytes are.
Changing anything here changes every hash ever written: add a new `HASH_VERSION` branch
instead of editing version 1.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

# The arithmetic itself lives in the stdlib-only offline verifier, so the two cannot differ.
# GENESIS_HASH is the link before the first event (64 zeros): every row names a predecessor.
from audit.verify_export import (
    GENESIS_HASH,
    HASH_VERSION,
    canonical_json,
    link_hash,
    org_link_hash,
)

__all__ = [
    "GENESIS_HASH",
    "HASH_VERSION",
    "canonical_json",
    "canonical_time",
    "event_payload",
    "link_hash",
    "org_link_hash",
]


def canonical_time(value: datetime) -> str:
    """UTC, ISO 8601, always six fractional digits and a `Z`: one spelling per instant."""
    if value.tzinfo is None:
        raise ValueError("Audit times must be timezone-aware.")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _id(value: object) -> str | None:
    return None if value is None else str(value)


def event_payload(
    *,
    hash_version: int,
    sequence: int,
    occurred_at: datetime,
    action: str,
    outcome: str,
    actor_id: int | None,
    actor_label: str,
    actor_organisation_id: object,
    actor_organisation_label: str,
    organisation_id: object,
    scope_organisation_ids: Iterable[object],
    target_type: str,
    target_id: str,
    target_label: str,
    before: Any,
    after: Any,
    metadata: Any,
    source: str,
    source_ip: str,
    request_id: str,
) -> dict[str, Any]:
    """Every stored field of an event (and its scope rows), as the hash covers them."""
    if hash_version != HASH_VERSION:
        raise ValueError(f"Unknown audit hash version {hash_version!r}.")
    return {
        "v": hash_version,
        "sequence": sequence,
        "occurred_at": canonical_time(occurred_at),
        "action": action,
        "outcome": outcome,
        "actor_id": actor_id,
        "actor_label": actor_label,
        "actor_organisation_id": _id(actor_organisation_id),
        "actor_organisation_label": actor_organisation_label,
        "organisation_id": _id(organisation_id),
        "scopes": sorted({str(org_id) for org_id in scope_organisation_ids}),
        "target_type": target_type,
        "target_id": target_id,
        "target_label": target_label,
        "before": before,
        "after": after,
        "metadata": metadata,
        "source": source,
        "source_ip": source_ip,
        "request_id": request_id,
    }
