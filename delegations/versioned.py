"""Rows that count their versions (a delegation, a fleet, an emergency role, an approver group,
the settings an owner admin changes): every change writes only the columns it changes and one
more version, which the pages send back to refuse a change made on a stale view. Settings rows
also say who changed them last."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from accounts.models import User
from delegations.models import VersionedModel


def version_bump(row: VersionedModel, changes: Mapping[str, Any]) -> None:
    """Write `changes` onto the locked `row` and count one more version; only those columns
    (and `version`, `updated_at`) are saved, so no other column is written back stale."""
    for name, value in changes.items():
        setattr(row, name, value)
    row.version += 1
    row.save(update_fields=[*changes, "version", "updated_at"])


def versioned_save(row: VersionedModel, wanted: Mapping[str, Any], *, by: User) -> None:
    """`version_bump`, naming `by` as the last to change the settings row."""
    version_bump(row, {**wanted, "updated_by": by})
