"""Hypothesis properties of cloud.policies: the trust-policy merge, validators, session names."""

import contextlib
import json
import random
import re
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.policies import (
    PolicyError,
    canonical_policy,
    merge_trust_policy,
    parse_session_policy,
    policy_to_text,
    role_session_name_for,
    trust_policy_equal,
    trust_policy_principals,
    validate_account_uid,
    validate_role_name,
)
from tests.cloud.strategies import ram_principals, roots, statements


@st.composite
def scenarios(draw):
    """A current trust document, the managed universe, the wanted subset, and the unmanaged."""
    managed_all = draw(st.sets(roots, max_size=6))
    unmanaged = draw(st.sets(ram_principals, max_size=4)) - managed_all
    pool = sorted(managed_all | unmanaged)
    document = {"Version": "1", "Statement": draw(st.lists(statements(pool), max_size=5))}
    wanted = (
        set(draw(st.lists(st.sampled_from(sorted(managed_all)), unique=True)))
        if managed_all
        else set()
    )
    # Sometimes the portal wants a principal it never managed before (a new partner).
    wanted |= draw(st.sets(roots, max_size=2))
    return document, managed_all | wanted, wanted, unmanaged - wanted


def _reformatted(document: dict, seed: int) -> str:
    """The same document with shuffled statement/key order and random whitespace."""
    rng = random.Random(seed)

    def shuffle(value):
        if isinstance(value, dict):
            items = list(value.items())
            rng.shuffle(items)
            return {k: shuffle(v) for k, v in items}
        if isinstance(value, list):
            copied = [shuffle(v) for v in value]
            rng.shuffle(copied)
            return copied
        return value

    return json.dumps(shuffle(document), indent=rng.choice([None, 1, 4]))


def _allow_ram(document) -> set[str]:
    found = set()
    for statement in canonical_policy(document, trust=True)["Statement"]:
        if statement["Effect"] == "Allow":
            found.update(statement["Principal"].get("RAM", ()))
    return found


def _statements_of_kind(document, effect: str) -> set[str]:
    return {
        policy_to_text(s)
        for s in canonical_policy(document, trust=True)["Statement"]
        if s["Effect"] == effect
    }


@given(scenarios())
def test_merge_is_idempotent(case) -> None:
    document, managed, wanted, _ = case
    once = merge_trust_policy(document, managed_wanted=wanted, managed_all_known=managed)
    twice = merge_trust_policy(once, managed_wanted=wanted, managed_all_known=managed)
    assert once == twice


@given(scenarios())
def test_merge_never_drops_an_unmanaged_principal_or_statement(case) -> None:
    document, managed, wanted, _ = case
    merged = merge_trust_policy(document, managed_wanted=wanted, managed_all_known=managed)
    assert _allow_ram(document) - managed <= _allow_ram(merged)
    before, after = trust_policy_principals(document), trust_policy_principals(merged)
    assert before.service <= after.service
    assert before.federated <= after.federated
    # Deny statements are never edited.
    assert _statements_of_kind(document, "Deny") <= _statements_of_kind(merged, "Deny")


@given(scenarios())
def test_merge_leaves_exactly_the_wanted_managed_principals(case) -> None:
    document, managed, wanted, _ = case
    merged = merge_trust_policy(document, managed_wanted=wanted, managed_all_known=managed)
    assert _allow_ram(merged) & managed == wanted


@given(scenarios(), st.integers())
def test_merge_is_insensitive_to_order_and_format(case, seed) -> None:
    document, managed, wanted, _ = case
    expected = merge_trust_policy(document, managed_wanted=wanted, managed_all_known=managed)
    text = _reformatted(document, seed)
    assert merge_trust_policy(text, managed_wanted=wanted, managed_all_known=managed) == expected
    assert trust_policy_equal(text, document)


