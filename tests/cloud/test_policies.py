"""Example tests for cloud.policies: names, ARNs, trust documents, session policies, markers."""

import json

import pytest

from cloud import policies
from cloud.policies import (
    PORTAL_MARKER,
    PolicyError,
    Principal,
    account_root_arn,
    assume_role_policy_for,
    build_trust_policy,
    description_with_marker,
    ecs_instances_session_policy,
    has_marker,
    merge_trust_policy,
    parse_principal,
    parse_role_arn,
    parse_session_policy,
    policy_to_text,
    ram_user_arn,
    read_only_ecs_session_policy,
    role_arn,
    role_session_name_for,
    trust_policy_equal,
    trust_policy_principals,
    validate_account_uid,
    validate_policy_name,
    validate_ram_user_name,
    validate_role_name,
)

A = "acs:ram::11223344:root"
B = "acs:ram::12345678:root"
C = "acs:ram::5138828231865461:root"


# --- account UIDs (BI-01) -------------------------------------------------------------------
@pytest.mark.parametrize("uid", ["1", "12345678", "5138828231865461", "0" * 32])
def test_account_uid_accepts_ascii_digits(uid: str) -> None:
    assert validate_account_uid(uid) == uid


@pytest.mark.parametrize(
    "uid",
    [
        "",
        "1" * 33,
        "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # full-width digits
        "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits
        "\u0967\u0968\u0969",  # Devanagari digits
        "\u00b2\u00b3",  # superscripts: str.isdigit() says True
        "1e15",
        "-1",
        "+1",
        " 12345678",
        "12345678 ",
        "12345678\n",
        "1_000",
        "12.5",
        '123";"*',
        "acs:ram::*:root",
        "acs:ram::12345678:root",
        None,
        12345678,
    ],
)
def test_account_uid_rejects_everything_else(uid: object) -> None:
    with pytest.raises(PolicyError, match="1 to 32 digits"):
        validate_account_uid(uid)


def test_str_isdigit_would_have_accepted_some_rejected_uids() -> None:
    assert "\u00b2\u00b3".isdigit() and "\uff11\uff12".isdigit()  # the trap the validator avoids


# --- role, user, policy names (BI-02) ------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "ecs-admin", "Role.v2", "A" * 64, "0-9.x"])
def test_role_name_accepts_letters_digits_dot_dash(name: str) -> None:
    assert validate_role_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A" * 65,
        "../x",
        "a/b",
        "a b",
        "a_b",
        "rôle",
        "ecs\u2010admin",
        "\u0430dmin",
        "a\n",
        "x@y",
        None,
    ],
)
def test_role_name_rejects_other_characters_and_lengths(name: object) -> None:
    with pytest.raises(PolicyError, match="role name"):
        validate_role_name(name)


def test_ram_user_and_policy_names() -> None:
    assert validate_ram_user_name("Alice") == "Alice"
    assert validate_ram_user_name("a.b_c-d") == "a.b_c-d"
    for bad in ("", "x" * 65, "a b", "a@b", "a/b"):
        with pytest.raises(PolicyError):
            validate_ram_user_name(bad)
    assert validate_policy_name("AliyunECSFullAccess") == "AliyunECSFullAccess"
    assert validate_policy_name("x" * 128)
    for bad in ("", "x" * 129, "a.b", "a_b", "a b"):
        with pytest.raises(PolicyError):
            validate_policy_name(bad)


# --- ARNs ---------------------------------------------------------------------------------------
def test_arn_builders() -> None:
    assert account_root_arn("12345678") == B
    assert ram_user_arn("12345678", "Alice") == "acs:ram::12345678:user/Alice"
    assert role_arn("11223344", "ecs-admin") == "acs:ram::11223344:role/ecs-admin"
    with pytest.raises(PolicyError):
        account_root_arn("1e5")
    with pytest.raises(PolicyError):
        role_arn("11223344", "../x")


def test_parse_principal_kinds() -> None:
    assert parse_principal(B) == Principal(kind="root", account="12345678", name=None)
    assert parse_principal("acs:ram::1:user/Bob") == Principal("user", "1", "Bob")
    assert parse_principal("acs:ram::1:role/r.1") == Principal("role", "1", "r.1")
    assert parse_principal("ecs.aliyuncs.com") == Principal("service", None, "ecs.aliyuncs.com")
    assert parse_role_arn("acs:ram::11223344:role/ecs-admin") == ("11223344", "ecs-admin")


