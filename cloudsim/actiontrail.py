"""ActionTrail 2020-07-06 ``LookupEvents``, answered from cloudsim's own call log.

Every API call made in an account (RAM, STS, ECS, console actions; not the trail's own reads)
becomes an event of that account with ActionTrail's field names and shapes
(``alibaba-api.md`` §16): a partner's role session appears as ``userIdentity.type =
"assumed-role"``, ``principalId = "<roleId>:<session>"``, ``userName = "<role>:<session>"``, its
``STS.`` key, and ``requestParameters.stsTokenPlayerUid`` = the partner's account.

Like the real service, events become visible only after a delivery delay: 0 by default,
``CLOUDSIM_ACTIONTRAIL_DELAY_SECONDS`` at start, or ``PUT /_sim/actiontrail {"delay_seconds": N}``
(operator token) at run time. Paging is newest first (``Direction=BACKWARD``, the default) or
oldest first (``FORWARD``); ``NextToken`` is an opaque position in the account's events.
"""

from __future__ import annotations

import base64
import bisect
import json
import os
import re
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cloudsim.api import ApiContext, PageRequest, PageResponse, api_action, page_route
from cloudsim.errors import ApiError, invalid_parameter
from cloudsim.operator import _json_body, _require_operator

VERSION = "2020-07-06"
DEFAULT_MAX_RESULTS = 20
MAX_RESULTS = 50
MAX_LOOKUP_ATTRIBUTES = 2
DEFAULT_WINDOW = timedelta(days=7)
RETENTION = timedelta(days=90)
DEFAULT_REGION = "cn-hangzhou"
_REGION_RE = re.compile(r"^[a-z]{2,4}-[a-z0-9-]{2,32}$")
_EVENT_NAMESPACE = uuid.UUID("6f1c7f0e-3a53-4d5e-9c55-61c0a4d0a7e1")
# A product's calls carry ActionTrail's service names.
_SERVICE_NAMES = {"ram": "Ram", "sts": "Sts", "ecs": "Ecs", "oos": "Oos"}
# The parameters that name what a call was about, when the handler did not say.
_RESOURCE_PARAMETERS = (
    ("InstanceId", "ACS::ECS::Instance"),
    ("RoleName", "ACS::RAM::Role"),
    ("UserName", "ACS::RAM::User"),
    ("PolicyName", "ACS::RAM::Policy"),
    ("RoleArn", "ACS::RAM::Role"),
)
_RESOURCE_TYPES_BY_ARN = (
    (":instance/", "ACS::ECS::Instance"),
    (":role/", "ACS::RAM::Role"),
    (":user/", "ACS::RAM::User"),
    (":policy/", "ACS::RAM::Policy"),
)


class _Settings:
    def __init__(self) -> None:
        self.delay_seconds = float(os.environ.get("CLOUDSIM_ACTIONTRAIL_DELAY_SECONDS", "0") or 0)


SETTINGS = _Settings()


# --- building events from call-log entries ---------------------------------------------------
def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _user_identity(entry: dict) -> dict[str, Any]:
    who = entry.get("identity") or {}
    account = entry.get("account") or ""
    kind = who.get("kind")
    access_key_id = who.get("access_key_id") or ""
    if kind == "AssumedRoleUser":
        role, session = who.get("role_name") or "", who.get("session_name") or ""
        identity: dict[str, Any] = {
            "type": "assumed-role",
            "accountId": account,
            "principalId": f"{who.get('role_id') or ''}:{session}",
            "userName": f"{role}:{session}",
            "accessKeyId": access_key_id,
            "sessionContext": {"attributes": {"mfaAuthenticated": "false"}},
        }
        if who.get("source_identity"):
            identity["sourceIdentity"] = who["source_identity"]
        return identity
    if kind == "RAMUser":
        return {
            "type": "ram-user",
            "accountId": account,
            "principalId": who.get("user_id") or "",
            "userName": who.get("user_name") or "",
            "accessKeyId": access_key_id,
        }
    return {
        "type": "root-account",
        "accountId": account,
        "principalId": account,
        "userName": "root",
        "accessKeyId": access_key_id,
    }


def _partner_account(caller_arn: str | None) -> str:
    # "acs:ram::<uid>:user/Alice" (or root, or a role session) → "<uid>"
    parts = (caller_arn or "").split(":")
    return parts[3] if len(parts) > 4 else ""


def _resource(entry: dict) -> tuple[str, str]:
    arn = entry.get("resource")
    if isinstance(arn, str) and arn:
        kind = next((t for marker, t in _RESOURCE_TYPES_BY_ARN if marker in arn), "")
        return arn, kind
    parameters = entry.get("parameters") or {}
    for name, kind in _RESOURCE_PARAMETERS:
        if parameters.get(name):
            return str(parameters[name]), kind
    return "", ""


