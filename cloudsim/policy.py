"""The RAM policy language: parsing, validation and evaluation. Pure functions, no I/O.

Grammar (``alibaba-api.md`` §11, Alibaba's "Policy structure and syntax" and "Conditional
operators" pages)::

    {"Version": "1",
     "Statement": [{"Effect": "Allow" | "Deny",
                    "Action" | "NotAction": "svc:Name" | [...],      # * and ? wildcards
                    "Resource": "*" | "acs:svc:region:account:path" | [...],
                    "Condition": {Operator: {ConditionKey: value | [values]}}}]}

A trust policy (a role's ``AssumeRolePolicyDocument``) has the same outer shape; its
statements carry ``"Action": "sts:AssumeRole"`` and a ``Principal`` with ``RAM``, ``Service``
and/or ``Federated`` instead of ``Resource``.

Both parsers return a *normalised* document: ``Statement`` is a list, every Action, Resource,
principal and condition value is a list. Normalised documents are valid input again, so
``parse(serialise(parse(text))) == parse(text)``. :func:`evaluate` and :func:`trust_admits`
accept normalised documents and the looser written forms alike.

Evaluation choices, in one place (cloudsim's README repeats them):

- Explicit Deny in any statement wins; otherwise any matching Allow allows; otherwise the
  request is implicitly denied.
- Actions match case-insensitively (``ecs:describe*`` matches ``ecs:DescribeInstances``);
  resources match case-sensitively, like ARNs in AWS; ``*`` matches any run of characters
  (including ``:`` and ``/``) and ``?`` exactly one.
- Condition keys are compared case-insensitively. Several operators, and several keys under
  one operator, must all hold (AND); several values for one key are alternatives (OR).
- A condition key missing from the request context makes a positive operator false and a
  negated one (``StringNotEquals``, ``StringNotEqualsIgnoreCase``, ``StringNotLike``,
  ``NumericNotEquals``, ``DateNotEquals``, ``NotIpAddress``) true. This is AWS's documented
  rule; Alibaba documents none, and it is the only choice under which a
  ``Deny`` + ``NotIpAddress`` statement fails closed for requests without a source address.
  A negated operator holds when the request value matches *none* of the listed values.
- Request values the operator cannot read (an unparsable date, a non-numeric string under a
  numeric operator) never match.
- Principal names in trust policies (user and role names) compare case-insensitively;
  account UIDs exactly.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

# CreatePolicy/CreatePolicyVersion: 6144 characters per the current SDK docstrings (the 2021
# docs said 4096 and 2048). The trust-policy limit is undocumented; 4096 is cloudsim's choice.
MAX_POLICY_DOCUMENT_LENGTH = 6144
MAX_TRUST_POLICY_LENGTH = 4096
# The session policy passed to AssumeRole (SDK docstring: 1-2048 characters).
MAX_SESSION_POLICY_LENGTH = 2048

POLICY_VERSION = "1"
ASSUME_ROLE_ACTION = "sts:AssumeRole"

# Well-known request-context keys, spelled as Alibaba documents them.
KEY_SOURCE_IP = "acs:SourceIp"
KEY_CURRENT_TIME = "acs:CurrentTime"
KEY_MFA_PRESENT = "acs:MFAPresent"
KEY_SECURE_TRANSPORT = "acs:SecureTransport"
KEY_EXTERNAL_ID = "sts:ExternalId"


class PolicyDocumentError(Exception):
    """A policy document is not acceptable; the message says what is wrong and where."""


class Decision(enum.Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


# --- grammar -------------------------------------------------------------------------------

_POLICY_KEYS = frozenset({"Version", "Statement"})
_STATEMENT_KEYS = frozenset({"Effect", "Action", "NotAction", "Resource", "Condition"})
_TRUST_STATEMENT_KEYS = frozenset({"Effect", "Action", "Principal", "Condition"})
_PRINCIPAL_KEYS = ("RAM", "Service", "Federated")
_EFFECTS = ("Allow", "Deny")

# "ecs:DescribeInstances", "ecs:Describe*", "*:List*", "*".
_ACTION_RE = re.compile(r"\*|[A-Za-z0-9*?_-]+:[A-Za-z0-9*?_.-]+")
# "*" or acs:<service>:<region>:<account>:<relative id>; region and account may be empty.
_RESOURCE_RE = re.compile(
    r"\*|acs:[A-Za-z0-9*?_-]*:[A-Za-z0-9*?_-]*:[A-Za-z0-9*?_-]*:[^\x00-\x1f]+"
)
# "acs:SourceIp", "acs:ResourceTag/team", "sts:ExternalId", "saml:recipient".
_CONDITION_KEY_RE = re.compile(r"[A-Za-z0-9_-]+:[A-Za-z0-9_./@*-]+")
_NAME = r"[A-Za-z0-9._@-]{1,64}"
_RAM_PRINCIPAL_RE = re.compile(rf"acs:ram::(\d{{1,32}}):(root|user/{_NAME}|role/{_NAME})")
_SERVICE_PRINCIPAL_RE = re.compile(r"(?:\d{1,32}@)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.aliyuncs\.com")
_FEDERATED_PRINCIPAL_RE = re.compile(
    rf"acs:ram::\d{{1,32}}:(?:saml-provider|oidc-provider)/{_NAME}"
)
# Caller ARNs: a user, a role (or one of its sessions, in AssumeRole's or GetCallerIdentity's
# spelling), the account root, or a federated identity provider.
_CALLER_ARN_RE = re.compile(
    r"acs:ram::(?P<uid>\d{1,32}):(?:"
    r"(?P<root>root)"
    r"|user/(?P<user>[^/]+)"
    r"|(?:role|assumed-role)/(?P<role>[^/]+)(?:/[^/]*)?"
    r"|(?P<provider>(?:saml|oidc)-provider/[^/]+))",
    re.IGNORECASE,
)


# --- JSON loading --------------------------------------------------------------------------


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise PolicyDocumentError(f'The key "{key}" appears twice in one object.')
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise PolicyDocumentError(f"{name} is not a valid JSON value.")


def _load_json(text: Any, *, max_length: int, what: str) -> Any:
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyDocumentError(f"The {what} is not valid UTF-8 text.") from None
    if not isinstance(text, str):
        raise PolicyDocumentError(f"The {what} must be a JSON text.")
    if not text.strip():
        raise PolicyDocumentError(f"The {what} is empty.")
    if len(text) > max_length:
        raise PolicyDocumentError(
            f"The {what} is {len(text)} characters long; the limit is {max_length}."
        )
    try:
        return json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except PolicyDocumentError:
        raise
    except RecursionError:
        raise PolicyDocumentError(f"The {what} is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing 4300+ digit numbers
        raise PolicyDocumentError(f"The {what} is not valid JSON: {exc}") from None


# --- validation ----------------------------------------------------------------------------


def _describe(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _check_object(raw: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise PolicyDocumentError(f"{where} must be an object, not {_describe(raw)}.")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        names = ", ".join(f'"{name}"' for name in unknown)
        raise PolicyDocumentError(
            f"{where} has unknown element(s) {names}; allowed: {', '.join(sorted(allowed))}."
        )
    return raw


def _string_list(raw: Any, where: str) -> list[str]:
    """A string or a non-empty list of non-empty strings, as a list."""
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list):
        raise PolicyDocumentError(f"{where} must be a string or a list of strings.")
    if not values:
        raise PolicyDocumentError(f"{where} must not be an empty list.")
    for value in values:
        if not isinstance(value, str):
            raise PolicyDocumentError(f"{where} must contain only strings, not {_describe(value)}.")
        if not value.strip():
            raise PolicyDocumentError(f"{where} must not contain an empty string.")
    return list(values)


def _check_version(document: dict[str, Any], what: str) -> None:
    if "Version" not in document:
        raise PolicyDocumentError(f'The {what} has no "Version"; it must be "1".')
    if document["Version"] != POLICY_VERSION:
        raise PolicyDocumentError(
            f'The {what} has Version {json.dumps(document["Version"])}; it must be "1".'
        )


def _statement_list(document: dict[str, Any], what: str) -> list[Any]:
    if "Statement" not in document:
        raise PolicyDocumentError(f'The {what} has no "Statement".')
    statements = document["Statement"]
    if isinstance(statements, dict):  # one statement written without the list
        statements = [statements]
    if not isinstance(statements, list):
        raise PolicyDocumentError(
            f"Statement must be a list of objects, not {_describe(statements)}."
        )
    if not statements:
        raise PolicyDocumentError("Statement must contain at least one statement.")
    return statements


def _check_effect(statement: dict[str, Any], where: str) -> str:
    if "Effect" not in statement:
        raise PolicyDocumentError(f'{where} has no "Effect"; it must be "Allow" or "Deny".')
    effect = statement["Effect"]
    if effect not in _EFFECTS:
        raise PolicyDocumentError(
            f'{where}.Effect is {json.dumps(effect)}; it must be "Allow" or "Deny".'
        )
    return effect


def normalise_policy_document(document: Any) -> dict[str, Any]:
    """Validate an already-decoded permission policy and return its normalised form."""
    document = _check_object(document, "The policy document", _POLICY_KEYS)
    _check_version(document, "policy document")
    statements = []
    for index, raw in enumerate(_statement_list(document, "policy document")):
        where = f"Statement[{index}]"
        raw = _check_object(raw, where, _STATEMENT_KEYS)
        statement: dict[str, Any] = {"Effect": _check_effect(raw, where)}
        if ("Action" in raw) == ("NotAction" in raw):
            raise PolicyDocumentError(f'{where} must have exactly one of "Action" or "NotAction".')
        action_key = "Action" if "Action" in raw else "NotAction"
        actions = _string_list(raw[action_key], f"{where}.{action_key}")
        for action in actions:
            if not _ACTION_RE.fullmatch(action):
                raise PolicyDocumentError(
                    f'{where}.{action_key} "{action}" is not of the form "service:ActionName" '
                    'or "*".'
                )
        statement[action_key] = actions
        if "Resource" not in raw:
            raise PolicyDocumentError(f'{where} has no "Resource".')
        resources = _string_list(raw["Resource"], f"{where}.Resource")
        for resource in resources:
            if not _RESOURCE_RE.fullmatch(resource):
                raise PolicyDocumentError(
                    f'{where}.Resource "{resource}" is neither "*" nor an ARN of the form '
                    '"acs:service:region:account:resource".'
                )
        statement["Resource"] = resources
        if "Condition" in raw:
            statement["Condition"] = _condition_block(raw["Condition"], f"{where}.Condition")
        statements.append(statement)
    return {"Version": POLICY_VERSION, "Statement": statements}


def parse_policy_document(
    text: str | bytes, *, max_length: int = MAX_POLICY_DOCUMENT_LENGTH
) -> dict[str, Any]:
    """Parse and validate a permission policy; raise PolicyDocumentError if it is not one."""
    return normalise_policy_document(
        _load_json(text, max_length=max_length, what="policy document")
    )


def normalise_trust_policy(document: Any) -> dict[str, Any]:
    """Validate an already-decoded trust policy and return its normalised form."""
    document = _check_object(document, "The trust policy", _POLICY_KEYS)
    _check_version(document, "trust policy")
    statements = []
    for index, raw in enumerate(_statement_list(document, "trust policy")):
        where = f"Statement[{index}]"
        raw = _check_object(raw, where, _TRUST_STATEMENT_KEYS)
        statement: dict[str, Any] = {"Effect": _check_effect(raw, where)}
        if "Action" not in raw:
            raise PolicyDocumentError(f'{where} has no "Action"; it must be "sts:AssumeRole".')
        actions = _string_list(raw["Action"], f"{where}.Action")
        for action in actions:
            if action.lower() != ASSUME_ROLE_ACTION.lower():
                raise PolicyDocumentError(
                    f'{where}.Action "{action}" is not allowed in a trust policy; '
                    'use "sts:AssumeRole".'
                )
        statement["Action"] = actions
        if "Principal" not in raw:
            raise PolicyDocumentError(f'{where} has no "Principal".')
        statement["Principal"] = _principal(raw["Principal"], f"{where}.Principal")
        if "Condition" in raw:
            statement["Condition"] = _condition_block(raw["Condition"], f"{where}.Condition")
        statements.append(statement)
    return {"Version": POLICY_VERSION, "Statement": statements}


def parse_trust_policy(
    text: str | bytes, *, max_length: int = MAX_TRUST_POLICY_LENGTH
) -> dict[str, Any]:
    """Parse and validate a role's trust policy; raise PolicyDocumentError if it is not one."""
    return normalise_trust_policy(_load_json(text, max_length=max_length, what="trust policy"))


