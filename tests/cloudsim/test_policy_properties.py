"""Properties of the policy language that must hold for every document, not just examples."""

from __future__ import annotations

import contextlib
import json
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cloudsim.policy import (
    Decision,
    PolicyDocumentError,
    evaluate,
    normalise_policy_document,
    parse_policy_document,
    parse_trust_policy,
    serialise_policy_document,
    trust_admits,
    wildcard_match,
)

ACTIONS = [
    "ecs:DescribeInstances",
    "ecs:StopInstance",
    "ecs:StartInstance",
    "ram:GetRole",
    "sts:AssumeRole",
]
ACTION_PATTERNS = [
    "*",
    "ecs:*",
    "ecs:Describe*",
    "ecs:StopInstance",
    "ECS:stopinstance",
    "ecs:St??tInstance",
    "ram:*",
    "*:Get*",
    "sts:AssumeRole",
]
RESOURCES = [
    "acs:ecs:cn-hangzhou:11223344:instance/i-1",
    "acs:ecs:cn-shanghai:11223344:instance/i-2",
    "acs:ram:*:11223344:role/ecs-admin",
]
RESOURCE_PATTERNS = [
    "*",
    "acs:ecs:*:11223344:instance/*",
    "acs:ecs:cn-hangzhou:11223344:instance/i-1",
    "acs:ecs:*:*:*",
    "acs:ram:*:11223344:role/*",
    "acs:ram:*:99999999:role/*",
]
CONDITIONS = [
    {"IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}},
    {"NotIpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}},
    {"Bool": {"acs:MFAPresent": ["true"]}},
    {"DateLessThan": {"acs:CurrentTime": ["2026-01-01T00:00:00Z"]}},
    {"StringLike": {"acs:SourceVpc": ["vpc-*"]}, "Bool": {"acs:SecureTransport": ["true"]}},
]
CONTEXTS = [
    {},
    {
        "acs:SourceIp": "10.1.2.3",
        "acs:MFAPresent": "true",
        "acs:CurrentTime": "2025-06-01T00:00:00Z",
    },
    {
        "acs:SourceIp": "8.8.8.8",
        "acs:MFAPresent": False,
        "acs:CurrentTime": "2027-01-01T00:00:00Z",
        "acs:SourceVpc": "vpc-9",
        "acs:SecureTransport": True,
    },
]


EFFECTS = st.sampled_from(["Allow", "Deny"])


@st.composite
def statements(draw, effect=EFFECTS) -> dict:
    statement = {
        "Effect": draw(effect),
        draw(st.sampled_from(["Action", "Action", "NotAction"])): draw(
            st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3)
        ),
        "Resource": draw(st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=3)),
    }
    if draw(st.booleans()):
        statement["Condition"] = draw(st.sampled_from(CONDITIONS))
    return statement


def document_of(stmts: list[dict]) -> dict:
    return {"Version": "1", "Statement": stmts}


documents = st.lists(statements(), min_size=1, max_size=4).map(document_of)
requests = st.fixed_dictionaries(
    {
        "action": st.sampled_from(ACTIONS),
        "resource": st.sampled_from(RESOURCES),
        "context": st.sampled_from(CONTEXTS),
    }
)


def applies(statement: dict, request: dict) -> bool:
    """Whether one statement matches the request (its own decision is not implicit)."""
    single = document_of([{**statement, "Effect": "Allow"}])
    return evaluate([single], **request) is Decision.ALLOW


@given(docs=st.lists(documents, min_size=1, max_size=3), request=requests, data=st.data())
def test_a_matching_deny_always_wins_whatever_the_order(docs, request, data):
    statements_ = [s for d in docs for s in d["Statement"]]
    assume(any(s["Effect"] == "Deny" and applies(s, request) for s in statements_))
    shuffled = data.draw(st.permutations(statements_))
    for arrangement in (docs, [document_of(shuffled)], list(reversed(docs))):
        assert evaluate(arrangement, **request) is Decision.EXPLICIT_DENY