@pytest.mark.parametrize(
    "arn",
    [
        "acs:ram::*:root",
        "acs:ram::12:role/a/b",
        "acs:ram::12:assumed-role/a/s",
        "acs:ram::12:saml-provider/idp",
        "acs:ram:cn:12:root",
        "acs:ram::\uff11\uff12:root",
        "acs:ram::12:root ",
        "acs:ram::12:role/a b",
        "*",
        "",
        None,
    ],
)
def test_parse_principal_rejects_other_forms(arn: object) -> None:
    with pytest.raises(PolicyError):
        parse_principal(arn)


def test_parse_role_arn_rejects_non_roles() -> None:
    with pytest.raises(PolicyError, match="role ARN"):
        parse_role_arn(B)


# --- trust policies -----------------------------------------------------------------------------
def test_trust_policy_principals_reads_string_and_list_forms() -> None:
    document = {
        "Version": "1",
        "Statement": [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"RAM": A}},
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"RAM": [B, C], "Service": "ecs.aliyuncs.com"},
            },
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Federated": ["acs:ram::1:saml-provider/idp"]},
                "Condition": {"StringEquals": {"saml:recipient": "https://x/sso"}},
            },
            {
                "Action": "sts:AssumeRole",
                "Effect": "Deny",
                "Principal": {"RAM": ["acs:ram::9:root"]},
            },
        ],
    }
    found = trust_policy_principals(json.dumps(document))
    assert found.ram == {A, B, C}
    assert found.service == {"ecs.aliyuncs.com"}
    assert found.federated == {"acs:ram::1:saml-provider/idp"}
    assert found.denied_ram == {"acs:ram::9:root"}
    assert found.conditional_ram == frozenset()


def test_build_trust_policy_is_the_documented_shape() -> None:
    assert build_trust_policy({B}) == {
        "Version": "1",
        "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"RAM": [B]}}],
    }
    with_service = build_trust_policy([B, A], services=["oos.aliyuncs.com"])
    assert with_service["Statement"][0]["Principal"] == {
        "RAM": [A, B],
        "Service": ["oos.aliyuncs.com"],
    }
    with pytest.raises(PolicyError):
        build_trust_policy(["oos.aliyuncs.com"])


def test_merge_adds_and_removes_only_managed_principals() -> None:
    unmanaged = "acs:ram::999:user/ops"
    current = {
        "Version": "1",
        "Statement": [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"RAM": [A, unmanaged]}},
        ],
    }
    merged = merge_trust_policy(current, managed_wanted={B}, managed_all_known={A, B, C})
    assert trust_policy_principals(merged).ram == {B, unmanaged}
    assert merged == merge_trust_policy(merged, managed_wanted={B}, managed_all_known={A, B, C})


def test_merge_keeps_conditions_service_and_deny_statements() -> None:
    conditional = {
        "Action": "sts:AssumeRole",
        "Effect": "Allow",
        "Principal": {"RAM": ["acs:ram::7:root"]},
        "Condition": {"Bool": {"acs:MFAPresent": "true"}},
    }
    deny = {"Action": "sts:AssumeRole", "Effect": "Deny", "Principal": {"RAM": [A]}}
    service = {
        "Action": "sts:AssumeRole",
        "Effect": "Allow",
        "Principal": {"Service": ["ecs.aliyuncs.com"]},
    }
    current = {"Version": "1", "Statement": [conditional, deny, service]}
    merged = merge_trust_policy(current, managed_wanted={B}, managed_all_known={A})
    texts = {policy_to_text(s) for s in merged["Statement"]}
    for kept in (conditional, deny, service):
        assert (
            policy_to_text(
                policies.canonical_policy({"Version": "1", "Statement": [kept]}, trust=True)[
                    "Statement"
                ][0]
            )
            in texts
        )
    assert B in trust_policy_principals(merged).ram
    # A managed principal in a Deny is never taken out: that would widen access.
    assert A in trust_policy_principals(merged).denied_ram