def _principal(raw: Any, where: str) -> dict[str, list[str]]:
    raw = _check_object(raw, where, frozenset(_PRINCIPAL_KEYS))
    if not raw:
        raise PolicyDocumentError(
            f'{where} must name at least one of "RAM", "Service", "Federated".'
        )
    checks = {
        "RAM": (
            _RAM_PRINCIPAL_RE,
            '"acs:ram::<uid>:root", "acs:ram::<uid>:user/<name>" or "acs:ram::<uid>:role/<name>"',
        ),
        "Service": (_SERVICE_PRINCIPAL_RE, 'a service name such as "ecs.aliyuncs.com"'),
        "Federated": (_FEDERATED_PRINCIPAL_RE, '"acs:ram::<uid>:saml-provider/<name>"'),
    }
    principal: dict[str, list[str]] = {}
    for kind in _PRINCIPAL_KEYS:
        if kind not in raw:
            continue
        pattern, expected = checks[kind]
        values = _string_list(raw[kind], f"{where}.{kind}")
        for value in values:
            if not pattern.fullmatch(value):
                raise PolicyDocumentError(f'{where}.{kind} "{value}" is not {expected}.')
        principal[kind] = values
    return principal


# --- conditions ----------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        return _number_from_text(value)
    return None


@lru_cache(maxsize=1024)
def _number_from_text(text: str) -> Decimal | None:
    if len(text) > 64:
        return None
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _as_moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):  # epoch seconds
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        return _moment_from_text(value)
    return None


