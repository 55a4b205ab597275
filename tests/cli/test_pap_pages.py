"""pap reads every page of a paged list: an organisation with more delegations than one page
holds (200) still finds each of them by name and lists all of them."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from pap import main as pap_main

PAGE = 200


def delegation(number: int, *, role: str = "ecs-viewer") -> dict[str, Any]:
    return {
        "id": f"00000000-0000-0000-0000-{number:012d}",
        "status": "active",
        "owner": {"slug": f"owner-{number}"},
        "partner": {"slug": "company-b"},
        "catalog_role": {"role_name": role},
        "ends_at": None,
    }


class PagedPortal:
    """Answers /api/v1/delegations/ a page at a time, as the portal's limit/offset pages do."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def path_of(self, url: str) -> str:
        return url.removeprefix("http://portal.test")

    def call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        assert method == "GET" and path.startswith("/api/v1/delegations/"), path
        query = dict(part.split("=") for part in path.partition("?")[2].split("&") if part)
        status = query.get("status")
        items = [item for item in self.items if not status or item["status"] == status]
        offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 50)), PAGE)
        following = offset + limit
        rest = {k: v for k, v in query.items() if k not in ("offset", "limit")}
        extra = "".join(f"&{k}={v}" for k, v in rest.items())
        return {
            "count": len(items),
            "next": (
                f"http://portal.test/api/v1/delegations/?limit={limit}&offset={following}{extra}"
                if following < len(items)
                else None
            ),
            "previous": None,
            "results": items[offset:following],
        }


def test_a_delegation_past_the_first_page_is_found_by_name() -> None:
    items = [delegation(n) for n in range(PAGE)] + [delegation(PAGE, role="ecs-admin")]
    portal = PagedPortal(items)
    assert pap_main._delegation_id(portal, "ecs-admin") == items[-1]["id"]  # type: ignore[arg-type]


def test_an_admin_s_access_lists_every_page(capsys: pytest.CaptureFixture[str]) -> None:
    portal = PagedPortal([delegation(n) for n in range(PAGE + 5)])
    args = argparse.Namespace(json=True)
    pap_main._organisation_access(portal, args, partner_admin=False)  # type: ignore[arg-type]
    assert len(json.loads(capsys.readouterr().out)) == PAGE + 5