def event_from_call(entry: dict) -> dict[str, Any]:
    """ActionTrail's shape of one call-log entry."""
    parameters = dict(entry.get("parameters") or {})
    identity = _user_identity(entry)
    who = entry.get("identity") or {}
    if identity["type"] == "assumed-role":
        parameters["stsTokenPrincipalName"] = f"{who.get('role_name')}/{who.get('session_name')}"
        parameters["stsTokenPlayerUid"] = _partner_account(who.get("caller_arn"))
    resource_name, resource_type = _resource(entry)
    event: dict[str, Any] = {
        "eventId": str(uuid.uuid5(_EVENT_NAMESPACE, str(entry.get("request_id")))),
        "eventName": entry.get("action"),
        "eventTime": entry.get("time"),
        "eventRW": "Write" if entry.get("mutating") else "Read",
        "eventType": "ConsoleOperation" if entry.get("via") == "console" else "ApiCall",
        "eventVersion": "1",
        "serviceName": _SERVICE_NAMES.get(entry.get("product") or "", entry.get("product")),
        "acsRegion": parameters.get("RegionId") or DEFAULT_REGION,
        "sourceIpAddress": entry.get("source_ip"),
        "requestId": entry.get("request_id"),
        "userAgent": "cloudsim-console" if entry.get("via") == "console" else "sdk",
        "userIdentity": identity,
        "requestParameters": parameters,
        "resourceName": resource_name,
        "resourceType": resource_type,
        "isGlobal": entry.get("product") in ("ram", "sts"),
    }
    if entry.get("outcome") != "success":
        event["errorCode"] = entry.get("error_code") or "InternalError"
        event["errorMessage"] = f"The call failed with {event['errorCode']}."
    return event


def _recorded(entry: dict) -> bool:
    # Only calls that reached an account; injected faults never reached the service, and the
    # trail's own reads are left out so ingesting the trail does not feed itself.
    return bool(
        entry.get("account")
        and entry.get("outcome") in ("success", "error")
        and entry.get("product") not in (None, "actiontrail")
    )


# --- an index of the call log by account and region ----------------------------------------
@dataclass
class _AccountEvents:
    """One account's events in one region, ordered by (time, seq): `keys` and `events` run in
    parallel. Calls arrive in time order; an operator's seeded, back-dated calls do not, and
    mark the list for one sort when the catch-up ends."""

    keys: list[tuple[float, int]] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    unsorted: bool = False

    def sort(self) -> None:
        if self.unsorted:
            order = sorted(range(len(self.keys)), key=self.keys.__getitem__)
            self.keys = [self.keys[n] for n in order]
            self.events = [self.events[n] for n in order]
            self.unsorted = False


