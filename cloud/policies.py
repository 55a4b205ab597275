"""Pure functions over Alibaba Cloud names, ARNs and policy documents. No I/O.

Everything the portal sends to RAM/STS as a name or a document is built or checked here, so a
bad value is refused before any cloud call. Documents are plain dicts; `policy_to_text` gives
the minified, key-sorted JSON the cloud receives, and every builder and the trust-policy merge
return the *canonical* form (sorted, de-duplicated), so "no change" is detected by comparing
canonical forms rather than bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "MAX_ROLE_DESCRIPTION_LENGTH",
    "MAX_SESSION_POLICY_LENGTH",
    "PORTAL_MARKER",
    "ROLE_SESSION_NAME_MAX_LENGTH",
    "PolicyError",
    "Principal",
    "TrustPrincipals",
    "account_root_arn",
    "assume_role_policy_for",
    "build_trust_policy",
    "canonical_policy",
    "description_with_marker",
    "ecs_instances_session_policy",
    "external_id_condition",
    "has_marker",
    "high_privilege_reasons",
    "merge_trust_policy",
    "parking_lock_statement",
    "parse_principal",
    "parse_role_arn",
    "parse_session_policy",
    "policy_to_text",
    "ram_user_arn",
    "read_only_ecs_session_policy",
    "role_arn",
    "role_session_name_for",
    "trust_policy_equal",
    "trust_policy_principals",
    "validate_account_uid",
    "validate_external_id",
    "validate_policy_name",
    "validate_policy_type",
    "validate_ram_user_name",
    "validate_role_name",
    "validate_role_session_name",
]


class PolicyError(ValueError):
    """A name, ARN or policy document the portal must not send. The message is user-facing."""


# --- names and identifiers ------------------------------------------------------------------
# Explicit ASCII classes and fullmatch: `\d` and `str.isdigit()` accept Arabic-Indic and
# full-width digits, and `$` would accept a trailing newline.
_ACCOUNT_UID = re.compile(r"[0-9]{1,32}")
_ROLE_NAME = re.compile(r"[A-Za-z0-9.\-]{1,64}")
_RAM_USER_NAME = re.compile(r"[A-Za-z0-9._\-]{1,64}")
_POLICY_NAME = re.compile(r"[A-Za-z0-9\-]{1,128}")
_SERVICE_PRINCIPAL = re.compile(r"[a-z0-9][a-z0-9.\-]{0,126}\.aliyuncs\.com")
POLICY_TYPES = ("System", "Custom")


def _shown(value: object, limit: int = 40) -> str:
    """A short, printable rendering of a rejected value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _matching(value: object, pattern: re.Pattern[str], rule: str) -> str:
    """`value` when it is text that `pattern` matches in full; otherwise a PolicyError that
    states `rule` and shows what was given."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise PolicyError(f"{rule}; got {_shown(value)}.")
    return value


def validate_account_uid(text: object) -> str:
    """An Alibaba Cloud account UID: 1-32 ASCII digits, nothing else (no sign, space, exponent)."""
    return _matching(text, _ACCOUNT_UID, "An account ID is 1 to 32 digits 0-9 with nothing else")


def validate_role_name(name: object) -> str:
    """A RAM role name: 1-64 of letters, digits, '.' and '-'."""
    return _matching(
        name, _ROLE_NAME, "A role name is 1 to 64 characters: letters A-Z a-z, digits, '.' and '-'"
    )


def validate_ram_user_name(name: object) -> str:
    """A RAM user name: 1-64 of letters, digits, '.', '_' and '-'."""
    return _matching(
        name,
        _RAM_USER_NAME,
        "A RAM user name is 1 to 64 characters: letters, digits, '.', '_' and '-'",
    )


def validate_policy_name(name: object) -> str:
    """A RAM policy name: 1-128 of letters, digits and '-'."""
    return _matching(
        name, _POLICY_NAME, "A policy name is 1 to 128 characters: letters, digits and '-'"
    )


def validate_policy_type(policy_type: object) -> str:
    """RAM knows two policy types: 'System' (Alibaba's) and 'Custom' (the account's own)."""
    if policy_type not in POLICY_TYPES:
        raise PolicyError(f"A policy type is 'System' or 'Custom'; got {_shown(policy_type)}.")
    return policy_type  # type: ignore[return-value]


# --- ARNs -----------------------------------------------------------------------------------
def account_root_arn(uid: str) -> str:
    """The principal for a whole account: `acs:ram::<uid>:root`."""
    return f"acs:ram::{validate_account_uid(uid)}:root"


def ram_user_arn(uid: str, name: str) -> str:
    """The principal for one RAM user: `acs:ram::<uid>:user/<name>`."""
    return f"acs:ram::{validate_account_uid(uid)}:user/{validate_ram_user_name(name)}"


def role_arn(uid: str, role_name: str) -> str:
    """A role's ARN: `acs:ram::<uid>:role/<role-name>`."""
    return f"acs:ram::{validate_account_uid(uid)}:role/{validate_role_name(role_name)}"


