"""IANA time zone names: which ones the portal accepts, and the zone to show a person's times in.

Stored times are UTC everywhere; only display converts. A name is accepted when the machine's
tz database (zoneinfo, with the `tzdata` package as fallback) knows it, so a browser's
`Intl.DateTimeFormat().resolvedOptions().timeZone` such as `Asia/Shanghai` is taken as is.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, tzinfo

# IANA names are ASCII and at most a few dozen characters ("America/Argentina/ComodRivadavia").
TIME_ZONE_MAX_LENGTH = 64


@functools.cache
def available_time_zones() -> frozenset[str]:
    # "localtime" and "Factory" are tz database artefacts, not places a person lives in.
    return frozenset(zoneinfo.available_timezones() - {"localtime", "Factory"})


def is_time_zone(name: object) -> bool:
    return (
        isinstance(name, str)
        and 0 < len(name) <= TIME_ZONE_MAX_LENGTH
        and name in available_time_zones()
    )


def zone_or_utc(name: str | None) -> tzinfo:
    """The zone named `name`, or UTC for an empty or unknown name (never an error: a display
    preference must not break a page)."""
    if name and is_time_zone(name):
        return zoneinfo.ZoneInfo(name)
    return UTC


def time_zone_choices() -> list[tuple[str, str]]:
    """Every accepted zone, sorted, UTC first (the default)."""
    return [("UTC", "UTC")] + [
        (name, name) for name in sorted(available_time_zones()) if name != "UTC"
    ]
