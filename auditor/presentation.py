"""How an audit event reads to a person: pure functions, no database.

- `trust_policy_diff`: principals and permission policies added, removed and kept between two
  trust-policy-ish values (whole documents, the portal's own summaries, or lists).
- `value_changes`: a flat "field: old → new" list for any other before/after pair.
- `cloud_request_ids`: the Alibaba Cloud request ids an event's data names.
- `classify_access_event` / `person_of`: which events give or end a person's access (as the
  registry in `audit.actions` marks them) and whom they are about.
- `describe_event`: a one-line title, facts and diffs for the event browser and timeline;
  titles and categories come from the registry, the facts worth showing from `_FACTS`.
- `mark_invisible`: text with bidirectional and zero-width controls made visible.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.utils.functional import Promise
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from audit.actions import Access, AuditAction, Category

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


# --- staff assignments and credential issuances ----------------------------------------------

ASSIGNED = Access.ASSIGNED
UNASSIGNED = Access.UNASSIGNED
CREDENTIAL_ISSUED = Access.CREDENTIAL_ISSUED


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


def classify_access_event(event: EventLike) -> Access | None:
    """ASSIGNED, UNASSIGNED, CREDENTIAL_ISSUED or None, as the registry marks the action.

    Refused attempts (outcome other than success) give access to nobody, so they are None."""
    if event.outcome != "success":
        return None
    action = AuditAction.lookup(event.action)
    return action.info.access if action is not None else None


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


# --- whether a role can do anything ----------------------------------------------------------

# The role calls that decide whether credentials of the role still work: STS credentials
# cannot be recalled, but RAM evaluates the role's permission policies on every call, and a
# deleted role's sessions answer Forbidden.
ROLE_POWER_CALLS = ("CreateRole", "DeleteRole", "AttachPolicyToRole", "DetachPolicyFromRole")
# Kept in English in the report data and its exports; the pages translate them when drawn.
ROLE_DELETED = gettext_noop("the role was deleted")
POLICIES_DETACHED = gettext_noop("its permission policies were detached")
DETACHED_THEN_DELETED = gettext_noop("its permission policies were detached, then it was deleted")


@dataclass
class Powerless:
    start: dt.datetime
    end: dt.datetime | None  # None: still powerless
    why: str


@dataclass
class RolePower:
    """When a role could do nothing at all (deleted, or no permission policy attached), read
    from the successful role calls the portal recorded (`cloud.call_result`). Feed events
    oldest first; anything else is ignored. Only what the record shows counts: a role whose
    policies were never seen detached has its power."""

    attached: set[str] = field(default_factory=set)
    exists: bool = True
    periods: list[Powerless] = field(default_factory=list)

    def feed(self, event: EventLike, at: dt.datetime) -> None:
        if event.action != AuditAction.CLOUD_CALL_RESULT or event.outcome != "success":
            return
        metadata = _metadata(event)
        call = metadata.get("cloud_action")
        sent = metadata.get("request")
        request: Mapping[str, Any] = sent if isinstance(sent, Mapping) else {}
        policy = f"{request.get('policy_type')}/{request.get('policy_name')}"
        if call == "DeleteRole":
            self.exists = False
            self.attached.clear()
            self._stop(at, ROLE_DELETED)
        elif call == "CreateRole":
            self.exists = True
            self.attached.clear()
            if self.periods and self.periods[-1].end is None:
                self.periods[-1].why = POLICIES_DETACHED  # back, but with no policy yet
        elif call == "AttachPolicyToRole":
            self.attached.add(policy)
            if self.exists and self.periods and self.periods[-1].end is None:
                self.periods[-1].end = at
        elif call == "DetachPolicyFromRole":
            self.attached.discard(policy)
            if not self.attached:
                self._stop(at, POLICIES_DETACHED)

    def seen_in_use(self, at: dt.datetime) -> None:
        """The cloud shows the role trusting someone again (drift): what it can do is no
        longer known from the record, so it counts as able from here on."""
        self.exists = True
        if self.periods and self.periods[-1].end is None:
            self.periods[-1].end = at

    def _stop(self, at: dt.datetime, why: str) -> None:
        if not self.periods or self.periods[-1].end is not None:
            self.periods.append(Powerless(start=at, end=None, why=why))
        elif why == ROLE_DELETED and self.periods[-1].why == POLICIES_DETACHED:
            self.periods[-1].why = DETACHED_THEN_DELETED

    def first_stop(self, start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, str] | None:
        """When the role stopped working, and why, if it could do nothing at some moment in
        [start, end): the moment it stopped (earlier than `start` when it already could do
        nothing then)."""
        for period in self.periods:
            if period.end is not None and period.end <= start:
                continue
            if period.start >= end:
                return None
            return period.start, period.why
        return None

    def powerless_at(self, at: dt.datetime) -> bool:
        return any(p.start <= at and (p.end is None or at < p.end) for p in self.periods)


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
    return event.actor_label or gettext("The portal")


def _yes_no(value: Any) -> str:
    if value is True:
        return gettext("yes")
    return gettext("no") if value is False else gettext("not recorded")


# A fact's label is translated when the page is drawn, in the reader's language.
FactLabel = str | Promise


def _facts(pairs: Iterable[tuple[FactLabel, Any, bool]]) -> tuple[Fact, ...]:
    return tuple(
        Fact(label=str(label), value=short_json(value), mono=mono)
        for label, value, mono in pairs
        if value not in (None, "", [], {})
    )


def _metadata(event: EventLike) -> Mapping[str, Any]:
    return event.metadata if isinstance(event.metadata, Mapping) else {}


# The worker's phases, as a title reads them; another value is shown as recorded.
_PHASES: dict[str, FactLabel] = {
    "applying": _(" while applying"),
    "revoking": _(" while revoking"),
}


def _failed_phase(phase: Any) -> str:
    if not phase:
        return ""
    known = _PHASES.get(phase) if isinstance(phase, str) else None
    return str(known) if known is not None else gettext(" while %(phase)s") % {"phase": phase}


def _title_fields(event: EventLike, data: dict[str, Any]) -> dict[str, str]:
    """A value for every name in `TITLE_FIELDS`, whichever of them the title uses."""
    metadata = _metadata(event)
    after = event.after if isinstance(event.after, Mapping) else {}
    return {
        "actor": _actor(event),
        "target_label": event.target_label,
        "with_mfa": gettext(" with two-factor authentication")
        if data.get("with_mfa") is True
        else "",
        "failed_phase": _failed_phase(data.get("failed_phase")),
        "error_code": str(data.get("error_code") or gettext("cloud error")),
        "cloud_action": str(metadata.get("cloud_action") or gettext("a cloud API")),
        "cloud_outcome": str(after.get("outcome") or event.outcome),
    }


# What each titled event shows besides its title: (label, where the value comes from, shown
# in monospace). Values come from the event's data (metadata over after) unless a function
# reads them from elsewhere.
FactSource = str | Callable[[EventLike, dict[str, Any]], Any]


def _second_factors_removed(_event: EventLike, data: dict[str, Any]) -> str:
    # Stored as the English names accounts.services.MFA_TYPE_NAMES marks for translation.
    removed = str(data.get("removed") or "")
    return ", ".join(gettext(name) for name in removed.split(", ") if name)


_REASON: tuple[FactLabel, FactSource, bool] = (_("Reason"), "reason", False)
# What a refusal recorded after its rollback says (`audit_refusal`).
_WHY: tuple[FactLabel, FactSource, bool] = (_("Why"), "denied_because", False)
_UNTIL: tuple[FactLabel, FactSource, bool] = (_("Until"), "ends_at", True)
_APPROVAL_FACTS: tuple[tuple[FactLabel, FactSource, bool], ...] = (
    (_("Two-factor authentication"), lambda _event, data: _yes_no(data.get("with_mfa")), False),
    (_("Note"), "note", False),
    _REASON,
    _UNTIL,
)
# The owner's account a delegation's event (when not the role's home: a fleet's accounts,
# `delegations.lifecycle.transitions`), a drift finding or an activity alert is about: one role
# name, several accounts.
_ACCOUNT: tuple[FactLabel, FactSource, bool] = (_("Account"), "account_uid", True)
_DRIFT_FACTS: tuple[tuple[FactLabel, FactSource, bool], ...] = (
    _ACCOUNT,
    (_("Subject"), lambda event, _data: _metadata(event).get("subject"), True),
    (_("Kind"), lambda event, _data: _metadata(event).get("kind"), True),
    (_("Decided by"), lambda event, _data: event.actor_label, False),
)
# Runbooks: the OOS execution and the owner accounts a run touched.
_RUN_FACTS: tuple[tuple[FactLabel, FactSource, bool], ...] = (
    (_("OOS execution"), "execution_id", True),
    (_("Owner accounts"), "owner_accounts", True),
)
_FACTS: dict[AuditAction, tuple[tuple[FactLabel, FactSource, bool], ...]] = {
    AuditAction.DELEGATION_REQUESTED: (_REASON, _UNTIL),
    AuditAction.DELEGATION_APPROVED: _APPROVAL_FACTS,
    AuditAction.DELEGATION_OFFERED: _APPROVAL_FACTS,
    AuditAction.DELEGATION_APPROVE_DENIED: (_WHY,),
    AuditAction.PARTNER_ALLOWANCE_ADD_DENIED: (_WHY,),
    AuditAction.DELEGATION_REJECTED: (_REASON,),
    AuditAction.DELEGATION_REVOKE_REQUESTED: (_REASON,),
    AuditAction.DELEGATION_RETRIED: (
        (_("Failed while"), "failed_phase", False),
        (_("Previous error"), "previous_error_code", True),
    ),
    AuditAction.DELEGATION_FAILED: (
        (_("Error"), "error_code", True),
        (_("Message"), "error_message", False),
    ),
    AuditAction.MFA_RESET_BY_OPERATOR: (
        _REASON,
        (_("Second factors removed"), _second_factors_removed, False),
        (_("Sessions ended"), "sessions_ended", False),
    ),
    AuditAction.ACTIVITY_ALERT_RAISED: (_ACCOUNT,),
    AuditAction.DRIFT_DETECTED: _DRIFT_FACTS,
    AuditAction.DRIFT_CLEARED: _DRIFT_FACTS,
    AuditAction.DRIFT_REPAIRED: _DRIFT_FACTS,
    AuditAction.DRIFT_ACCEPTED: _DRIFT_FACTS,
    AuditAction.RUNBOOK_RUN_STARTED: (
        *_RUN_FACTS,
        (_("Accounts x regions"), "targets", True),
        (_("Command (SHA-256)"), "command_sha256", True),
    ),
    AuditAction.RUNBOOK_RUN_APPROVED: _RUN_FACTS,
    AuditAction.RUNBOOK_RUN_REJECTED: _RUN_FACTS,
    AuditAction.RUNBOOK_RUN_SUBMITTED: _RUN_FACTS,
    AuditAction.RUNBOOK_RUN_CANCEL_REQUESTED: _RUN_FACTS,
    AuditAction.RUNBOOK_RUN_FINISHED: (*_RUN_FACTS, (_("OOS status"), "oos_status", True)),
    AuditAction.RUNBOOK_TARGET_FINISHED: (
        (_("OOS execution"), "execution_id", True),
        (_("Account"), "account_uid", True),
        (_("Region"), "region_id", True),
        (_("OOS status"), "oos_status", True),
        (_("Instances"), "instances", True),
    ),
}
# Approvals say whether the approver had just used two-factor authentication.
_SHOWS_MFA = frozenset({AuditAction.DELEGATION_APPROVED, AuditAction.DELEGATION_OFFERED})


def _facts_of(action: AuditAction, event: EventLike, data: dict[str, Any]) -> tuple[Fact, ...]:
    sources = _FACTS.get(action, ())
    if action.value.startswith("delegation.") and _ACCOUNT not in sources:
        sources = (*sources, _ACCOUNT)
    return _facts(
        (label, data.get(source) if isinstance(source, str) else source(event, data), mono)
        for label, source, mono in sources
    )


def _describe_titled(
    action: AuditAction, title: str, event: EventLike, data: dict[str, Any]
) -> EventDescription:
    mfa = data.get("with_mfa") if action in _SHOWS_MFA else None
    return EventDescription(
        title=gettext(title).format_map(_title_fields(event, data)),
        category=action.info.category.value,
        facts=_facts_of(action, event, data),
        mfa=mfa if isinstance(mfa, bool) else None,
    )


def _describe_cloud(action: AuditAction, title: str, event: EventLike) -> EventDescription:
    metadata = _metadata(event)
    after = event.after if isinstance(event.after, Mapping) else {}
    cloud_action = str(metadata.get("cloud_action") or gettext("a cloud API"))
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
    return EventDescription(
        title=gettext(title).format_map(_title_fields(event, _data(event))),
        category=action.info.category.value,
        facts=_facts(
            [
                (gettext("Target"), str(metadata.get("target") or ""), True),
                (gettext("Account"), metadata.get("account_uid"), True),
                (gettext("Error"), after.get("error_code"), True),
                (gettext("HTTP status"), metadata.get("http_status"), True),
                (gettext("Note"), metadata.get("note"), False),
            ]
        ),
        policy_diff=diff if diff is not None and diff.recognised else None,
        cloud_request_ids=tuple(cloud_request_ids(event.after, event.metadata)),
    )


def _describe_access(event: EventLike, kind: str, data: dict[str, Any]) -> EventDescription:
    person = person_of(event, kind)
    if kind == CREDENTIAL_ISSUED:
        return EventDescription(
            title=gettext("Credentials issued to %(person)s") % {"person": person.label},
            category="credentials",
            facts=_facts(
                [
                    (gettext("Role"), data.get("role_arn"), True),
                    (gettext("Session name"), data.get("session_name"), True),
                    (gettext("AccessKey id"), data.get("access_key_id"), True),
                    (gettext("Expires"), data.get("expiration") or data.get("expires_at"), True),
                    (gettext("Duration (s)"), data.get("duration_seconds"), True),
                    (gettext("Session policy"), data.get("session_policy"), False),
                ]
            ),
        )
    names = {"person": person.label, "actor": _actor(event)}
    title = (
        gettext("%(person)s assigned to this access by %(actor)s")
        if kind == ASSIGNED
        else gettext("%(person)s unassigned from this access by %(actor)s")
    )
    return EventDescription(
        title=title % names,
        category="staff",
        facts=_facts(
            [
                # The role's ARN names the owner's account (one role name, several accounts).
                (gettext("Role"), data.get("role_arn"), True),
                (gettext("RAM user"), person.ram_user, True),
                (gettext("Session policy"), data.get("session_policy"), False),
            ]
        ),
    )


def describe_event(event: EventLike) -> EventDescription:
    """A readable title, the facts worth showing, and before → after for one event.

    The registry (`audit.actions`) gives the title and category; an action it does not know
    reads as its name and target."""
    data = _data(event)
    action = AuditAction.lookup(event.action)
    title = action.info.title if action is not None else None
    if action is not None and title is not None and action.info.category == Category.CLOUD:
        return _describe_cloud(action, title, event)
    access_kind = classify_access_event(event)
    if access_kind is not None:
        described = _describe_access(event, access_kind, data)
    elif action is not None and title is not None:
        described = _describe_titled(action, title, event, data)
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
        cloud_request_ids=tuple(cloud_request_ids(event.after, event.metadata)),
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