# The role OOS runs as in an executing account, trusted by the OOS service; a cross-account
# run chains from it into the target role (`OOSServiceRole|<uid>/<role>`).
OOS_SERVICE_ROLE_NAME = "OOSServiceRole"
OOS_SERVICE_PRINCIPAL = "oos.aliyuncs.com"


PrincipalKind = Literal["root", "user", "role", "service"]


@dataclass(frozen=True)
class Principal:
    """A trust-policy principal. `account` is None for a service; `name` is None for a root."""

    kind: PrincipalKind
    account: str | None
    name: str | None


_RAM_ARN = re.compile(r"acs:ram::([0-9]{1,32}):(root|user/[^/]+|role/[^/]+)")


def parse_principal(arn: object) -> Principal:
    """Parse `acs:ram::<uid>:root|user/<n>|role/<n>` or a service name like `ecs.aliyuncs.com`."""
    if not isinstance(arn, str):
        raise PolicyError(f"A principal is a string; got {_shown(arn)}.")
    if _SERVICE_PRINCIPAL.fullmatch(arn):
        return Principal(kind="service", account=None, name=arn)
    match = _RAM_ARN.fullmatch(arn)
    if not match:
        raise PolicyError(
            "A principal is acs:ram::<account-id>:root, acs:ram::<account-id>:user/<name>, "
            f"acs:ram::<account-id>:role/<name> or <service>.aliyuncs.com; got {_shown(arn)}."
        )
    account, rest = match.group(1), match.group(2)
    if rest == "root":
        return Principal(kind="root", account=account, name=None)
    kind, name = rest.split("/", 1)
    if kind == "user":
        validate_ram_user_name(name)
        return Principal(kind="user", account=account, name=name)
    validate_role_name(name)
    return Principal(kind="role", account=account, name=name)


def parse_role_arn(arn: object) -> tuple[str, str]:
    """(account uid, role name) of `acs:ram::<uid>:role/<name>`; anything else is refused."""
    principal = parse_principal(arn)
    if principal.kind != "role" or principal.account is None or principal.name is None:
        raise PolicyError(
            f"Expected a role ARN acs:ram::<account-id>:role/<name>; got {_shown(arn)}."
        )
    return principal.account, principal.name


# --- JSON documents -------------------------------------------------------------------------
# Far above any legal document; refuses absurd input before json.loads spends time on it.
_MAX_RAW_DOCUMENT_LENGTH = 65536


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Duplicate keys are read differently by different parsers: refuse the ambiguity.
            raise PolicyError(f"The policy repeats the key {key!r}.")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise PolicyError(f"The policy contains {name}, which is not JSON.")


def _load_document(document: str | bytes | Mapping[str, Any] | None) -> dict[str, Any]:
    if isinstance(document, Mapping):
        # Round-trip through JSON so a dict with non-JSON values is refused like text would be.
        try:
            document = json.dumps(document, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"The policy is not a JSON document: {exc}.") from None
    if isinstance(document, bytes):
        try:
            document = document.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError("The policy is not UTF-8 text.") from None
    if not isinstance(document, str):
        raise PolicyError("The policy must be JSON text.")
    if not document.strip():
        raise PolicyError("The policy is empty.")
    if len(document) > _MAX_RAW_DOCUMENT_LENGTH:
        raise PolicyError(f"The policy is far too long ({len(document)} characters).")
    try:
        loaded = json.loads(
            document,
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_constant,
        )
    except PolicyError:
        raise
    except RecursionError:
        raise PolicyError("The policy is nested too deeply.") from None
    except ValueError as exc:
        raise PolicyError(f"The policy is not valid JSON: {exc}.") from None
    if not isinstance(loaded, dict):
        raise PolicyError("The policy must be a JSON object.")
    return loaded


# Unicode's control characters (category Cc) are exactly these 65 code points; one regular
# expression finds them in a principal far faster than asking `unicodedata` per character (a
# trust policy of a hundred partners is parsed several times a round).
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _string_set(value: Any, where: str) -> list[str]:
    """A string or a non-empty list of strings, returned as a sorted, de-duplicated list."""
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, list) and value:
        values = value
    else:
        raise PolicyError(f"{where} must be a string or a non-empty list of strings.")
    for item in values:
        if not isinstance(item, str) or not item:
            raise PolicyError(f"{where} must contain only non-empty strings.")
        if _CONTROL_CHARACTER.search(item):
            raise PolicyError(f"{where} contains a control character.")
    return sorted(set(values))


def _string_or_set(value: Any, where: str) -> str | list[str]:
    """Like `_string_set`, but one value stays a plain string (the usual way to write it)."""
    values = _string_set(value, where)
    return values[0] if len(values) == 1 else values


def _condition_scalar(value: Any) -> Any:
    # Condition values are compared as strings by the cloud; 10 and "10" mean the same.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _canonical_condition(condition: Any) -> dict[str, Any]:
    if not isinstance(condition, dict) or not condition:
        raise PolicyError("A Condition must be a non-empty object of operators.")
    result: dict[str, Any] = {}
    for operator, keys in condition.items():
        if not isinstance(keys, dict) or not keys:
            raise PolicyError(f"The Condition operator {operator!r} must map keys to values.")
        result[operator] = {}
        for key, value in keys.items():
            if isinstance(value, list):
                value = [_condition_scalar(v) for v in value]
            else:
                value = _condition_scalar(value)
            result[operator][key] = _string_set(value, f"Condition {operator}.{key}")
    return result


