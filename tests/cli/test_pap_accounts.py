"""pap and one role name in several of an owner's accounts (a fleet's): `owner/role` names
them all, so pap refuses it and says how to name each one (`owner/account/role`, or the id)
instead of taking whichever the portal listed first; its tables say each one's account."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from pap import main as pap_main
from pap.errors import USAGE, PapError

ROLE = "ecs-fleet-operator"
IDS = {
    "11223344": "00000000-0000-0000-0000-000000000001",
    "11223355": "00000000-0000-0000-0000-000000000002",
}


def access(uid: str) -> dict[str, Any]:
    return {
        "delegation": IDS[uid],
        "owner": "company-a",
        "owner_name": "Company A",
        "role_name": ROLE,
        "role_arn": f"acs:ram::{uid}:role/{ROLE}",
        "account_uid": uid,
        "status": "active",
        "usable": True,
        "ends_at": None,
    }


def delegation(uid: str) -> dict[str, Any]:
    return {
        "id": IDS[uid],
        "status": "active",
        "owner": {"slug": "company-a"},
        "partner": {"slug": "company-b"},
        "catalog_role": {"role_name": ROLE},
        "role_arn": f"acs:ram::{uid}:role/{ROLE}",
        "account_uid": uid,
        "ends_at": None,
    }


class Portal:
    """Answers the two lists pap reads, each holding the role in both accounts."""

    def path_of(self, url: str) -> str:
        return url

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        assert method == "GET", path
        if path.startswith("/api/v1/access/"):
            return [access("11223344"), access("11223355")]
        if path.startswith("/api/v1/delegations/"):
            results = [delegation("11223344"), delegation("11223355")]
            return {"count": 2, "next": None, "previous": None, "results": results}
        if path.startswith("/api/v1/assignments/"):
            return {"count": 0, "next": None, "previous": None, "results": []}
        raise AssertionError(path)


@pytest.mark.parametrize("wanted", [f"company-a/{ROLE}", ROLE])
def test_a_name_several_accounts_hold_is_refused_with_their_names(wanted: str) -> None:
    with pytest.raises(PapError) as refused:
        pap_main._resolve(Portal(), wanted)  # type: ignore[arg-type]
    assert refused.value.status == USAGE
    assert f"company-a/11223344/{ROLE}" in str(refused.value)
    assert f"company-a/11223355/{ROLE}" in str(refused.value)
    with pytest.raises(PapError) as refused:
        pap_main._delegation_id(Portal(), wanted)  # type: ignore[arg-type]
    assert refused.value.status == USAGE and f"company-a/11223355/{ROLE}" in str(refused.value)


def test_owner_account_role_names_one() -> None:
    for uid in IDS:
        wanted = f"company-a/{uid}/{ROLE}"
        assert pap_main._resolve(Portal(), wanted)["delegation"] == IDS[uid]  # type: ignore[arg-type]
        assert pap_main._delegation_id(Portal(), wanted) == IDS[uid]  # type: ignore[arg-type]


def test_the_tables_say_each_account(capsys: pytest.CaptureFixture[str]) -> None:
    pap_main._organisation_access(Portal(), argparse.Namespace(json=False), partner_admin=True)  # type: ignore[arg-type]
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["DELEGATION", "OWNER/ROLE", "ACCOUNT", "PARTNER", "ENDS"]
    for uid, delegation_id in IDS.items():
        assert [delegation_id, f"company-a/{ROLE}", uid, "company-b", "-"] in [
            row.split() for row in rows
        ]
