"""The operator's bulk seeding of ActionTrail: calls that happened earlier, written into the call
log at their own times, so ``LookupEvents`` serves them exactly like calls made through the API.

``POST /_sim/actiontrail/events`` (operator token) takes one JSON object:

- ``account``: the account the calls were made in;
- ``calls``: explicit calls, each ``{"time": "2026-12-01T09:30:00Z", "product": "ecs",
  "action": "StopInstance", "mutating": true, "region": "cn-hangzhou", "identity": {...},
  "parameters": {...}, "error_code": "Forbidden.RAM", "source_ip": "…", "via": "console"}``
  where ``identity`` is the call log's (``kind`` AssumedRoleUser | RAMUser | Root, with
  ``role_name``, ``role_id``, ``session_name``, ``access_key_id``, ``source_identity``,
  ``caller_arn`` or ``user_name``);
- ``generate``: many calls at once, ``{"count": 1000000, "start": "…Z", "end": "…Z",
  "region": "cn-hangzhou", "identities": [identity, …], "calls": [{"product", "action",
  "mutating", "parameters"}, …], "error_every": 97, "error_code": "Forbidden.RAM"}``: call n is
  made by identity n mod len, does call n mod len, at evenly spaced times, and fails with
  ``error_code`` when n is a multiple of ``error_every``.

A million calls take seconds (one write of the log, one pass to index it), where a million API
calls would take hours. The answer is ``{"seeded": N, "last_seq": S}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from cloudsim.actiontrail import _parse_time, _trail_for
from cloudsim.api import PageRequest, PageResponse, page_route
from cloudsim.errors import ApiError
from cloudsim.operator import _json_body, _require_operator

MAX_GENERATED = 5_000_000
MAX_EXPLICIT = 10_000
_PRODUCTS = {"ram": "2015-05-01", "sts": "2015-04-01", "ecs": "2014-05-26", "oos": "2019-06-01"}
_IDENTITY_KINDS = ("AssumedRoleUser", "RAMUser", "Root")
_IDENTITY_FIELDS = (
    "kind",
    "role_name",
    "role_id",
    "session_name",
    "access_key_id",
    "source_identity",
    "caller_arn",
    "user_name",
    "user_id",
)


def _bad(message: str) -> ApiError:
    return ApiError("InvalidParameter", message, 400)


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise _bad(f"{what} must be a time like 2026-12-01T09:30:00Z.")
    try:
        return _parse_time(value)
    except ValueError:
        raise _bad(f"{what} must be a time like 2026-12-01T09:30:00Z.") from None


def _identity(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or value.get("kind") not in _IDENTITY_KINDS:
        raise _bad(f"{what} needs a kind: one of {', '.join(_IDENTITY_KINDS)}.")
    identity = {name: str(value[name]) for name in _IDENTITY_FIELDS if value.get(name)}
    if identity["kind"] == "AssumedRoleUser" and not (
        identity.get("role_name") and identity.get("session_name")
    ):
        raise _bad(f"{what}: an assumed-role identity needs role_name and session_name.")
    return identity


def _call(value: Any, what: str) -> dict[str, Any]:
    """A call's template: what it did, without who and when."""
    if not isinstance(value, dict):
        raise _bad(f"{what} must be an object.")
    product = value.get("product")
    if product not in _PRODUCTS:
        raise _bad(f"{what}.product must be one of {', '.join(_PRODUCTS)}.")
    action = value.get("action")
    if not isinstance(action, str) or not action.isalnum():
        raise _bad(f"{what}.action must be an API action name.")
    parameters = value.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise _bad(f"{what}.parameters must be an object.")
    parameters = {str(k): str(v) for k, v in parameters.items()}
    if value.get("region"):
        parameters["RegionId"] = str(value["region"])
    return {
        "product": product,
        "action": action,
        "version": _PRODUCTS[product],
        "parameters": parameters,
        "mutating": bool(value.get("mutating")),
        "source_ip": str(value.get("source_ip") or "203.0.113.10"),
        "via": "console" if value.get("via") == "console" else "api",
    }


def _entry(
    *,
    account: str,
    moment: str,
    call: dict[str, Any],
    identity: dict[str, str],
    error_code: str | None,
) -> dict[str, Any]:
    return {
        "time": moment,
        "request_id": str(uuid.uuid4()).upper(),
        "account": account,
        "caller_arn": identity.get("caller_arn"),
        "identity": identity,
        **call,
        "outcome": "error" if error_code else "success",
        "error_code": error_code,
        "status": 403 if error_code else 200,
    }


def _explicit(account: str, calls: Any) -> list[dict[str, Any]]:
    if not isinstance(calls, list) or len(calls) > MAX_EXPLICIT:
        raise _bad(f"calls must be a list of at most {MAX_EXPLICIT} calls.")
    entries = []
    for n, value in enumerate(calls):
        what = f"calls[{n}]"
        call = _call(value, what)
        moment = _time(value.get("time"), f"{what}.time")
        error_code = value.get("error_code")
        entries.append(
            _entry(
                account=account,
                moment=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                call=call,
                identity=_identity(value.get("identity"), f"{what}.identity"),
                error_code=str(error_code) if error_code else None,
            )
        )
    return sorted(entries, key=lambda entry: entry["time"])


