"""`require_admin` and its kin put what was refused into a translated sentence ("Only an admin
of X can %(doing)s."): a `doing` given as a plain string read in English in the middle of a
Chinese refusal ("只有 Company A 的管理员可以revoke access。")."""

from __future__ import annotations

import ast

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import translation

from delegations.lifecycle.transitions import require_admin
from tests.factories import MembershipFactory, OrganisationFactory
from tests.i18n.catalogue import ROOT

PORTAL_PACKAGES = ("accounts", "activity", "api", "audit", "auditor", "core", "delegations")
PORTAL_PACKAGES += ("notifications", "runbooks")


def _plain_doings_in(source: str) -> list[tuple[int, str]]:
    return [
        (node.lineno, keyword.value.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "doing" and isinstance(keyword.value, ast.Constant)
    ]


def _plain_doings() -> list[str]:
    found = []
    for package in PORTAL_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                source = path.read_text(encoding="utf-8")
                found += [
                    f"{path.relative_to(ROOT)}:{line}: {doing!r}"
                    for line, doing in _plain_doings_in(source)
                ]
    return found


def test_every_refused_action_is_given_translated() -> None:
    assert _plain_doings() == []


def test_the_scan_sees_a_plain_one_and_passes_a_translated_one() -> None:
    source = 'require_admin(doing="revoke access")\nrequire_admin(doing=gettext("retry"))\n'
    assert _plain_doings_in(source) == [(1, "revoke access")]


@pytest.mark.django_db
def test_a_non_admins_refusal_reads_in_chinese_throughout() -> None:
    owner = OrganisationFactory(name="Company A", kind="owner")
    staff = MembershipFactory(organisation=owner, role="staff").user
    with translation.override("zh-hans"), pytest.raises(PermissionDenied) as refusal:
        require_admin(user=staff, organisation=owner, doing=translation.gettext("revoke access"))
    assert str(refusal.value) == "只有 Company A 的管理员可以撤销访问权限。"
