"""The switch-role console link."""

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.console import switch_role_url
from cloud.policies import PolicyError


def test_alias_is_used_as_is() -> None:
    assert (
        switch_role_url(
            signin_base_url="https://signin.aliyun.com",
            parent_alias_or_uid="company-a",
            role_name="ecs-admin",
        )
        == "https://signin.aliyun.com/switchRole.htm?parentAlias=company-a&roleName=ecs-admin"
    )


def test_a_uid_becomes_the_default_domain() -> None:
    url = switch_role_url(
        signin_base_url="http://127.0.0.1:9100/",
        parent_alias_or_uid="11223344",
        role_name="ecs-admin",
    )
    assert (
        url
        == "http://127.0.0.1:9100/switchRole.htm?parentAlias=11223344.onaliyun.com&roleName=ecs-admin"
    )


def test_values_are_encoded() -> None:
    url = switch_role_url(
        signin_base_url="https://console.example/sub", parent_alias_or_uid="a&b=c", role_name="r.1"
    )
    assert parse_qs(urlsplit(url).query) == {"parentAlias": ["a&b=c"], "roleName": ["r.1"]}
    assert urlsplit(url).path == "/sub/switchRole.htm"


@pytest.mark.parametrize(
    ("base", "alias", "role"),
    [
        ("javascript:alert(1)", "a", "r"),
        ("", "a", "r"),
        ("https://signin.aliyun.com", "", "r"),
        ("https://signin.aliyun.com", "a b", "r"),
        ("https://signin.aliyun.com", "a", "../x"),
        ("https://signin.aliyun.com", "a", ""),
    ],
)
def test_bad_inputs_are_refused(base, alias, role) -> None:
    with pytest.raises(PolicyError):
        switch_role_url(signin_base_url=base, parent_alias_or_uid=alias, role_name=role)


@given(
    alias=st.text(
        st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), min_size=1, max_size=40
    ),
    role=st.from_regex(r"[A-Za-z0-9.\-]{1,64}", fullmatch=True),
)
def test_round_trip_of_any_alias(alias: str, role: str) -> None:
    url = switch_role_url(
        signin_base_url="https://signin.aliyun.com", parent_alias_or_uid=alias, role_name=role
    )
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    expected = f"{alias}.onaliyun.com" if alias.isascii() and alias.isdigit() else alias
    assert query == {"parentAlias": [expected], "roleName": [role]}
