"""A policy's strings may not carry Unicode control characters (category Cc): a principal or an
action with one is refused, whatever else it holds, and nothing else is refused for it."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud import policies


@given(st.text(min_size=1, max_size=40))
def test_a_string_is_refused_exactly_when_it_holds_a_control_character(text: str) -> None:
    has_control = any(unicodedata.category(ch) == "Cc" for ch in text)
    if has_control:
        with pytest.raises(policies.PolicyError, match="control character"):
            policies._string_set([text], "Principal.RAM")
    else:
        assert policies._string_set([text], "Principal.RAM") == [text]


@pytest.mark.parametrize("control", ["\x00", "\t", "\n", "\x1f", "\x7f", "\x85", "\x9f"])
def test_every_kind_of_control_character_is_refused(control: str) -> None:
    with pytest.raises(policies.PolicyError, match="control character"):
        policies._string_set([f"acs:ram::1234:user/a{control}b"], "Principal.RAM")


@pytest.mark.parametrize("other", ["\xa0", "\u200b", "\u2028", "é", "用户", "\U0001f600"])
def test_characters_next_to_the_control_ones_are_kept(other: str) -> None:
    # No-break space, zero-width space (format, Cf), line separator (Zl), letters, emoji.
    arn = f"acs:ram::1234:user/a{other}b"
    assert policies._string_set([arn], "Principal.RAM") == [arn]
