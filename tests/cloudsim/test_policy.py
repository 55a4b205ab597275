"""Examples for the RAM policy language: grammar errors, matching, every condition operator."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cloudsim.policy import (
    Decision,
    PolicyDocumentError,
    evaluate,
    evaluate_layers,
    parse_policy_document,
    parse_trust_policy,
    request_context,
    serialise_policy_document,
    trust_admits,
    trusted_accounts,
    wildcard_match,
)

INSTANCE = "acs:ecs:cn-hangzhou:11223344:instance/i-abc"


def doc(*statements: dict) -> dict:
    return {"Version": "1", "Statement": list(statements)}


def allow(action="*", resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action="*", resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def parsed(*statements: dict) -> dict:
    return parse_policy_document(json.dumps(doc(*statements)))


def decide(*statements: dict, action="ecs:StopInstance", resource=INSTANCE, context=None):
    return evaluate([parsed(*statements)], action=action, resource=resource, context=context or {})


# --- parsing ---------------------------------------------------------------------------------


def test_parse_normalises_strings_and_a_single_statement_object():
    text = json.dumps({"Version": "1", "Statement": allow("ecs:*", INSTANCE)})
    assert parse_policy_document(text) == {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ["ecs:*"], "Resource": [INSTANCE]}],
    }


def test_parse_keeps_conditions_as_lists_and_not_action():
    statement = {
        "Effect": "Deny",
        "NotAction": ["ram:Get*"],
        "Resource": "*",
        "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}},
    }
    assert parse_policy_document(json.dumps(doc(statement)))["Statement"][0] == {
        "Effect": "Deny",
        "NotAction": ["ram:Get*"],
        "Resource": ["*"],
        "Condition": {"IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}},
    }


def test_parse_accepts_bytes():
    assert parse_policy_document(json.dumps(doc(allow())).encode())["Version"] == "1"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("{", "not valid JSON"),
        ("[]", "must be an object, not a list"),
        ('"text"', "must be an object, not a string"),
        ('{"Statement": []}', 'no "Version"'),
        ('{"Version": 1, "Statement": []}', 'Version 1; it must be "1"'),
        ('{"Version": "2", "Statement": []}', 'Version "2"'),
        ('{"Version": "1"}', 'no "Statement"'),
        ('{"Version": "1", "Statement": []}', "at least one statement"),
        ('{"Version": "1", "Statement": "x"}', "Statement must be a list"),
        ('{"Version": "1", "Statement": [1]}', "Statement[0] must be an object, not a number"),
        ('{"Version": "1", "Id": "x", "Statement": []}', 'unknown element(s) "Id"'),
        ('{"Version": "1", "Version": "1", "Statement": []}', '"Version" appears twice'),
        ('{"Version": "1", "Statement": [], "x": NaN}', "NaN is not a valid JSON value"),
    ],
)
def test_parse_rejects_malformed_documents(document, message):
    with pytest.raises(PolicyDocumentError) as caught:
        parse_policy_document(document)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ({"Action": "*", "Resource": "*"}, 'Statement[0] has no "Effect"'),
        ({"Effect": "allow", "Action": "*", "Resource": "*"}, 'Effect is "allow"'),
        ({"Effect": "Allow", "Resource": "*"}, 'exactly one of "Action" or "NotAction"'),
        (
            {"Effect": "Allow", "Action": "*", "NotAction": "ecs:*", "Resource": "*"},
            'exactly one of "Action" or "NotAction"',
        ),
        ({"Effect": "Allow", "Action": 7, "Resource": "*"}, "Action must be a string or a list"),
        ({"Effect": "Allow", "Action": [], "Resource": "*"}, "must not be an empty list"),
        ({"Effect": "Allow", "Action": [True], "Resource": "*"}, "only strings, not a boolean"),
        ({"Effect": "Allow", "Action": [""], "Resource": "*"}, "empty string"),
        ({"Effect": "Allow", "Action": "StopInstance", "Resource": "*"}, '"service:ActionName"'),
        ({"Effect": "Allow", "Action": "ecs:Stop Instance", "Resource": "*"}, "service:Action"),
        ({"Effect": "Allow", "Action": "*"}, 'has no "Resource"'),
        ({"Effect": "Allow", "Action": "*", "Resource": "instance/i-1"}, "neither"),
        ({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"}, "neither"),
        ({"Effect": "Allow", "Action": "*", "Resource": {"a": 1}}, "Resource must be a string"),
        ({"Effect": "Allow", "Action": "*", "Resource": "*", "Sid": "x"}, '"Sid"'),
        ({"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}, '"Principal"'),
        ({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": []}, "an object"),
        ({"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {}}, "one operator"),
        (
            {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Foo": {}}},
            'unsupported operator "Foo"',
        ),
        (
            {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Bool": "x"}},
            "Condition.Bool must be an object",
        ),
        (
            {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Bool": {}}},
            "at least one condition key",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"Bool": {"MFAPresent": "true"}},
            },
            'key "MFAPresent" is not a condition key',
        ),
        (
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"Bool": {"acs:MFAPresent": "yes"}},
            },
            'value "yes" is not true or false',
        ),
        (
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.300"}},
            },
            "not an IP address or CIDR block",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"acs:CurrentTime": "tomorrow"}},
            },
            "not an ISO 8601 date and time",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"NumericLessThan": {"acs:Count": "ten"}},
            },
            "not a number",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:SourceVpc": []}},
            },
            "must not be an empty list",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:SourceVpc": {"a": "b"}}},
            },
            "is not a string",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringEquals": {"acs:SourceVpc": None}},
            },
            "is not a string",
        ),
    ],
)
def test_parse_rejects_bad_statements_naming_the_problem(statement, message):
    with pytest.raises(PolicyDocumentError) as caught:
        parse_policy_document(json.dumps(doc(statement)))
    assert message in str(caught.value)


def test_parse_enforces_the_length_limit_in_characters():
    text = json.dumps(doc(allow()))
    padded = text + " " * (6144 - len(text))
    assert parse_policy_document(padded)["Version"] == "1"
    with pytest.raises(PolicyDocumentError, match="6145 characters long; the limit is 6144"):
        parse_policy_document(padded + " ")
    with pytest.raises(PolicyDocumentError, match="the limit is 20"):
        parse_policy_document(text, max_length=20)


def test_parse_rejects_invalid_utf8_and_non_text():
    with pytest.raises(PolicyDocumentError, match="not valid UTF-8"):
        parse_policy_document(b"\xff\xfe{}")
    with pytest.raises(PolicyDocumentError, match="must be a JSON text"):
        parse_policy_document(None)  # type: ignore[arg-type]


def test_parse_rejects_deep_nesting_without_a_recursion_error():
    with pytest.raises(PolicyDocumentError, match=r"nested too deeply|not valid JSON"):
        parse_policy_document("[" * 6000, max_length=10_000)


def test_serialise_round_trips():
    document = parsed(allow(["ecs:Describe*", "ecs:Start*"], INSTANCE), deny("ram:*"))
    assert parse_policy_document(serialise_policy_document(document)) == document


# --- matching --------------------------------------------------------------------------------


def test_no_statement_is_an_implicit_deny():
    assert decide(allow("ram:*")) is Decision.IMPLICIT_DENY
    assert evaluate([], action="ecs:StopInstance", resource=INSTANCE, context={}) is (
        Decision.IMPLICIT_DENY
    )


def test_explicit_deny_wins_over_allow_in_any_document():
    allow_all = parsed(allow())
    deny_stop = parsed(deny("ecs:StopInstance"))
    for documents in ([allow_all, deny_stop], [deny_stop, allow_all]):
        decision = evaluate(documents, action="ecs:StopInstance", resource=INSTANCE, context={})
        assert decision is Decision.EXPLICIT_DENY
        assert not decision.allowed
    assert evaluate(
        [allow_all, deny_stop], action="ecs:StartInstance", resource=INSTANCE, context={}
    ).allowed


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("*", "ecs:StopInstance", True),
        ("ecs:*", "ecs:StopInstance", True),
        ("ecs:*", "ram:GetRole", False),
        ("ecs:Describe*", "ecs:DescribeInstances", True),
        ("ecs:Describe*", "ecs:StopInstance", False),
        ("ecs:describe*", "ECS:DescribeInstances", True),
        ("ecs:StopInstance", "ecs:stopinstance", True),
        ("ecs:St?pInstance", "ecs:StopInstance", True),
        ("ecs:St?pInstance", "ecs:StoopInstance", False),
        ("*:Describe*", "rds:DescribeDBInstances", True),
        ("ecs:Stop", "ecs:StopInstance", False),
    ],
)
def test_action_matching(pattern, action, expected):
    assert decide(allow(pattern), action=action).allowed is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", INSTANCE, True),
        ("acs:ecs:*:11223344:instance/i-abc", INSTANCE, True),
        ("acs:ecs:*:11223344:instance/*", INSTANCE, True),
        ("acs:ecs:*:*:*", INSTANCE, True),
        ("acs:ecs:cn-shanghai:11223344:instance/*", INSTANCE, False),
        ("acs:ecs:*:99999999:instance/*", INSTANCE, False),
        ("acs:ecs:*:11223344:instance/I-ABC", INSTANCE, False),
        ("acs:ecs:*:11223344:instance/i-ab?", INSTANCE, True),
        ("acs:ram:*:11223344:role/ecs-admin", "acs:ram:*:11223344:role/ecs-admin", True),
        # "*" also matches nothing, so a policy's "acs:ram:*:" covers the region-less ARN form.
        ("acs:ram:*:11223344:role/*", "acs:ram::11223344:role/ecs-admin", True),
        ("acs:ram::11223344:role/*", "acs:ram:*:11223344:role/ecs-admin", False),
        ("acs:ram:*:11223344:role/*", "acs:ram:*:11223344:role/ecs-admin", True),
    ],
)
def test_resource_matching(pattern, resource, expected):
    assert decide(allow("*", pattern), resource=resource).allowed is expected


def test_not_action_allows_everything_except_the_listed_actions():
    statement = {"Effect": "Allow", "NotAction": ["ram:*"], "Resource": "*"}
    assert decide(statement, action="ecs:StopInstance").allowed
    assert decide(statement, action="ram:CreateRole") is Decision.IMPLICIT_DENY
    deny_all_but_read = {"Effect": "Deny", "NotAction": "ecs:Describe*", "Resource": "*"}
    assert decide(allow(), deny_all_but_read, action="ecs:StopInstance") is (Decision.EXPLICIT_DENY)
    assert decide(allow(), deny_all_but_read, action="ecs:DescribeInstances").allowed


def test_wildcard_match_directly():
    assert wildcard_match("*", "")
    assert wildcard_match("a*b*c", "aXXbYYc")
    assert not wildcard_match("a*b*c", "aXXbYY")
    assert wildcard_match("A*", "abc", ignore_case=True)
    assert not wildcard_match("A*", "abc")
    # Wildcard characters in the value are ordinary characters there.
    assert wildcard_match("0*", "0*0")
    assert wildcard_match("a?c", "a*c")
    assert not wildcard_match("a*", "b*")
    # A pattern that makes a regex translation backtrack exponentially answers at once.
    assert not wildcard_match("*a" * 30 + "b", "a" * 200)


# --- conditions ------------------------------------------------------------------------------


def cond(operator: str, key: str, value) -> dict:
    return allow(Condition={operator: {key: value}})


@pytest.mark.parametrize(
    ("operator", "policy_value", "request_value", "expected"),
    [
        ("StringEquals", "vpc-1", "vpc-1", True),
        ("StringEquals", "vpc-1", "VPC-1", False),
        ("StringEquals", ["vpc-1", "vpc-2"], "vpc-2", True),
        ("StringNotEquals", "vpc-1", "vpc-2", True),
        ("StringNotEquals", ["vpc-1", "vpc-2"], "vpc-2", False),
        ("StringEqualsIgnoreCase", "vpc-1", "VPC-1", True),
        ("StringEqualsIgnoreCase", "vpc-1", "vpc-2", False),
        ("StringNotEqualsIgnoreCase", "vpc-1", "VPC-1", False),
        ("StringNotEqualsIgnoreCase", "vpc-1", "vpc-2", True),
        ("StringLike", "vpc-*", "vpc-123", True),
        ("StringLike", "vpc-?", "vpc-12", False),
        ("StringLike", "vpc-*", "VPC-123", False),
        ("StringNotLike", "vpc-*", "vpc-123", False),
        ("StringNotLike", "vpc-*", "subnet-1", True),
        ("StringEquals", 42, "42", True),
        ("StringEquals", True, "true", True),
    ],
)
def test_string_operators(operator, policy_value, request_value, expected):
    decision = decide(
        cond(operator, "acs:SourceVpc", policy_value), context={"acs:SourceVpc": request_value}
    )
    assert decision.allowed is expected


@pytest.mark.parametrize(
    ("operator", "policy_value", "request_value", "expected"),
    [
        ("NumericEquals", "10", 10, True),
        ("NumericEquals", 10, "10.0", True),
        ("NumericNotEquals", 10, 11, True),
        ("NumericNotEquals", [10, 11], 11, False),
        ("NumericLessThan", 10, 9, True),
        ("NumericLessThan", 10, 10, False),
        ("NumericLessThanEquals", 10, 10, True),
        ("NumericGreaterThan", "1.5", 2, True),
        ("NumericGreaterThan", 2, 2, False),
        ("NumericGreaterThanEquals", 2, "2", True),
        ("NumericEquals", 10, "ten", False),
        ("NumericEquals", 10, True, False),
    ],
)
def test_numeric_operators(operator, policy_value, request_value, expected):
    decision = decide(
        cond(operator, "ecs:Count", policy_value), context={"ecs:Count": request_value}
    )
    assert decision.allowed is expected


NOON = "2026-06-01T12:00:00Z"


@pytest.mark.parametrize(
    ("operator", "policy_value", "now", "expected"),
    [
        ("DateLessThan", "2026-06-01T12:00:01Z", NOON, True),
        ("DateLessThan", NOON, NOON, False),
        ("DateLessThanEquals", NOON, NOON, True),
        ("DateGreaterThan", "2026-06-01T11:59:59Z", NOON, True),
        ("DateGreaterThan", NOON, NOON, False),
        ("DateGreaterThanEquals", NOON, NOON, True),
        ("DateEquals", "2026-06-01T20:00:00+08:00", NOON, True),
        ("DateNotEquals", "2026-06-01T20:00:00+08:00", NOON, False),
        ("DateLessThan", "2026-06-01T20:00:01+08:00", NOON, True),
        ("DateGreaterThan", "2026-06-01T11:00:00", NOON, True),  # naive means UTC
        ("DateLessThan", "2026-06-01T12:00:01Z", datetime(2026, 6, 1, 12, tzinfo=UTC), True),
        ("DateLessThan", "2026-06-01T12:00:01Z", 1780315200, True),  # epoch seconds
        ("DateLessThan", "2026-06-01T12:00:01Z", "not a date", False),
    ],
)
def test_date_operators(operator, policy_value, now, expected):
    decision = decide(
        cond(operator, "acs:CurrentTime", policy_value), context={"acs:CurrentTime": now}
    )
    assert decision.allowed is expected


@pytest.mark.parametrize(
    ("policy_value", "request_value", "expected"),
    [
        ("true", True, True),
        (True, "true", True),
        ("TRUE", "True", True),
        ("true", False, False),
        (False, "false", True),
        ("true", "yes", False),
    ],
)
def test_bool_operator(policy_value, request_value, expected):
    for key in ("acs:MFAPresent", "acs:SecureTransport"):
        decision = decide(cond("Bool", key, policy_value), context={key: request_value})
        assert decision.allowed is expected


@pytest.mark.parametrize(
    ("policy_value", "source_ip", "expected"),
    [
        ("203.0.113.0/24", "203.0.113.9", True),
        ("203.0.113.0/24", "198.51.100.1", False),
        ("203.0.113.9", "203.0.113.9", True),
        (["10.0.0.0/8", "203.0.113.0/24"], "10.9.8.7", True),
        ("2001:db8::/32", "2001:db8::1", True),
        ("2001:db8::/32", "203.0.113.9", False),
        ("203.0.113.0/24", "garbage", False),
    ],
)
def test_ip_operators(policy_value, source_ip, expected):
    context = {"acs:SourceIp": source_ip}
    assert decide(cond("IpAddress", "acs:SourceIp", policy_value), context=context).allowed is (
        expected
    )
    assert decide(cond("NotIpAddress", "acs:SourceIp", policy_value), context=context).allowed is (
        not expected
    )


def test_condition_keys_are_case_insensitive():
    statement = cond("IpAddress", "ACS:SOURCEIP", "10.0.0.0/8")
    assert decide(statement, context={"acs:sourceip": "10.1.1.1"}).allowed


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("StringEquals", "x"),
        ("StringEqualsIgnoreCase", "x"),
        ("StringLike", "*"),
        ("NumericEquals", 1),
        ("NumericLessThan", 1),
        ("DateLessThan", NOON),
        ("DateGreaterThan", NOON),
        ("Bool", "true"),
        ("IpAddress", "0.0.0.0/0"),
    ],
)
def test_a_missing_key_makes_a_positive_operator_false(operator, value):
    assert decide(cond(operator, "acs:Whatever", value), context={}) is Decision.IMPLICIT_DENY
    assert decide(cond(operator, "acs:Whatever", value), context={"acs:Whatever": None}) is (
        Decision.IMPLICIT_DENY
    )


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("StringNotEquals", "x"),
        ("StringNotEqualsIgnoreCase", "x"),
        ("StringNotLike", "*"),
        ("NumericNotEquals", 1),
        ("DateNotEquals", NOON),
        ("NotIpAddress", "10.0.0.0/8"),
    ],
)
def test_a_missing_key_makes_a_negated_operator_true(operator, value):
    assert decide(cond(operator, "acs:Whatever", value), context={}).allowed


def test_deny_outside_the_office_fails_closed_without_a_source_ip():
    office_only = deny(Condition={"NotIpAddress": {"acs:SourceIp": "203.0.113.0/24"}})
    assert decide(allow(), office_only, context={}) is Decision.EXPLICIT_DENY
    assert decide(allow(), office_only, context={"acs:SourceIp": "203.0.113.5"}).allowed


def test_several_keys_and_operators_must_all_hold_and_values_are_alternatives():
    statement = allow(
        Condition={
            "IpAddress": {"acs:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]},
            "Bool": {"acs:MFAPresent": "true", "acs:SecureTransport": "true"},
            "DateLessThan": {"acs:CurrentTime": "2030-01-01T00:00:00Z"},
        }
    )
    good = {
        "acs:SourceIp": "192.168.1.1",
        "acs:MFAPresent": True,
        "acs:SecureTransport": "true",
        "acs:CurrentTime": NOON,
    }
    assert decide(statement, context=good).allowed
    for key, value in [
        ("acs:SourceIp", "8.8.8.8"),
        ("acs:MFAPresent", False),
        ("acs:SecureTransport", "false"),
        ("acs:CurrentTime", "2031-01-01T00:00:00Z"),
    ]:
        assert not decide(statement, context={**good, key: value}).allowed, key


def test_multi_valued_request_keys_match_any_value():
    statement = cond("StringEquals", "acs:Tag", "prod")
    assert decide(statement, context={"acs:Tag": ["dev", "prod"]}).allowed
    assert not decide(
        cond("StringNotEquals", "acs:Tag", "prod"), context={"acs:Tag": ["dev", "prod"]}
    ).allowed


def test_request_context_builds_the_global_keys():
    now = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
    context = request_context(
        source_ip="10.0.0.1",
        now=now,
        secure_transport=False,
        mfa_present=True,
        extra={"sts:ExternalId": "abc"},
    )
    assert context == {
        "acs:CurrentTime": "2026-06-01T20:00:00Z",
        "acs:SecureTransport": False,
        "acs:SourceIp": "10.0.0.1",
        "acs:MFAPresent": True,
        "sts:ExternalId": "abc",
    }
    assert "acs:MFAPresent" not in request_context(source_ip=None, now=now, secure_transport=True)
    assert "acs:SourceIp" not in request_context(source_ip=None, now=now, secure_transport=True)


def test_evaluate_layers_is_the_intersection_and_deny_in_any_layer_wins():
    role = [parsed(allow("ecs:*"))]
    narrow_session = [parsed(allow("ecs:Describe*"))]
    deny_session = [parsed(deny("ecs:StopInstance"), allow("*"))]

    def layered(layers, action):
        return evaluate_layers(layers, action=action, resource=INSTANCE, context={})

    assert layered([role], "ecs:StopInstance").allowed
    assert layered([role, narrow_session], "ecs:DescribeInstances").allowed
    assert layered([role, narrow_session], "ecs:StopInstance") is Decision.IMPLICIT_DENY
    assert layered([role, deny_session], "ecs:StopInstance") is Decision.EXPLICIT_DENY
    assert layered([[parsed(allow("ram:*"))], deny_session], "ecs:StopInstance") is (
        Decision.EXPLICIT_DENY
    )
    assert layered([], "ecs:StopInstance").allowed is True  # no layer restricts nothing


def test_evaluate_accepts_written_forms_as_well_as_normalised_ones():
    written = {
        "Version": "1",
        "Statement": {
            "Effect": "Allow",
            "Action": "ecs:*",
            "Resource": INSTANCE,
            "Condition": {"Bool": {"acs:MFAPresent": True}},
        },
    }
    assert evaluate(
        [written], action="ecs:StopInstance", resource=INSTANCE, context={"acs:MFAPresent": "true"}
    ).allowed


# --- trust policies --------------------------------------------------------------------------

B_ROOT = "acs:ram::12345678:root"
ALICE = "acs:ram::12345678:user/Alice"
BOB = "acs:ram::12345678:user/Bob"
B_ROLE_SESSION = "acs:ram::12345678:assumed-role/oos-runner/session-1"


def trust(*statements: dict) -> dict:
    return parse_trust_policy(json.dumps(doc(*statements)))


def trusting(principal: dict, effect: str = "Allow", **extra) -> dict:
    return {"Effect": effect, "Action": "sts:AssumeRole", "Principal": principal, **extra}


def admits(document: dict, caller: str, account: str = "12345678", **kwargs) -> bool:
    kwargs.setdefault("context", {})
    return trust_admits(document, caller_arn=caller, caller_account=account, **kwargs)


def test_parse_trust_policy_normalises_principals():
    document = trust(trusting({"RAM": B_ROOT, "Service": ["oos.aliyuncs.com"]}))
    assert document["Statement"][0] == {
        "Effect": "Allow",
        "Action": ["sts:AssumeRole"],
        "Principal": {"RAM": [B_ROOT], "Service": ["oos.aliyuncs.com"]},
    }
    federated = trust(
        trusting(
            {"Federated": "acs:ram::11223344:saml-provider/idp"},
            Condition={
                "StringEquals": {"saml:recipient": "https://signin.aliyun.com/saml-role/sso"}
            },
        )
    )
    assert federated["Statement"][0]["Principal"] == {
        "Federated": ["acs:ram::11223344:saml-provider/idp"]
    }


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ({"Effect": "Allow", "Principal": {"RAM": B_ROOT}}, 'no "Action"'),
        (trusting({"RAM": B_ROOT}) | {"Action": "sts:*"}, "not allowed in a trust policy"),
        (trusting({"RAM": B_ROOT}) | {"Action": "ecs:StopInstance"}, 'use "sts:AssumeRole"'),
        ({"Effect": "Allow", "Action": "sts:AssumeRole"}, 'no "Principal"'),
        (trusting({}), "at least one of"),
        (trusting("acs:ram::12345678:root"), "Principal must be an object"),
        (trusting({"AWS": "x"}), 'unknown element(s) "AWS"'),
        (trusting({"RAM": "12345678"}), 'RAM "12345678" is not'),
        (trusting({"RAM": "acs:ram::12345678:group/dev"}), "is not"),
        (trusting({"RAM": "acs:ram:*:12345678:root"}), "is not"),
        (trusting({"RAM": []}), "must not be an empty list"),
        (trusting({"Service": "oos"}), 'Service "oos" is not a service name'),
        (trusting({"Federated": "acs:ram::1:user/x"}), "saml-provider"),
        (trusting({"RAM": B_ROOT}) | {"Resource": "*"}, 'unknown element(s) "Resource"'),
        (trusting({"RAM": B_ROOT}) | {"Effect": "Maybe"}, 'Effect is "Maybe"'),
    ],
)
def test_parse_trust_policy_rejects_bad_statements(statement, message):
    with pytest.raises(PolicyDocumentError) as caught:
        parse_trust_policy(json.dumps(doc(statement)))
    assert message in str(caught.value)


def test_parse_trust_policy_has_its_own_length_limit():
    text = json.dumps(doc(trusting({"RAM": B_ROOT})))
    with pytest.raises(PolicyDocumentError, match="the limit is 4096"):
        parse_trust_policy(text + " " * 4096)


def test_account_root_principal_admits_its_users_and_role_sessions_but_not_root():
    document = trust(trusting({"RAM": B_ROOT}))
    assert admits(document, ALICE)
    assert admits(document, BOB)
    assert admits(document, B_ROLE_SESSION)
    assert admits(document, "acs:ram::12345678:role/oos-runner/session-1")
    assert not admits(document, B_ROOT)
    assert not admits(document, "acs:ram::99999999:user/Alice", account="99999999")


def test_user_principal_admits_exactly_that_user():
    document = trust(trusting({"RAM": [ALICE]}))
    assert admits(document, ALICE)
    assert admits(document, "acs:ram::12345678:user/alice")  # names compare case-insensitively
    assert not admits(document, BOB)
    assert not admits(document, "acs:ram::87654321:user/Alice", account="87654321")
    assert not admits(document, "acs:ram::12345678:assumed-role/Alice/s")


def test_role_principal_admits_sessions_of_that_role():
    document = trust(trusting({"RAM": "acs:ram::12345678:role/oos-runner"}))
    assert admits(document, B_ROLE_SESSION)
    assert admits(document, "acs:ram::12345678:role/oos-runner/other-session")
    assert not admits(document, "acs:ram::12345678:assumed-role/other-role/s")
    assert not admits(document, ALICE)


def test_service_principal_admits_only_that_service():
    document = trust(trusting({"Service": "oos.aliyuncs.com", "RAM": B_ROOT}))
    assert admits(document, "", account="", service="oos.aliyuncs.com")
    assert admits(document, "", account="", service="OOS.aliyuncs.com")
    assert not admits(document, "", account="", service="ecs.aliyuncs.com")
    # With a service set, RAM principals are not what is being asked about.
    assert not admits(trust(trusting({"RAM": B_ROOT})), ALICE, service="ecs.aliyuncs.com")


def test_federated_principal_admits_that_provider():
    provider = "acs:ram::11223344:saml-provider/idp"
    document = trust(trusting({"Federated": provider}))
    assert admits(document, provider, account="11223344")
    assert not admits(document, "acs:ram::11223344:saml-provider/other", account="11223344")


def test_trust_deny_wins_and_conditions_apply():
    document = trust(
        trusting({"RAM": B_ROOT}),
        trusting({"RAM": [BOB]}, effect="Deny"),
    )
    assert admits(document, ALICE)
    assert not admits(document, BOB)
    with_external_id = trust(
        trusting({"RAM": B_ROOT}, Condition={"StringEquals": {"sts:ExternalId": "abc-123"}})
    )
    assert admits(with_external_id, ALICE, context={"sts:ExternalId": "abc-123"})
    assert not admits(with_external_id, ALICE, context={"sts:ExternalId": "wrong"})
    assert not admits(with_external_id, ALICE, context={})


def test_trust_rejects_inconsistent_or_unknown_callers():
    document = trust(trusting({"RAM": B_ROOT}))
    assert not admits(document, ALICE, account="11223344")
    assert not admits(document, "not an arn")
    assert not admits(document, "")


def test_trusted_accounts_lists_allowed_ram_principals():
    document = trust(
        trusting({"RAM": [B_ROOT, "acs:ram::11112222:user/x"], "Service": "ecs.aliyuncs.com"}),
        trusting({"RAM": "acs:ram::33334444:root"}, effect="Deny"),
    )
    assert trusted_accounts(document) == {"12345678", "11112222"}