@given(scenarios())
def test_merge_result_round_trips_through_json_text(case) -> None:
    document, managed, wanted, _ = case
    merged = merge_trust_policy(document, managed_wanted=wanted, managed_all_known=managed)
    text = policy_to_text(merged)
    assert canonical_policy(text, trust=True) == merged
    assert json.loads(text) == merged
    assert trust_policy_equal(text, merged)


@given(scenarios())
def test_no_change_is_detected_by_comparing_canonical_forms(case) -> None:
    document, managed, _, _ = case
    present = _allow_ram(document) & managed
    merged = merge_trust_policy(document, managed_wanted=present, managed_all_known=managed)
    if all(  # nothing to remove and nothing to add: the canonical form is unchanged
        s["Effect"] == "Deny" or not (set(s["Principal"].get("RAM", ())) & (managed - present))
        for s in canonical_policy(document, trust=True)["Statement"]
    ):
        assert policy_to_text(merged) == policy_to_text(canonical_policy(document, trust=True))


# --- validators and session names --------------------------------------------------------------
@given(st.text(max_size=40))
def test_account_uid_accepted_iff_ascii_digits(text: str) -> None:
    expected = 1 <= len(text) <= 32 and all(ch in string.digits for ch in text)
    try:
        validate_account_uid(text)
        accepted = True
    except PolicyError:
        accepted = False
    assert accepted == expected


@given(st.text(max_size=80))
def test_role_name_accepted_iff_allowed_characters(text: str) -> None:
    expected = (
        bool(re.fullmatch(r"[A-Za-z0-9.\-]{1,64}", text, flags=re.ASCII)) and "\n" not in text
    )
    try:
        validate_role_name(text)
        accepted = True
    except PolicyError:
        accepted = False
    assert accepted == expected


SESSION_NAME = re.compile(r"[A-Za-z0-9.@_\-]{2,32}")


@given(st.text(alphabet=st.characters(codec=None), max_size=200))
def test_role_session_name_always_valid_and_deterministic(raw: str) -> None:
    name = role_session_name_for(raw)
    assert SESSION_NAME.fullmatch(name), name
    assert name.isascii()
    assert role_session_name_for(raw) == name


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1FFFF), max_size=64))
def test_role_session_name_includes_control_chars_and_emoji(raw: str) -> None:
    assert SESSION_NAME.fullmatch(role_session_name_for(raw + "\n\x00🙂"))


@given(st.from_regex(r"[A-Za-z0-9.@_\-]{2,32}", fullmatch=True))
def test_valid_session_names_are_unchanged(name: str) -> None:
    assert role_session_name_for(name) == name


# --- session policies never crash on anything ---------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
policyish = st.fixed_dictionaries(
    {
        "Version": st.sampled_from(["1", 1, "2"]),
        "Statement": st.lists(
            st.fixed_dictionaries(
                {
                    "Effect": st.sampled_from(["Allow", "Deny", "allow", 1]),
                    "Action": st.one_of(
                        st.sampled_from(["ecs:*", "ecs:Describe*", "*", "bad"]),
                        st.lists(st.text(max_size=12), max_size=3),
                    ),
                    "Resource": st.one_of(
                        st.just("*"), st.lists(st.text(max_size=30), max_size=3), json_values
                    ),
                },
                optional={"Condition": json_values, "Principal": json_values},
            ),
            max_size=3,
        ),
    }
)


@given(st.one_of(st.text(max_size=300), json_values.map(json.dumps), policyish.map(json.dumps)))
@settings(max_examples=300)
def test_parse_session_policy_returns_valid_text_or_policy_error(text: str) -> None:
    try:
        minified = parse_session_policy(text)
    except PolicyError as error:
        assert str(error)
        return
    assert len(minified) <= 2048 and minified.isascii()
    assert parse_session_policy(minified) == minified
    assert json.loads(minified)["Version"] == "1"


@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
def test_trust_policy_parsing_returns_or_raises_policy_error(text: str) -> None:
    with contextlib.suppress(PolicyError):
        trust_policy_principals(text)