@given(
    docs=st.lists(documents, min_size=1, max_size=3),
    extra=statements(st.just("Allow")),
    request=requests,
)
def test_adding_an_allow_never_takes_access_away(docs, extra, request):
    before = evaluate(docs, **request)
    after = evaluate([*docs, document_of([extra])], **request)
    if before is Decision.ALLOW:
        assert after is Decision.ALLOW
    if before is Decision.EXPLICIT_DENY:
        assert after is Decision.EXPLICIT_DENY


@given(docs=st.lists(documents, min_size=1, max_size=3), request=requests, data=st.data())
def test_evaluation_ignores_statement_order_and_document_grouping(docs, request, data):
    expected = evaluate(docs, **request)
    statements_ = [s for d in docs for s in d["Statement"]]
    shuffled = data.draw(st.permutations(statements_))
    assert evaluate([document_of(shuffled)], **request) is expected
    assert evaluate([document_of([s]) for s in shuffled], **request) is expected


def written_loosely(document: dict, data: st.DataObject) -> dict:
    """The same document with single-element lists written as plain strings."""
    loose = []
    for statement in document["Statement"]:
        copy = dict(statement)
        for key in ("Action", "NotAction", "Resource"):
            if key in copy and len(copy[key]) == 1 and data.draw(st.booleans()):
                copy[key] = copy[key][0]
        if "Condition" in copy:
            copy["Condition"] = {
                op: {
                    k: (v[0] if len(v) == 1 and data.draw(st.booleans()) else v)
                    for k, v in keys.items()
                }
                for op, keys in copy["Condition"].items()
            }
        loose.append(copy)
    if len(loose) == 1 and data.draw(st.booleans()):
        return {"Version": "1", "Statement": loose[0]}
    return document_of(loose)


@given(document=documents, request=requests, data=st.data())
def test_string_and_list_forms_mean_the_same(document, request, data):
    loose = written_loosely(document, data)
    expected = evaluate([document], **request)
    assert evaluate([loose], **request) is expected
    assert parse_policy_document(json.dumps(loose)) == normalise_policy_document(document)
    assert evaluate([parse_policy_document(json.dumps(loose))], **request) is expected


@given(action=st.text(), resource=st.text(), context=st.sampled_from(CONTEXTS))
def test_star_allows_everything(action, resource, context):
    allow_all = document_of([{"Effect": "Allow", "Action": "*", "Resource": "*"}])
    assert evaluate([allow_all], action=action, resource=resource, context=context).allowed
    assert wildcard_match("*", action)
    assert wildcard_match(action, action)  # a literal matches itself, even if it has * or ?


@given(prefix=st.text(max_size=10), rest=st.text(max_size=10))
def test_trailing_star_matches_any_suffix(prefix, rest):
    assert wildcard_match(prefix + "*", prefix + rest)


def reference_glob(pattern: str, value: str) -> bool:
    translated = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(translated, value, re.DOTALL) is not None


@given(pattern=st.text(alphabet="ab*?", max_size=8), value=st.text(alphabet="ab*?c", max_size=10))
def test_wildcard_match_agrees_with_a_regex_reference(pattern, value):
    assert wildcard_match(pattern, value) == reference_glob(pattern, value)


@given(document=documents, data=st.data())
def test_parse_serialise_parse_round_trips(document, data):
    text = json.dumps(written_loosely(document, data))
    once = parse_policy_document(text)
    assert parse_policy_document(serialise_policy_document(once)) == once
    assert parse_policy_document(json.dumps(once, indent=2)) == once


trust_principals = st.fixed_dictionaries(
    {},
    optional={
        "RAM": st.lists(
            st.sampled_from(
                [
                    "acs:ram::12345678:root",
                    "acs:ram::12345678:user/Alice",
                    "acs:ram::11223344:role/oos-runner",
                ]
            ),
            min_size=1,
            max_size=3,
        ),
        "Service": st.lists(
            st.sampled_from(["oos.aliyuncs.com", "ecs.aliyuncs.com"]), min_size=1, max_size=2
        ),
    },
).filter(bool)
trust_statements = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Deny"]),
        "Action": st.sampled_from(["sts:AssumeRole", ["sts:AssumeRole"]]),
        "Principal": trust_principals,
    },
    optional={"Condition": st.sampled_from(CONDITIONS)},
)
trust_documents = st.lists(trust_statements, min_size=1, max_size=4).map(document_of)
CALLERS = [
    ("acs:ram::12345678:user/Alice", "12345678"),
    ("acs:ram::12345678:user/Bob", "12345678"),
    ("acs:ram::11223344:assumed-role/oos-runner/s1", "11223344"),
    ("acs:ram::12345678:root", "12345678"),
]


