"""`pap roles --owner`: every page of the owner's roles the portal lists for the partner,
each with the accounts it is offered in, the home account first; the owner's name reaches
the portal as one path segment, whatever was typed."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from pap import main as pap_main


def role(number: int, *accounts: str) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-0000-0000-{number:012d}",
        "role_name": f"ecs-{number}",
        "cloud_account_uid": accounts[0],
        "offered_in_account_uids": list(accounts),
        "policies": ["AliyunECSFullAccess", "AliyunOSSReadOnlyAccess"][: number % 2 + 1],
    }


class Portal:
    """Two pages of roles for company-a, none for company-e."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def path_of(self, url: str) -> str:
        return url

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        assert method == "GET", path
        self.paths.append(path)
        if path.startswith("/api/v1/owners/company-e/"):
            return {"count": 0, "next": None, "previous": None, "results": []}
        if path == "/api/v1/owners/company-a/catalog-roles/?limit=200":
            page = [role(1, "11223344", "11223355")]
            return {"count": 2, "next": "/next-page", "previous": None, "results": page}
        if path == "/next-page":
            page = [role(2, "11223355")]
            return {"count": 2, "next": None, "previous": path, "results": page}
        raise AssertionError(path)


def run(portal: Portal, owner: str, *, as_json: bool = False) -> int:
    return pap_main.list_roles(portal, argparse.Namespace(owner=owner, json=as_json))  # type: ignore[arg-type]


def test_the_table_lists_every_page_with_each_role_s_accounts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(Portal(), "company-a") == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows == [
        ["ID", "ROLE", "ACCOUNTS", "POLICIES"],
        [
            role(1, "x")["id"],
            "ecs-1",
            "11223344,11223355",
            "AliyunECSFullAccess,AliyunOSSReadOnlyAccess",
        ],
        [role(2, "x")["id"], "ecs-2", "11223355", "AliyunECSFullAccess"],
    ]


def test_json_is_the_list_itself(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(Portal(), "company-a", as_json=True) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [item["offered_in_account_uids"] for item in listed] == [
        ["11223344", "11223355"],
        ["11223355"],
    ]


def test_an_owner_with_nothing_to_grant_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(Portal(), "company-e") == 0
    assert capsys.readouterr().out.strip() == "company-e has no roles to grant at the moment."


def test_the_owner_is_one_path_segment() -> None:
    portal = Portal()
    with pytest.raises(AssertionError):
        run(portal, "../delegations/?x=")
    assert portal.paths == ["/api/v1/owners/..%2Fdelegations%2F%3Fx%3D/catalog-roles/?limit=200"]