@lru_cache(maxsize=1024)
def _moment_from_text(text: str) -> datetime | None:
    try:
        return _as_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


@lru_cache(maxsize=1024)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _glob(pattern: str, value: str) -> bool:
    # Two-pointer matching with one remembered star: O(len(pattern) * len(value)) at worst,
    # where a regex translation can backtrack exponentially on patterns like "*a*a*a*a*b".
    p_index = v_index = 0
    star, resume = -1, 0
    while v_index < len(value):
        # The star test comes first: a "*" in the value must not be taken for the pattern's.
        if p_index < len(pattern) and pattern[p_index] == "*":
            star, resume = p_index, v_index
            p_index += 1
        elif p_index < len(pattern) and pattern[p_index] in ("?", value[v_index]):
            p_index += 1
            v_index += 1
        elif star >= 0:
            p_index = star + 1
            resume += 1
            v_index = resume
        else:
            return False
    while p_index < len(pattern) and pattern[p_index] == "*":
        p_index += 1
    return p_index == len(pattern)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Whether ``value`` matches a policy pattern: ``*`` is any run of characters, ``?`` one."""
    if pattern == "*":
        return True
    if ignore_case:
        pattern, value = pattern.casefold(), value.casefold()
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    return _glob(pattern, value)


def _string_equals(request: Any, policy: Any) -> bool:
    return _as_text(request) == _as_text(policy)


def _string_equals_ignore_case(request: Any, policy: Any) -> bool:
    return _as_text(request).casefold() == _as_text(policy).casefold()


def _string_like(request: Any, policy: Any) -> bool:
    return wildcard_match(_as_text(policy), _as_text(request))


def _numeric(compare: Callable[[Decimal, Decimal], bool]) -> Callable[[Any, Any], bool]:
    def match(request: Any, policy: Any) -> bool:
        left, right = _as_number(request), _as_number(policy)
        return left is not None and right is not None and compare(left, right)

    return match


def _date(compare: Callable[[datetime, datetime], bool]) -> Callable[[Any, Any], bool]:
    def match(request: Any, policy: Any) -> bool:
        left, right = _as_moment(request), _as_moment(policy)
        return left is not None and right is not None and compare(left, right)

    return match


def _bool_equals(request: Any, policy: Any) -> bool:
    left, right = _as_bool(request), _as_bool(policy)
    return left is not None and left == right


def _ip_in(request: Any, policy: Any) -> bool:
    if not isinstance(request, str):
        request = _as_text(request)
    address, network = _address(request), _network(_as_text(policy))
    return address is not None and network is not None and address in network


def _valid_string(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _valid_number(value: Any) -> bool:
    return _as_number(value) is not None


def _valid_date(value: Any) -> bool:
    if isinstance(value, str):
        return _moment_from_text(value) is not None
    return isinstance(value, int | float) and _as_moment(value) is not None


def _valid_bool(value: Any) -> bool:
    return _as_bool(value) is not None


def _valid_network(value: Any) -> bool:
    return isinstance(value, str) and _network(value) is not None


@dataclass(frozen=True)
class _Operator:
    match: Callable[[Any, Any], bool]
    negated: bool
    accepts: Callable[[Any], bool]
    expected: str


def _operators() -> dict[str, _Operator]:
    text, number, moment = "a string", "a number", "an ISO 8601 date and time"
    ops = {
        "StringEquals": _Operator(_string_equals, False, _valid_string, text),
        "StringNotEquals": _Operator(_string_equals, True, _valid_string, text),
        "StringEqualsIgnoreCase": _Operator(_string_equals_ignore_case, False, _valid_string, text),
        "StringNotEqualsIgnoreCase": _Operator(
            _string_equals_ignore_case, True, _valid_string, text
        ),
        "StringLike": _Operator(_string_like, False, _valid_string, text),
        "StringNotLike": _Operator(_string_like, True, _valid_string, text),
        "Bool": _Operator(_bool_equals, False, _valid_bool, "true or false"),
        "IpAddress": _Operator(_ip_in, False, _valid_network, "an IP address or CIDR block"),
        "NotIpAddress": _Operator(_ip_in, True, _valid_network, "an IP address or CIDR block"),
    }
    comparisons: dict[str, tuple[Callable[[Any, Any], bool], bool]] = {
        "Equals": (lambda a, b: a == b, False),
        "NotEquals": (lambda a, b: a == b, True),
        "LessThan": (lambda a, b: a < b, False),
        "LessThanEquals": (lambda a, b: a <= b, False),
        "GreaterThan": (lambda a, b: a > b, False),
        "GreaterThanEquals": (lambda a, b: a >= b, False),
    }
    for suffix, (compare, negated) in comparisons.items():
        ops[f"Numeric{suffix}"] = _Operator(_numeric(compare), negated, _valid_number, number)
        ops[f"Date{suffix}"] = _Operator(_date(compare), negated, _valid_date, moment)
    return ops


CONDITION_OPERATORS: dict[str, _Operator] = _operators()


def _condition_block(raw: Any, where: str) -> dict[str, dict[str, list[Any]]]:
    if not isinstance(raw, dict):
        raise PolicyDocumentError(f"{where} must be an object, not {_describe(raw)}.")
    if not raw:
        raise PolicyDocumentError(f"{where} must contain at least one operator.")
    block: dict[str, dict[str, list[Any]]] = {}
    for operator_name, keys in raw.items():
        operator = CONDITION_OPERATORS.get(operator_name)
        if operator is None:
            raise PolicyDocumentError(
                f'{where} uses the unsupported operator "{operator_name}"; supported: '
                f"{', '.join(CONDITION_OPERATORS)}."
            )
        here = f"{where}.{operator_name}"
        if not isinstance(keys, dict):
            raise PolicyDocumentError(f"{here} must be an object, not {_describe(keys)}.")
        if not keys:
            raise PolicyDocumentError(f"{here} must name at least one condition key.")
        checked: dict[str, list[Any]] = {}
        for key, raw_values in keys.items():
            if not _CONDITION_KEY_RE.fullmatch(key):
                raise PolicyDocumentError(
                    f'{here} key "{key}" is not a condition key such as "acs:SourceIp".'
                )
            values = raw_values if isinstance(raw_values, list) else [raw_values]
            if not values:
                raise PolicyDocumentError(f'{here}."{key}" must not be an empty list.')
            for value in values:
                if not operator.accepts(value):
                    raise PolicyDocumentError(
                        f'{here}."{key}" value {json.dumps(value)} is not {operator.expected}.'
                    )
            checked[key] = list(values)
        block[operator_name] = checked
    return block


def _context_lookup(context: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Request context with lower-cased keys and list values; None means absent."""
    lookup: dict[str, list[Any]] = {}
    for key, value in context.items():
        if value is None:
            continue
        values = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        lookup.setdefault(str(key).lower(), []).extend(values)
    return lookup