def _check_version(document: dict[str, Any]) -> None:
    if document.get("Version") != "1":
        raise PolicyError('A policy needs "Version": "1".')


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise PolicyError('A policy needs a "Statement" list.')
    for statement in statements:
        if not isinstance(statement, dict):
            raise PolicyError("Every statement must be a JSON object.")
    return statements


def _canonical_statement(statement: dict[str, Any], *, trust: bool) -> dict[str, Any]:
    allowed = {"Effect", "Action", "Resource", "Condition"} | ({"Principal"} if trust else set())
    unknown = sorted(set(statement) - allowed)
    if unknown:
        raise PolicyError(f"A statement has unknown or forbidden keys: {', '.join(unknown)}.")
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError('Every statement needs "Effect": "Allow" or "Deny".')
    if "Action" not in statement:
        raise PolicyError('Every statement needs an "Action".')
    result: dict[str, Any] = {
        "Effect": effect,
        "Action": _string_or_set(statement["Action"], "Action"),
    }
    if "Resource" in statement:
        result["Resource"] = _string_or_set(statement["Resource"], "Resource")
    elif not trust:
        raise PolicyError('Every statement needs a "Resource".')
    if "Condition" in statement:
        result["Condition"] = _canonical_condition(statement["Condition"])
    if trust:
        principal = statement.get("Principal")
        if not isinstance(principal, dict) or not principal:
            raise PolicyError('Every trust statement needs a "Principal" object.')
        result["Principal"] = {
            kind: _string_set(values, f"Principal {kind}") for kind, values in principal.items()
        }
    return result


def _statement_key(statement: dict[str, Any]) -> str:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _canonical_document(statements: Iterable[dict[str, Any]]) -> dict[str, Any]:
    unique = {_statement_key(s): s for s in statements}
    return {"Version": "1", "Statement": [unique[k] for k in sorted(unique)]}


