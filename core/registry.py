"""Registries of stored strings that carry what the portal says of each: the audit log's event
types (`audit.actions`), the kinds of notification (`notifications.events`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self


class InfoEnum(StrEnum):
    """A member is declared `NAME = ("stored value", info)`: it is the stored string, and
    `member.info` is the rest. A registry annotates `info` with its own type."""

    info: Any

    def __new__(cls, value: str, info: Any) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.info = info
        return member
