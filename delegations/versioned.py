"""Settings rows an owner admin changes (an approval rule, four eyes, the review schedule):
each counts its versions and says who changed it last."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from accounts.models import User


class Versioned(Protocol):
    version: int

    def save(self, *args: Any, **kwargs: Any) -> None: ...


def versioned_save(row: Versioned, wanted: Mapping[str, Any], *, by: User) -> None:
    """Write `wanted` onto `row`, count one more version and name `by` as the last to change
    it; only those columns (and `updated_at`) are saved."""
    changes = {**wanted, "updated_by": by}
    for name, value in changes.items():
        setattr(row, name, value)
    row.version += 1
    row.save(update_fields=[*changes, "version", "updated_at"])