def _generated(account: str, spec: Any) -> tuple[int, Iterator[dict[str, Any]]]:
    if not isinstance(spec, dict):
        raise _bad("generate must be an object.")
    count = spec.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_GENERATED:
        raise _bad(f"generate.count must be 1 to {MAX_GENERATED:,}.")
    start = _time(spec.get("start"), "generate.start").timestamp()
    end = _time(spec.get("end"), "generate.end").timestamp()
    if end < start:
        raise _bad("generate.end must not be before generate.start.")
    identities = spec.get("identities")
    calls = spec.get("calls")
    if not isinstance(identities, list) or not identities:
        raise _bad("generate.identities must list at least one identity.")
    if not isinstance(calls, list) or not calls:
        raise _bad("generate.calls must list at least one call.")
    who = [_identity(value, f"generate.identities[{n}]") for n, value in enumerate(identities)]
    region = spec.get("region")
    what = [
        _call({**value, "region": region} if region and isinstance(value, dict) else value, f"c{n}")
        for n, value in enumerate(calls)
    ]
    error_every = spec.get("error_every") or 0
    if not isinstance(error_every, int) or error_every < 0:
        raise _bad("generate.error_every must be a whole number, 0 for never.")
    error_code = str(spec.get("error_code") or "Forbidden.RAM")
    step = (end - start) / max(count - 1, 1)

    def entries() -> Iterator[dict[str, Any]]:
        for n in range(count):
            moment = datetime.fromtimestamp(start + n * step, UTC)
            yield _entry(
                account=account,
                moment=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                call=what[n % len(what)],
                identity=who[n % len(who)],
                error_code=error_code if error_every and n % error_every == 0 else None,
            )

    return count, entries()


@page_route("POST", "/_sim/actiontrail/events")
def actiontrail_seed(request: PageRequest) -> PageResponse:
    _require_operator(request)
    data = _json_body(request)
    account = str(data.get("account") or "")
    if not account.isdigit():
        raise _bad("account must be an account UID.")
    with request.store.read() as tx:
        known = tx.account_get(account) is not None
    if not known:
        raise ApiError("EntityNotExist.Account", f"The account {account} does not exist.", 404)
    explicit = _explicit(account, data.get("calls") or [])
    count, generated = (
        _generated(account, data["generate"]) if data.get("generate") else (0, iter(()))
    )
    call_log = request.server.call_log
    last_seq = call_log.record_many(explicit)
    last_seq = call_log.record_many(generated)
    # Index them now (one pass over the log when there are more than it keeps in memory), so
    # the first lookup does not pay for it.
    _trail_for(call_log)
    return PageResponse.json({"seeded": len(explicit) + count, "last_seq": last_seq}, status=201)


# --- the demo's partner activity (`--demo-activity`, which `make run` passes) ----------------
DEMO_OWNER = "11223344"
DEMO_PARTNER = "12345678"
# The demo's delegated role: the portal's demo offers ecs-viewer (read-only ECS) to company-b.
DEMO_ROLE = "ecs-viewer"
DEMO_ROLE_ID = "300000000000000101"


def _demo_identity(ram_user: str, access_key_id: str) -> dict[str, str]:
    return {
        "kind": "AssumedRoleUser",
        "role_name": DEMO_ROLE,
        "role_id": DEMO_ROLE_ID,
        # A partner's RAM user that switches role or calls AssumeRole itself is named by its
        # session name, its RAM user name (the portal explains it by the staff member's link).
        "session_name": ram_user,
        "access_key_id": access_key_id,
        "caller_arn": f"acs:ram::{DEMO_PARTNER}:user/{ram_user}",
    }


def demo_calls(*, now: float, instances: dict[str, str]) -> list[dict[str, Any]]:
    """What company-b's people did in company-a's account over the last days, as ActionTrail
    would show it: Alice switched role in the console, looked at the fleet and stopped web-2
    (a write under the read-only-intended ecs-viewer: an alert); Bob took STS credentials,
    listed instances, and was refused ListRoles (a denied call: an alert). `instances` maps
    instance names to their ids."""
    alice = _demo_identity("Alice", "STS.demoAliceConsole7Hq2")
    bob = _demo_identity("Bob", "STS.demoBobCli4Lr9")
    hours = 3600.0
    plan = [
        (52 * hours, alice, "ecs", "DescribeInstances", False, {}, None, "console"),
        (51.9 * hours, alice, "ecs", "DescribeInstances", False, {}, None, "console"),
        (27 * hours, bob, "ecs", "DescribeInstances", False, {}, None, "api"),
        (26.9 * hours, bob, "ecs", "DescribeInstances", False, {}, None, "api"),
        (26.8 * hours, bob, "ram", "ListRoles", False, {}, "Forbidden.RAM", "api"),
        (
            5 * hours,
            alice,
            "ecs",
            "StopInstance",
            True,
            {"InstanceId": instances.get("web-2", "")},
            None,
            "console",
        ),
        (4.9 * hours, alice, "ecs", "DescribeInstances", False, {}, None, "console"),
        (2 * hours, bob, "ecs", "DescribeInstances", False, {}, None, "api"),
    ]
    entries = []
    for ago, identity, product, action, mutating, parameters, error_code, via in plan:
        region = "cn-hangzhou" if product == "ecs" else None
        call = _call(
            {
                "product": product,
                "action": action,
                "mutating": mutating,
                "parameters": {k: v for k, v in parameters.items() if v},
                "region": region,
                "source_ip": "198.51.100.23" if identity is alice else "198.51.100.41",
                "via": via,
            },
            action,
        )
        moment = datetime.fromtimestamp(now - ago, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entries.append(
            _entry(
                account=DEMO_OWNER,
                moment=moment,
                call=call,
                identity=identity,
                error_code=error_code,
            )
        )
    return entries
