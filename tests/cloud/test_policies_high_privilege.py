"""The high-privilege gate's pure half (`cloud.policies.high_privilege_reasons`) and the parked
trust policy (`parking_lock_statement`, `merge_trust_policy(parking=...)`)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud import policies
from cloud.policies import high_privilege_reasons, merge_trust_policy, parking_lock_statement

OWNER_ROOT = "acs:ram::1111:root"
PARTNER_ROOT = "acs:ram::2222:root"


def allow(*actions: str, resource: str = "*") -> dict:
    return {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}],
    }


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (allow("*"), policies.REASON_EVERY_ACTION),
        (allow("*:*"), policies.REASON_EVERY_ACTION),
        (allow("sts:AssumeRole", resource="acs:ram::1111:role/*"), policies.REASON_ASSUME_ROLE),
        (allow("STS:assumerole"), policies.REASON_ASSUME_ROLE),
        (allow("sts:*"), policies.REASON_ASSUME_ROLE),
        (allow("sts:Assume*"), policies.REASON_ASSUME_ROLE),
        (allow("*:AssumeRole"), policies.REASON_ASSUME_ROLE),
        (allow("ram:PassRole"), policies.REASON_HANDS_OVER_ROLES),
        (allow("ram:*"), policies.REASON_RAM_WRITE),
        (allow("ram:*"), policies.REASON_HANDS_OVER_ROLES),
        (allow("ram:Create?ole"), policies.REASON_RAM_WRITE),
        (allow("RAM:Attach*"), policies.REASON_RAM_WRITE),
        (allow("ram:DeleteUser"), policies.REASON_RAM_WRITE),
        # A write RAM may add tomorrow, named literally, is a write today.
        (allow("ram:RotateSomethingNew"), policies.REASON_RAM_WRITE),
        ({"Statement": [{"Effect": "Allow", "NotAction": "ecs:*", "Resource": "*"}]}, None),
        ('{"Statement": {"Effect": "Allow", "Action": "*"}}', policies.REASON_EVERY_ACTION),
        ("not json", policies.REASON_UNREADABLE),
    ],
)
def test_flagged_documents_say_why(document, reason: str | None) -> None:
    reasons = high_privilege_reasons(document)
    assert reasons
    if reason is None:
        assert reasons[0].startswith(policies.REASON_NOT_ACTION)
    else:
        assert any(r.startswith(reason) for r in reasons), reasons


def test_reasons_name_the_patterns_behind_them() -> None:
    reasons = high_privilege_reasons(allow("sts:*", "ram:Create*", "ecs:Describe*"))
    assert reasons == (
        f"{policies.REASON_ASSUME_ROLE}: sts:*",
        f"{policies.REASON_RAM_WRITE}: ram:Create*",
    )


@pytest.mark.parametrize(
    "document",
    [
        allow("ecs:*"),
        allow("ram:Get*", "ram:List*", "ram:GetRole"),
        allow("sts:GetCallerIdentity"),
        allow("ecs:*", "ram:CreateServiceLinkedRole"),
        allow("ecs:Describe*", "oss:*"),
        {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]},
        {"Statement": [{"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"}]},
        None,
    ],
)
def test_reads_and_denies_are_not_high_privilege(document) -> None:
    assert high_privilege_reasons(document) == ()


# --- properties ---------------------------------------------------------------------------------
def _case_mixed(text: str, flips: list[bool]) -> str:
    return "".join(ch.swapcase() if flips[i % len(flips)] else ch for i, ch in enumerate(text))


risky_patterns = st.sampled_from(
    [
        "*",
        "*:*",
        "sts:*",
        "sts:AssumeRole",
        "sts:Assume*",
        "*:Assume?ole",
        "ram:*",
        "ram:PassRole",
        "ram:Pass*",
        "ram:CreateUser",
        "ram:Attach*",
        "ram:*Role",
        "ram:Update*",
        "ram:SetDefaultPolicyVersion",
    ]
)
safe_patterns = st.sampled_from(
    [
        "ecs:*",
        "ecs:Describe*",
        "oss:GetObject",
        "ram:Get*",
        "ram:List*",
        "ram:GetRole",
        "sts:GetCallerIdentity",
        "vpc:Describe?pc",
    ]
)
flips = st.lists(st.booleans(), min_size=1, max_size=5)


@st.composite
def documents(draw, *, risky: bool):
    """A policy with safe Allow statements, any Deny statements, and (if `risky`) one Allow
    statement carrying a risky pattern, in any order and letter case."""
    statements = [
        {
            "Effect": "Allow",
            "Action": draw(st.lists(safe_patterns, min_size=1, max_size=3)),
            "Resource": "*",
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    statements += [
        {
            "Effect": "Deny",
            "Action": draw(st.lists(st.one_of(risky_patterns, safe_patterns), min_size=1)),
            "Resource": "*",
        }
        for _ in range(draw(st.integers(0, 2)))
    ]
    if risky:
        pattern = _case_mixed(draw(risky_patterns), draw(flips))
        condition = draw(st.sampled_from([None, {"Bool": {"acs:MFAPresent": "true"}}]))
        statement = {
            "Effect": "Allow",
            "Action": draw(st.permutations([pattern, *draw(st.lists(safe_patterns, max_size=2))])),
            "Resource": draw(st.sampled_from(["*", "acs:ram::1111:role/*", "acs:ecs:*:*:*"])),
        }
        if condition:
            statement["Condition"] = condition
        statements.append(statement)
    return {"Version": "1", "Statement": draw(st.permutations(statements))}


@given(documents(risky=True))
def test_any_allow_of_a_risky_action_is_flagged_whatever_surrounds_it(document) -> None:
    assert high_privilege_reasons(document)


@given(documents(risky=False))
def test_safe_allows_and_any_denies_are_never_flagged(document) -> None:
    assert high_privilege_reasons(document) == ()


@given(documents(risky=True), st.randoms())
def test_the_verdict_ignores_statement_order_and_text_form(document, rng) -> None:
    shuffled = dict(document, Statement=list(document["Statement"]))
    rng.shuffle(shuffled["Statement"])
    assert high_privilege_reasons(json.dumps(shuffled, indent=2)) == high_privilege_reasons(
        document
    )


@given(documents(risky=False), risky_patterns)
def test_adding_a_deny_never_flags_and_adding_a_risky_allow_always_does(document, pattern) -> None:
    denied = dict(
        document, Statement=[*document["Statement"], {"Effect": "Deny", "Action": pattern}]
    )
    assert high_privilege_reasons(denied) == ()
    allowed = dict(
        document, Statement=[*document["Statement"], {"Effect": "Allow", "Action": pattern}]
    )
    assert high_privilege_reasons(allowed)


# --- the parked trust policy --------------------------------------------------------------------
def test_parking_adds_the_lock_and_unparking_lifts_it() -> None:
    parked = merge_trust_policy(
        None, managed_wanted={OWNER_ROOT}, managed_all_known={OWNER_ROOT}, parking=OWNER_ROOT
    )
    assert parking_lock_statement(OWNER_ROOT) in parked["Statement"]
    assert policies.trust_policy_principals(parked).denied_ram == {OWNER_ROOT}
    again = merge_trust_policy(
        parked, managed_wanted={OWNER_ROOT}, managed_all_known={OWNER_ROOT}, parking=OWNER_ROOT
    )
    assert again == parked
    unparked = merge_trust_policy(
        parked,
        managed_wanted={PARTNER_ROOT},
        managed_all_known={OWNER_ROOT, PARTNER_ROOT},
        parking=OWNER_ROOT,
    )
    assert unparked == policies.build_trust_policy([PARTNER_ROOT])


def test_the_owners_own_deny_statements_are_kept_when_unparking() -> None:
    own_deny = {
        "Action": "sts:AssumeRole",
        "Effect": "Deny",
        "Principal": {"RAM": [OWNER_ROOT]},
        "Condition": {"Bool": {"acs:MFAPresent": "false"}},
    }
    current = {"Version": "1", "Statement": [own_deny, parking_lock_statement(OWNER_ROOT)]}
    merged = merge_trust_policy(
        current, managed_wanted={PARTNER_ROOT}, managed_all_known={OWNER_ROOT}, parking=OWNER_ROOT
    )
    kept = policies.canonical_policy({"Version": "1", "Statement": [own_deny]}, trust=True)
    assert kept["Statement"][0] in merged["Statement"]
    assert parking_lock_statement(OWNER_ROOT) not in merged["Statement"]


def test_only_an_account_root_can_be_the_parking_principal() -> None:
    with pytest.raises(policies.PolicyError):
        parking_lock_statement("acs:ram::1111:user/alice")