def _conditions_hold(block: Mapping[str, Any] | None, context: dict[str, list[Any]]) -> bool:
    if not block:
        return True
    for operator_name, keys in block.items():
        operator = CONDITION_OPERATORS.get(operator_name)
        if operator is None:  # unreachable for parsed documents; an unknown test fails closed
            return False
        for key, raw_values in keys.items():
            request_values = context.get(key.lower())
            if not request_values:
                if operator.negated:
                    continue
                return False
            policy_values = raw_values if isinstance(raw_values, list) else [raw_values]
            matched = any(
                operator.match(request, policy)
                for request in request_values
                for policy in policy_values
            )
            if matched == operator.negated:
                return False
    return True


def request_context(
    *,
    source_ip: str | None,
    now: datetime,
    secure_transport: bool,
    mfa_present: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The global condition keys of one request, ready for :func:`evaluate`.

    ``mfa_present=None`` leaves ``acs:MFAPresent`` out (AccessKey calls carry no MFA claim).
    """
    context: dict[str, Any] = {
        KEY_CURRENT_TIME: _as_utc(now).strftime("%Y-%m-%dT%H:%M:%SZ"),
        KEY_SECURE_TRANSPORT: secure_transport,
    }
    if source_ip:
        context[KEY_SOURCE_IP] = source_ip
    if mfa_present is not None:
        context[KEY_MFA_PRESENT] = mfa_present
    if extra:
        context.update(extra)
    return context


# --- evaluation ----------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return _as_list(document.get("Statement"))


def _statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: dict[str, list[Any]]
) -> bool:
    if "Action" in statement:
        if not any(
            wildcard_match(p, action, ignore_case=True) for p in _as_list(statement["Action"])
        ):
            return False
    elif any(
        wildcard_match(p, action, ignore_case=True) for p in _as_list(statement.get("NotAction"))
    ):
        return False
    if not any(wildcard_match(p, resource) for p in _as_list(statement.get("Resource"))):
        return False
    return _conditions_hold(statement.get("Condition"), context)


def evaluate(
    documents: Iterable[Mapping[str, Any]],
    *,
    action: str,
    resource: str,
    context: Mapping[str, Any],
) -> Decision:
    """Decide one request against one identity's policies: Deny wins, then Allow, else deny."""
    lookup = _context_lookup(context)
    allowed = False
    for document in documents:
        for statement in _statements(document):
            if not _statement_applies(statement, action, resource, lookup):
                continue
            if statement.get("Effect") == "Deny":
                return Decision.EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def evaluate_layers(
    layers: Iterable[Iterable[Mapping[str, Any]]],
    *,
    action: str,
    resource: str,
    context: Mapping[str, Any],
) -> Decision:
    """Intersect several policy sets, e.g. a role's policies and an AssumeRole session policy.

    An explicit Deny in any layer wins; the request is allowed only if every layer allows it.
    """
    decision = Decision.ALLOW
    for documents in layers:
        layer = evaluate(documents, action=action, resource=resource, context=context)
        if layer is Decision.EXPLICIT_DENY:
            return layer
        if layer is Decision.IMPLICIT_DENY:
            decision = layer
    return decision


# --- trust policies ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Caller:
    uid: str
    kind: str  # "root" | "user" | "role" | "provider" | "unknown"
    name: str


def _parse_caller(caller_arn: str) -> _Caller:
    match = _CALLER_ARN_RE.fullmatch(caller_arn or "")
    if match is None:
        return _Caller("", "unknown", "")
    for kind in ("root", "user", "role", "provider"):
        if match.group(kind) is not None:
            return _Caller(match.group("uid"), kind, match.group(kind))
    return _Caller("", "unknown", "")  # pragma: no cover - the regex always sets one group


def _ram_principal_admits(principal: str, caller: _Caller) -> bool:
    match = _RAM_PRINCIPAL_RE.fullmatch(principal)
    if match is None or match.group(1) != caller.uid:
        return False
    target = match.group(2)
    if target == "root":
        # The whole account: its RAM users and role sessions. The root identity itself
        # cannot assume roles at all (STS refuses it before trust is consulted).
        return caller.kind in ("user", "role")
    kind, _, name = target.partition("/")
    return caller.kind == kind and caller.name.casefold() == name.casefold()


def _principal_admits(
    principal: Mapping[str, Any], caller: _Caller, caller_arn: str, service: str | None
) -> bool:
    if service is not None:
        return any(service.lower() == s.lower() for s in _as_list(principal.get("Service")))
    if caller.kind == "provider":
        return any(caller_arn.lower() == f.lower() for f in _as_list(principal.get("Federated")))
    return any(_ram_principal_admits(p, caller) for p in _as_list(principal.get("RAM")))


def trust_admits(
    document: Mapping[str, Any],
    *,
    caller_arn: str,
    caller_account: str,
    service: str | None = None,
    context: Mapping[str, Any],
) -> bool:
    """Whether a role's trust policy lets this caller assume the role (``trust_decision``)."""
    return trust_decision(
        document,
        caller_arn=caller_arn,
        caller_account=caller_account,
        service=service,
        context=context,
    ).allowed


def trust_decision(
    document: Mapping[str, Any],
    *,
    caller_arn: str,
    caller_account: str,
    service: str | None = None,
    context: Mapping[str, Any],
) -> Decision:
    """A role's trust policy's answer to this caller: Allow, or which kind of deny.

    ``caller_arn`` is a RAM user (``acs:ram::UID:user/NAME``), a role session
    (``acs:ram::UID:assumed-role/ROLE/SESSION`` or ``acs:ram::UID:role/ROLE/SESSION``) or a
    federated provider; ``caller_account`` must be the UID in that ARN (a mismatch admits
    nothing). With ``service`` set (e.g. ``"oos.aliyuncs.com"``) only Service principals are
    considered. A matching Deny statement wins over any Allow.
    """
    caller = _parse_caller(caller_arn)
    if service is None and (caller.kind == "unknown" or caller.uid != caller_account):
        return Decision.IMPLICIT_DENY
    lookup = _context_lookup(context)
    admitted = Decision.IMPLICIT_DENY
    for statement in _statements(document):
        actions = _as_list(statement.get("Action"))
        if not any(wildcard_match(a, ASSUME_ROLE_ACTION, ignore_case=True) for a in actions):
            continue
        principal = statement.get("Principal")
        if not isinstance(principal, Mapping):
            continue
        if not _principal_admits(principal, caller, caller_arn, service):
            continue
        if not _conditions_hold(statement.get("Condition"), lookup):
            continue
        if statement.get("Effect") == "Deny":
            return Decision.EXPLICIT_DENY
        if statement.get("Effect") == "Allow":
            admitted = Decision.ALLOW
    return admitted


def trusted_accounts(document: Mapping[str, Any]) -> set[str]:
    """Account UIDs named by RAM principals in Allow statements (for operator pages)."""
    accounts = set()
    for statement in _statements(document):
        if statement.get("Effect") != "Allow" or not isinstance(
            statement.get("Principal"), Mapping
        ):
            continue
        for principal in _as_list(statement["Principal"].get("RAM")):
            match = _RAM_PRINCIPAL_RE.fullmatch(principal)
            if match:
                accounts.add(match.group(1))
    return accounts


def serialise_policy_document(document: Mapping[str, Any]) -> str:
    """Compact JSON for a (normalised) policy or trust document."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