def policy_to_text(document: Mapping[str, Any]) -> str:
    """Minified, key-sorted, ASCII-only JSON: what is sent, and what lengths are measured on."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical_policy(document: str | bytes | Mapping[str, Any], *, trust: bool) -> dict[str, Any]:
    """The canonical form of a trust (`trust=True`) or permission policy; raises PolicyError."""
    loaded = _load_document(document)
    unknown = sorted(set(loaded) - {"Version", "Statement"})
    if unknown:
        raise PolicyError(f"A policy has unknown top-level keys: {', '.join(unknown)}.")
    _check_version(loaded)
    return _canonical_document(_canonical_statement(s, trust=trust) for s in _statements(loaded))


# --- trust policies -------------------------------------------------------------------------
_ASSUME_ROLE = "sts:AssumeRole"


@dataclass(frozen=True)
class TrustPrincipals:
    """Who a trust policy lets assume the role (principals of its Allow statements).

    `conditional_ram` are RAM principals that appear only in Allow statements carrying a
    Condition; `denied_ram` are RAM principals named in Deny statements. Both are reported so
    a drift view can show them, and neither is ever edited by the portal.
    """

    ram: frozenset[str]
    service: frozenset[str]
    federated: frozenset[str]
    conditional_ram: frozenset[str]
    denied_ram: frozenset[str]


def trust_policy_principals(
    document: str | bytes | Mapping[str, Any] | None,
) -> TrustPrincipals:
    """The principals a trust policy names, by kind; raises PolicyError on a malformed one."""
    canonical = _empty_trust() if document is None else canonical_policy(document, trust=True)
    ram: set[str] = set()
    conditional: set[str] = set()
    service: set[str] = set()
    federated: set[str] = set()
    denied: set[str] = set()
    for statement in canonical["Statement"]:
        principal = statement["Principal"]
        if statement["Effect"] == "Deny":
            denied.update(principal.get("RAM", ()))
            continue
        target = conditional if "Condition" in statement else ram
        target.update(principal.get("RAM", ()))
        service.update(principal.get("Service", ()))
        federated.update(principal.get("Federated", ()))
    return TrustPrincipals(
        ram=frozenset(ram | conditional),
        service=frozenset(service),
        federated=frozenset(federated),
        conditional_ram=frozenset(conditional - ram),
        denied_ram=frozenset(denied),
    )


def _empty_trust() -> dict[str, Any]:
    return {"Version": "1", "Statement": []}


def _validated_ram_principals(principals: Iterable[str], what: str) -> set[str]:
    result = set()
    for arn in principals:
        if parse_principal(arn).kind == "service":
            raise PolicyError(f"{what} must be RAM principals (acs:ram::...), not {arn!r}.")
        result.add(arn)
    return result


def build_trust_policy(
    ram_principals: Iterable[str], *, services: Iterable[str] = ()
) -> dict[str, Any]:
    """A canonical trust policy: one Allow sts:AssumeRole statement for these principals."""
    ram = _validated_ram_principals(ram_principals, "Trusted principals")
    service_names = set(services)
    for name in service_names:
        if parse_principal(name).kind != "service":
            raise PolicyError(f"A service principal looks like ecs.aliyuncs.com; got {name!r}.")
    principal: dict[str, list[str]] = {}
    if ram:
        principal["RAM"] = sorted(ram)
    if service_names:
        principal["Service"] = sorted(service_names)
    if not principal:
        return _empty_trust()
    return _canonical_document(
        [{"Action": _ASSUME_ROLE, "Effect": "Allow", "Principal": principal}]
    )


def parking_lock_statement(parking: str) -> dict[str, Any]:
    """The Deny that makes a parked role assumable by nobody.

    A trust policy must name someone, so a kept-but-unused role is parked on its owner's own
    account root; an Allow on that root alone would let every RAM user and every role session
    of the owner's account (a partner chaining from another delegation among them) assume it.
    An explicit Deny wins over any Allow in a trust policy as in every RAM policy, and the
    same root in a Deny covers all those identities; identities of other accounts are named
    by no Allow, so nobody at all is admitted.
    """
    if parse_principal(parking).kind != "root":
        raise PolicyError(f"A role is parked on an account root, not {_shown(parking)}.")
    return _canonical_statement(
        {"Action": _ASSUME_ROLE, "Effect": "Deny", "Principal": {"RAM": [parking]}}, trust=True
    )


EXTERNAL_ID_KEY = "sts:ExternalId"
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/\-]{2,1224}", re.ASCII)


def validate_external_id(value: object) -> str:
    """An STS ExternalId: 2 to 1224 of letters, digits, `_` and `+=,.@:/-`."""
    return _matching(
        value, _EXTERNAL_ID, "An ExternalId is 2 to 1224 of letters, digits and _+=,.@:/-"
    )


def external_id_condition(external_id: str) -> dict[str, Any]:
    """The trust-statement Condition that requires `external_id` on AssumeRole (canonical)."""
    return _canonical_condition(
        {"StringEquals": {EXTERNAL_ID_KEY: validate_external_id(external_id)}}
    )


def _is_external_id_condition(condition: Any) -> bool:
    """A Condition that only pins `sts:ExternalId`: the kind of statement the portal writes."""
    return (
        isinstance(condition, dict)
        and list(condition) == ["StringEquals"]
        and list(condition["StringEquals"]) == [EXTERNAL_ID_KEY]
    )


def _condition_key(condition: Mapping[str, Any] | None) -> str | None:
    return None if condition is None else _statement_key(dict(condition))


def _allows_assume_with(statement: dict[str, Any], condition_key: str | None) -> bool:
    """An Allow sts:AssumeRole statement with RAM principals and exactly this Condition."""
    return (
        statement["Effect"] == "Allow"
        and statement["Action"] == _ASSUME_ROLE
        and "RAM" in statement["Principal"]
        and _condition_key(statement.get("Condition")) == condition_key
    )


def _misplaced(arn: str, statement: dict[str, Any], wanted: Mapping[str, str | None]) -> bool:
    """Whether a wanted managed principal must leave this Allow statement.

    A principal wanted under a condition (an ExternalId) may sit only in a statement with
    exactly that condition: any other Allow would admit it without the ExternalId. A principal
    wanted without one must not stay in a portal-style ExternalId statement (the owner turned
    the ExternalId off); other statements naming it are left alone, as before.
    """
    if arn not in wanted:
        return False
    condition = statement.get("Condition")
    target = wanted[arn]
    if target is not None:
        return _condition_key(condition) != target
    return _is_external_id_condition(condition)


def _is_plain_allow(statement: dict[str, Any]) -> bool:
    """An unconditional Allow sts:AssumeRole statement: where the portal adds its principals."""
    return _allows_assume_with(statement, None)


def _admit_missing(statements: list[dict[str, Any]], wanted: set[str]) -> None:
    """Add each of `wanted` that no Allow statement names to the first unconditional Allow
    sts:AssumeRole statement, or to a new one (in place)."""
    present: set[str] = set()
    for statement in statements:
        if statement["Effect"] == "Allow":
            present.update(statement["Principal"].get("RAM", ()))
    missing = wanted - present
    if not missing:
        return
    for index, statement in enumerate(statements):
        if _is_plain_allow(statement):
            principal = dict(statement["Principal"])
            principal["RAM"] = sorted(set(principal["RAM"]) | missing)
            statements[index] = {**statement, "Principal": principal}
            return
    statements.append(
        {"Action": _ASSUME_ROLE, "Effect": "Allow", "Principal": {"RAM": sorted(missing)}}
    )


def merge_trust_policy(
    current_document: str | bytes | Mapping[str, Any] | None,
    *,
    managed_wanted: Iterable[str],
    managed_all_known: Iterable[str],
    parking: str | None = None,
    conditions: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The trust policy the role should have, in canonical form.

    Managed principals are those the portal manages for this role (`managed_all_known` plus
    `managed_wanted`). Every other principal, every Deny statement and every Service/Federated
    principal is kept exactly. A managed principal that is not wanted is removed from every
    Allow statement (a statement left with no principal goes away); a wanted one missing from
    every Allow statement is added to the first unconditional Allow sts:AssumeRole statement,
    or to a new one. Deny statements are never edited: removing a principal from a Deny would
    widen access. The one exception is the portal's own `parking_lock_statement` for
    `parking`: present exactly while `parking` is wanted, so un-parking lifts it. Idempotent:
    merging the result again returns it unchanged.

    `conditions` maps a wanted principal to the Condition it must be trusted under (e.g.
    `external_id_condition(...)`): it is then trusted only by an Allow statement with exactly
    that Condition, and taken out of every other Allow statement in the same write.
    """
    wanted = _validated_ram_principals(managed_wanted, "Managed principals")
    managed = wanted | _validated_ram_principals(managed_all_known, "Managed principals")
    lock = None if parking is None else parking_lock_statement(parking)
    unwanted = managed - wanted
    wanted_condition: dict[str, str | None] = dict.fromkeys(wanted)
    canonical_conditions: dict[str, dict[str, Any]] = {}
    for arn, condition in (conditions or {}).items():
        if arn in wanted:
            canonical_conditions[arn] = _canonical_condition(dict(condition))
            wanted_condition[arn] = _condition_key(canonical_conditions[arn])
    base = (
        _empty_trust()
        if current_document is None
        else canonical_policy(current_document, trust=True)
    )

    statements: list[dict[str, Any]] = []
    for statement in base["Statement"]:
        if statement["Effect"] == "Allow" and "RAM" in statement["Principal"]:
            principal = dict(statement["Principal"])
            kept = [
                arn
                for arn in principal["RAM"]
                if arn not in unwanted and not _misplaced(arn, statement, wanted_condition)
            ]
            if kept:
                principal["RAM"] = kept
            else:
                del principal["RAM"]
            if not principal:
                continue
            statement = {**statement, "Principal": principal}
        statements.append(statement)

    present: set[str] = set()
    for statement in statements:
        if statement["Effect"] == "Allow":
            present.update(statement["Principal"].get("RAM", ()))
    missing = wanted - present
    by_condition: dict[str | None, set[str]] = {}
    for arn in missing:
        by_condition.setdefault(wanted_condition[arn], set()).add(arn)
    for condition_key, arns in sorted(by_condition.items(), key=lambda item: item[0] or ""):
        for index, statement in enumerate(statements):
            if _allows_assume_with(statement, condition_key):
                principal = dict(statement["Principal"])
                principal["RAM"] = sorted(set(principal["RAM"]) | arns)
                statements[index] = {**statement, "Principal": principal}
                break
        else:
            new_statement: dict[str, Any] = {
                "Action": _ASSUME_ROLE,
                "Effect": "Allow",
                "Principal": {"RAM": sorted(arns)},
            }
            if condition_key is not None:
                new_statement["Condition"] = canonical_conditions[next(iter(arns))]
            statements.append(new_statement)
    if lock is not None:
        lock_key = _statement_key(lock)
        statements = [s for s in statements if _statement_key(s) != lock_key]
        if parking in wanted:
            statements.append(lock)
    return _canonical_document(statements)


