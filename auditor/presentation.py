"""How an audit event reads to a person: pure functions, no database.

- `trust_policy_diff`: principals and permission policies added, removed and kept between two
  trust-policy-ish values (whole documents, the portal's own summaries, or lists).
- `value_changes`: a flat "field: old → new" list for any other before/after pair.
- `cloud_request_ids`: the Alibaba Cloud request ids an event's data names.
- `classify_access_event` / `person_of`: the shape of staff-assignment and credential-issuance
  events (issue 6), read tolerantly so the timeline and the access report need no change
  when those events appear.
- `describe_event`: a one-line title, facts and diffs for the event browser and timeline.
- `mark_invisible`: text with bidirectional and zero-width controls made visible.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

# --- trust policy diff -----------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyDiff:
    """What changed in who may assume a role (principals) and what the role may do
    (permission policies). Every list is sorted; `recognised` is False when neither side
    looked like a trust policy or a policy list."""

    principals_added: tuple[str, ...] = ()
    principals_removed: tuple[str, ...] = ()
    principals_kept: tuple[str, ...] = ()
    policies_added: tuple[str, ...] = ()
    policies_removed: tuple[str, ...] = ()
    policies_kept: tuple[str, ...] = ()
    recognised: bool = False

    @property
    def changed(self) -> bool:
        return bool(
            self.principals_added
            or self.principals_removed
            or self.policies_added
            or self.policies_removed
        )


_PRINCIPAL_KINDS = ("RAM", "Service", "Federated")
_PRINCIPAL_LIST_KEYS = ("principals", "trusted_principals", "principal_arns")
_DOCUMENT_KEYS = ("trust_policy", "trust_document", "assume_role_policy", "document")
_POLICY_LIST_KEYS = ("policies", "permission_policies", "attached_policies")


@dataclass
class _Extracted:
    principals: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)
    has_principals: bool = False
    has_policies: bool = False


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple | set | frozenset) else [value]


def _policy_label(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        name = value.get("name") or value.get("PolicyName") or value.get("policy_name")
        kind = value.get("type") or value.get("PolicyType") or value.get("policy_type")
        if isinstance(name, str) and name:
            return f"{name} ({kind})" if isinstance(kind, str) and kind else name
    return None


def _principals_of_document(document: Mapping[str, Any], into: _Extracted) -> None:
    for statement in _as_list(document.get("Statement")):
        if not isinstance(statement, Mapping):
            continue
        principal = statement.get("Principal")
        if not isinstance(principal, Mapping):
            continue
        into.has_principals = True
        deny = str(statement.get("Effect", "Allow")).lower() == "deny"
        for kind in _PRINCIPAL_KINDS:
            for name in _as_list(principal.get(kind)):
                if isinstance(name, str) and name:
                    label = name if kind == "RAM" else f"{kind}: {name}"
                    into.principals.add(f"Deny {label}" if deny else label)


def _extract(value: Any, into: _Extracted, depth: int = 0) -> None:
    if depth > 4 or value is None:
        return
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                _extract(json.loads(text), into, depth + 1)
            except ValueError:
                return
        return
    if not isinstance(value, Mapping):
        return
    if "Statement" in value:
        _principals_of_document(value, into)
    for key in _DOCUMENT_KEYS:
        if key in value:
            _extract(value[key], into, depth + 1)
    for key in _PRINCIPAL_LIST_KEYS:
        if key in value:
            into.has_principals = True
            into.principals.update(p for p in _as_list(value[key]) if isinstance(p, str) and p)
    for key in _POLICY_LIST_KEYS:
        if key in value:
            into.has_policies = True
            for item in _as_list(value[key]):
                label = _policy_label(item)
                if label:
                    into.policies.add(label)


def _summary_lists(value: Any, key: str) -> list[str]:
    if not isinstance(value, Mapping):
        return []
    return sorted(p for p in _as_list(value.get(key)) if isinstance(p, str) and p)


def trust_policy_diff(before: Any, after: Any) -> PolicyDiff:
    """Principals and policies added, removed and kept from `before` to `after`.

    Either side may be a RAM trust policy document (a dict or its JSON text), a dict holding
    one (`trust_policy`, `document`, …), lists under `principals` / `policies`, or the
    worker's change summary (`principals_added` / `principals_removed`, as cloud calls record
    it). A side that is missing counts as empty."""
    if any(
        isinstance(side, Mapping) and ("principals_added" in side or "principals_removed" in side)
        for side in (before, after)
    ):
        added = _summary_lists(after, "principals_added") or _summary_lists(
            before, "principals_added"
        )
        removed = _summary_lists(after, "principals_removed") or _summary_lists(
            before, "principals_removed"
        )
        return PolicyDiff(
            principals_added=tuple(added), principals_removed=tuple(removed), recognised=True
        )
    old, new = _Extracted(), _Extracted()
    _extract(before, old)
    _extract(after, new)
    recognised = old.has_principals or new.has_principals or old.has_policies or new.has_policies
    return PolicyDiff(
        principals_added=tuple(sorted(new.principals - old.principals)),
        principals_removed=tuple(sorted(old.principals - new.principals)),
        principals_kept=tuple(sorted(old.principals & new.principals)),
        policies_added=tuple(sorted(new.policies - old.policies)),
        policies_removed=tuple(sorted(old.policies - new.policies)),
        policies_kept=tuple(sorted(old.policies & new.policies)),
        recognised=recognised,
    )


# --- generic before → after ------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    field: str
    before: str
    after: str


_MAX_SHOWN = 300


def short_json(value: Any, limit: int = _MAX_SHOWN) -> str:
    """A value as compact text for a table cell: strings as they are, the rest as JSON."""
    if value is None:
        return "—"
    if value == "":
        return "(empty)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def value_changes(before: Any, after: Any) -> list[Change]:
    """Top-level fields that differ between two JSON values (dicts compared key by key;
    anything else as one whole value)."""
    if before == after:
        return []
    if isinstance(before, Mapping | None) and isinstance(after, Mapping | None):
        old, new = dict(before or {}), dict(after or {})
        return [
            Change(field=key, before=short_json(old.get(key)), after=short_json(new.get(key)))
            for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)
        ]
    return [Change(field="value", before=short_json(before), after=short_json(after))]


# --- cloud request ids -----------------------------------------------------------------------

_REQUEST_ID_KEYS = frozenset({"request_id", "cloud_request_id", "previous_request_id"})
_REQUEST_ID_LIST_KEYS = frozenset({"request_ids", "cloud_request_ids"})


def cloud_request_ids(*values: Any) -> list[str]:
    """Every cloud request id named in the event's data (after, metadata…), in order, once.

    The portal's own request id (the web request or task that wrote the event) is a column
    of the event, not in its data, so it is never mistaken for a cloud one."""
    found: list[str] = []

    def walk(value: Any, depth: int) -> None:
        if depth > 6:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key in _REQUEST_ID_KEYS and isinstance(item, str) and item:
                    if item not in found:
                        found.append(item)
                elif key in _REQUEST_ID_LIST_KEYS:
                    for entry in _as_list(item):
                        if isinstance(entry, str) and entry and entry not in found:
                            found.append(entry)
                else:
                    walk(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                walk(item, depth + 1)

    for value in values:
        walk(value, 0)
    return found


# --- staff assignments and credential issuances (issue 6) ------------------------------------

ASSIGNED = "assigned"
UNASSIGNED = "unassigned"
CREDENTIAL_ISSUED = "credential_issued"

_ASSIGN_WORDS = frozenset({"assigned", "staff_assigned", "assignment_created", "person_assigned"})
_UNASSIGN_WORDS = frozenset(
    {"unassigned", "staff_unassigned", "assignment_removed", "assignment_ended", "removed_staff"}
)
_ASSIGNMENT_CREATE = frozenset({"created", "added", "granted", "started"})
_ASSIGNMENT_END = frozenset({"removed", "deleted", "revoked", "ended", "cancelled"})
_ISSUE_WORDS = frozenset({"issued", "issue", "issuance", "created", "fetched", "served"})


class EventLike(Protocol):
    action: str
    outcome: str
    actor_id: int | None
    actor_label: str
    actor_organisation_label: str
    target_type: str
    target_id: str
    target_label: str
    before: Any
    after: Any
    metadata: Any


def _data(event: EventLike) -> dict[str, Any]:
    """metadata overlaid with after: where services put the facts of the change."""
    merged: dict[str, Any] = {}
    if isinstance(event.after, Mapping):
        merged.update(event.after)
    if isinstance(event.metadata, Mapping):
        merged.update(event.metadata)
    return merged


def classify_access_event(event: EventLike) -> str | None:
    """ASSIGNED, UNASSIGNED, CREDENTIAL_ISSUED or None, from the action's words.

    Recognises `delegation.staff_assigned`, `assignment.created`, `staff.unassigned`,
    `credentials.issued`, `credential.issued`, `credentials_uri.fetched` (with an
    `expiration`) and the like. Refused attempts (outcome other than success) give access to
    nobody, so they are None."""
    if event.outcome != "success":
        return None
    action = event.action.lower()
    words = action.split(".")
    last = words[-1]
    if "credential" in action and (last in _ISSUE_WORDS or last.endswith("issued")):
        if last in {"fetched", "served"} and "expiration" not in _data(event):
            return None
        return CREDENTIAL_ISSUED
    in_assignment = any("assignment" in word for word in words[:-1])
    if last in _UNASSIGN_WORDS or (in_assignment and last in _ASSIGNMENT_END):
        return UNASSIGNED
    if last in _ASSIGN_WORDS or (in_assignment and last in _ASSIGNMENT_CREATE):
        return ASSIGNED
    return None


_PERSON_KEYS = ("person", "person_label", "staff", "staff_label", "user", "user_label")
_PERSON_EMAIL_KEYS = ("person_email", "staff_email", "user_email", "email")
_PERSON_ID_KEYS = ("person_id", "staff_id", "user_id", "assignee_id")


@dataclass(frozen=True)
class Person:
    key: str  # what groups rows: the user id when known, else the label
    label: str
    ram_user: str = ""


def person_of(event: EventLike, kind: str) -> Person:
    """Who an assignment or credential event is about.

    Prefers the explicit metadata keys (`person`, `person_id`, `person_email`, `ram_user`);
    falls back to the target (an assignment names its person) or, for credentials, to the
    actor (staff take their own credentials)."""
    data = _data(event)
    label = next(
        (str(data[k]) for k in _PERSON_KEYS if isinstance(data.get(k), str | int) and data[k]),
        "",
    )
    email = next((str(data[k]) for k in _PERSON_EMAIL_KEYS if data.get(k)), "")
    person_id = next((str(data[k]) for k in _PERSON_ID_KEYS if data.get(k) not in (None, "")), "")
    ram_user = str(data.get("ram_user") or data.get("ram_user_name") or "")
    if not label:
        label = email
    if not label:
        if kind == CREDENTIAL_ISSUED and event.actor_label:
            label = event.actor_label
            person_id = person_id or (str(event.actor_id) if event.actor_id else "")
        else:
            label = event.target_label or data.get("session_name", "") or "unknown person"
    key = f"id:{person_id}" if person_id else f"label:{email or label}"
    return Person(key=key, label=str(label), ram_user=ram_user)


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 time from event data (`2026-01-01T00:00:00Z`), as aware UTC; None if not."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def credential_expiration(event: EventLike) -> dt.datetime | None:
    data = _data(event)
    for key in ("expiration", "expires_at", "Expiration"):
        parsed = parse_time(data.get(key))
        if parsed is not None:
            return parsed
    return None


# --- one event, described --------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    mono: bool = False


@dataclass(frozen=True)
class EventDescription:
    title: str
    category: str  # lifecycle | approval | cloud | drift | staff | credentials | denied | other
    facts: tuple[Fact, ...] = ()
    policy_diff: PolicyDiff | None = None
    changes: tuple[Change, ...] = ()
    cloud_request_ids: tuple[str, ...] = ()
    mfa: bool | None = None


def _actor(event: EventLike) -> str:
    return event.actor_label or "The portal"


def _yes_no(value: Any) -> str:
    return "yes" if value is True else "no" if value is False else "not recorded"


def _facts(pairs: Iterable[tuple[str, Any, bool]]) -> tuple[Fact, ...]:
    return tuple(
        Fact(label=label, value=short_json(value), mono=mono)
        for label, value, mono in pairs
        if value not in (None, "", [], {})
    )


_DELEGATION_TITLES = {
    "delegation.applying": "The worker started applying the access in the cloud",
    "delegation.activated": "Active: the partner's principal is in the role's trust policy "
    "(verified in the cloud)",
    "delegation.expiring": "The end date passed: the worker removes the access",
    "delegation.revoked": "Revoked: the partner's principal is gone from the trust policy "
    "(verified in the cloud)",
    "delegation.expired": "Expired: the access ended at its end date",
}


def _describe_delegation(event: EventLike, data: dict[str, Any]) -> EventDescription | None:
    action = event.action
    actor = _actor(event)
    if action == "delegation.requested":
        return EventDescription(
            title=f"{actor} requested this access",
            category="lifecycle",
            facts=_facts(
                [("Reason", data.get("reason"), False), ("Until", data.get("ends_at"), True)]
            ),
        )
    if action == "delegation.withdrawn":
        return EventDescription(
            title=f"{actor} withdrew the request before it was decided",
            category="lifecycle",
        )
    if action in ("delegation.approved", "delegation.offered"):
        mfa = data.get("with_mfa")
        verb = "approved" if action == "delegation.approved" else "offered (and so approved)"
        how = " with two-factor authentication" if mfa is True else ""
        return EventDescription(
            title=f"{actor} {verb} this access{how}",
            category="approval",
            facts=_facts(
                [
                    ("Two-factor authentication", _yes_no(mfa), False),
                    ("Note", data.get("note"), False),
                    ("Reason", data.get("reason"), False),
                    ("Until", data.get("ends_at"), True),
                ]
            ),
            mfa=mfa if isinstance(mfa, bool) else None,
        )
    if action == "delegation.approve_denied":
        return EventDescription(
            title=f"{actor} tried to approve and was refused",
            category="denied",
            facts=_facts([("Why", data.get("denied_because"), False)]),
        )
    if action == "delegation.rejected":
        return EventDescription(
            title=f"{actor} rejected the request",
            category="lifecycle",
            facts=_facts([("Reason", data.get("reason"), False)]),
        )
    if action == "delegation.revoke_requested":
        return EventDescription(
            title=f"{actor} revoked this access",
            category="lifecycle",
            facts=_facts([("Reason", data.get("reason"), False)]),
        )
    if action == "delegation.retried":
        return EventDescription(
            title=f"{actor} asked the worker to try again",
            category="lifecycle",
            facts=_facts(
                [
                    ("Failed while", data.get("failed_phase"), False),
                    ("Previous error", data.get("previous_error_code"), True),
                ]
            ),
        )
    if action == "delegation.failed":
        phase = f" while {data['failed_phase']}" if data.get("failed_phase") else ""
        return EventDescription(
            title=f"Failed{phase}: {data.get('error_code') or 'cloud error'}",
            category="denied",
            facts=_facts(
                [
                    ("Error", data.get("error_code"), True),
                    ("Message", data.get("error_message"), False),
                ]
            ),
        )
    if action in _DELEGATION_TITLES:
        return EventDescription(title=_DELEGATION_TITLES[action], category="lifecycle")
    return None


def _describe_cloud(event: EventLike, data: dict[str, Any]) -> EventDescription:
    metadata = event.metadata if isinstance(event.metadata, Mapping) else {}
    after = event.after if isinstance(event.after, Mapping) else {}
    cloud_action = str(metadata.get("cloud_action") or "a cloud API")
    target = str(metadata.get("target") or "")
    request = metadata.get("request") if isinstance(metadata.get("request"), Mapping) else {}
    diff = trust_policy_diff(None, request) if request else None
    if request and request.get("policy_name"):
        label = _policy_label(
            {"name": request.get("policy_name"), "type": request.get("policy_type")}
        )
        if cloud_action.startswith("Attach"):
            diff = PolicyDiff(policies_added=(label,), recognised=True)  # type: ignore[arg-type]
        elif cloud_action.startswith("Detach"):
            diff = PolicyDiff(policies_removed=(label,), recognised=True)  # type: ignore[arg-type]
    if event.action == "cloud.call_intent":
        title = f"About to call {cloud_action}"
    elif event.action == "cloud.call_read":
        title = f"Read {cloud_action}: {after.get('outcome') or event.outcome}"
    else:
        title = f"{cloud_action}: {after.get('outcome') or event.outcome}"
    return EventDescription(
        title=title,
        category="cloud",
        facts=_facts(
            [
                ("Target", target, True),
                ("Error", after.get("error_code"), True),
                ("HTTP status", metadata.get("http_status"), True),
                ("Note", metadata.get("note"), False),
            ]
        ),
        policy_diff=diff if diff is not None and diff.recognised else None,
        cloud_request_ids=tuple(cloud_request_ids(event.after, event.metadata)),
    )


_DRIFT_TITLES = {
    "drift.detected": "Drift found",
    "drift.cleared": "Drift no longer seen in the cloud",
    "drift.repaired": "Drift repaired: the portal's state is put back",
    "drift.accepted": "Drift accepted: the portal adopts the cloud's state",
}


def _describe_access(event: EventLike, kind: str, data: dict[str, Any]) -> EventDescription:
    person = person_of(event, kind)
    if kind == CREDENTIAL_ISSUED:
        return EventDescription(
            title=f"Credentials issued to {person.label}",
            category="credentials",
            facts=_facts(
                [
                    ("Session name", data.get("session_name"), True),
                    ("AccessKey id", data.get("access_key_id"), True),
                    ("Expires", data.get("expiration") or data.get("expires_at"), True),
                    ("Duration (s)", data.get("duration_seconds"), True),
                    ("Session policy", data.get("session_policy"), False),
                ]
            ),
        )
    verb = "assigned to" if kind == ASSIGNED else "unassigned from"
    return EventDescription(
        title=f"{person.label} {verb} this access by {_actor(event)}",
        category="staff",
        facts=_facts(
            [
                ("RAM user", person.ram_user, True),
                ("Session policy", data.get("session_policy"), False),
            ]
        ),
    )


def describe_event(event: EventLike) -> EventDescription:
    """A readable title, the facts worth showing, and before → after for one event."""
    data = _data(event)
    request_ids = tuple(cloud_request_ids(event.after, event.metadata))
    if event.action.startswith("cloud."):
        return _describe_cloud(event, data)
    access_kind = classify_access_event(event)
    if access_kind is not None:
        described = _describe_access(event, access_kind, data)
    elif event.action.startswith("delegation."):
        described = _describe_delegation(event, data) or _generic(event)
    elif event.action in _DRIFT_TITLES:
        metadata = event.metadata if isinstance(event.metadata, Mapping) else {}
        described = EventDescription(
            title=f"{_DRIFT_TITLES[event.action]}: {event.target_label}",
            category="drift",
            facts=_facts(
                [
                    ("Subject", metadata.get("subject"), True),
                    ("Kind", metadata.get("kind"), True),
                    ("Decided by", event.actor_label, False),
                ]
            ),
        )
    else:
        described = _generic(event)
    diff = trust_policy_diff(event.before, event.after)
    return EventDescription(
        title=described.title,
        category="denied" if event.outcome != "success" else described.category,
        facts=described.facts,
        policy_diff=diff if diff.recognised and diff.changed else described.policy_diff,
        changes=tuple(value_changes(event.before, event.after))
        if not (diff.recognised and diff.changed)
        else (),
        cloud_request_ids=request_ids,
        mfa=described.mfa,
    )


def _generic(event: EventLike) -> EventDescription:
    target = event.target_label or event.target_type or ""
    return EventDescription(
        title=f"{event.action}{' — ' + target if target else ''}", category="other"
    )


# --- text that cannot hide what it says ------------------------------------------------------

# Bidirectional controls reorder what follows them; zero-width and other format characters
# are invisible. Both can make a label read as something it is not (CVE-2021-42574).
_INVISIBLE_RE = re.compile(
    "[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\ufff9-\ufffb]"
)


def has_invisible(text: str) -> bool:
    return bool(_INVISIBLE_RE.search(text))


def _marker(character: str) -> str:
    code = f"U+{ord(character):04X}"
    name = unicodedata.name(character, "CONTROL CHARACTER")
    return format_html('<span class="ctl" title="{}">[{}]</span>', f"{code} {name}", code)


def visible_text(value: Any) -> str:
    """Plain text with every bidirectional, zero-width or control character replaced by
    `[U+202E]`, for places that cannot hold markup (select options, titles, file names)."""
    text = "" if value is None else str(value)
    return _INVISIBLE_RE.sub(lambda match: f"[U+{ord(match.group()):04X}]", text)


def mark_invisible(value: Any) -> SafeString:
    """HTML-escaped text in which every bidirectional, zero-width or control character is
    replaced by a visible `[U+202E]` marker (its Unicode name in the tooltip)."""
    text = "" if value is None else str(value)
    parts: list[str] = []
    position = 0
    for match in _INVISIBLE_RE.finditer(text):
        parts.append(str(conditional_escape(text[position : match.start()])))
        parts.append(_marker(match.group()))
        position = match.end()
    parts.append(str(conditional_escape(text[position:])))
    return mark_safe("".join(parts))  # noqa: S308 (every piece above is escaped)