def test_removing_the_last_principal_drops_the_statement_but_not_other_kinds() -> None:
    current = {
        "Version": "1",
        "Statement": [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"RAM": [B], "Service": ["ecs.aliyuncs.com"]},
            }
        ],
    }
    merged = merge_trust_policy(current, managed_wanted=set(), managed_all_known={B})
    assert merged["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": ["ecs.aliyuncs.com"]},
        }
    ]
    emptied = merge_trust_policy(
        build_trust_policy({B}), managed_wanted=set(), managed_all_known={B}
    )
    assert emptied == {"Version": "1", "Statement": []}


def test_merge_from_nothing_builds_the_policy() -> None:
    assert merge_trust_policy(
        None, managed_wanted={B, C}, managed_all_known=set()
    ) == build_trust_policy({B, C})


def test_trust_policy_equal_ignores_order_format_and_duplicates() -> None:
    one = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": [B, A]}}
            ],
        }
    )
    two = json.dumps(
        {
            "Statement": [
                {"Principal": {"RAM": [A, B, A]}, "Action": ["sts:AssumeRole"], "Effect": "Allow"}
            ],
            "Version": "1",
        },
        indent=4,
    )
    assert trust_policy_equal(one, two)
    assert not trust_policy_equal(one, build_trust_policy({A}))


@pytest.mark.parametrize(
    "document",
    [
        "",
        "not json",
        "[]",
        '{"Version":"2","Statement":[]}',
        '{"Statement":[]}',
        '{"Version":"1"}',
        '{"Version":"1","Statement":[{"Effect":"Maybe","Action":"sts:AssumeRole","Principal":{"RAM":"x"}}]}',
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}',
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":[]}}]}',
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":[1]}}]}',
        '{"Version":"1","Version":"1","Statement":[]}',
        '{"Version":"1","Statement":[],"Extra":1}',
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":NaN,"Principal":{"RAM":"x"}}]}',
        "[" * 100000,
    ],
)
def test_malformed_trust_documents_raise_policy_error(document: str) -> None:
    with pytest.raises(PolicyError):
        trust_policy_principals(document)


def test_merge_refuses_non_ram_managed_principals() -> None:
    with pytest.raises(PolicyError):
        merge_trust_policy(None, managed_wanted={"ecs.aliyuncs.com"}, managed_all_known=set())
    with pytest.raises(PolicyError):
        merge_trust_policy(None, managed_wanted={"acs:ram::*:root"}, managed_all_known=set())


# --- partner-side and session policies (BI-06) -------------------------------------------------
def test_assume_role_policy_names_exactly_the_roles() -> None:
    r1 = "acs:ram::11223344:role/ecs-admin"
    r2 = "acs:ram::11223344:role/rds-ops"
    assert assume_role_policy_for([r1]) == {
        "Version": "1",
        "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Resource": r1}],
    }
    both = assume_role_policy_for([r2, r1, r2])
    assert both["Statement"][0]["Resource"] == [r1, r2]
    assert "*" not in policy_to_text(both)
    for bad in ([], ["*"], ["acs:ram::*:role/x"], [B], ["acs:ram::1:role/*"]):
        with pytest.raises(PolicyError):
            assume_role_policy_for(bad)


def test_session_policy_is_minified_and_checked() -> None:
    text = """
    {
      "Version": "1",
      "Statement": [
        {"Effect": "Allow", "Action": ["ecs:Describe*", "ecs:Describe*"], "Resource": "*"}
      ]
    }
    """
    assert parse_session_policy(text) == (
        '{"Statement":[{"Action":"ecs:Describe*","Effect":"Allow","Resource":"*"}],"Version":"1"}'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("{", "not valid JSON"),
        ('"x"', "JSON object"),
        ('{"Version":"1","Statement":[]}', "at least one statement"),
        (
            '{"Version":"2","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}',
            "Version",
        ),
        (
            '{"Version":"1","Statement":[{"Effect":"allow","Action":"ecs:*","Resource":"*"}]}',
            "Effect",
        ),
        ('{"Version":"1","Statement":[{"Effect":"Allow","Resource":"*"}]}', "Action"),
        ('{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*"}]}', "Resource"),
        (
            '{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs","Resource":"*"}]}',
            "service:Action",
        ),
        (
            '{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Principal":{"RAM":"*"}}]}',
            "Principal",
        ),
        (
            '{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*","Resource":"x"}]}',
            "repeats",
        ),
        (
            '{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"a\\u0000b"}]}',
            "control",
        ),
        (
            '{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":Infinity}]}',
            "not JSON",
        ),
        (
            '{"Version":"1","Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}',
            "non-empty",
        ),
    ],
)
def test_bad_session_policies_get_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_session_policy(text)


