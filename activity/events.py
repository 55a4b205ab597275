"""One ActionTrail event (a plain dictionary from the cloud) read into an `ActivityEvent`'s
fields, keeping what is valid and naming what was not.

Nothing here trusts the event's shape: a missing field is blank and listed in `problems`, an
unknown identity type is kept as it came, a huge `requestParameters` is cut short. The event is
never refused for its shape, except one without an id or a readable time, which cannot be
stored once and in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from activity.models import ActivityEvent

# Raw JSON kept per event; requestParameters beyond this is replaced by a note.
MAX_RAW_CHARS = 8192
KNOWN_IDENTITY_TYPES = frozenset({"assumed-role", "ram-user", "root-account", "AliyunAccount"})
DENIED_CODES = ("NoPermission", "Forbidden", "AccessDenied")
_LIMITS: dict[str, int] = {
    model_field.name: limit
    for model_field in ActivityEvent._meta.concrete_fields
    if (limit := getattr(model_field, "max_length", None))
}


class UnusableEvent(ValueError):
    """An event without an id or a time: it cannot be stored exactly once."""


@dataclass
class ParsedEvent:
    event_id: str
    event_time: datetime
    fields: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    raw_json: str = "{}"


def _text(value: Any, name: str, problems: list[str], *, required: bool = False) -> str:
    if type(value) is str and value and len(value) <= _LIMITS.get(name, 0x7FFFFFFF):
        return value  # the common case, checked first: ingestion reads millions of these
    if value is None or value == "":
        if required:
            problems.append(f"missing {name}")
        return ""
    if not isinstance(value, str | int | float):
        problems.append(f"malformed {name}")
        return ""
    text = str(value)
    limit = _LIMITS.get(name)
    if limit is not None and len(text) > limit:
        problems.append(f"{name} cut to {limit} characters")
        text = text[:limit]
    return text


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise UnusableEvent("eventTime")
    try:
        moment = datetime.fromisoformat(value)  # reads ActionTrail's "Z" as UTC itself
    except ValueError:
        raise UnusableEvent("eventTime") from None
    if moment.tzinfo is UTC:
        return moment  # ActionTrail's own times: no conversion to make
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def event_time(event: dict[str, Any]) -> datetime | None:
    """The event's time, or None when it has none readable (`parse_event` refuses it then)."""
    try:
        return _time(event.get("eventTime"))
    except UnusableEvent:
        return None


def _raw(event: dict[str, Any], problems: list[str]) -> str:
    """The event as JSON text, dumped once (the column stores this text as it is): a
    `requestParameters` too large is replaced by a note, and an event still too large keeps
    only its id and name."""
    text = _dumps(event)
    if len(text) <= MAX_RAW_CHARS:
        return text  # the common case: one dump, no second look
    kept = dict(event)
    parameters = kept.get("requestParameters")
    if parameters is not None and len(_dumps(parameters)) > MAX_RAW_CHARS:
        problems.append("requestParameters too large: not kept")
        kept["requestParameters"] = {"_omitted": "too large"}
        text = _dumps(kept)
    if len(text) > MAX_RAW_CHARS * 2:
        problems.append("event too large: only its fields are kept")
        return _dumps({"eventId": event.get("eventId"), "eventName": event.get("eventName")})
    return text


# The standard encoder, for what orjson refuses: an integer beyond 64 bits, a key that is not a
# string. An event comes from parsed JSON, which holds no cycle, so neither tracks containers.
_standard_dumps = json.JSONEncoder(default=str, separators=(",", ":"), check_circular=False).encode


def _dumps(value: Any) -> str:
    """Compact JSON text; orjson writes an event's text about ten times faster than `json`,
    which was a tenth of ingestion's work per event."""
    try:
        return orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError:
        return _standard_dumps(value)


def parse_event(event: dict[str, Any]) -> ParsedEvent:
    event_id = event.get("eventId")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        raise UnusableEvent("eventId")
    moment = _time(event.get("eventTime"))
    problems: list[str] = []
    identity = event.get("userIdentity")
    if not isinstance(identity, dict):
        problems.append("missing userIdentity")
        identity = {}
    parameters = event.get("requestParameters")
    if not isinstance(parameters, dict):
        parameters = {}
    identity_type = _text(identity.get("type"), "identity_type", problems, required=True)
    if identity_type and identity_type not in KNOWN_IDENTITY_TYPES:
        problems.append(f"unknown identity type {identity_type}")
    user_name = _text(identity.get("userName"), "user_name", problems)
    role_name = session_name = ""
    unknown_type = bool(identity_type) and identity_type not in KNOWN_IDENTITY_TYPES
    if identity_type == "assumed-role" or (unknown_type and ":" in user_name):
        # An identity type this code does not know, named like a role session, is read as one
        # (and flagged): better a flagged row than a partner's call nobody sees.
        role_name, _, session_name = user_name.partition(":")
        if not session_name:
            problems.append("assumed-role userName is not <role>:<session>")
    error_code = _text(event.get("errorCode"), "error_code", problems)
    if not error_code:
        outcome = ActivityEvent.Outcome.ALLOWED
    elif error_code.startswith(DENIED_CODES):
        outcome = ActivityEvent.Outcome.DENIED
    else:
        outcome = ActivityEvent.Outcome.FAILED
    event_rw = _text(event.get("eventRW"), "event_rw", problems, required=True)
    if event_rw and event_rw not in ("Read", "Write"):
        problems.append(f"unknown eventRW {event_rw}")
        event_rw = ""
    fields: dict[str, Any] = {
        "identity_type": identity_type,
        "is_role_session": bool(role_name),
        "user_name": user_name,
        "role_name": _text(role_name, "role_name", problems),
        "session_name": _text(session_name, "session_name", problems),
        "source_identity": _text(identity.get("sourceIdentity"), "source_identity", problems),
        "access_key_id": _text(identity.get("accessKeyId"), "access_key_id", problems),
        "partner_account_uid": _text(
            parameters.get("stsTokenPlayerUid"), "partner_account_uid", problems
        ),
        "service_name": _text(event.get("serviceName"), "service_name", problems, required=True),
        "event_name": _text(event.get("eventName"), "event_name", problems, required=True),
        "event_rw": event_rw,
        "event_type": _text(event.get("eventType"), "event_type", problems),
        "resource_name": _text(event.get("resourceName"), "resource_name", problems),
        "resource_type": _text(event.get("resourceType"), "resource_type", problems),
        "region": _text(event.get("acsRegion"), "region", problems),
        "source_ip": _text(event.get("sourceIpAddress"), "source_ip", problems),
        "request_id": _text(event.get("requestId"), "request_id", problems),
        "error_code": error_code,
        "outcome": outcome,
    }
    raw_json = _raw(event, problems)
    return ParsedEvent(
        event_id=event_id, event_time=moment, fields=fields, problems=problems, raw_json=raw_json
    )