def trust_policy_equal(
    a: str | bytes | Mapping[str, Any] | None, b: str | bytes | Mapping[str, Any] | None
) -> bool:
    """Whether two trust policies are the same once ordering, duplicates and format are ignored."""
    first = _empty_trust() if a is None else canonical_policy(a, trust=True)
    second = _empty_trust() if b is None else canonical_policy(b, trust=True)
    return policy_to_text(first) == policy_to_text(second)


# --- permission and session policies --------------------------------------------------------
MAX_SESSION_POLICY_LENGTH = 2048


def assume_role_policy_for(role_arns: Iterable[str]) -> dict[str, Any]:
    """Least privilege for the partner side: sts:AssumeRole on exactly these role ARNs."""
    arns: set[str] = set()
    for arn in role_arns:
        parse_role_arn(arn)
        arns.add(arn)
    if not arns:
        raise PolicyError("An AssumeRole policy needs at least one role ARN.")
    resource: str | list[str]
    if len(arns) > 1:
        resource = sorted(arns)
    else:
        (resource,) = arns
    return _canonical_document([{"Action": _ASSUME_ROLE, "Effect": "Allow", "Resource": resource}])


_ACTION = re.compile(r"\*|[A-Za-z0-9\-]+:[A-Za-z0-9*?]+")


