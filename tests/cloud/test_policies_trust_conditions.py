"""The trust-policy merge with named principals and ExternalId conditions (issue 11)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud import policies
from tests.cloud.strategies import ram_principals, statements

ALICE = "acs:ram::12345678:user/Alice"
BOB = "acs:ram::12345678:user/Bob"
ROOT_B = "acs:ram::12345678:root"


def _allowed(document: dict) -> dict[str, list[dict]]:
    """principal → the Allow statements naming it."""
    found: dict[str, list[dict]] = {}
    for statement in document["Statement"]:
        if statement["Effect"] == "Allow":
            for arn in statement["Principal"].get("RAM", []):
                found.setdefault(arn, []).append(statement)
    return found


def test_a_single_user_principal_written_as_a_string_is_read_and_kept() -> None:
    document = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Principal": {"RAM": ALICE}, "Action": "sts:AssumeRole"}],
    }
    assert policies.trust_policy_principals(document).ram == {ALICE}
    merged = policies.merge_trust_policy(document, managed_wanted={BOB}, managed_all_known={ROOT_B})
    assert policies.trust_policy_principals(merged).ram == {ALICE, BOB}


def test_switching_to_named_people_with_an_external_id_replaces_the_root_in_one_document() -> None:
    current = policies.build_trust_policy([ROOT_B])
    condition = policies.external_id_condition("abc-123")
    merged = policies.merge_trust_policy(
        current,
        managed_wanted={ALICE},
        managed_all_known={ROOT_B, ALICE},
        conditions={ALICE: condition},
    )
    assert merged["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": ["abc-123"]}},
            "Effect": "Allow",
            "Principal": {"RAM": [ALICE]},
        }
    ]
    # And back: the ExternalId goes with the scope, the root comes back unconditionally.
    back = policies.merge_trust_policy(
        merged, managed_wanted={ROOT_B}, managed_all_known={ROOT_B, ALICE}
    )
    assert back == policies.build_trust_policy([ROOT_B])


def test_turning_the_external_id_off_moves_the_principal_to_a_plain_statement() -> None:
    condition = policies.external_id_condition("abc-123")
    with_id = policies.merge_trust_policy(
        None, managed_wanted={ALICE}, managed_all_known=set(), conditions={ALICE: condition}
    )
    plain = policies.merge_trust_policy(with_id, managed_wanted={ALICE}, managed_all_known=set())
    assert plain == policies.build_trust_policy([ALICE])


@pytest.mark.parametrize("bad", ["", "x", "a b", "x" * 1225, "naïve", 12])
def test_an_external_id_the_sts_api_would_refuse_is_refused(bad: object) -> None:
    with pytest.raises(policies.PolicyError):
        policies.validate_external_id(bad)


@st.composite
def merges(draw):
    pool = draw(st.lists(ram_principals, min_size=1, max_size=6, unique=True))
    current = {"Version": "1", "Statement": draw(st.lists(statements(pool), max_size=4))}
    managed = set(draw(st.lists(st.sampled_from(pool), max_size=len(pool), unique=True)))
    extra = draw(st.lists(ram_principals, max_size=3, unique=True))
    wanted = set(draw(st.lists(st.sampled_from(sorted(managed | set(extra)) or pool), max_size=4)))
    wanted &= managed | set(extra)
    external_ids = draw(st.sampled_from([["id-one"], ["id-one", "id-two"]]))
    conditions = {
        arn: policies.external_id_condition(draw(st.sampled_from(external_ids)))
        for arn in wanted
        if draw(st.booleans())
    }
    return current, wanted, managed, conditions


@settings(max_examples=150)
@given(merges())
def test_merge_with_conditions_trusts_exactly_whom_it_should(case) -> None:
    current, wanted, managed, conditions = case
    merged = policies.merge_trust_policy(
        current, managed_wanted=wanted, managed_all_known=managed, conditions=conditions
    )
    again = policies.merge_trust_policy(
        merged, managed_wanted=wanted, managed_all_known=managed, conditions=conditions
    )
    assert again == merged  # idempotent: a second reconcile changes nothing
    allowed = _allowed(merged)
    before = _allowed(policies.canonical_policy(current, trust=True))
    for arn in wanted:
        assert arn in allowed, "every wanted principal is trusted"
        if arn in conditions:
            # No Allow admits it without its ExternalId.
            assert all(s.get("Condition") == conditions[arn] for s in allowed[arn])
    for arn in (managed - wanted) & set(allowed):
        pytest.fail(f"{arn} is managed, not wanted, and still trusted")
    # Nobody the caller did not name appears; principals the portal does not manage stay.
    assert set(allowed) <= set(before) | wanted
    assert set(before) - managed - wanted <= set(allowed)