class _Trail:
    """Events per (account, region), caught up from the call log on each lookup."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq = 0
        self.accounts: dict[tuple[str, str], _AccountEvents] = {}

    def _add(self, entry: dict) -> None:
        seq = int(entry.get("seq", 0))
        if seq <= self.seq:
            return
        self.seq = seq
        if not _recorded(entry):
            return
        event = event_from_call(entry)
        events = self.accounts.setdefault((entry["account"], event["acsRegion"]), _AccountEvents())
        key = (_parse_time(entry["time"]).timestamp(), seq)
        if events.keys and key < events.keys[-1]:
            events.unsorted = True
        events.keys.append(key)
        events.events.append(event)

    def catch_up(self, call_log: Any) -> None:
        with self.lock:
            if not call_log.holds_in_memory(self.seq) and call_log.path.exists():
                # More is missing than the log keeps in memory (the first lookup, or after a
                # bulk seeding): read the file once (the log's own `since` re-reads it from the
                # start for every batch it serves).
                with call_log.path.open("rb") as source:
                    for line in source:
                        try:
                            entry = json.loads(line)
                        except ValueError:
                            continue  # a line still being written: `since` serves it later
                        self._add(entry)
            while True:
                entries = call_log.since(self.seq, limit=50_000)
                if not entries:
                    break
                for entry in entries:
                    self._add(entry)
            for events in self.accounts.values():
                events.sort()


_TRAILS: weakref.WeakKeyDictionary[Any, _Trail] = weakref.WeakKeyDictionary()
_TRAILS_LOCK = threading.Lock()


def _trail_for(call_log: Any) -> _Trail:
    with _TRAILS_LOCK:
        trail = _TRAILS.get(call_log)
        if trail is None:
            trail = _TRAILS[call_log] = _Trail()
    trail.catch_up(call_log)
    return trail


# --- LookupEvents ----------------------------------------------------------------------------
_ATTRIBUTE_MATCHERS = {
    "ServiceName": lambda e: e.get("serviceName"),
    "EventName": lambda e: e.get("eventName"),
    "User": lambda e: e["userIdentity"].get("userName"),
    "EventId": lambda e: e.get("eventId"),
    "ResourceType": lambda e: e.get("resourceType"),
    "ResourceName": lambda e: e.get("resourceName"),
    "EventRW": lambda e: e.get("eventRW"),
    "EventAccessKeyId": lambda e: e["userIdentity"].get("accessKeyId"),
    "SourceIpAddress": lambda e: e.get("sourceIpAddress"),
    "EventType": lambda e: e.get("eventType"),
    "RoleName": lambda e: (
        (e["userIdentity"].get("userName") or "").split(":")[0]
        if e["userIdentity"].get("type") == "assumed-role"
        else None
    ),
}


def _lookup_attributes(ctx: ApiContext) -> list[tuple[str, str]]:
    found = []
    for n in range(1, 10):
        key = ctx.param(f"LookupAttribute.{n}.Key")
        value = ctx.params.get(f"LookupAttribute.{n}.Value")
        if key is None and value is None:
            continue
        if key not in _ATTRIBUTE_MATCHERS:
            raise invalid_parameter(
                f"LookupAttribute.{n}.Key", f"Use one of {', '.join(_ATTRIBUTE_MATCHERS)}."
            )
        found.append((key, value or ""))
    if len(found) > MAX_LOOKUP_ATTRIBUTES:
        raise invalid_parameter("LookupAttribute", "At most two attributes can be combined.")
    return found


def _time_param(ctx: ApiContext, name: str) -> datetime | None:
    raw = ctx.param(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            f"Invalid{name}", f"The {name} must be an ISO 8601 UTC time, e.g. 2026-12-05T10:00:00Z."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _encode_token(key: tuple[float, int]) -> str:
    return base64.urlsafe_b64encode(f"at2:{key[0]!r}:{key[1]}".encode()).decode()


def _decode_token(token: str) -> tuple[float, int]:
    try:
        prefix, moment, seq = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if prefix != "at2":
            raise ValueError(prefix)
        return float(moment), int(seq)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("InvalidNextToken", "The specified NextToken is not valid.") from None


def _region(ctx: ApiContext) -> str:
    """The trail's region: the request's region (its regional endpoint or `x-acs-region-id`);
    global services' events (RAM, STS) are in the default region's trail."""
    region = ctx.region_id or DEFAULT_REGION
    if not _REGION_RE.match(region):
        raise ApiError("InvalidRegionId", f"The region {region} does not exist.", 404)
    return region


@api_action(version=VERSION, name="LookupEvents")
def lookup_events(ctx: ApiContext) -> dict:
    uid = ctx.identity.account_uid
    ctx.authorize("actiontrail:LookupEvents", f"acs:actiontrail:*:{uid}:*")
    now = datetime.now(UTC)
    start, end = _time_param(ctx, "StartTime"), _time_param(ctx, "EndTime")
    if (start is None) != (end is None):
        raise missing_time_error()
    if start is None or end is None:
        start, end = now - DEFAULT_WINDOW, now
    if start > end:
        raise ApiError("InvalidStartTime", "The StartTime must not be later than the EndTime.")
    start = max(start, now - RETENTION)
    direction = (ctx.param("Direction") or "BACKWARD").upper()
    if direction not in ("FORWARD", "BACKWARD"):
        raise invalid_parameter("Direction", "Use FORWARD or BACKWARD.")
    limit = ctx.int_param("MaxResults", DEFAULT_MAX_RESULTS, minimum=1, maximum=MAX_RESULTS)
    assert limit is not None
    attributes = _lookup_attributes(ctx)
    token = ctx.param("NextToken")
    after = _decode_token(token) if token else None
    region = _region(ctx)

    trail = _trail_for(ctx.call_log)
    visible_until = min(end.timestamp(), time.time() - SETTINGS.delay_seconds)
    with trail.lock:
        account = trail.accounts.get((uid, region)) or _AccountEvents()
        # Keys are (time, seq), sorted: a time window is a slice, a token a position in it.
        low = bisect.bisect_left(account.keys, (start.timestamp(), -1))
        high = bisect.bisect_right(account.keys, (visible_until, float("inf")))
        if direction == "BACKWARD":
            if after is not None:
                high = min(high, bisect.bisect_left(account.keys, after))
            positions = range(high - 1, low - 1, -1)
        else:
            if after is not None:
                low = max(low, bisect.bisect_right(account.keys, after))
            positions = range(low, high)
        page: list[dict] = []
        last_key = None
        more = False
        for position in positions:
            event = account.events[position]
            if not all(_ATTRIBUTE_MATCHERS[key](event) == value for key, value in attributes):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(event)
            last_key = account.keys[position]
    return {
        "StartTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "EndTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Events": page,
        "NextToken": _encode_token(last_key) if more and last_key is not None else "",
    }


def missing_time_error() -> ApiError:
    return ApiError("InvalidParameter", "StartTime and EndTime go together: give both or neither.")


# --- the operator's knob ---------------------------------------------------------------------
@page_route("GET", "/_sim/actiontrail")
def actiontrail_settings(request: PageRequest) -> PageResponse:
    _require_operator(request)
    return PageResponse.json({"delay_seconds": SETTINGS.delay_seconds})


@page_route("PUT", "/_sim/actiontrail")
def actiontrail_configure(request: PageRequest) -> PageResponse:
    _require_operator(request)
    data = _json_body(request)
    delay = data.get("delay_seconds", 0)
    if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
        raise ApiError("InvalidParameter", "delay_seconds must be a number of seconds, 0 or more.")
    SETTINGS.delay_seconds = float(delay)
    return PageResponse.json({"delay_seconds": SETTINGS.delay_seconds})