@given(
    document=trust_documents,
    caller=st.sampled_from(CALLERS),
    context=st.sampled_from(CONTEXTS),
    data=st.data(),
)
def test_trust_round_trips_and_a_matching_deny_wins(document, caller, context, data):
    parsed = parse_trust_policy(json.dumps(document))
    assert parse_trust_policy(serialise_policy_document(parsed)) == parsed
    arn, account = caller
    admitted = trust_admits(parsed, caller_arn=arn, caller_account=account, context=context)
    shuffled = document_of(data.draw(st.permutations(parsed["Statement"])))
    assert (
        trust_admits(shuffled, caller_arn=arn, caller_account=account, context=context) is admitted
    )
    denials = [dict(s, Effect="Allow") for s in parsed["Statement"] if s["Effect"] == "Deny"]
    if any(
        trust_admits(document_of([s]), caller_arn=arn, caller_account=account, context=context)
        for s in denials
    ):
        assert not admitted
    if arn.endswith(":root"):
        assert not admitted


# --- malformed input: always PolicyDocumentError, never anything else -------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "Version",
                    "Statement",
                    "Effect",
                    "Action",
                    "NotAction",
                    "Resource",
                    "Condition",
                    "Principal",
                    "RAM",
                    "x",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


def only_policy_errors(parser, text) -> None:
    # Random JSON is almost never a policy; whatever it is, only PolicyDocumentError may escape.
    with contextlib.suppress(PolicyDocumentError):
        parser(text)


@given(value=json_values)
def test_random_json_never_raises_anything_but_policy_errors(value):
    text = json.dumps(value)
    only_policy_errors(parse_policy_document, text)
    only_policy_errors(parse_trust_policy, text)
    only_policy_errors(normalise_policy_document, value)


@given(raw=st.binary(max_size=200))
def test_random_bytes_are_rejected(raw):
    with pytest.raises(PolicyDocumentError):
        parse_policy_document(raw)
    with pytest.raises(PolicyDocumentError):
        parse_trust_policy(raw)


@given(text=st.text(max_size=200))
def test_random_text_is_rejected(text):
    with pytest.raises(PolicyDocumentError):
        parse_policy_document(text)


WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@given(document=documents, data=st.data())
def test_a_wrongly_typed_element_is_rejected(document, data):
    statement_index = data.draw(st.integers(0, len(document["Statement"]) - 1))
    statement = dict(document["Statement"][statement_index])
    key = data.draw(st.sampled_from(sorted(statement)))
    replacement = data.draw(WRONG_TYPES)
    # Condition objects accept any operator-shaped dict; a dict of ints is still wrong there.
    statement[key] = replacement
    broken = {**document, "Statement": [*document["Statement"]]}
    broken["Statement"][statement_index] = statement
    with pytest.raises(PolicyDocumentError):
        parse_policy_document(json.dumps(broken))


@given(document=documents, version=WRONG_TYPES | st.text(max_size=3).filter(lambda v: v != "1"))
def test_a_wrong_version_is_rejected(document, version):
    with pytest.raises(PolicyDocumentError):
        parse_policy_document(json.dumps({**document, "Version": version}))


@given(document=documents, padding=st.integers(1, 500))
def test_oversized_documents_are_rejected(document, padding):
    text = json.dumps(document)
    with pytest.raises(PolicyDocumentError, match="limit"):
        parse_policy_document(text + " " * (6144 - len(text) + padding))
    with pytest.raises(PolicyDocumentError, match="limit"):
        parse_policy_document(text, max_length=len(text) - 1)