def parse_session_policy(text: object) -> str:
    """Validate a session policy and return its minified text, ready for AssumeRole's Policy.

    Checks: a JSON object with Version "1", a non-empty Statement list of Allow/Deny
    statements with Action and Resource and no Principal, actions written service:Action,
    and at most 2048 characters once minified (the SDK's limit; the older one was 1024).
    """
    if not isinstance(text, (str, bytes)):
        raise PolicyError("A session policy must be JSON text.")
    document = canonical_policy(text, trust=False)
    if not document["Statement"]:
        raise PolicyError("A session policy needs at least one statement.")
    for statement in document["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            if not _ACTION.fullmatch(action):
                raise PolicyError(
                    f"An action is written service:Action (e.g. ecs:DescribeInstances); "
                    f"got {_shown(action)}."
                )
    minified = policy_to_text(document)
    if len(minified) > MAX_SESSION_POLICY_LENGTH:
        raise PolicyError(
            f"A session policy may be at most {MAX_SESSION_POLICY_LENGTH} characters once "
            f"minified; this one is {len(minified)}."
        )
    return minified


def read_only_ecs_session_policy() -> dict[str, Any]:
    """A session policy that lets the credentials only read ECS."""
    return _canonical_document(
        [{"Action": ["ecs:Describe*", "ecs:List*"], "Effect": "Allow", "Resource": "*"}]
    )


_INSTANCE_ID = re.compile(r"i-[A-Za-z0-9]{1,64}")
_REGION = re.compile(r"\*|[a-z0-9\-]{1,64}")


def ecs_instances_session_policy(
    instance_ids: Iterable[str], *, account_uid: str = "*", region: str = "*"
) -> dict[str, Any]:
    """A session policy limiting ECS actions to the listed instances."""
    ids = set(instance_ids)
    if not ids:
        raise PolicyError("List at least one ECS instance id.")
    for instance_id in ids:
        _matching(instance_id, _INSTANCE_ID, "An ECS instance id looks like i-bp1abc...")
    if account_uid != "*":
        validate_account_uid(account_uid)
    if not _REGION.fullmatch(region):
        raise PolicyError(f"A region looks like cn-hangzhou; got {_shown(region)}.")
    resources = sorted(f"acs:ecs:{region}:{account_uid}:instance/{i}" for i in ids)
    document = _canonical_document(
        [
            {
                "Action": "ecs:*",
                "Effect": "Allow",
                "Resource": resources if len(resources) > 1 else resources[0],
            }
        ]
    )
    parse_session_policy(policy_to_text(document))  # too many ids must fail here, not in STS
    return document


# --- role session names ---------------------------------------------------------------------
ROLE_SESSION_NAME_MAX_LENGTH = 32
_SESSION_NAME_ALLOWED = re.compile(r"[A-Za-z0-9.@_\-]")
_SESSION_NAME = re.compile(r"[A-Za-z0-9.@_\-]{2,32}")
_DIGEST_LENGTH = 8


def validate_role_session_name(name: object) -> str:
    """A RoleSessionName the portal sends: 2 to 32 of letters, digits and `. @ _ -`."""
    return _matching(
        name, _SESSION_NAME, "A role session name is 2 to 32 of letters, digits and . @ _ -"
    )


def role_session_name_for(email_or_name: str) -> str:
    """A RoleSessionName naming the person: `[A-Za-z0-9.@_-]`, 2 to 32 characters.

    A name that is already valid is used as is (`alice@company-b`). Otherwise accents are
    folded to ASCII, other characters become '-', and a short digest of the original is
    appended, so two people whose names sanitise alike still get different session names.
    """
    original = email_or_name if isinstance(email_or_name, str) else str(email_or_name)
    if _SESSION_NAME.fullmatch(original):
        return original
    folded = unicodedata.normalize("NFKD", original)
    cleaned = "".join(
        ch if _SESSION_NAME_ALLOWED.fullmatch(ch) else "-"
        for ch in folded
        if not unicodedata.combining(ch)
    )
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-")
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()
    keep = ROLE_SESSION_NAME_MAX_LENGTH - _DIGEST_LENGTH - 1
    prefix = cleaned[:keep].rstrip("-") or "user"
    return f"{prefix}-{digest[:_DIGEST_LENGTH]}"


# --- the portal's marker on roles it created --------------------------------------------------
PORTAL_MARKER = "[managed-by:partner-access-portal]"
MAX_ROLE_DESCRIPTION_LENGTH = 1024


def description_with_marker(text: str | None) -> str:
    """A role Description that carries the portal's marker and fits RAM's 1024 characters."""
    base = " ".join((text or "").replace(PORTAL_MARKER, "").split())
    room = MAX_ROLE_DESCRIPTION_LENGTH - len(PORTAL_MARKER) - 1
    base = base[:room].rstrip()
    return f"{base} {PORTAL_MARKER}" if base else PORTAL_MARKER


def has_marker(description: str | None) -> bool:
    """Whether a role's Description says the portal created it."""
    return bool(description) and PORTAL_MARKER in (description or "")


# --- the high-privilege gate --------------------------------------------------------------------
# RAM API actions that change identities, credentials or permissions (RAM 2015-05-01 and the
# IMS actions RAM policies still name `ram:`). A wildcard covering any of them, or a literal
# `ram:` action that is not a Get/List read, counts as a RAM write.
RAM_WRITE_ACTIONS = (
    "ram:AddUserToGroup",
    "ram:AttachPolicyToGroup",
    "ram:AttachPolicyToRole",
    "ram:AttachPolicyToUser",
    "ram:BindMFADevice",
    "ram:ChangePassword",
    "ram:ClearAccountAlias",
    "ram:CreateAccessKey",
    "ram:CreateGroup",
    "ram:CreateLoginProfile",
    "ram:CreateOIDCProvider",
    "ram:CreatePolicy",
    "ram:CreatePolicyVersion",
    "ram:CreateRole",
    "ram:CreateSAMLProvider",
    "ram:CreateUser",
    "ram:CreateVirtualMFADevice",
    "ram:DeleteAccessKey",
    "ram:DeleteGroup",
    "ram:DeleteLoginProfile",
    "ram:DeletePolicy",
    "ram:DeletePolicyVersion",
    "ram:DeleteRole",
    "ram:DeleteUser",
    "ram:DeleteVirtualMFADevice",
    "ram:DetachPolicyFromGroup",
    "ram:DetachPolicyFromRole",
    "ram:DetachPolicyFromUser",
    "ram:RemoveUserFromGroup",
    "ram:SetAccountAlias",
    "ram:SetDefaultPolicyVersion",
    "ram:SetPasswordPolicy",
    "ram:SetSecurityPreference",
    "ram:TagResources",
    "ram:UnbindMFADevice",
    "ram:UntagResources",
    "ram:UpdateAccessKey",
    "ram:UpdateGroup",
    "ram:UpdateLoginProfile",
    "ram:UpdatePolicyDescription",
    "ram:UpdateRole",
    "ram:UpdateUser",
)
_RAM_READ_PREFIXES = ("ram:get", "ram:list")
# The full-access System policies of many products (AliyunECSFullAccess among them) allow
# these so the product can set up its own service-linked role, whose trust policy and
# permissions the service fixes: they grant the caller nothing, so they alone flag nothing.
_RAM_SERVICE_LINKED_ACTIONS = ("ram:createservicelinkedrole", "ram:deleteservicelinkedrole")
REASON_EVERY_ACTION = "grants every action"
REASON_NOT_ACTION = "grants every action its NotAction does not name"
REASON_ASSUME_ROLE = "can assume other roles (sts:AssumeRole), which chains to them"
REASON_HANDS_OVER_ROLES = "can hand roles to cloud services (ram:PassRole)"
REASON_RAM_WRITE = "can change RAM users, roles, credentials or permissions"
REASON_UNREADABLE = "its document cannot be read, so it is treated as high privilege"


def _action_pattern(pattern: str) -> re.Pattern[str]:
    # RAM matches actions case-insensitively; `*` is any run and `?` one character.
    body = "".join(
        ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern.lower()
    )
    return re.compile(body, re.DOTALL)


def _covers_every_action(pattern: str) -> bool:
    """`*`, `*:*`, `**:*`…: a pattern that matches any `service:Action`."""
    if pattern.replace("*", "") not in ("", ":"):
        return False
    service, colon, action = pattern.partition(":")
    return not colon or (bool(service) and bool(action))


def _risky_findings(patterns: Iterable[str]) -> dict[str, list[str]]:
    """Reason → the patterns that trigger it, for the action patterns of Allow statements."""
    found: dict[str, list[str]] = {}
    for pattern in patterns:
        if _covers_every_action(pattern):
            found.setdefault(REASON_EVERY_ACTION, []).append(pattern)
            continue
        matcher = _action_pattern(pattern)
        if matcher.fullmatch("sts:assumerole"):
            found.setdefault(REASON_ASSUME_ROLE, []).append(pattern)
        if matcher.fullmatch("ram:passrole"):
            found.setdefault(REASON_HANDS_OVER_ROLES, []).append(pattern)
        lowered = pattern.lower()
        literal_write = (
            "*" not in pattern
            and "?" not in pattern
            and lowered.startswith("ram:")
            and lowered != "ram:passrole"
            and not lowered.startswith(_RAM_READ_PREFIXES)
            and lowered not in _RAM_SERVICE_LINKED_ACTIONS
        )
        if literal_write or any(matcher.fullmatch(a.lower()) for a in RAM_WRITE_ACTIONS):
            found.setdefault(REASON_RAM_WRITE, []).append(pattern)
    return found


def _lenient_statements(document: str | bytes | Mapping[str, Any]) -> list[Any] | None:
    """The statements of a stored policy as written (None when it is not a policy at all)."""
    try:
        parsed = json.loads(document) if isinstance(document, (str, bytes)) else document
    except ValueError:
        return None
    if not isinstance(parsed, Mapping):
        return None
    statements = parsed.get("Statement")
    if isinstance(statements, Mapping):
        return [statements]
    return statements if isinstance(statements, list) else None


def _patterns(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def high_privilege_reasons(document: str | bytes | Mapping[str, Any] | None) -> tuple[str, ...]:
    """Why a permission policy hands a partner more than the resources it names, or `()`.

    Flags an Allow covering every action (`*`, `*:*`), `sts:AssumeRole` (a role session that
    may assume roles reaches every role that trusts its account: the way back into a role a
    partner was revoked from), `ram:PassRole`, or any RAM write; wildcards count (`sts:*`,
    `ram:*`, `ram:Create*`, `*:*`), case-insensitively as RAM matches actions. An Allow with
    NotAction grants everything it does not name, so it is flagged too. Deny statements grant
    nothing and are ignored; resources and conditions narrow but do not remove the risk, so
    they are not considered. A document that cannot be read is flagged (fail closed); None
    (no document) is not. Each reason names the action patterns behind it.
    """
    if document is None:
        return ()
    statements = _lenient_statements(document)
    if statements is None:
        return (REASON_UNREADABLE,)
    patterns: list[str] = []
    not_action: list[str] = []
    for statement in statements:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            not_action += _patterns(statement["NotAction"]) or ["(none)"]
        patterns += _patterns(statement.get("Action"))
    found = _risky_findings(patterns)
    reasons = []
    if not_action:
        reasons.append(f"{REASON_NOT_ACTION} ({', '.join(sorted(set(not_action)))})")
    for reason in (
        REASON_EVERY_ACTION,
        REASON_ASSUME_ROLE,
        REASON_HANDS_OVER_ROLES,
        REASON_RAM_WRITE,
    ):
        if reason in found:
            reasons.append(f"{reason}: {', '.join(sorted(set(found[reason])))}")
    return tuple(reasons)


# --- fail-safe end times in trust policies ----------------------------------------------------
# A time-bound grant's principal is admitted by a statement of its own that stops new
# AssumeRole calls after its end, so access ends in the cloud even if every worker is down;
# the reconciler still removes the principal afterwards. Statements of any other shape (other
# conditions, several principals) are someone else's and are never edited here.
CURRENT_TIME_KEY = "acs:CurrentTime"
END_TIME_OPERATOR = "DateLessThan"


def trust_end_time(moment: dt.datetime) -> str:
    """How an end time is written in a trust condition: ISO 8601, UTC, to the second."""
    if moment.tzinfo is None:
        raise PolicyError("An end time needs a time zone.")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def end_time_statement(principal: str, end_time: str) -> dict[str, Any]:
    """The statement that admits `principal` only before `end_time` (`trust_end_time`)."""
    _validated_ram_principals([principal], "A time-bound principal")
    return _canonical_statement(
        {
            "Action": _ASSUME_ROLE,
            "Effect": "Allow",
            "Principal": {"RAM": [principal]},
            "Condition": {END_TIME_OPERATOR: {CURRENT_TIME_KEY: end_time}},
        },
        trust=True,
    )


def end_time_statement_principal(statement: Mapping[str, Any]) -> str | None:
    """The principal of a statement shaped exactly like `end_time_statement`, else None."""
    principal = statement.get("Principal") or {}
    condition = statement.get("Condition") or {}
    if (
        statement.get("Effect") != "Allow"
        or statement.get("Action") != _ASSUME_ROLE
        or set(principal) != {"RAM"}
        or len(principal["RAM"]) != 1
        or set(condition) != {END_TIME_OPERATOR}
        or set(condition[END_TIME_OPERATOR]) != {CURRENT_TIME_KEY}
        or len(condition[END_TIME_OPERATOR][CURRENT_TIME_KEY]) != 1
    ):
        return None
    return str(principal["RAM"][0])


def trust_policy_end_times(document: str | bytes | Mapping[str, Any] | None) -> dict[str, str]:
    """The end time of each principal admitted by an `end_time_statement`."""
    canonical = _empty_trust() if document is None else canonical_policy(document, trust=True)
    found: dict[str, str] = {}
    for statement in canonical["Statement"]:
        principal = end_time_statement_principal(statement)
        if principal is not None:
            found[principal] = statement["Condition"][END_TIME_OPERATOR][CURRENT_TIME_KEY][0]
    return found


def apply_trust_end_times(
    document: Mapping[str, Any],
    *,
    end_times: Mapping[str, str],
    managed: Iterable[str],
) -> dict[str, Any]:
    """`document` (the output of `merge_trust_policy`) with each managed principal of
    `end_times` admitted only by its own `end_time_statement`, and each other managed
    principal admitted without one. Only principals the document already admits are touched
    (one left out, e.g. for room, stays out); end-time statements of unmanaged principals and
    every other statement are kept exactly. Idempotent."""
    managed_set = set(managed)
    canonical = canonical_policy(document, trust=True)
    admitted: set[str] = set()
    for statement in canonical["Statement"]:
        if statement["Effect"] == "Allow":
            admitted.update(statement["Principal"].get("RAM", ()))
    timed = {p: end for p, end in end_times.items() if p in managed_set and p in admitted}
    open_ended: set[str] = set()
    statements: list[dict[str, Any]] = []
    for statement in canonical["Statement"]:
        owner = end_time_statement_principal(statement)
        if owner is not None and owner in managed_set:
            if owner not in timed:
                open_ended.add(owner)
            continue  # rewritten below, with the end time wanted now
        if _is_plain_allow(statement):
            kept = [arn for arn in statement["Principal"]["RAM"] if arn not in timed]
            principal = {**statement["Principal"], "RAM": kept}
            if not kept:
                del principal["RAM"]
            if not principal:
                continue
            statement = {**statement, "Principal": principal}
        statements.append(statement)
    _admit_missing(statements, open_ended)
    statements += [end_time_statement(p, end) for p, end in sorted(timed.items())]
    return _canonical_document(statements)