def test_session_policy_size_limit_is_measured_after_minification() -> None:
    def document(count: int) -> str:
        resources = [f"acs:ecs:*:*:instance/i-{n:020d}" for n in range(count)]
        return json.dumps(
            {
                "Version": "1",
                "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": resources}],
            },
            indent=8,
        )

    fits = max(n for n in range(1, 80) if len(policy_to_text(json.loads(document(n)))) <= 2048)
    assert len(document(fits)) > 2048  # the pretty-printed text is longer, yet accepted
    assert parse_session_policy(document(fits))
    with pytest.raises(PolicyError, match="at most 2048"):
        parse_session_policy(document(fits + 1))


def test_non_ascii_counts_as_its_escaped_length() -> None:
    # What is sent is ASCII (\\uXXXX escapes), so the limit holds for bytes too.
    value = "é" * 400
    text = json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": value}]}
    )
    with pytest.raises(PolicyError, match="at most 2048"):
        parse_session_policy(text)


def test_session_policy_builders_pass_the_validator() -> None:
    read_only = policy_to_text(read_only_ecs_session_policy())
    assert parse_session_policy(read_only) == read_only
    assert "ecs:Describe*" in read_only and "ecs:*" not in read_only
    only = ecs_instances_session_policy(
        ["i-b", "i-a"], account_uid="11223344", region="cn-hangzhou"
    )
    assert only["Statement"][0]["Resource"] == [
        "acs:ecs:cn-hangzhou:11223344:instance/i-a",
        "acs:ecs:cn-hangzhou:11223344:instance/i-b",
    ]
    for bad in ([], ["*"], ["i-a/b"], ["bp1"]):
        with pytest.raises(PolicyError):
            ecs_instances_session_policy(bad)
    with pytest.raises(PolicyError, match="at most 2048"):
        ecs_instances_session_policy([f"i-{n:030d}" for n in range(100)])


# --- session names (BI-04) ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["alice@company-b", "bob.smith@b.example", "a_b-c.d"])
def test_valid_session_names_are_kept(name: str) -> None:
    assert role_session_name_for(name) == name


@pytest.mark.parametrize(
    "raw",
    [
        "a",
        "x" * 65,
        "alice smith@b",
        "line\nbreak",
        "emoji🙂@b",
        "Zoë@b",
        "",
        "张三@company-b",
        "\x00\x01",
    ],
)
def test_other_session_names_are_sanitised(raw: str) -> None:
    name = role_session_name_for(raw)
    assert policies.validate_role_session_name(name) == name
    assert role_session_name_for(raw) == name


def test_sanitised_names_stay_readable_and_distinct() -> None:
    assert role_session_name_for("Zoë@company-b").startswith("Zoe@company-b-")
    assert role_session_name_for("张三@b") != role_session_name_for("李四@b")
    long = role_session_name_for("a.very.long.name.for.someone@partner-company.example")
    assert len(long) == 32 and long.startswith("a.very.long.name.for.so")


# --- marker -------------------------------------------------------------------------------------
def test_marker_round_trip_and_length() -> None:
    assert has_marker(description_with_marker("ECS admin"))
    assert description_with_marker("ECS admin") == f"ECS admin {PORTAL_MARKER}"
    assert description_with_marker("") == PORTAL_MARKER
    assert description_with_marker(f"x {PORTAL_MARKER}") == f"x {PORTAL_MARKER}"
    long = description_with_marker("d" * 5000)
    assert len(long) <= 1024 and has_marker(long)
    assert not has_marker(None) and not has_marker("") and not has_marker("managed by someone")
